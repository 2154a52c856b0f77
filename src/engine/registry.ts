/**
 * The run function of every job in the registry (src/shared/jobs): thin adapters from a job's
 * options (`OptionsOf<K>`, its defaults applied) onto the engine's runEigs, runSlice, train, ...
 * The CLI (src/cli/commands.ts) and the compute worker (src/worker/main.ts) both run jobs through
 * `runJob`. `RUNNERS` is a Record over `JobKind`: a job added to the registry without its run
 * function here does not compile.
 */
import type { ProbeRecord, Progress, SliceResult, SurfaceResult, TrainSettings } from '../shared/results';
import { sliceDirections, surfaceAxes, typedSpec, type JobKind, type OptionsOf, type ResultOf } from '../shared/jobs';
import type { Problem } from './problem';
import { runDensity, runEigs, runInfo, runTrace } from './jobs';
import { runSlice, runSurface } from './surface/slice';
import { runInterpolate, runTrajectory } from './surface/checkpoints';
import { runFlatness } from './flatness/job';
import { DEFAULT_SETTINGS, train, validateSettings } from './train/run';
import { openRunForResume } from './train/resume';

/** What a running job reports, and how it is stopped. */
export interface RunContext {
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
  /** Grids: the result so far (missing points null), after each batch. */
  onPartial?: (r: SliceResult | SurfaceResult) => void;
  /** Training: each probe record as it is written. */
  onProbe?: (r: ProbeRecord) => void;
  /** Training: the settings the run uses, before its first step. */
  onSettings?: (s: TrainSettings) => void;
  /** Training: what a resumed run says about its checkpoints. */
  onNote?: (line: string) => void;
}

export type Runner<K extends JobKind> = (problem: Problem, options: OptionsOf<K>, ctx: RunContext) => Promise<ResultOf<K>>;

/**
 * A training job: `train` over the module's settings and the defaults. A resumed run continues
 * with the settings it was started with (its manifest's), except those `train` gives (the command
 * line's flags; the editor sends none).
 */
const runTrain: Runner<'train'> = async (problem, o, ctx) => {
  const opened = o.resume ? openRunForResume(o.runDir) : undefined;
  for (const note of opened?.notes ?? []) ctx.onNote?.(note);
  const fromModule = (problem.experiment?.train ?? {}) as Partial<TrainSettings>;
  const settings = validateSettings({ ...DEFAULT_SETTINGS, ...(opened ? opened.settings : fromModule), ...(o.train ?? {}) }, problem.train.xShape[0]);
  // The editor's defaults: enough checkpoints for a trajectory, per-layer sharpness as a curve.
  if (!opened && o.keepCheckpoints && !settings.checkpointEvery && settings.steps > 0) settings.checkpointEvery = Math.max(1, Math.ceil(settings.steps / o.keepCheckpoints));
  if (!opened && o.layerProbes && !settings.layersEvery && settings.steps > 0) {
    settings.layersEvery = settings.probeEvery * Math.max(1, Math.round(settings.steps / o.layerProbes / settings.probeEvery));
  }
  ctx.onSettings?.(settings);
  return train(problem, settings, o.runDir, { signal: ctx.signal, onProbe: (r) => ctx.onProbe?.(r) }, { resume: o.resume });
};

/** Every job's run function. */
export const RUNNERS: { [K in JobKind]: Runner<K> } = {
  info: async (problem) => runInfo(problem),
  eigs: (problem, o, ctx) => runEigs(problem, o, ctx),
  trace: (problem, o, ctx) => runTrace(problem, o, ctx),
  density: (problem, o, ctx) => runDensity(problem, o, ctx),
  slice: (problem, o, ctx) => runSlice(problem, { ...o, dirs: sliceDirections(o.dirs) }, ctx),
  surface: (problem, o, ctx) => runSurface(problem, { ...o, dirs: surfaceAxes(o.dirs) }, ctx),
  interpolate: (problem, o, ctx) => runInterpolate(problem, o, ctx),
  trajectory: (problem, o, ctx) => runTrajectory(problem, o, ctx),
  flatness: (problem, o, ctx) => runFlatness(problem, o, ctx),
  train: runTrain,
};

/** `options` over the job's defaults (an undefined option takes its default). */
export function withDefaults<K extends JobKind>(kind: K, options: OptionsOf<K>): OptionsOf<K> {
  const out: Record<string, unknown> = { ...typedSpec(kind).defaults };
  for (const [k, v] of Object.entries(options)) if (v !== undefined) out[k] = v;
  return out as OptionsOf<K>;
}

/** Runs a job of the registry: its defaults applied, then its run function. */
export function runJob<K extends JobKind>(kind: K, problem: Problem, options: OptionsOf<K>, ctx: RunContext = {}): Promise<ResultOf<K>> {
  const run: Runner<K> = RUNNERS[kind];
  return run(problem, withDefaults(kind, options), ctx);
}
