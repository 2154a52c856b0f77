/**
 * `train`: trains the model with live probes (sharpness, trace, noise scale, per-layer sharpness)
 * and checkpoints into a run directory. Its result is the run's summary (`TrainDone`); its records
 * stream as probes and the panel draws them as the run's charts. On the command line its options
 * are training settings (parsed by src/cli/train.ts), written into `train`.
 */
import type { TrainDone, TrainSettings } from '../results';
import { bool, int, settings, str } from '../fields';
import { WIRE_SEED } from './common';
import { defineJob, type CliFlag } from './spec';

export interface TrainJobOptions {
  /** Accepted, not used: training takes its seed from `train.seed`. */
  seed?: number;
  /** Settings over the module's and the defaults. */
  train?: Partial<TrainSettings>;
  /** The run directory. */
  runDir: string;
  /** Continue the run in `runDir` from its newest whole checkpoint. */
  resume?: boolean;
  /**
   * When no checkpoint cadence in steps is set (by `train` or the module), keep about this many
   * checkpoints over the run (a trajectory plane needs at least 3).
   */
  keepCheckpoints?: number;
  /**
   * When no per-layer cadence is set, measure per-layer sharpness about this many times over the
   * run (at probe steps), so its chart is a curve.
   */
  layerProbes?: number;
}

/** The command line's training settings. */
export const TRAIN_CLI_FLAGS: readonly CliFlag[] = [
  { flag: 'seed', arg: 'N', help: 'seed of the initialization, batches and probes (0)' },
  { flag: 'optimizer', arg: 'gd|sgd|momentum|nesterov|adam|sam|asam|flow', help: 'the optimizer' },
  { flag: 'lr', arg: 'LR', help: 'learning rate' },
  { flag: 'steps', arg: 'N', help: 'training steps' },
  { flag: 'batch-size', arg: 'B', help: 'minibatch size (full batch)' },
  { flag: 'momentum', arg: 'M', help: 'momentum' },
  { flag: 'rho', arg: 'R', help: 'SAM / ASAM radius' },
  { flag: 'igr', arg: 'MU', help: 'explicit IGR regularizer strength: the loss L + mu |grad L|^2' },
  { flag: 'weight-decay', arg: 'W', help: 'weight decay' },
  { flag: 'schedule', arg: 'constant|step:N:G|cosine:T[:MIN]', help: 'learning-rate schedule' },
  { flag: 'probe-every', arg: 'K', help: 'steps between probes (10)' },
  { flag: 'trace-every', arg: 'K', help: 'steps between trace probes (0: never)' },
  { flag: 'noise-every', arg: 'K', help: 'steps between gradient-noise probes (0: never)' },
  { flag: 'layers-every', arg: 'K', help: 'steps between per-layer sharpness probes (0: never)' },
  { flag: 'checkpoint-every', arg: 'K', help: 'steps between checkpoints' },
  { flag: 'checkpoint-seconds', arg: 'S', help: 'a checkpoint at least every S seconds (30)' },
  { flag: 'probe-subset', arg: 'N', help: 'probe on the first N training samples' },
  { flag: 'resume', arg: 'DIR', help: 'continue the run in DIR from its newest checkpoint' },
  { flag: 'curvature', arg: 'ggn|fisher|empirical-fisher', help: "also probe this curvature's top eigenvalue beside the Hessian's" },
];

export const train = defineJob<TrainJobOptions, TrainDone>({
  summary: 'train and probe: sharpness, trace, noise scale, checkpoints (--out DIR, default runs/NAME-TIME)',
  options: {
    seed: WIRE_SEED,
    train: { spec: settings },
    runDir: { spec: str, required: true },
    resume: { spec: bool },
    keepCheckpoints: { spec: int(1) },
    layerProbes: { spec: int(1) },
  },
  defaults: {},
  cliFlags: TRAIN_CLI_FLAGS,
  resultKind: null,
  title: () => 'Training run',
  format(d) {
    if (d.done) return `run saved to ${d.run}`;
    const resume = d.status === 'cancelled' || d.status === 'failed' ? `\ncontinue it with: basin train --resume ${d.run}` : '';
    return `run ${d.status}: ${d.reason ?? ''}\nwhat was computed is in ${d.run}${resume}`;
  },
});
