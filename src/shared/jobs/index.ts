/**
 * The job registry: every job Basin runs, defined once. Each file here defines one job (`defineJob`
 * in ./spec.ts): its options (wire name, type, CLI flag, help line), their defaults, its result
 * type and kind, the text the CLI prints and its card's title. The CLI (src/cli/usage.ts,
 * src/cli/commands.ts), the compute worker's validation (src/shared/validate.ts), the extension
 * (src/extension/computeClient.ts) and the webview read `JOBS`.
 *
 * Adding a job takes:
 *   1. src/shared/jobs/NAME.ts: its options type, `defineJob<Options, Result>({...})` (and its
 *      result type in src/shared/results.ts, added to `JobResult`);
 *   2. one line in `JOBS` below;
 *   3. its run function in `RUNNERS` (src/engine/registry.ts) and its card in `CARDS`
 *      (webview/charts/results.ts): both are `Record`s over `JobKind`, so the compiler asks for them.
 * The CLI command, its help, the worker's validation and dispatch, and the typed
 * `ComputeClient.run` then follow.
 */
import type { JobResult, TrainDone } from '../results';
import type { CliFlag, JobSpec, OptionEntry } from './spec';
import { info } from './info';
import { eigs } from './eigs';
import { trace } from './trace';
import { density } from './density';
import { slice } from './slice';
import { surface } from './surface';
import { interpolate } from './interpolate';
import { trajectory } from './trajectory';
import { flatness } from './flatness';
import { train } from './train';

export const JOBS = { info, eigs, trace, density, slice, surface, interpolate, trajectory, flatness, train } as const;

export type JobKind = keyof typeof JOBS;
type Types = { [K in JobKind]: NonNullable<(typeof JOBS)[K]['types']> };
/** The options a job of kind K takes (what a run request carries). */
export type OptionsOf<K extends JobKind> = Types[K]['options'];
/** What a job of kind K answers. */
export type ResultOf<K extends JobKind> = Types[K]['result'];
/** The jobs whose result is a `JobResult` (a card in the panel); `train` answers a `TrainDone`. */
export type ResultJobKind = Exclude<JobKind, 'train'>;

/** A job's spec with its types erased: what code that handles every kind reads. */
export interface AnyJobSpec {
  summary: string;
  usage?: string;
  options: Readonly<Record<string, OptionEntry>>;
  defaults: object;
  positionals?: (files: readonly string[]) => object | string;
  cliFlags?: readonly CliFlag[];
  resultKind: string | null;
  text(r: JobResult | TrainDone): string | undefined;
  cardTitle(r: JobResult | TrainDone): string | undefined;
}

/** Job kinds in the registry's order. */
export const JOB_KINDS: readonly JobKind[] = Object.keys(JOBS) as JobKind[];

/** Looks a kind up by own property only (never an inherited `__proto__` or `constructor`). */
export function isJobKind(v: unknown): v is JobKind {
  return typeof v === 'string' && Object.prototype.hasOwnProperty.call(JOBS, v);
}

/** The spec of a job kind, types erased. */
export function jobSpec(kind: JobKind): AnyJobSpec {
  return JOBS[kind];
}

/**
 * The spec of a kind, typed. The one cast of the registry: TypeScript cannot index `JOBS` with a
 * generic K into the spec of that K, though `OptionsOf` and `ResultOf` are read from `JOBS` itself.
 */
export function typedSpec<K extends JobKind>(kind: K): JobSpec<OptionsOf<K>, ResultOf<K>> {
  return JOBS[kind] as JobSpec<OptionsOf<K>, ResultOf<K>>;
}

/** Whether a reply is the result of a job of kind `kind`. */
export function isResultOf<K extends JobKind>(kind: K, r: JobResult | TrainDone): r is ResultOf<K> {
  return typedSpec(kind).isResult(r);
}

/** The kinds of results a result file may hold (every job's but training's). */
export const RESULT_KINDS: ReadonlySet<string> = new Set(JOB_KINDS.map((k) => jobSpec(k).resultKind).filter((k): k is string => k !== null));

/** The spec that made a result (results carry their job's kind). */
function specOf(r: JobResult): AnyJobSpec {
  return jobSpec(r.kind);
}

/** The text the CLI prints for a result. */
export function formatResult(r: JobResult | TrainDone): string {
  if ('kind' in r) return specOf(r).text(r) ?? '';
  return train.format(r);
}

/** What a result is, as a card's title says it ("Top 5 Hessian eigenvalues", "2-D loss surface"). */
export function resultKindTitle(r: JobResult): string {
  return specOf(r).cardTitle(r) ?? r.kind;
}

export type { CliFlag, JobSpec, OptionEntry } from './spec';
export { sliceDirections } from './slice';
export { surfaceAxes } from './surface';
export type { CurvatureJobOptions } from './common';
export type { EigsJobOptions } from './eigs';
export type { TraceJobOptions } from './trace';
export type { DensityJobOptions } from './density';
