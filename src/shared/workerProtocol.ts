/**
 * The typed protocol between the extension host (or any client) and the compute worker
 * (`src/worker/main.ts`), over Node IPC. Requests carry an `id`; everything sent back about a
 * request carries `inReplyTo`. Only plain data crosses: no tensors, no functions.
 *
 * Requests and replies are typed per job: a `RunRequest<K>` carries `OptionsOf<K>` and is answered
 * with a `ResultOf<K>` (the job registry, src/shared/jobs). Every message is checked on arrival
 * (`src/shared/validate.ts`); the options a job accepts are its option table in the registry, and
 * any other option is refused. A malformed request is answered with an `error` of kind 'user'
 * naming the field: `inReplyTo` is the request's id when it has a usable one (a whole number >= 0),
 * else -1 (a message that is not an object, has no id, or whose id is already in use).
 */
import type { JobResult, ProbeRecord, Progress, TrainSettings } from './results';
import type { BackendName } from './fields';
import type { JobKind, OptionsOf, ResultOf } from './jobs';

/** Where a job's model and data come from (the CLI's --model/--data/--loss or an experiment module). */
export interface ProblemInput {
  model?: string;
  data?: string;
  labels?: string[];
  /** CSV: the first row is data, not a header (a numeric first row is refused without it). */
  noHeader?: boolean;
  /** .npz data: the names of the input and label arrays (default `x` and `y`). */
  xKey?: string;
  yKey?: string;
  loss?: string;
  experiment?: string;
  chunkSize?: number;
  maxParams?: number;
  /** Threads for data-parallel evaluation (default: all cores; 1 = this thread only). */
  threads?: number;
}

export type { JobKind, OptionsOf, ResultOf } from './jobs';

type AnyOptions = OptionsOf<JobKind>;
type KeysOfUnion<T> = T extends unknown ? keyof T : never;
type FieldOf<O, F extends PropertyKey> = O extends unknown ? (F extends keyof O ? Exclude<O[F], undefined> : never) : never;

/**
 * Every job's options in one bag (each field optional, typed as the union of its types across
 * jobs), for code that builds options field by field. Requests are typed per job: a
 * `RunRequest<K>` carries `OptionsOf<K>` (src/shared/jobs).
 */
export type JobOptions = { [F in KeysOfUnion<AnyOptions>]?: FieldOf<AnyOptions, F> };

/** A job of kind K: its problem and its options (`OptionsOf<K>`); answered with a `ResultOf<K>`. */
export interface RunRequest<K extends JobKind = JobKind> {
  type: 'run';
  id: number;
  job: K;
  problem: ProblemInput;
  options: OptionsOf<K>;
  /** The engine: ONNX Runtime or one TF.js backend; absent: ONNX Runtime when it loads, else TF.js's best. */
  backend?: BackendName;
}
/** A run request of any kind, its options matching its kind. */
export type AnyRunRequest = { [K in JobKind]: RunRequest<K> }[JobKind];
export interface CancelRequest {
  type: 'cancel';
  id: number;
}
export interface ShutdownRequest {
  type: 'shutdown';
}
export type ToWorker = AnyRunRequest | CancelRequest | ShutdownRequest;

export interface ReadyMessage {
  type: 'ready';
  pid: number;
}
export interface ProgressMessage {
  type: 'progress';
  inReplyTo: number;
  progress: Progress;
}
/** A grid job's result so far (missing points null), about every 250 ms. */
export interface PartialMessage {
  type: 'partial';
  inReplyTo: number;
  result: JobResult;
}
/** A job's result: `ResultOf<K>` for a request of kind K (the client checks the kind: `isResultOf`). */
export interface ResultMessage<K extends JobKind = JobKind> {
  type: 'result';
  inReplyTo: number;
  result: ResultOf<K>;
}
/** A training run's new probe records, batched (about every 200 ms); `settings` with the first batch. */
export interface ProbesMessage {
  type: 'probes';
  inReplyTo: number;
  records: ProbeRecord[];
  settings?: TrainSettings;
}
export interface ErrorMessage {
  type: 'error';
  /** The request's id, or -1 for a message that could not be attributed to one. */
  inReplyTo: number;
  message: string;
  /** 'user': bad input, with a message for the user; 'cancelled'; 'internal': a bug. */
  kind: 'user' | 'cancelled' | 'internal';
}
export type FromWorker = ReadyMessage | ProgressMessage | PartialMessage | ProbesMessage | ResultMessage | ErrorMessage;
