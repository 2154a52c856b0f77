/**
 * The training lab: trains a problem's model with a chosen optimizer and probes the landscape as
 * it goes, writing a run directory that survives a crash or a kill:
 *
 *   RUN/manifest.json        settings, seed, backend, versions, status, where it stopped
 *   RUN/metrics.jsonl        one line per probe (the loss every step for full-batch methods)
 *   RUN/checkpoints/step-N/  model.json + weights.bin (TF.js layers format), or NAME.onnx for a
 *                            model loaded from NAME.onnx, + optimizer.json (the float64
 *                            parameters and optimizer state, for a bit-exact resume)
 *   RUN/checkpoints/last-good/  after a divergence: the last parameters whose loss was finite and
 *                            under the threshold, and the optimizer state they had
 *
 * Checkpoints are written every `checkpointEvery` steps, every `checkpointSeconds` of training
 * (only the newest KEEP_TIME_CHECKPOINTS of those are kept), at the end and when the run stops.
 * Every file but metrics.jsonl is written under a temporary name and renamed; a kill can only cut
 * the last metrics line. Resuming (resume.ts) continues from the newest whole checkpoint.
 *
 * Probes (docs/methods.md, "Training dynamics"): lambda_max by Lanczos started from the previous eigenvector plus a fresh random direction
 * (`probeTop`: a warm start alone can be trapped in one block of a block-structured Hessian), its
 * eigenvector's overlap with the gradient, the stability threshold of the optimizer
 * (2/eta, or its momentum version), the trace (Hutch++), the implicit-gradient-regularization
 * term (h/4)|grad L|^2 (Barrett & Dherin 2021), SGD's implicit term (Smith et al. 2021), the
 * gradient noise scale B_simple (McCandlish et al. 2018), distance from initialization, weight
 * norm, per-layer sharpness, and optionally the top eigenvalue of another curvature (GGN, Fisher,
 * empirical Fisher) beside the Hessian's.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ProbeRecord, TrainDone, TrainSettings } from '../../shared/results';
import type { Problem } from '../problem';
import type { Evaluator } from '../evaluator';
import { LocalEvaluator } from '../evaluator';
import { Objective } from '../objective';
import { engineInfo } from '../backend';
import { BasinError } from '../errors';
import { norm } from '../linalg/operator';
import { hutchpp, lanczos } from '../linalg';
import { BlockOperator, HVP_CHECK_SEED_OFFSET, selectHessian } from '../hvp/operators';
import { gradientOverlap, selectCurvature, type CurvatureSelection } from '../curvature';
import type { LinearOperator } from '../linalg/operator';
import { Rng } from '../rng';
import { sliceSplit } from '../shard/parallel';
import { parseSchedule } from './schedules';
import { gradientNoiseScale, sgdImplicitTerm } from './noise';
import { CheckpointWriter, modelWriter } from './checkpoint';
import { fullBatchGradient, stepLoop } from './loop';
import { METRICS_FILE, openRun } from './setup';

export { KEEP_TIME_CHECKPOINTS } from './checkpoint';
export { epochBatches } from './loop';
import { PROBE_BUDGETS, PROBE_SEED_OFFSET, type ProbeAt } from './probe';


export const DEFAULT_SETTINGS: TrainSettings = {
  optimizer: 'gd',
  lr: 0.05,
  steps: 200,
  schedule: 'constant',
  seed: 0,
  probeEvery: 10,
  traceEvery: 0,
  noiseEvery: 0,
  layersEvery: 0,
  checkpointEvery: 0,
  checkpointSeconds: 30,
  divergeFactor: 1e4,
};

export interface TrainContext {
  signal?: AbortSignal;
  onProbe?: (r: ProbeRecord) => void;
}

/** Checks settings before any work; fills in what depends on the data. */
export function validateSettings(s: TrainSettings, samples: number): TrainSettings {
  const bad = (m: string): never => {
    throw new BasinError(m);
  };
  if (!(s.lr > 0) || !Number.isFinite(s.lr)) bad(`the learning rate must be a positive number (got ${s.lr})`);
  if (!Number.isInteger(s.steps) || s.steps < 0) bad(`steps must be a whole number >= 0 (got ${s.steps})`);
  if (!Number.isInteger(s.probeEvery) || s.probeEvery < 1) bad(`probe cadence must be a whole number >= 1 (got ${s.probeEvery})`);
  if (!Number.isInteger(s.checkpointEvery) || s.checkpointEvery < 0) bad(`the checkpoint cadence in steps must be a whole number >= 0 (got ${s.checkpointEvery})`);
  const secs = s.checkpointSeconds ?? DEFAULT_SETTINGS.checkpointSeconds;
  if (typeof secs !== 'number' || !(secs >= 0) || !Number.isFinite(secs)) bad(`the checkpoint cadence in seconds must be a number >= 0 (got ${secs})`);
  if (typeof s.divergeFactor !== 'number' || !(s.divergeFactor > 0)) bad(`the divergence factor must be a positive number (got ${s.divergeFactor})`);
  parseSchedule(s.schedule);
  let batchSize = s.batchSize;
  if (s.optimizer === 'sgd' && batchSize === undefined) batchSize = Math.min(32, samples);
  if (batchSize !== undefined) {
    if (!Number.isInteger(batchSize) || batchSize < 1) bad(`the batch size must be a whole number >= 1 (got ${batchSize})`);
    if (batchSize > samples) bad(`the batch size ${batchSize} exceeds the ${samples} training samples`);
    if (batchSize === samples) batchSize = undefined;
  }
  if (s.igr !== undefined && batchSize !== undefined) bad('the IGR term (igr) adds mu |grad L|^2 to the full-batch loss: use full-batch training (no batchSize)');
  if (s.optimizer === 'flow' && batchSize !== undefined) bad('gradient flow (optimizer: flow) is full batch');
  if (s.probeSubset !== undefined && (s.probeSubset < 1 || s.probeSubset > samples)) bad(`probeSubset must be between 1 and ${samples}`);
  return { ...s, batchSize, checkpointSeconds: secs };
}

/** cos^2 below which an eigenvector counts as unseen by a nonzero gradient (an angle within 1e-3 of 90 degrees). */
export const UNSEEN_OVERLAP = 1e-6;

export interface ProbeTop {
  value: number;
  vector: Float64Array;
  products: number;
}

/**
 * The top eigenpair of `op` for a training probe, cheaply and without the warm start's trap.
 * Lanczos starts from prev / |prev| + r, r a fresh random unit vector: the previous eigenvector
 * makes it converge in a few products when the top direction moved little, and r gives every
 * direction the component a cold start would have (about 1/sqrt(n)). Warm-starting from prev alone
 * can never leave the block prev lies in when the operator is block diagonal (a symmetry the
 * training preserves, e.g. biases that gradient descent cannot move): the Krylov space stays in
 * that block and a larger eigenvalue in another block is never seen. At least `minIter` products
 * (4) are taken so that a larger eigenvalue along r has surfaced before the stopping test (the
 * Kato-Temple bound, tol relative) is trusted.
 */
export async function probeTop(op: LinearOperator, prev: Float64Array | undefined, rng: Rng, opts: { maxIter: number; tol: number; minIter?: number }): Promise<ProbeTop> {
  const r = rng.normalVector(op.dim);
  const nr = norm(r);
  const v0 = new Float64Array(op.dim);
  const np = prev ? norm(prev) : 0;
  for (let i = 0; i < op.dim; i++) v0[i] = r[i] / nr + (np > 0 ? prev![i] / np : 0);
  const lz = await lanczos(op, { k: 1, which: 'top', v0, rng, maxIter: opts.maxIter, minIter: opts.minIter ?? 4, tol: opts.tol, stopOn: 'bound' });
  return { value: lz.eigenvalues[0], vector: lz.eigenvectors[0], products: lz.matvecs };
}

export interface Prober {
  /** `final`: the last probe of a run, which always includes per-layer sharpness. */
  probe(at: ProbeAt): Promise<ProbeRecord>;
  dispose(): void;
}

export async function makeProber(problem: Problem, s: TrainSettings, theta0: Float64Array, mini: Objective): Promise<Prober> {
  const train = s.probeSubset ? sliceSplit(problem.train, 0, s.probeSubset) : problem.train;
  const ev: Evaluator = s.probeSubset
    ? new LocalEvaluator(new Objective(problem.ir, problem.theta, problem.loss, train))
    : await problem.evaluator();
  const testEv = problem.test ? await problem.evaluator({ split: 'test', threads: 1 }) : undefined;
  const sel = await selectHessian(ev, 'auto', s.seed + HVP_CHECK_SEED_OFFSET);
  const op = sel.op;
  let curv: CurvatureSelection | undefined;
  if (s.curvature !== undefined && s.curvature !== 'hessian') {
    curv = await selectCurvature(ev, s.curvature, { loss: problem.loss, seed: s.seed, fallback: () => new LocalEvaluator(new Objective(problem.ir, problem.theta, problem.loss, train)) });
  }
  let curvV0: Float64Array | undefined;
  const classification = problem.lossName === 'categoricalCrossentropy' || problem.lossName === 'crossEntropyFromLogits' || problem.lossName === 'binaryCrossentropy';
  const layers = [...new Set(problem.ir.params.map((p) => p.layer))].map((layer) => {
    const ps = problem.ir.params.filter((p) => p.layer === layer);
    return { layer, offset: ps[0].offset, size: ps.reduce((a, p) => a + p.size, 0) };
  });
  let v0: Float64Array | undefined;
  const layerV0 = new Map<string, Float64Array>();
  const rng = new Rng(s.seed + PROBE_SEED_OFFSET);
  const n = problem.train.xShape[0];
  const due = (every: number, step: number): boolean => every > 0 && step % every === 0;
  return {
    async probe({ theta, step, epoch, lr, optimizer: opt, stepLoss, final }) {
      const t0 = performance.now();
      const t32 = Float32Array.from(theta);
      await ev.setParameters(t32);
      if (curv?.fallback) await curv.fallback.setParameters(t32);
      const before = op.matvecs + (curv?.op.matvecs ?? 0);
      const g = await ev.gradient();
      const gradNorm = norm(g.grad);
      const rec: ProbeRecord = { step, epoch, lr, loss: g.loss, ms: 0, probeSamples: ev.numSamples };
      if (stepLoss !== undefined && s.batchSize !== undefined) rec.batchLoss = stepLoss;
      if (classification) rec.accuracy = await ev.accuracy();
      if (testEv) {
        rec.testLoss = await testEv.loss(t32);
        if (classification) rec.testAccuracy = await testEv.accuracy(t32);
      }
      const top = await probeTop(op, v0, rng, PROBE_BUDGETS.top);
      v0 = top.vector;
      rec.lambdaMax = top.value;
      rec.lambdaMaxProducts = top.products;
      const overlap = gradientOverlap(g.grad, [top.vector]).perVector[0];
      rec.lambdaMaxOverlap = overlap;
      if (gradNorm > 0 && overlap < UNSEEN_OVERLAP) rec.lambdaMaxUnseen = true;
      if (curv) {
        const c = await probeTop(curv.op, curvV0, rng, PROBE_BUDGETS.top);
        curvV0 = c.vector;
        rec.curvatureMax = c.value;
      }
      rec.threshold = opt.threshold(lr);
      rec.igrTerm = (lr / 4) * gradNorm * gradNorm;
      rec.gradNorm = gradNorm;
      let d = 0;
      let w = 0;
      for (let i = 0; i < theta.length; i++) {
        d += (theta[i] - theta0[i]) ** 2;
        w += theta[i] ** 2;
      }
      rec.distInit = Math.sqrt(d);
      rec.weightNorm = Math.sqrt(w);
      if (due(s.traceEvery, step)) {
        const tr = await hutchpp(op, { matvecs: PROBE_BUDGETS.traceMatvecs, rng });
        rec.trace = tr.trace;
        rec.traceStderr = tr.stderr;
      }
      if (due(s.noiseEvery, step)) {
        const batchGrad = async (idx: Int32Array): Promise<Float64Array> => mini.batchGradient(idx, t32).grad;
        const bSmall = s.batchSize ?? Math.max(2, Math.min(32, Math.floor(n / 8)));
        const bBig = Math.min(n, 4 * bSmall);
        if (bBig > bSmall) {
          const ns = await gradientNoiseScale(batchGrad, n, { rng, bSmall, bBig, draws: PROBE_BUDGETS.noiseDraws });
          rec.noiseScale = ns.bSimple;
        }
        if (s.batchSize !== undefined) {
          const full = mini.gradient(t32).grad;
          const st = await sgdImplicitTerm(batchGrad, full, n, { rng, batchSize: s.batchSize, lr, draws: PROBE_BUDGETS.noiseDraws });
          rec.sgdTerm = st.term;
          rec.sgdTermStderr = st.stderr;
        }
      }
      if ((due(s.layersEvery, step) || final) && layers.length > 1) {
        rec.layerSharpness = {};
        for (const l of layers) {
          const block: LinearOperator = new BlockOperator(op, l.offset, l.size);
          const r = await probeTop(block, layerV0.get(l.layer), rng, PROBE_BUDGETS.layer);
          layerV0.set(l.layer, r.vector);
          rec.layerSharpness[l.layer] = r.value;
        }
      }
      rec.hvps = op.matvecs + (curv?.op.matvecs ?? 0) - before;
      rec.ms = performance.now() - t0;
      return rec;
    },
    dispose() {
      curv?.fallback?.dispose();
      ev.dispose();
      testEv?.dispose();
    },
  };
}

export interface TrainOptions {
  /**
   * Continue the run in this directory from its newest whole checkpoint (see resume.ts; call
   * `openRunForResume` first to check the directory and show what will be repaired).
   */
  resume?: boolean;
}

/**
 * Trains and probes, writing the run directory `out`. Returns how it ended; a divergence, a
 * cancellation or an error still leaves the manifest, the metrics so far and a checkpoint.
 * The parts: `openRun` (setup.ts: a new run or a resumed one, and its manifest), the checkpoint
 * writer (checkpoint.ts: TF.js or ONNX, as the model was loaded), the prober (above) and the
 * step loop (loop.ts).
 */
export async function train(problem: Problem, settings: TrainSettings, out: string, ctx: TrainContext = {}, opts: TrainOptions = {}): Promise<TrainDone> {
  const n = problem.train.xShape[0];
  const s = validateSettings(settings, n);
  const writer = modelWriter(problem);
  const run = openRun(problem, s, out, opts.resume ?? false);
  const { manifest } = run;
  const mini = new Objective(problem.ir, problem.theta, problem.loss, problem.train);
  const full = await problem.evaluator();
  let prober: Prober | undefined;
  try {
    // Minibatch gradients on the engine the full batch runs on (ONNX Runtime's own graphs), else TF.js.
    const batchGradient = full.batchGradient?.bind(full) ?? (async (idx: Int32Array, th: Float32Array) => mini.batchGradient(idx, th));
    const engine = engineInfo(full);
    if (!opts.resume && manifest.value.backend !== engine.name) manifest.update({ backend: engine.name, backendDetail: engine.detail });
    prober = await makeProber(problem, s, run.theta0, mini);
    const metricsFile = path.join(out, METRICS_FILE);
    return await stepLoop({
      s,
      n,
      opt: run.opt,
      theta: run.theta,
      start: run.start,
      initialLoss: run.initialLoss,
      prober,
      fullGradient: fullBatchGradient(full, s.igr),
      batchGradient,
      emit: (r) => {
        fs.appendFileSync(metricsFile, `${JSON.stringify(r)}\n`);
        ctx.onProbe?.(r);
      },
      checkpoints: new CheckpointWriter(out, manifest, writer),
      manifest,
      signal: ctx.signal,
    });
  } finally {
    prober?.dispose();
    full.dispose();
    mini.dispose();
  }
}
