/**
 * Slices through checkpoints: linear interpolation between two models (Goodfellow, Vinyals, Saxe
 * 2015: L((1 - a) theta_A + a theta_B), reference range -0.5:1.5 with 401 points), and the plane of
 * a training trajectory's first two principal components with the checkpoints projected onto it
 * (Li et al. 2018, sec. 7).
 */
import * as path from 'node:path';
import type { SliceResult, SurfaceResult } from '../../shared/results';
import type { Problem } from '../problem';
import { BasinError } from '../errors';
import { norm } from '../linalg/operator';
import { assertCompatible, INTERPOLATE, loadCheckpoint, parseRange, trajectoryPlane, type Range } from '../directions';
import { isOnnxFile, loadOnnxModel } from '../model/onnx/import';
import type { ModelIR } from '../model/ir';
import { MAX_STEPS } from '../directions/grid';
import { checkCount, MAX_VECTOR_BYTES, refuseOver } from '../limits';
import { checkGridSize, closeEvaluators, curvesAlong, gridMeta, openEvaluators, surfaceOnPlane, type GridContext } from './slice';

/**
 * A checkpoint's parameters: a TF.js model.json, or an ONNX file (a run of an ONNX model writes
 * its checkpoints as .onnx; any .onnx of the same model will do).
 */
export async function loadModelCheckpoint(file: string): Promise<{ ir: ModelIR; theta: Float32Array; file: string }> {
  if (!isOnnxFile(file)) return loadCheckpoint(file);
  const { ir, values } = loadOnnxModel(file);
  const theta = new Float32Array(ir.numParams);
  ir.params.forEach((p, i) => theta.set(values[i], p.offset));
  return { ir, theta, file };
}

export interface InterpolateOptions {
  /** The second model (the first is the problem's). */
  other: string;
  x?: string;
  test?: boolean;
}

export async function runInterpolate(problem: Problem, opts: InterpolateOptions, ctx: GridContext = {}): Promise<SliceResult> {
  const t0 = performance.now();
  const axis = parseRange(opts.x ?? INTERPOLATE, 'x range');
  checkGridSize(axis.steps, opts.test ? 4 : 2);
  const first = problem.modelFile ?? problem.description;
  const other = await loadModelCheckpoint(opts.other);
  assertCompatible({ ir: problem.ir, file: first }, other);
  const d = new Float64Array(problem.ir.numParams);
  for (let i = 0; i < d.length; i++) d[i] = other.theta[i] - problem.theta[i];
  const evs = await openEvaluators(problem, opts.test ?? false);
  try {
    const meta = await gridMeta(problem, evs, 0, t0);
    const endpoints = [
      { file: first, loss: meta.lossValue },
      { file: opts.other, loss: await evs.train.loss(other.theta) },
    ];
    return await curvesAlong(
      evs,
      Float32Array.from(problem.theta),
      [{ vector: d, info: { kind: 'interpolation', norm: 'none', length: norm(d) } }],
      axis.values,
      meta,
      'interpolate',
      ctx,
      t0,
      { endpoints },
    );
  } finally {
    closeEvaluators(evs);
  }
}

export interface TrajectoryOptions {
  /** Checkpoint files (model.json or .onnx) in training order; the problem's model is the last one. */
  checkpoints: string[];
  x?: string;
  y?: string;
  /** Points per axis when the range is chosen from the path (default 31). */
  steps?: number;
  test?: boolean;
}

export async function runTrajectory(problem: Problem, opts: TrajectoryOptions, ctx: GridContext = {}): Promise<SurfaceResult> {
  const t0 = performance.now();
  if (opts.checkpoints.length < 3) throw new BasinError(`a trajectory plane needs at least 3 checkpoints (got ${opts.checkpoints.length})`);
  // Sizes before anything is loaded: the axes, the grid, the checkpoints (float32 each) and their Gram matrix.
  checkCount('the number of steps per axis', opts.steps, 2, MAX_STEPS);
  const rx = opts.x ? parseRange(opts.x, 'x range') : undefined;
  const ry = opts.y ? parseRange(opts.y, 'y range') : undefined;
  checkGridSize((rx?.steps ?? opts.steps ?? 31) * (ry?.steps ?? opts.steps ?? 31), opts.test ? 4 : 2);
  const count = opts.checkpoints.length;
  refuseOver('the memory for the checkpoints', count * problem.ir.numParams * 4 + count * count * 8, MAX_VECTOR_BYTES, {
    unit: 'bytes',
    hint: `${count.toLocaleString('en-US')} checkpoints of ${problem.ir.numParams.toLocaleString('en-US')} parameters; use fewer checkpoints`,
  });
  const final = problem.modelFile ?? opts.checkpoints[opts.checkpoints.length - 1];
  const cps = [];
  for (const file of opts.checkpoints) {
    const cp = await loadModelCheckpoint(file);
    assertCompatible({ ir: problem.ir, file: final }, cp);
    cps.push(cp);
  }
  const plane = trajectoryPlane(cps.map((c) => c.theta));
  const range = (vals: number[], parsed: Range | undefined): number[] => {
    if (parsed) return parsed.values;
    const lo = Math.min(...vals);
    const hi = Math.max(...vals);
    const pad = 0.25 * Math.max(hi - lo, 1e-3);
    const steps = opts.steps ?? 31;
    return Array.from({ length: steps }, (_, i) => lo - pad + ((hi - lo + 2 * pad) * i) / (steps - 1));
  };
  const xs = range(plane.coords.map((c) => c.x), rx);
  const ys = range(plane.coords.map((c) => c.y), ry);
  const evs = await openEvaluators(problem, opts.test ?? false);
  try {
    const meta = await gridMeta(problem, evs, 0, t0);
    const pathPoints = [];
    for (let i = 0; i < cps.length; i++) {
      pathPoints.push({ file: path.relative(process.cwd(), opts.checkpoints[i]) || opts.checkpoints[i], ...plane.coords[i], loss: await evs.train.loss(cps[i].theta) });
    }
    const dirs: Parameters<typeof surfaceOnPlane>[2] = [
      { vector: plane.dx, info: { kind: 'pca1', norm: 'unit', length: 1, explained: plane.explained[0] } },
      { vector: plane.dy, info: { kind: 'pca2', norm: 'unit', length: 1, explained: plane.explained[1] } },
    ];
    return await surfaceOnPlane(evs, Float32Array.from(plane.origin), dirs, xs, ys, meta, 'trajectory', ctx, t0, { path: pathPoints });
  } finally {
    closeEvaluators(evs);
  }
}
