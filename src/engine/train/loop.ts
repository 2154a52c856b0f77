/**
 * The training step loop: from the start step to `s.steps`, one optimizer step each, probing on
 * the probe cadence, logging the loss, testing for divergence and writing checkpoints on the step
 * and time cadences. A divergence saves the last good parameters; a cancellation or an error
 * saves the parameters at the start of the step in progress (never half-updated ones). Every end
 * is recorded in the manifest.
 */
import type { ProbeAt } from './probe';
import * as path from 'node:path';
import type { ProbeRecord, TrainDone, TrainSettings } from '../../shared/results';
import type { Evaluator } from '../evaluator';
import { CancelledError } from '../linalg/operator';
import { yieldToLoop } from '../hvp/operators';
import { Rng } from '../rng';
import type { GradFn, Optimizer, OptimizerState } from './optimizers';
import { lrAt, parseSchedule } from './schedules';
import { sampleIndices } from './noise';
import type { CheckpointWriter } from './checkpoint';
import type { ManifestFile } from './manifest';

/** The minibatches of an epoch: a seeded shuffle without replacement, the last batch possibly smaller. */
export function epochBatches(n: number, batch: number, seed: number, epoch: number): Int32Array[] {
  const perm = sampleIndices(n, n, new Rng(seed * 1000003 + epoch + 1));
  const out: Int32Array[] = [];
  for (let i = 0; i < n; i += batch) out.push(perm.slice(i, Math.min(n, i + batch)));
  return out;
}

type Loss = { loss: number; grad: Float64Array };

/**
 * The full-batch gradient the steps take: the loss's, or with explicit implicit-gradient
 * regularization (`s.igr` = mu) that of L + mu |grad L|^2, whose gradient is grad L + 2 mu H grad L.
 */
export function fullBatchGradient(full: Evaluator, igr: number | undefined): (th: Float64Array) => Promise<Loss> {
  return async (th) => {
    const t32 = Float32Array.from(th);
    const g = await full.gradient(t32);
    if (igr === undefined) return g;
    await full.setParameters(t32);
    const hg = await full.hvp(g.grad);
    const gg = g.grad.reduce((a, x) => a + x * x, 0);
    return { loss: g.loss + igr * gg, grad: Float64Array.from(g.grad, (x, i) => x + 2 * igr * hg[i]) };
  };
}

/** The probe the loop calls on the probe cadence and at the end (run.ts's `Prober`). */
export interface LoopProber {
  probe(at: ProbeAt): Promise<ProbeRecord>;
}

export interface LoopParts {
  s: TrainSettings;
  /** Training samples. */
  n: number;
  opt: Optimizer;
  /** The parameters, at step `start`; updated in place. */
  theta: Float64Array;
  start: number;
  initialLoss?: number;
  prober: LoopProber;
  fullGradient: (th: Float64Array) => Promise<Loss>;
  batchGradient: (idx: Int32Array, th: Float32Array) => Promise<Loss>;
  /** Appends a metrics record. */
  emit: (r: ProbeRecord) => void;
  checkpoints: CheckpointWriter;
  manifest: ManifestFile;
  signal?: AbortSignal;
}

/** Parameters and the optimizer state that goes with them, at the start of a step. */
interface Snapshot {
  step: number;
  theta: Float64Array;
  state: OptimizerState;
}

/** Runs the steps and records how the run ended; rethrows an error after saving a stop checkpoint. */
export async function stepLoop(p: LoopParts): Promise<TrainDone> {
  const { s, n, opt, theta, prober, manifest, checkpoints } = p;
  const schedule = parseSchedule(s.schedule);
  const stepsPerEpoch = s.batchSize ? Math.ceil(n / s.batchSize) : 1;
  const secs = s.checkpointSeconds ?? 0;
  let initialLoss = p.initialLoss;
  let batches: Int32Array[] = [];
  /** The step the parameters `theta` are at (the loop's step until its update lands, then one more). */
  let reached = p.start;
  const noteInitialLoss = (loss: number): void => {
    if (initialLoss !== undefined || !Number.isFinite(loss)) return;
    initialLoss = loss;
    manifest.update({ initialLoss: loss });
  };
  // The parameters and optimizer state at the start of the step in progress (a failure mid-step
  // saves these, never half-updated ones), and the last ones whose loss passed the divergence test.
  let inStep: Snapshot | undefined;
  let good: (Snapshot & { loss: number }) | undefined;
  try {
    let lastLoss: number | undefined;
    for (let step = p.start; step < s.steps; step++) {
      await yieldToLoop();
      if (p.signal?.aborted) throw new CancelledError();
      const lr = lrAt(s.lr, schedule, step);
      const epoch = Math.floor(step / stepsPerEpoch);
      let gradFn: GradFn;
      if (s.batchSize) {
        const within = step % stepsPerEpoch;
        if (within === 0 || batches.length === 0) batches = epochBatches(n, s.batchSize, s.seed, epoch);
        const idx = batches[within];
        gradFn = async (th) => p.batchGradient(idx, Float32Array.from(th));
      } else gradFn = p.fullGradient;
      const probeNow = step % s.probeEvery === 0;
      if (probeNow) {
        const rec = await prober.probe({ theta, step, epoch, lr, optimizer: opt, stepLoss: lastLoss });
        if (step === 0) noteInitialLoss(rec.loss);
        p.emit(rec);
        if (p.signal?.aborted) throw new CancelledError();
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
          const dir = checkpoints.save(good.step, good.theta, good.state, 'last-good', good.loss);
          kept = `the last good parameters (step ${good.step}, loss ${good.loss.toPrecision(4)}) are in ${dir.split(path.sep).join('/')}`;
        }
        inStep = undefined;
        return manifest.finish('diverged', step, `diverged at step ${step}: ${what}; ${kept}`);
      }
      inStep = undefined;
      reached = step + 1;
      if (!s.batchSize && !probeNow) p.emit({ step, epoch, lr, loss: info.loss, gradNorm: info.gradNorm, ms: 0 });
      lastLoss = info.loss;
      const byStep = s.checkpointEvery > 0 && (step + 1) % s.checkpointEvery === 0;
      const byTime = secs > 0 && performance.now() - checkpoints.lastSave >= secs * 1000;
      if ((byStep || byTime) && step + 1 < s.steps) checkpoints.save(step + 1, theta, opt.getState(), byStep ? 'steps' : 'time');
    }
    const lr = lrAt(s.lr, schedule, s.steps);
    const rec = await prober.probe({ theta, step: s.steps, epoch: Math.floor(s.steps / stepsPerEpoch), lr, optimizer: opt, stepLoss: lastLoss, final: true });
    p.emit(rec);
    checkpoints.save(s.steps, theta, opt.getState(), 'final');
    if (!Number.isFinite(rec.loss)) return manifest.finish('diverged', s.steps, `the final loss is ${rec.loss}`);
    return manifest.finish('completed', s.steps);
  } catch (e) {
    const cancelled = e instanceof CancelledError;
    const at = inStep ?? { step: reached, theta, state: opt.getState() };
    try {
      checkpoints.save(at.step, at.theta, at.state, 'stop');
    } catch {
      /* keep the original error */
    }
    if (cancelled) return manifest.finish('cancelled', at.step, `cancelled at step ${at.step}; ${manifest.resumableFrom()}`);
    manifest.finish('failed', at.step, `${(e as Error).message}; ${manifest.resumableFrom()}`);
    throw e;
  }
}
