/**
 * The training lab: trains a problem's model with a chosen optimizer and probes the landscape as
 * it goes, writing a run directory that survives a crash:
 *
 *   RUN/manifest.json        settings, seed, backend, versions, status, where it stopped
 *   RUN/metrics.jsonl        one line per probe (the loss every step for full-batch methods)
 *   RUN/checkpoints/step-N/  model.json + weights.bin (TF.js layers format) + optimizer.json
 *
 * Probes (science.md, "Training dynamics"): lambda_max by Lanczos warm-started from the previous
 * eigenvector (a few products per probe, not a restart), the stability threshold of the optimizer
 * (2/eta, or its momentum version), the trace (Hutch++), the implicit-gradient-regularization
 * term (h/4)|grad L|^2 (Barrett & Dherin 2021), SGD's implicit term (Smith et al. 2021), the
 * gradient noise scale B_simple (McCandlish et al. 2018), distance from initialization, weight
 * norm and per-layer sharpness.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ProbeRecord, RunManifest, TrainDone, TrainSettings } from '../../shared/results';
import type { Problem } from '../problem';
import type { Evaluator } from '../evaluator';
import { LocalEvaluator } from '../evaluator';
import { Objective } from '../objective';
import { backendInfo } from '../backend';
import { BasinError } from '../errors';
import { CancelledError, norm } from '../linalg/operator';
import { hutchpp, lanczos } from '../linalg';
import { BlockOperator, selectHessian, yieldToLoop } from '../hvp/operators';
import type { LinearOperator } from '../linalg/operator';
import { Rng } from '../rng';
import { writeCheckpoint } from '../model/archive';
import { loadCheckpoint } from '../directions/checkpoints';
import { sliceSplit } from '../shard/parallel';
import { makeOptimizer, type GradFn, type Optimizer, type OptimizerState } from './optimizers';
import { lrAt, parseSchedule } from './schedules';
import { gradientNoiseScale, sgdImplicitTerm, sampleIndices } from './noise';
import { decodeState, encodeState } from './state';
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
  return { ...s, batchSize };
}

interface Prober {
  /** `final`: the last probe of a run, which always includes per-layer sharpness. */
  probe(theta: Float64Array, step: number, epoch: number, lr: number, opt: Optimizer, stepLoss?: number, final?: boolean): Promise<ProbeRecord>;
  dispose(): void;
}

async function makeProber(problem: Problem, s: TrainSettings, theta0: Float64Array, mini: Objective): Promise<Prober> {
  const train = s.probeSubset ? sliceSplit(problem.train, 0, s.probeSubset) : problem.train;
  const ev: Evaluator = s.probeSubset
    ? new LocalEvaluator(new Objective(problem.ir, problem.theta, problem.loss, train))
    : await problem.evaluator();
  const testEv = problem.test ? await problem.evaluator({ split: 'test', threads: 1 }) : undefined;
  const sel = await selectHessian(ev, 'auto', s.seed + 7919);
  const op = sel.op;
  const classification = problem.lossName === 'categoricalCrossentropy' || problem.lossName === 'binaryCrossentropy';
  const layers = [...new Set(problem.ir.params.map((p) => p.layer))].map((layer) => {
    const ps = problem.ir.params.filter((p) => p.layer === layer);
    return { layer, offset: ps[0].offset, size: ps.reduce((a, p) => a + p.size, 0) };
  });
  let v0: Float64Array | undefined;
  const layerV0 = new Map<string, Float64Array>();
  const rng = new Rng(s.seed + 104729);
  const n = problem.train.xShape[0];
  const due = (every: number, step: number): boolean => every > 0 && step % every === 0;
  return {
    async probe(theta, step, epoch, lr, opt, stepLoss, final) {
      const t0 = performance.now();
      const t32 = Float32Array.from(theta);
      await ev.setParameters(t32);
      const before = op.matvecs;
      const g = await ev.gradient();
      const gradNorm = norm(g.grad);
      const rec: ProbeRecord = { step, epoch, lr, loss: g.loss, ms: 0, probeSamples: ev.numSamples };
      if (stepLoss !== undefined && s.batchSize !== undefined) rec.batchLoss = stepLoss;
      if (classification) rec.accuracy = await ev.accuracy();
      if (testEv) {
        rec.testLoss = await testEv.loss(t32);
        if (classification) rec.testAccuracy = await testEv.accuracy(t32);
      }
      const lz = await lanczos(op, { k: 1, which: 'top', v0, rng, maxIter: 30, tol: 1e-4, stopOn: 'bound' });
      v0 = lz.eigenvectors[0];
      rec.lambdaMax = lz.eigenvalues[0];
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
        const tr = await hutchpp(op, { matvecs: 30, rng });
        rec.trace = tr.trace;
        rec.traceStderr = tr.stderr;
      }
      if (due(s.noiseEvery, step)) {
        const batchGrad = async (idx: Int32Array): Promise<Float64Array> => mini.batchGradient(idx, t32).grad;
        const bSmall = s.batchSize ?? Math.max(2, Math.min(32, Math.floor(n / 8)));
        const bBig = Math.min(n, 4 * bSmall);
        if (bBig > bSmall) {
          const ns = await gradientNoiseScale(batchGrad, n, { rng, bSmall, bBig, draws: 8 });
          rec.noiseScale = ns.bSimple;
        }
        if (s.batchSize !== undefined) {
          const full = mini.gradient(t32).grad;
          const st = await sgdImplicitTerm(batchGrad, full, n, { rng, batchSize: s.batchSize, lr, draws: 8 });
          rec.sgdTerm = st.term;
          rec.sgdTermStderr = st.stderr;
        }
      }
      if ((due(s.layersEvery, step) || final) && layers.length > 1) {
        rec.layerSharpness = {};
        for (const l of layers) {
          const block: LinearOperator = new BlockOperator(op, l.offset, l.size);
          const r = await lanczos(block, { k: 1, which: 'top', v0: layerV0.get(l.layer), rng, maxIter: 20, tol: 1e-3, stopOn: 'bound' });
          layerV0.set(l.layer, r.eigenvectors[0]);
          rec.layerSharpness[l.layer] = r.eigenvalues[0];
        }
      }
      rec.hvps = op.matvecs - before;
      rec.ms = performance.now() - t0;
      return rec;
    },
    dispose() {
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
  return { model: abs(src.model), data: abs(src.data), labels: src.labels, loss: src.loss, experiment: abs(src.experiment) };
}

function writeJson(file: string, value: unknown): void {
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`);
  fs.renameSync(tmp, file);
}

export interface TrainOptions {
  /** Continue the run in this directory from its last checkpoint. */
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

  let theta = Float64Array.from(problem.theta);
  const theta0 = Float64Array.from(problem.theta);
  const opt = makeOptimizer(s.optimizer, { momentum: s.momentum, rho: s.rho, weightDecay: s.weightDecay, ir: problem.ir });
  let start = 0;
  let manifest: RunManifest;
  if (opts.resume) {
    if (!fs.existsSync(manifestFile)) throw new BasinError('no manifest.json: not a Basin run directory', out);
    manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8')) as RunManifest;
    const last = manifest.checkpoints[manifest.checkpoints.length - 1];
    if (!last) throw new BasinError('the run has no checkpoint to resume from', out);
    const cp = await loadCheckpoint(path.join(out, last.dir, 'model.json'));
    theta = Float64Array.from(cp.theta);
    const stateFile = path.join(out, last.dir, 'optimizer.json');
    if (fs.existsSync(stateFile)) {
      const saved = decodeState(JSON.parse(fs.readFileSync(stateFile, 'utf8'))) as { optimizer: OptimizerState; theta?: Float64Array };
      opt.setState(saved.optimizer);
      // The float64 parameters the optimizer works on (the model files hold them rounded to float32).
      if (saved.theta && saved.theta.length === theta.length) theta = Float64Array.from(saved.theta);
    }
    start = last.step;
    // Metrics after the checkpoint are replayed: drop them so each step appears once.
    const kept = fs.existsSync(metricsFile)
      ? fs.readFileSync(metricsFile, 'utf8').split('\n').filter((l) => l.trim() !== '' && (JSON.parse(l) as ProbeRecord).step < start)
      : [];
    fs.writeFileSync(metricsFile, kept.map((l) => `${l}\n`).join(''));
    manifest = { ...manifest, status: 'running', resumedFrom: start, stoppedAt: undefined, reason: undefined };
  } else {
    if (fs.existsSync(manifestFile)) throw new BasinError('already holds a run; choose another --out or --resume it', out);
    fs.mkdirSync(ckDir, { recursive: true });
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
    };
  }
  writeJson(manifestFile, manifest);

  const mini = new Objective(problem.ir, problem.theta, problem.loss, problem.train);
  const full = await problem.evaluator();
  const prober = await makeProber(problem, s, theta0, mini);
  const emit = (r: ProbeRecord): void => {
    fs.appendFileSync(metricsFile, `${JSON.stringify(r)}\n`);
    ctx.onProbe?.(r);
  };
  const saveCheckpoint = (step: number, th: Float64Array, label = `step-${String(step).padStart(6, '0')}`): void => {
    const rel = path.join('checkpoints', label);
    writeCheckpoint(archive, problem.ir, th, path.join(out, rel), { basin: { step, run: path.basename(out) } });
    fs.writeFileSync(path.join(out, rel, 'optimizer.json'), JSON.stringify(encodeState({ optimizer: opt.getState(), theta: th })));
    manifest.checkpoints = [...manifest.checkpoints.filter((c) => c.dir !== rel), { step, dir: rel }];
    writeJson(manifestFile, manifest);
  };
  const finish = (status: RunManifest['status'], step: number, reason?: string): TrainDone => {
    manifest = { ...manifest, status, stoppedAt: step, reason };
    writeJson(manifestFile, manifest);
    return { done: status === 'completed', run: out, status, reason, steps: step };
  };

  const stepsPerEpoch = s.batchSize ? Math.ceil(n / s.batchSize) : 1;
  let batches: Int32Array[] = [];
  let initialLoss: number | undefined;
  let step = start;
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
  try {
    let lastLoss: number | undefined;
    for (step = start; step < s.steps; step++) {
      await yieldToLoop();
      if (ctx.signal?.aborted) throw new CancelledError();
      const lr = lrAt(s.lr, schedule, step);
      const epoch = Math.floor(step / stepsPerEpoch);
      let gradFn: GradFn;
      if (s.batchSize) {
        const within = step % stepsPerEpoch;
        if (within === 0 || batches.length === 0) batches = epochBatches(n, s.batchSize, s.seed, epoch);
        const idx = batches[within];
        gradFn = async (th) => mini.batchGradient(idx, Float32Array.from(th));
      } else gradFn = igrGrad;
      const probeNow = step % s.probeEvery === 0;
      if (probeNow) {
        const rec = await prober.probe(theta, step, epoch, lr, opt, lastLoss);
        initialLoss ??= rec.loss;
        emit(rec);
        if (ctx.signal?.aborted) throw new CancelledError();
      }
      const prev = Float64Array.from(theta);
      const info = await opt.step(theta, gradFn, lr);
      initialLoss ??= info.loss;
      const exploded = !Number.isFinite(info.loss) || info.loss > s.divergeFactor * Math.max(initialLoss, 1e-12) || !theta.every(Number.isFinite);
      if (exploded) {
        saveCheckpoint(step, prev, 'last-good');
        return finish('diverged', step, `diverged at step ${step}: loss ${info.loss} (initial ${initialLoss.toPrecision(4)}); the last good parameters are in checkpoints/last-good`);
      }
      if (!s.batchSize && !probeNow) emit({ step, epoch, lr, loss: info.loss, gradNorm: info.gradNorm, ms: 0 });
      lastLoss = info.loss;
      if (s.checkpointEvery > 0 && (step + 1) % s.checkpointEvery === 0 && step + 1 < s.steps) saveCheckpoint(step + 1, theta);
    }
    const lr = lrAt(s.lr, schedule, s.steps);
    const rec = await prober.probe(theta, s.steps, Math.floor(s.steps / stepsPerEpoch), lr, opt, lastLoss, true);
    emit(rec);
    saveCheckpoint(s.steps, theta);
    if (!Number.isFinite(rec.loss)) return finish('diverged', s.steps, `the final loss is ${rec.loss}`);
    return finish('completed', s.steps);
  } catch (e) {
    const cancelled = e instanceof CancelledError;
    try {
      saveCheckpoint(step, theta);
    } catch {
      /* keep the original error */
    }
    if (cancelled) return finish('cancelled', step, `cancelled at step ${step}; resume with --resume ${out}`);
    finish('failed', step, (e as Error).message);
    throw e;
  } finally {
    prober.dispose();
    full.dispose();
    mini.dispose();
  }
}
