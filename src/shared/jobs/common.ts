/** Option entries several jobs share: the seed, and what the curvature jobs analyse. */
import { choice, CURVATURE_NAMES, int, str } from '../fields';
import type { CurvatureName } from '../results';
import type { CliFlag, OptionEntry } from './spec';

/** The seed as a CLI option. */
export const SEED: OptionEntry = { spec: int(0), flag: 'seed', arg: 'N', help: 'seed for every random vector (0)' };
/** The seed on the wire only (the extension sends its configured seed with every job). */
export const WIRE_SEED: OptionEntry = { spec: int(0) };

export interface CurvatureJobOptions {
  seed?: number;
  hvp?: 'auto' | 'exact' | 'fd';
  /** Restrict to the curvature's block of one layer's parameters. */
  layer?: string;
  /** 'hessian' (default), 'ggn', 'fisher' or 'empirical-fisher'. */
  curvature?: CurvatureName;
}

/** The options of eigs, trace and density, first in their tables. */
export const CURVATURE_OPTIONS = {
  seed: SEED,
  hvp: { spec: choice(['auto', 'exact', 'fd']), flag: 'hvp', help: 'Hessian-vector products (auto: checked, fastest correct)' },
  layer: { spec: str, flag: 'layer', arg: 'NAME', help: "analyse the curvature block of one layer's parameters" },
  curvature: {
    spec: choice(CURVATURE_NAMES),
    flag: 'curvature',
    help: 'the curvature analysed (hessian): the generalized Gauss-Newton J^T H_L J, the true Fisher, or the empirical Fisher',
  },
} as const satisfies Record<keyof Required<CurvatureJobOptions>, OptionEntry>;

/** Slice directions' normalization (Li et al. 2018). */
export const NORM: OptionEntry = {
  spec: choice(['filter', 'layer', 'none']),
  flag: 'norm',
  help: 'direction normalization (Li et al. 2018; random directions default to filter, eigenvectors and the gradient to unit length)',
};
export const IGNORE: OptionEntry = { spec: choice(['biasbn', 'none']), flag: 'ignore', help: 'zero biases and batch-norm parameters of random directions (biasbn)' };
export const TEST: OptionEntry = { spec: { type: 'boolean' }, flag: 'test', help: 'also on the test data (xTest, yTest)' };
export const EIGEN_TOL: OptionEntry = { spec: { type: 'number', min: 0, orEqual: false }, flag: 'tol', arg: 'T', help: 'tolerance of eigenvector directions (1e-5)' };
/** A grid's CSV file (the CLI writes it; not a job option). */
/** The options slices and surfaces share: how their directions are drawn and normalized. */
export interface DirectionJobOptions {
  seed?: number;
  norm?: 'filter' | 'layer' | 'none';
  ignore?: 'biasbn' | 'none';
  test?: boolean;
  tol?: number;
}

/** The option table entries of DirectionJobOptions after the seed and the job's own (help order). */
export const DIRECTION_OPTIONS = { norm: NORM, ignore: IGNORE, test: TEST, tol: EIGEN_TOL };

export const CSV: CliFlag = { flag: 'csv', arg: 'FILE', help: 'also write the grid as CSV (one row per point)' };
