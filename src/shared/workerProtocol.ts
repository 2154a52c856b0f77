/**
 * The typed protocol between the extension host (or any client) and the compute worker
 * (`src/worker/main.ts`), over Node IPC. Requests carry an `id`; everything sent back about a
 * request carries `inReplyTo`. Only plain data crosses: no tensors, no functions.
 *
 * Every message is checked on arrival (`src/shared/validate.ts`); the options a job accepts are
 * listed there (`JOB_OPTIONS`), and any other option is refused. A malformed request is answered
 * with an `error` of kind 'user' naming the field: `inReplyTo` is the request's id when it has a
 * usable one (a whole number >= 0), else -1 (a message that is not an object, has no id, or whose
 * id is already in use).
 */
import type { CurvatureName, JobResult, ProbeRecord, Progress, TrainDone, TrainSettings } from './results';

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

export type JobKind = 'info' | 'eigs' | 'trace' | 'density' | 'slice' | 'surface' | 'interpolate' | 'trajectory' | 'flatness' | 'train';

export interface JobOptions {
  seed?: number;
  hvp?: 'auto' | 'exact' | 'fd';
  layer?: string;
  /** Curvature jobs: 'hessian' (default), 'ggn', 'fisher' or 'empirical-fisher'. */
  curvature?: CurvatureName;
  k?: number;
  which?: 'top' | 'bottom';
  method?: 'lanczos' | 'power' | 'hutchpp' | 'hutchinson';
  maxIter?: number;
  /** Eigenvalues: the tolerance; slices and surfaces: the tolerance of eigenvector directions (1e-5). */
  tol?: number;
  stopOn?: 'bound' | 'residual';
  matvecs?: number;
  steps?: number;
  runs?: number;
  gridPoints?: number;
  /** Slices: direction kinds, axes 'start:stop:steps', normalization, and the test split too. */
  dirs?: string[];
  x?: string;
  y?: string;
  norm?: 'filter' | 'layer' | 'none';
  ignore?: 'biasbn' | 'none';
  test?: boolean;
  /** Interpolation: the second model; trajectory: the checkpoints in order. */
  other?: string;
  checkpoints?: string[];
  /** Flatness measures to run (all five by default). */
  measures?: ('sam' | 'asam' | 'epsilon' | 'pacbayes' | 'radius')[];
  /** SAM radius (0.05). */
  rho?: number;
  /** ASAM radius (0.5) and the offset eta in T_w = |w| + eta (0.01). */
  asamRho?: number;
  eta?: number;
  /** Epsilon-sharpness box size (1e-3). */
  epsilon?: number;
  /** PAC-Bayes: the allowed rise in training error (0.1) or loss, draws per noise level (10), the criterion. */
  target?: number;
  draws?: number;
  criterion?: 'error' | 'loss';
  /** Basin radius: the loss rise that ends the basin (0.1 (1 + L)), and the number of directions (20). */
  delta?: number;
  directions?: number;
  /** Training: settings over the module's and the defaults, and the run directory. */
  train?: Partial<TrainSettings>;
  runDir?: string;
  /** Training: continue the run in `runDir` from its newest whole checkpoint. */
  resume?: boolean;
  /**
   * Training: when no checkpoint cadence in steps is set (by `train` or the module), keep about this
   * many checkpoints over the run (a trajectory plane needs at least 3).
   */
  keepCheckpoints?: number;
  /**
   * Training: when no per-layer cadence is set, measure per-layer sharpness about this many times
   * over the run (at probe steps), so its chart is a curve.
   */
  layerProbes?: number;
}

export interface RunRequest {
  type: 'run';
  id: number;
  job: JobKind;
  problem: ProblemInput;
  options: JobOptions;
  /** The engine: ONNX Runtime or one TF.js backend; absent: ONNX Runtime when it loads, else TF.js's best. */
  backend?: 'onnxruntime' | 'tensorflow' | 'wasm' | 'cpu';
}
export interface CancelRequest {
  type: 'cancel';
  id: number;
}
export interface ShutdownRequest {
  type: 'shutdown';
}
export type ToWorker = RunRequest | CancelRequest | ShutdownRequest;

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
export interface ResultMessage {
  type: 'result';
  inReplyTo: number;
  result: JobResult | TrainDone;
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
