/**
 * The training lab: trains a problem's model with a chosen optimizer and probes the landscape as
 * it goes, writing a run directory that survives a crash or a kill:
 *
 *   RUN/manifest.json        settings, seed, backend, versions, status, where it stopped
 *   RUN/metrics.jsonl        one line per probe (the loss every step for full-batch methods)
 *   RUN/checkpoints/step-N/  model.json + weights.bin (TF.js layers format) + optimizer.json
 *                            (the float64 parameters and optimizer state, for a bit-exact resume)
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
import { createHash } from 'node:crypto';
import type { ProbeRecord, RunCheckpoint, RunManifest, TrainDone, TrainSettings } from '../../shared/results';
import type { Problem } from '../problem';
import type { Evaluator } from '../evaluator';
import { LocalEvaluator } from '../evaluator';
import { Objective } from '../objective';
import { backendInfo, engineInfo } from '../backend';
import { OrtEvaluator } from '../ort/evaluator';
import { BasinError } from '../errors';
import { makeDirs } from '../files';
import { CancelledError, norm } from '../linalg/operator';
import { hutchpp, lanczos } from '../linalg';
import { BlockOperator, HVP_CHECK_SEED_OFFSET, selectHessian, yieldToLoop } from '../hvp/operators';
import { gradientOverlap, selectCurvature, type CurvatureSelection } from '../curvature';
import type { LinearOperator } from '../linalg/operator';
import { Rng } from '../rng';
import { writeCheckpoint } from '../model/archive';
import { sliceSplit } from '../shard/parallel';
import { makeOptimizer, type GradFn, type OptimizerState } from './optimizers';
import { lrAt, parseSchedule } from './schedules';
import { gradientNoiseScale, sgdImplicitTerm, sampleIndices } from './noise';
import { encodeState } from './state';
import { PROBE_BUDGETS, PROBE_SEED_OFFSET, type ProbeAt } from './probe';
import { applyResume, planResume, stepLabel, writeFileAtomic } from './resume';
import { VERSION } from '../version';


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

/** Time-cadence checkpoints kept (the newest); step-cadence, final and stop checkpoints are all kept. */
export const KEEP_TIME_CHECKPOINTS = 3;

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
  if (s.igr !== undefined && batchSize !== undefined) bad('--igr adds mu |grad L|^2 to the full-batch loss: use full-batch training (no --batch-size)');
  if (s.optimizer === 'flow' && batchSize !== undefined) bad('gradient flow (--optimizer flow) is full batch');
  if (s.probeSubset !== undefined && (s.probeSubset < 1 || s.probeSubset > samples)) bad(`--probe-subset must be between 1 and ${samples}`);
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

/** The minibatches of an epoch: a seeded shuffle without replacement, the last batch possibly smaller. */
export function epochBatches(n: number, batch: number, seed: number, epoch: number): Int32Array[] {
  const perm = sampleIndices(n, n, new Rng(seed * 1000003 + epoch + 1));
  const out: Int32Array[] = [];
  for (let i = 0; i < n; i += batch) out.push(perm.slice(i, Math.min(n, i + batch)));
  return out;
}

/** Absolute paths of what the problem was loaded from (for --resume from another directory). */
function problemSource(problem: Problem): RunManifest['problem'] {
  const abs = (f?: string): string | undefined => (f ? f.split(',').map((x) => path.resolve(x)).join(',') : undefined);
  const src = problem.source ?? {};
  return { model: abs(src.model), data: abs(src.data), labels: src.labels, noHeader: src.noHeader, loss: src.loss, experiment: abs(src.experiment) };
}

function writeJson(file: string, value: unknown): void {
  writeFileAtomic(file, `${JSON.stringify(value, null, 2)}\n`);
}

/** SHA-256 of the parameters' float32 bytes: a run restarted from step 0 checks it starts from the same. */
function paramsHash(theta: Float32Array): string {
  return createHash('sha256').update(Buffer.from(theta.buffer, theta.byteOffset, theta.byteLength)).digest('hex');
}

/** Parameters and the optimizer state that goes with them, at the start of a step. */
interface Snapshot {
  step: number;
  theta: Float64Array;
  state: OptimizerState;
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
 */
export async function train(problem: Problem, settings: TrainSettings, out: string, ctx: TrainContext = {}, opts: TrainOptions = {}): Promise<TrainDone> {
  const n = problem.train.xShape[0];
  const s = validateSettings(settings, n);
  if (!problem.archive) throw new BasinError('this problem has no model topology to write checkpoints with');
  const archive = problem.archive;
  const schedule = parseSchedule(s.schedule);
  const ckDir = path.join(out, 'checkpoints');
  const metricsFile = path.join(out, 'metrics.jsonl');
  const manifestFile = path.join(out, 'manifest.json');
  const be = backendInfo();
  const source = problem.source?.experiment ?? problem.modelFile ?? problem.description;

  let theta = Float64Array.from(problem.theta);
  const theta0 = Float64Array.from(problem.theta);
  const initHash = paramsHash(problem.theta);
  const opt = makeOptimizer(s.optimizer, { momentum: s.momentum, rho: s.rho, weightDecay: s.weightDecay, ir: problem.ir });
  let start = 0;
  let initialLoss: number | undefined;
  let manifest: RunManifest;
  if (opts.resume) {
    const plan = planResume(out);
    if (plan.manifest.params !== problem.ir.numParams) {
      throw new BasinError(`the run's model has ${plan.manifest.params} parameters but ${problem.description} has ${problem.ir.numParams}: resume with the model the run was trained on`, out);
    }
    const from = plan.from;
    if (from.checkpoint && from.theta && from.optimizer) {
      try {
        opt.setState(from.optimizer);
      } catch (e) {
        if (e instanceof BasinError) throw new BasinError(e.message, path.join(out, from.checkpoint.dir, 'optimizer.json'));
        throw e;
      }
      // The float64 parameters the optimizer works on (the model files hold them rounded to float32).
      theta = Float64Array.from(from.theta);
    } else if (plan.manifest.initHash !== undefined && plan.manifest.initHash !== initHash) {
      throw new BasinError('the run has no usable checkpoint, and these initial parameters are not the ones it started from (was the model changed?): start a new run', source);
    }
    start = from.step;
    if (start > s.steps) throw new BasinError(`the run is at step ${start} (${from.checkpoint?.dir}), past the ${s.steps} steps asked for: ask for ${start} or more`, out);
    initialLoss = plan.initialLoss;
    manifest = { ...applyResume(plan), initHash: plan.manifest.initHash ?? initHash };
  } else {
    if (fs.existsSync(manifestFile)) {
      throw new BasinError(`already holds a run (${describeStatus(out)}); resume it, or choose another run directory`, out);
    }
    makeDirs(ckDir);
    fs.writeFileSync(metricsFile, '');
    manifest = {
      kind: 'basin-run',
      version: VERSION,
      created: new Date().toISOString(),
      model: problem.description,
      params: problem.ir.numParams,
      samples: n,
      lossName: problem.lossName,
      backend: be.name,
      backendDetail: be.detail,
      settings: s,
      problem: problemSource(problem),
      status: 'running',
      checkpoints: [],
      initHash,
    };
  }
  makeDirs(ckDir);
  writeJson(manifestFile, manifest);

  const mini = new Objective(problem.ir, problem.theta, problem.loss, problem.train);
  const full = await problem.evaluator();
  // Minibatch gradients on the engine the full batch runs on (ONNX Runtime's own graphs), else TF.js.
  const batchGradient = full instanceof OrtEvaluator ? (idx: Int32Array, th: Float32Array) => full.batchGradient(idx, th) : async (idx: Int32Array, th: Float32Array) => mini.batchGradient(idx, th);
  const engine = engineInfo(full);
  if (!opts.resume && manifest.backend !== engine.name) {
    manifest = { ...manifest, backend: engine.name, backendDetail: engine.detail };
    writeJson(manifestFile, manifest);
  }
  const prober = await makeProber(problem, s, theta0, mini);
  const emit = (r: ProbeRecord): void => {
    fs.appendFileSync(metricsFile, `${JSON.stringify(r)}\n`);
    ctx.onProbe?.(r);
  };
  let lastSave = performance.now();
  const saveCheckpoint = (step: number, th: Float64Array, state: OptimizerState, by: NonNullable<RunCheckpoint['by']>, loss?: number): string => {
    const rel = path.join('checkpoints', by === 'last-good' ? 'last-good' : stepLabel(step));
    const dir = path.join(out, rel);
    writeCheckpoint(archive, problem.ir, th, dir, { basin: { step, run: path.basename(out) } });
    writeFileAtomic(path.join(dir, 'optimizer.json'), JSON.stringify(encodeState({ optimizer: state, theta: th })));
    const before = manifest.checkpoints.find((c) => c.dir === rel);
    // A stop at a step the cadence already saved keeps the cadence's reason (time checkpoints are pruned).
    const entry: RunCheckpoint = { step, dir: rel, by: before?.by === 'steps' && by !== 'last-good' ? 'steps' : by };
    if (loss !== undefined) entry.loss = loss;
    let list = [...manifest.checkpoints.filter((c) => c.dir !== rel), entry];
    const timed = list.filter((c) => c.by === 'time');
    const pruned = timed.slice(0, Math.max(0, timed.length - KEEP_TIME_CHECKPOINTS));
    list = list.filter((c) => !pruned.includes(c));
    manifest.checkpoints = list;
    writeJson(manifestFile, manifest);
    for (const c of pruned) fs.rmSync(path.join(out, c.dir), { recursive: true, force: true });
    lastSave = performance.now();
    return rel;
  };
  const finish = (status: RunManifest['status'], step: number, reason?: string): TrainDone => {
    manifest = { ...manifest, status, stoppedAt: step, reason };
    writeJson(manifestFile, manifest);
    return { done: status === 'completed', run: out, status, reason, steps: step };
  };

  const stepsPerEpoch = s.batchSize ? Math.ceil(n / s.batchSize) : 1;
  const secs = s.checkpointSeconds ?? 0;
  let batches: Int32Array[] = [];
  /** The step the parameters `theta` are at (the loop's step until its update lands, then one more). */
  let reached = start;
  const igrGrad = async (th: Float64Array): Promise<{ loss: number; grad: Float64Array }> => {
    const t32 = Float32Array.from(th);
    const g = await full.gradient(t32);
    if (s.igr === undefined) return g;
    // Explicit IGR: grad (L + mu |grad L|^2) = grad L + 2 mu H grad L.
    await full.setParameters(t32);
    const hg = await full.hvp(g.grad);
    const gg = g.grad.reduce((a, x) => a + x * x, 0);
    const grad = Float64Array.from(g.grad, (x, i) => x + 2 * s.igr! * hg[i]);
    return { loss: g.loss + s.igr * gg, grad };
  };
  const noteInitialLoss = (loss: number): void => {
    if (initialLoss !== undefined || !Number.isFinite(loss)) return;
    initialLoss = loss;
    manifest.initialLoss = loss;
    writeJson(manifestFile, manifest);
  };
  // The parameters and optimizer state at the start of the step in progress (a failure mid-step
  // saves these, never half-updated ones), and the last ones whose loss passed the divergence test.
  let inStep: Snapshot | undefined;
  let good: (Snapshot & { loss: number }) | undefined;
  try {
    let lastLoss: number | undefined;
    for (let step = start; step < s.steps; step++) {
      await yieldToLoop();
      if (ctx.signal?.aborted) throw new CancelledError();
      const lr = lrAt(s.lr, schedule, step);
      const epoch = Math.floor(step / stepsPerEpoch);
      let gradFn: GradFn;
      if (s.batchSize) {
        const within = step % stepsPerEpoch;
        if (within === 0 || batches.length === 0) batches = epochBatches(n, s.batchSize, s.seed, epoch);
        const idx = batches[within];
        gradFn = async (th) => batchGradient(idx, Float32Array.from(th));
      } else gradFn = igrGrad;
      const probeNow = step % s.probeEvery === 0;
      if (probeNow) {
        const rec = await prober.probe({ theta, step, epoch, lr, optimizer: opt, stepLoss: lastLoss });
        if (step === 0) noteInitialLoss(rec.loss);
        emit(rec);
        if (ctx.signal?.aborted) throw new CancelledError();
      }
      inStep = { step, theta: Float64Array.from(theta), state: opt.getState() };
      const info = await opt.step(theta, gradFn, lr);
      if (step === 0 || initialLoss === undefined) noteInitialLoss(info.loss);
      const threshold = s.divergeFactor * Math.max(initialLoss ?? info.loss, 1e-12);
      const lossOk = Number.isFinite(info.loss) && info.loss <= threshold;
      // The loss is that of the parameters at the start of the step: those are good when it passes.
      if (lossOk) good = { ...inStep, loss: info.loss };
      if (!lossOk || !theta.every(Number.isFinite)) {
        const what = lossOk ? `the step from a loss of ${info.loss} gave non-finite parameters` : `loss ${info.loss} (initial ${initialLoss?.toPrecision(4)})`;
        let kept = 'no parameters had a finite loss under the threshold, so there is no last-good checkpoint';
        if (good) {
          const dir = saveCheckpoint(good.step, good.theta, good.state, 'last-good', good.loss);
          kept = `the last good parameters (step ${good.step}, loss ${good.loss.toPrecision(4)}) are in ${dir.split(path.sep).join('/')}`;
        }
        inStep = undefined;
        return finish('diverged', step, `diverged at step ${step}: ${what}; ${kept}`);
      }
      inStep = undefined;
      reached = step + 1;
      if (!s.batchSize && !probeNow) emit({ step, epoch, lr, loss: info.loss, gradNorm: info.gradNorm, ms: 0 });
      lastLoss = info.loss;
      const byStep = s.checkpointEvery > 0 && (step + 1) % s.checkpointEvery === 0;
      const byTime = secs > 0 && performance.now() - lastSave >= secs * 1000;
      if ((byStep || byTime) && step + 1 < s.steps) saveCheckpoint(step + 1, theta, opt.getState(), byStep ? 'steps' : 'time');
    }
    const lr = lrAt(s.lr, schedule, s.steps);
    const rec = await prober.probe({ theta, step: s.steps, epoch: Math.floor(s.steps / stepsPerEpoch), lr, optimizer: opt, stepLoss: lastLoss, final: true });
    emit(rec);
    saveCheckpoint(s.steps, theta, opt.getState(), 'final');
    if (!Number.isFinite(rec.loss)) return finish('diverged', s.steps, `the final loss is ${rec.loss}`);
    return finish('completed', s.steps);
  } catch (e) {
    const cancelled = e instanceof CancelledError;
    const at = inStep ?? { step: reached, theta, state: opt.getState() };
    try {
      saveCheckpoint(at.step, at.theta, at.state, 'stop');
    } catch {
      /* keep the original error */
    }
    if (cancelled) return finish('cancelled', at.step, `cancelled at step ${at.step}; ${resumableFrom(manifest)}`);
    finish('failed', at.step, `${(e as Error).message}; ${resumableFrom(manifest)}`);
    throw e;
  } finally {
    prober.dispose();
    full.dispose();
    mini.dispose();
  }
}

/** "the run can be resumed from checkpoints/step-N" (the newest checkpoint), or from the start. */
function resumableFrom(m: RunManifest): string {
  const newest = m.checkpoints.reduce<RunCheckpoint | undefined>((a, c) => (!a || c.step >= a.step ? c : a), undefined);
  return newest ? `the run can be resumed from ${newest.dir.split(path.sep).join('/')}` : 'the run can be resumed from the start';
}

/** How an existing run directory's manifest says the run ended, for the refusal to overwrite it. */
function describeStatus(dir: string): string {
  try {
    const m = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Partial<RunManifest>;
    if (m.status === 'running') return 'its manifest says running: still running, or killed';
    if (typeof m.status === 'string') return `${m.status}${typeof m.stoppedAt === 'number' ? ` at step ${m.stoppedAt}` : ''}`;
  } catch {
    /* unreadable: say so below */
  }
  return 'its manifest.json is unreadable';
}
