/**
 * Experiment modules: a `.js` or `.ts` file whose export (default or named) provides
 *
 *   model(tf)  -> tf.LayersModel           the model, built with the engine's own TF.js instance
 *   data(tf)   -> { x, y, xTest?, yTest? }  tensors or nested arrays
 *   loss       -> 'meanSquaredError' | 'categoricalCrossentropy' | 'binaryCrossentropy'
 *                 | (yTrue, yPred) => scalar tensor (a mean over samples)
 *
 * and, optionally, fields later features read (training settings). TypeScript is compiled on the
 * fly with esbuild; relative imports are bundled; packages resolve from the module's folder.
 * The module runs with full Node privileges: only load code you trust.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { tf, tfl } from '../tf';
import { BasinError } from '../errors';
import { LOSS_NAMES, type LossName } from './ir';
import type { UserLoss } from './losses';

export type TfApi = typeof tf & typeof tfl;

export interface ExperimentModule {
  model(tf: TfApi): tfl.LayersModel | Promise<tfl.LayersModel>;
  data(tf: TfApi): ExperimentData | Promise<ExperimentData>;
  loss?: LossName | UserLoss;
  [key: string]: unknown;
}

type ArrayData = tf.Tensor | number[] | number[][] | number[][][] | number[][][][];
export interface ExperimentData {
  x: ArrayData;
  y: ArrayData;
  xTest?: ArrayData;
  yTest?: ArrayData;
}

/** The TF.js API handed to experiment modules: core ops plus the layers API. */
export function tfApi(): TfApi {
  return { ...tf, ...tfl } as TfApi;
}

export function loadExperiment(file: string): ExperimentModule {
  const abs = path.resolve(file);
  if (!fs.existsSync(abs)) throw new BasinError('experiment module not found', file);
  let code: string;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const esbuild = require('esbuild') as typeof import('esbuild');
    const out = esbuild.buildSync({
      entryPoints: [abs],
      bundle: true,
      platform: 'node',
      format: 'cjs',
      write: false,
      packages: 'external',
      logLevel: 'silent',
      target: 'node20',
    });
    code = out.outputFiles[0].text;
  } catch (e) {
    const errors = (e as { errors?: { text: string; location?: { line: number; file: string } }[] }).errors;
    const first = errors?.[0];
    throw new BasinError(
      first ? `does not compile: ${first.text}${first.location ? ` (line ${first.location.line})` : ''}` : `cannot compile (${(e as Error).message})`,
      file,
    );
  }
  const mod = { exports: {} as Record<string, unknown> };
  try {
    const fn = new Function('module', 'exports', 'require', '__filename', '__dirname', code);
    fn(mod, mod.exports, createRequire(abs), abs, path.dirname(abs));
  } catch (e) {
    throw new BasinError(`failed while loading: ${(e as Error).message}`, file);
  }
  const exp = mod.exports;
  const candidate = (exp.default && typeof exp.default === 'object' ? exp.default : exp) as Partial<ExperimentModule>;
  if (typeof candidate.model !== 'function') throw new BasinError('the module must export model(tf) returning a tf.LayersModel', file);
  if (typeof candidate.data !== 'function') throw new BasinError('the module must export data(tf) returning {x, y}', file);
  const loss = candidate.loss;
  if (loss !== undefined && typeof loss !== 'function' && !(LOSS_NAMES as readonly unknown[]).includes(loss)) {
    throw new BasinError(`loss '${String(loss)}' is not one of ${LOSS_NAMES.join(', ')} or a function (yTrue, yPred) => scalar`, file);
  }
  return candidate as ExperimentModule;
}

/** Converts tensors or nested arrays to values and shape. */
export function toArray(v: ArrayData, what: string, file: string): { values: Float32Array; shape: number[] } {
  if (v instanceof tf.Tensor) return { values: Float32Array.from(v.dataSync()), shape: v.shape.slice() };
  if (!Array.isArray(v)) throw new BasinError(`data().${what} must be a tensor or an array`, file);
  const t = tf.tidy(() => tf.tensor(v as number[]));
  const out = { values: Float32Array.from(t.dataSync()), shape: t.shape.slice() };
  t.dispose();
  return out;
}
