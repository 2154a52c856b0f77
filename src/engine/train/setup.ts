/**
 * Opening a run directory for `train`: a new run (refusing a directory that already holds one)
 * or a resumed one (resume.ts plans it; this applies it): the parameters and optimizer state to
 * start from, the step, and the manifest, written before any training.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TrainSettings } from '../../shared/results';
import type { Problem } from '../problem';
import { BasinError } from '../errors';
import { makeDirs } from '../files';
import { makeOptimizer, type Optimizer } from './optimizers';
import { applyResume, planResume } from './resume';
import { describeStatus, ManifestFile, MANIFEST_FILE, newManifest, paramsHash } from './manifest';

export const METRICS_FILE = 'metrics.jsonl';

export interface OpenedRunState {
  manifest: ManifestFile;
  /** The float64 parameters training continues from (updated in place by the steps). */
  theta: Float64Array;
  /** The initial parameters of the problem (distance from initialization is measured from them). */
  theta0: Float64Array;
  opt: Optimizer;
  /** The step `theta` is at. */
  start: number;
  /** The loss at step 0, when known (the divergence test's reference). */
  initialLoss?: number;
}

/** Opens `out` for a new run, or for resuming the run it holds (`resume`). `s` is validated. */
export function openRun(problem: Problem, s: TrainSettings, out: string, resume: boolean): OpenedRunState {
  const initHash = paramsHash(problem.theta);
  const opt = makeOptimizer(s.optimizer, { momentum: s.momentum, rho: s.rho, weightDecay: s.weightDecay, ir: problem.ir });
  const theta0 = Float64Array.from(problem.theta);
  const opened = resume ? resumeRun(problem, s, out, opt, initHash) : newRun(problem, s, out, initHash);
  makeDirs(path.join(out, 'checkpoints'));
  opened.manifest.write();
  return { ...opened, theta0, opt, theta: opened.theta ?? Float64Array.from(problem.theta) };
}

function newRun(problem: Problem, s: TrainSettings, out: string, initHash: string): { manifest: ManifestFile; start: number; theta?: Float64Array } {
  if (fs.existsSync(path.join(out, MANIFEST_FILE))) {
    throw new BasinError(`already holds a run (${describeStatus(out)}); resume it, or choose another run directory`, out);
  }
  makeDirs(path.join(out, 'checkpoints'));
  fs.writeFileSync(path.join(out, METRICS_FILE), '');
  return { manifest: new ManifestFile(out, newManifest(problem, s, initHash)), start: 0 };
}

function resumeRun(
  problem: Problem,
  s: TrainSettings,
  out: string,
  opt: Optimizer,
  initHash: string,
): { manifest: ManifestFile; start: number; theta?: Float64Array; initialLoss?: number } {
  const plan = planResume(out);
  const source = problem.source?.experiment ?? problem.modelFile ?? problem.description;
  if (plan.manifest.params !== problem.ir.numParams) {
    throw new BasinError(`the run's model has ${plan.manifest.params} parameters but ${problem.description} has ${problem.ir.numParams}: resume with the model the run was trained on`, out);
  }
  const from = plan.from;
  let theta: Float64Array | undefined;
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
  if (from.step > s.steps) throw new BasinError(`the run is at step ${from.step} (${from.checkpoint?.dir}), past the ${s.steps} steps asked for: ask for ${from.step} or more`, out);
  const manifest = new ManifestFile(out, { ...applyResume(plan), initHash: plan.manifest.initHash ?? initHash });
  return { manifest, start: from.step, theta, initialLoss: plan.initialLoss };
}
