/**
 * Loss-landscape slices (Li, Xu, Taylor, Studer, Goldstein 2018, "Visualizing the Loss Landscape
 * of Neural Nets"): the loss at theta + a dx (1-D) or theta + a dx + b dy (2-D) over a grid, along
 * random filter-normalized, Hessian-eigenvector, gradient, interpolation (Goodfellow et al. 2015)
 * or trajectory-PCA directions.
 *
 * Points go to the evaluator in batches (`Evaluator.planeLosses`: the first dense layer's product
 * is shared by every point, the data or the points are split across threads); grids are visited coarse to fine
 * so a partial result is a low-resolution picture; every batch reports a partial result and checks
 * for cancellation, and a cancelled job returns what it computed (`complete: false`).
 */
import type { DirectionInfo, GridMeta, Progress, SliceResult, SurfaceResult } from '../../shared/results';
import type { Evaluator, PlaneLosses } from '../evaluator';
import type { Problem } from '../problem';
import { runMeta } from '../meta';
import { InputError } from '../errors';
import { norm } from '../linalg/operator';
import { lanczos, lanczosSteps } from '../linalg';
import { checkPositive, MAX_GRID_BYTES, MAX_KRYLOV_STEPS, MAX_VECTOR_BYTES, refuseOver } from '../limits';
import { HVP_CHECK_SEED_OFFSET, selectHessian, yieldToLoop } from '../hvp/operators';
import { Rng } from '../rng';
import { coarseToFineOrder, orthogonalize, parseRange, randomDirection, type IgnoreKind, type NormKind } from '../directions';
import { normalizeDirection } from '../directions/normalize';

export interface GridContext {
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
  /** Called after each batch with the result so far (missing points null). */
  onPartial?: (r: SliceResult | SurfaceResult) => void;
}

export interface DirectionOptions {
  norm?: NormKind;
  ignore?: IgnoreKind;
  seed?: number;
  /**
   * Tolerance of eigenvector directions (default 1e-5): Lanczos stops when each eigenvalue's error
   * bound is within tol of it; each direction reports its residual and angle bound.
   */
  tol?: number;
}

/** Refuse grids whose result arrays alone would pass this many bytes (defined in limits.ts). */
export { MAX_GRID_BYTES };
/**
 * Points of the first evaluator call. Later calls double it (up to MAX_BATCH) while a call takes
 * under half of BATCH_MS: enough points to amortise messaging and the per-call work of each
 * thread, few enough to stream partial results and answer a cancel within about BATCH_MS.
 */
export const BATCH = 32;
export const MAX_BATCH = 512;
const BATCH_MS = 200;

export interface Direction {
  vector: Float64Array;
  info: DirectionInfo;
}

/**
 * Builds the directions named by `kinds` ('random', 'gradient', 'eigen' = 'eigen1', 'eigenK', and
 * 'bottom' = 'bottom1', 'bottomK' for the most negative curvature directions).
 * Random directions use `norm` (default filter), one seeded stream each, in order; eigenvectors
 * and the gradient are unit vectors unless a norm is given explicitly.
 */
export async function makeDirections(
  problem: Problem,
  ev: Evaluator,
  kinds: string[],
  opts: DirectionOptions & { signal?: AbortSignal },
): Promise<Direction[]> {
  const theta = problem.theta;
  const seed = opts.seed ?? 0;
  const rng = new Rng(seed);
  const ignore = opts.ignore ?? 'biasbn';
  const topK = maxEigenIndex(kinds, 'eigen');
  const bottomK = maxEigenIndex(kinds, 'bottom');
  const spectra: Record<'top' | 'bottom', { values: number[]; vectors: Float64Array[]; residuals: number[]; angles: number[] } | undefined> = { top: undefined, bottom: undefined };
  checkPositive('the tolerance of eigenvector directions', opts.tol);
  if (topK > 0 || bottomK > 0) {
    const sel = await selectHessian(ev, 'auto', seed + HVP_CHECK_SEED_OFFSET);
    for (const [which, k] of [['top', topK], ['bottom', bottomK]] as const) {
      if (k === 0) continue;
      const r = await lanczos(sel.op, { k, which, rng: new Rng(seed + 1), stopOn: 'bound', tol: opts.tol ?? 1e-5, signal: opts.signal });
      spectra[which] = { values: r.eigenvalues, vectors: r.eigenvectors, residuals: r.residuals, angles: r.angleBounds };
    }
  }
  let grad: Float64Array | undefined;
  const out: Direction[] = [];
  for (const kind of kinds) {
    const stream = rng.fork();
    const top = eigenIndex(kind, 'eigen');
    const bottom = eigenIndex(kind, 'bottom');
    const spectrum = top !== undefined ? spectra.top : bottom !== undefined ? spectra.bottom : undefined;
    const k = top ?? bottom;
    if (kind === 'random') {
      const nk = opts.norm ?? 'filter';
      const v = randomDirection(problem.ir, theta, stream, nk, ignore);
      out.push({ vector: v, info: { kind, norm: nk, ignore, length: norm(v) } });
    } else if (kind === 'gradient') {
      grad ??= (await ev.gradient()).grad;
      const g = norm(grad);
      if (!(g > 0)) throw new InputError('the gradient is zero here: there is no gradient direction');
      const v = opts.norm ? normalizeDirection(grad, theta, problem.ir, opts.norm, ignore) : Float64Array.from(grad, (x) => x / g);
      out.push({ vector: v, info: { kind, norm: opts.norm ?? 'unit', length: norm(v) } });
    } else if (k !== undefined && spectrum) {
      const e = spectrum.vectors[k - 1];
      const v = opts.norm ? normalizeDirection(e, theta, problem.ir, opts.norm, ignore) : Float64Array.from(e);
      const name = `${top !== undefined ? 'eigen' : 'bottom'}${k}`;
      out.push({
        vector: v,
        info: { kind: name, norm: opts.norm ?? 'unit', length: norm(v), eigenvalue: spectrum.values[k - 1], residual: spectrum.residuals[k - 1], angleBound: spectrum.angles[k - 1] },
      });
    } else {
      throw new InputError(
        `unknown direction '${kind}' (use random, gradient, eigen or eigenK for the K-th top eigenvector, bottom or bottomK for the K-th most negative)`,
      );
    }
  }
  return out;
}

/** The largest K of the 'eigenK' (or 'bottomK') kinds, 0 if none. */
function maxEigenIndex(kinds: readonly string[], prefix: 'eigen' | 'bottom'): number {
  let k = 0;
  for (const kind of kinds) k = Math.max(k, eigenIndex(kind, prefix) ?? 0);
  return k;
}

/**
 * Refuses directions that would not fit before any is built: an 'eigenK' or 'bottomK' beyond the
 * Hessian's dimension or MAX_KRYLOV_STEPS, and direction vectors plus the Lanczos basis that finds
 * the eigenvectors over MAX_VECTOR_BYTES.
 */
export function checkDirections(problem: Problem, kinds: readonly string[]): void {
  const n = problem.ir.numParams;
  let vectors = kinds.length;
  for (const prefix of ['eigen', 'bottom'] as const) {
    let k = 0;
    let name = '';
    for (const kind of kinds) {
      const i = eigenIndex(kind, prefix) ?? 0;
      if (i > k) [k, name] = [i, kind];
    }
    if (k === 0) continue;
    refuseOver(`the eigenvector index of '${name}'`, k, Math.min(n, MAX_KRYLOV_STEPS), {
      hint: n <= MAX_KRYLOV_STEPS ? `the Hessian has dimension ${n.toLocaleString('en-US')}` : undefined,
    });
    vectors += lanczosSteps(n, k) + k;
  }
  refuseOver('the memory for the directions', vectors * n * 8, MAX_VECTOR_BYTES, {
    unit: 'bytes',
    hint: `${vectors.toLocaleString('en-US')} float64 vectors of ${n.toLocaleString('en-US')} parameters; use fewer directions`,
  });
}

/** K for 'eigenK' / 'bottomK' ('eigen' and 'bottom' alone are K = 1). */
function eigenIndex(kind: string, prefix: 'eigen' | 'bottom'): number | undefined {
  if (kind === prefix) return 1;
  const m = new RegExp(`^${prefix}(\\d+)$`).exec(kind);
  return m ? Math.max(1, Number(m[1])) : undefined;
}

/** Refuses grids whose results would not fit in memory, with the estimate. */
export function checkGridSize(points: number, arrays: number): void {
  const bytes = points * arrays * 8 * 3; // the values, their JSON text and a partial copy
  refuseOver(`the memory for the results of a grid of ${points.toLocaleString('en-US')} points`, bytes, MAX_GRID_BYTES, { unit: 'bytes', hint: 'use fewer steps' });
}

export interface Evaluators {
  train: Evaluator;
  test?: Evaluator;
  classification: boolean;
}

export async function openEvaluators(problem: Problem, withTest: boolean): Promise<Evaluators> {
  const train = await problem.evaluator();
  let test: Evaluator | undefined;
  try {
    if (withTest) test = await problem.evaluator({ split: 'test' });
  } catch (e) {
    train.dispose();
    throw e;
  }
  return { train, test, classification: problem.lossName === 'categoricalCrossentropy' || problem.lossName === 'crossEntropyFromLogits' || problem.lossName === 'binaryCrossentropy' };
}

export function closeEvaluators(evs: Evaluators): void {
  evs.train.dispose();
  evs.test?.dispose();
}

interface GridArrays {
  loss: Float64Array;
  accuracy?: Float64Array;
  testLoss?: Float64Array;
  testAccuracy?: Float64Array;
}

function newArrays(n: number, evs: Evaluators): GridArrays {
  const make = (): Float64Array => new Float64Array(n).fill(NaN);
  return {
    loss: make(),
    accuracy: evs.classification ? make() : undefined,
    testLoss: evs.test ? make() : undefined,
    testAccuracy: evs.test && evs.classification ? make() : undefined,
  };
}

/**
 * Evaluates the points `order` (indices; `coords(i)` gives point i's k coefficients) in batches,
 * writing into `out` and calling `partial` after each batch. Returns false when cancelled.
 */
async function evaluateGrid(
  evs: Evaluators,
  origin: Float32Array,
  dirs: Float64Array[],
  coords: (i: number) => number[],
  order: number[],
  out: GridArrays,
  ctx: GridContext,
  partial: (done: number) => void,
): Promise<boolean> {
  const k = dirs.length;
  let batch = BATCH;
  for (let start = 0; start < order.length; ) {
    // Let cancel messages and Ctrl-C in: a local evaluator computes synchronously.
    await yieldToLoop();
    if (ctx.signal?.aborted) return false;
    const t0 = performance.now();
    const idx = order.slice(start, start + batch);
    const coeffs = new Float64Array(idx.length * k);
    idx.forEach((p, r) => coords(p).forEach((c, j) => (coeffs[r * k + j] = c)));
    const put = (res: PlaneLosses, loss: Float64Array, acc?: Float64Array): void => {
      idx.forEach((p, r) => {
        loss[p] = res.loss[r];
        if (acc && res.accuracy) acc[p] = res.accuracy[r];
      });
    };
    put(await evs.train.planeLosses(origin, dirs, coeffs, evs.classification), out.loss, out.accuracy);
    if (evs.test && out.testLoss) put(await evs.test.planeLosses(origin, dirs, coeffs, evs.classification), out.testLoss, out.testAccuracy);
    start += idx.length;
    ctx.onProgress?.({ done: start, total: order.length, message: `${start}/${order.length} grid points` });
    partial(start);
    if (performance.now() - t0 < BATCH_MS / 2) batch = Math.min(2 * batch, MAX_BATCH);
  }
  return true;
}

const nulls = (a: ArrayLike<number>): (number | null)[] => Array.from(a, (v) => (Number.isNaN(v) ? null : v));
const rows = (a: Float64Array, nx: number): (number | null)[][] =>
  Array.from({ length: a.length / nx }, (_, r) => nulls(a.subarray(r * nx, (r + 1) * nx)));

export type GridBase = Omit<GridMeta, 'complete' | 'evaluations' | 'directions'>;

export async function gridMeta(problem: Problem, evs: Evaluators, seed: number, t0: number): Promise<GridBase> {
  return {
    ...runMeta(problem, evs.train, seed, await evs.train.loss()),
    ms: performance.now() - t0,
    threads: evs.train.threads,
  };
}

/**
 * Evaluates 1-D curves origin + a d for each direction over `xs`: the shared core of slices and
 * interpolation. One row per direction when there are several.
 */
export async function curvesAlong(
  evs: Evaluators,
  origin: Float32Array,
  dirs: Direction[],
  xs: number[],
  meta: GridBase,
  kind: 'slice' | 'interpolate',
  ctx: GridContext,
  t0: number,
  extra: Partial<SliceResult> = {},
): Promise<SliceResult> {
  const curves = dirs.map(() => newArrays(xs.length, evs));
  let evaluations = 0;
  let complete = true;
  const pick = (key: keyof GridArrays): (number | null)[] | (number | null)[][] | undefined => {
    const arrs = curves.map((c) => c[key]);
    if (arrs.some((a) => !a)) return undefined;
    const lists = arrs.map((a) => nulls(a as Float64Array));
    return lists.length === 1 ? lists[0] : lists;
  };
  const result = (): SliceResult => ({
    kind,
    ...meta,
    ...extra,
    ms: performance.now() - t0,
    complete,
    evaluations,
    directions: dirs.map((d) => d.info),
    x: xs,
    loss: pick('loss') ?? [],
    accuracy: pick('accuracy'),
    testLoss: pick('testLoss'),
    testAccuracy: pick('testAccuracy'),
  });
  for (let c = 0; c < dirs.length && complete; c++) {
    const order = coarseToFineOrder(xs.length, 1);
    complete = await evaluateGrid(evs, origin, [dirs[c].vector], (i) => [xs[i]], order, curves[c], ctx, (done) => {
      evaluations = c * xs.length + done;
      ctx.onPartial?.(result());
    });
  }
  return result();
}

export interface SliceOptions extends DirectionOptions {
  /** Direction kinds, one curve each. */
  dirs: string[];
  /** Axis 'start:stop:steps' (default -1:1:51). */
  x?: string;
  test?: boolean;
}

/** 1-D slices: one curve per direction. */
export async function runSlice(problem: Problem, opts: SliceOptions, ctx: GridContext = {}): Promise<SliceResult> {
  const t0 = performance.now();
  const axis = parseRange(opts.x ?? '-1:1:51', 'x range');
  if (opts.dirs.length === 0) throw new InputError('give at least one direction');
  checkGridSize(axis.steps * opts.dirs.length, opts.test ? 4 : 2);
  checkDirections(problem, opts.dirs);
  const evs = await openEvaluators(problem, opts.test ?? false);
  try {
    const dirs = await makeDirections(problem, evs.train, opts.dirs, { ...opts, signal: ctx.signal });
    const meta = await gridMeta(problem, evs, opts.seed ?? 0, t0);
    return await curvesAlong(evs, Float32Array.from(problem.theta), dirs, axis.values, meta, 'slice', ctx, t0);
  } finally {
    closeEvaluators(evs);
  }
}

export interface SurfaceOptions extends DirectionOptions {
  /** Two direction kinds, for x and y ('random' twice by default: two independent directions). */
  dirs?: [string, string];
  x?: string;
  y?: string;
  test?: boolean;
}

/** A 2-D surface over the plane of two directions (y made orthogonal to x, its cosine reported). */
export async function runSurface(problem: Problem, opts: SurfaceOptions, ctx: GridContext = {}): Promise<SurfaceResult> {
  const t0 = performance.now();
  const ax = parseRange(opts.x ?? '-1:1:51', 'x range');
  const ay = parseRange(opts.y ?? opts.x ?? '-1:1:51', 'y range');
  checkGridSize(ax.steps * ay.steps, opts.test ? 4 : 2);
  const kinds = opts.dirs ?? ['random', 'random'];
  checkDirections(problem, kinds);
  if (kinds[0] === kinds[1] && kinds[0] !== 'random') {
    throw new InputError(`both axes are '${kinds[0]}': give two different directions, e.g. eigen1,eigen2`);
  }
  const evs = await openEvaluators(problem, opts.test ?? false);
  try {
    const [dx, dy0] = await makeDirections(problem, evs.train, kinds, { ...opts, signal: ctx.signal });
    const o = orthogonalize(dx.vector, dy0.vector);
    const dy: Direction = { vector: o.y, info: { ...dy0.info, length: norm(o.y), cosineBeforeOrthogonalization: o.cosine } };
    const meta = await gridMeta(problem, evs, opts.seed ?? 0, t0);
    return await surfaceOnPlane(evs, Float32Array.from(problem.theta), [dx, dy], ax.values, ay.values, meta, 'surface', ctx, t0);
  } finally {
    closeEvaluators(evs);
  }
}

/** Evaluates a plane grid coarse to fine. Shared by surfaces and trajectory planes. */
export async function surfaceOnPlane(
  evs: Evaluators,
  origin: Float32Array,
  dirs: [Direction, Direction],
  xs: number[],
  ys: number[],
  meta: GridBase,
  kind: 'surface' | 'trajectory',
  ctx: GridContext,
  t0: number,
  extra: Partial<SurfaceResult> = {},
): Promise<SurfaceResult> {
  const nx = xs.length;
  const arrays = newArrays(nx * ys.length, evs);
  let evaluations = 0;
  let complete = true;
  const result = (): SurfaceResult => ({
    kind,
    ...meta,
    ...extra,
    ms: performance.now() - t0,
    complete,
    evaluations,
    directions: dirs.map((d) => d.info),
    x: xs,
    y: ys,
    loss: rows(arrays.loss, nx),
    accuracy: arrays.accuracy && rows(arrays.accuracy, nx),
    testLoss: arrays.testLoss && rows(arrays.testLoss, nx),
    testAccuracy: arrays.testAccuracy && rows(arrays.testAccuracy, nx),
  });
  const order = coarseToFineOrder(nx, ys.length);
  complete = await evaluateGrid(
    evs,
    origin,
    [dirs[0].vector, dirs[1].vector],
    (i) => [xs[i % nx], ys[Math.floor(i / nx)]],
    order,
    arrays,
    ctx,
    (done) => {
      evaluations = done;
      ctx.onPartial?.(result());
    },
  );
  return result();
}
