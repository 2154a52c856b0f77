/**
 * Plain result types shared by the engine, the worker, the CLI and the extension. Only numbers,
 * strings and arrays: these cross process boundaries and are printed as JSON.
 */

export interface RunMeta {
  /** The backend that ran, e.g. "wasm", and its detail, e.g. "wasm (SIMD)". */
  backend: string;
  backendDetail: string;
  /** ONNX Runtime's execution provider ('cpu', 'cuda', ...), when it ran; absent on TF.js. */
  provider?: string;
  seed: number;
  /** Model description: file or module, parameter count, samples. */
  model: string;
  params: number;
  samples: number;
  /** The loss function's name ('custom' for a user function). */
  lossName: string;
  /** The loss at the parameters analysed. */
  lossValue: number;
  ms: number;
}

/**
 * The curvature a job analysed: the Hessian of the mean loss, the generalized Gauss-Newton
 * J^T H_L J, the true Fisher (curvlinops' conventions: equal to the GGN for MSE and the
 * cross-entropies on logits) or the empirical Fisher c sum_n g_n g_n^T.
 */
export type CurvatureName = 'hessian' | 'ggn' | 'fisher' | 'empirical-fisher';

/** How much of the gradient lies along computed eigenvectors (Gur-Ari, Roberts & Dyer 2018). */
export interface GradientOverlapInfo {
  /** |P g|^2 / |g|^2 with P the projection on the span of the computed eigenvectors. */
  fraction: number;
  /** cos^2(g, v_i) for each eigenvector, in the order of the eigenvalues. */
  perVector: number[];
  /** |g| (of the layer's block when one layer was analysed). */
  gradNorm: number;
}

export interface HvpInfo {
  hvpMethod: 'exact' | 'fd';
  hvpReason: string;
  /** Relative difference between exact and finite-difference products in the start-up check. */
  hvpAgreement?: number;
  /** Products spent choosing and checking the method (not counted in `hvps`). */
  hvpCheckProducts: number;
}

export interface EigsResult extends RunMeta, HvpInfo {
  kind: 'eigs';
  which: 'top' | 'bottom';
  method: 'lanczos' | 'power';
  /** The curvature analysed (absent in results written before it existed: the Hessian). */
  curvature?: CurvatureName;
  /** Descending. */
  eigenvalues: number[];
  /**
   * Absolute error estimate for each eigenvalue: the Ritz residual bound, or its Kato-Temple square
   * over the gap to the other Ritz values when they are separated (which assumes no unseen
   * eigenvalue lies in that gap), never below the product noise `productNoise`.
   */
  errorBounds: number[];
  /**
   * Residual bound for each eigenvalue: the Ritz residual |A~ y - theta y| of the float32 products
   * A~ plus their noise `productNoise`. Some eigenvalue of the exact curvature lies within it as
   * long as the products' error is at most that noise (an estimate: relative noise of 1e-6, or 1e-5
   * for finite differences, times the norm seen by the iteration), so it is not a proof.
   */
  residuals: number[];
  /** The absolute product noise folded into `residuals` (relative noise x norm estimate). */
  productNoise?: number;
  /** The gradient's overlap with the computed eigenvectors. */
  gradientOverlap?: GradientOverlapInfo;
  hvps: number;
  converged: boolean;
  /** When the block of one layer was analysed. */
  layer?: string;
  /** Condition number over the computed part of the spectrum, with what it is a ratio of. */
  condition?: { value: number; definition: string };
}

export interface TraceResult extends RunMeta, HvpInfo {
  kind: 'trace';
  curvature?: CurvatureName;
  method: 'hutchpp' | 'hutchinson';
  trace: number;
  stderr: number;
  hvps: number;
  layer?: string;
}

export interface DensityResult extends RunMeta, HvpInfo {
  kind: 'density';
  curvature?: CurvatureName;
  layer?: string;
  steps: number;
  runs: number;
  grid: number[];
  density: number[];
  nodes: number[][];
  weights: number[][];
  hvps: number;
  sigma2: number;
}

export interface LayerInfo {
  name: string;
  kind: string;
  outShape: number[];
  params: number;
  detail: string;
}

export interface InfoResult {
  kind: 'info';
  model: string;
  name: string;
  backend: string;
  backendDetail: string;
  /** ONNX Runtime's execution provider, when it is the engine. */
  provider?: string;
  params: number;
  layers: LayerInfo[];
  samples?: number;
  lossName?: string;
  lossValue?: number;
  accuracy?: number;
  hvpMethods: string;
}

export type JobResult = EigsResult | TraceResult | DensityResult | InfoResult | SliceResult | SurfaceResult | FlatnessResult;

export interface Progress {
  /** Work done and planned, in Hessian-vector products (or the job's own unit). */
  done: number;
  total: number;
  message: string;
}

/** How one direction of a slice was made. */
export interface DirectionInfo {
  /** 'random', 'gradient', 'eigen1'..., 'interpolation', 'pca1', 'pca2'. */
  kind: string;
  /** Normalization applied: 'filter', 'layer', 'none' (random) or 'unit' (eigenvector, gradient). */
  norm: string;
  ignore?: string;
  /** Euclidean norm of the direction in parameter space. */
  length: number;
  /** For eigenvector directions: the eigenvalue. */
  eigenvalue?: number;
  /**
   * For eigenvector directions: the Ritz residual bound (with the product noise) of the eigenpair,
   * and the bound on the sine of the angle to the true eigenvector, residual / gap (Davis-Kahan;
   * 1 when the gap to the other Ritz values is not larger than the residual: no claim).
   */
  residual?: number;
  angleBound?: number;
  /** For plane axes: cosine with the x direction before y was made orthogonal to it. */
  cosineBeforeOrthogonalization?: number;
  /** For PCA directions: fraction of the trajectory's variance explained. */
  explained?: number;
}

export interface GridMeta extends RunMeta {
  /** False when the job was cancelled: missing points are null. */
  complete: boolean;
  /** Points evaluated, and points per batch sent to the evaluator. */
  evaluations: number;
  threads: number;
  directions: DirectionInfo[];
}

export interface SliceResult extends GridMeta {
  kind: 'slice' | 'interpolate';
  x: number[];
  /** One row per direction when several were asked for, else one array. null: not computed. */
  loss: (number | null)[] | (number | null)[][];
  accuracy?: (number | null)[] | (number | null)[][];
  testLoss?: (number | null)[] | (number | null)[][];
  testAccuracy?: (number | null)[] | (number | null)[][];
  /** Interpolation: the two models' own losses (the end points at 0 and 1). */
  endpoints?: { file: string; loss: number }[];
}

export interface SurfaceResult extends GridMeta {
  kind: 'surface' | 'trajectory';
  x: number[];
  y: number[];
  /** Rows by y, columns by x: loss[iy][ix]. null: not computed. */
  loss: (number | null)[][];
  accuracy?: (number | null)[][];
  testLoss?: (number | null)[][];
  testAccuracy?: (number | null)[][];
  /** Trajectory: the checkpoints projected onto the plane, in order. */
  path?: { file: string; x: number; y: number; loss: number }[];
}

export interface FlatnessMeasure {
  /** 'sam', 'asam', 'epsilon', 'pacbayes', 'radius'. */
  name: string;
  value: number;
  stderr?: number;
  /** The measure's parameters (rho, eta, eps, sigma, delta, draws...). */
  params: Record<string, number | string | boolean>;
  /** Other numbers it reports (base loss, perturbed loss, log-volume...). */
  detail: Record<string, number | number[] | string | null>;
  evaluations: number;
}

export interface FlatnessResult extends RunMeta {
  kind: 'flatness';
  measures: FlatnessMeasure[];
}

/** Training settings, as stored in a run's manifest (CLI options override the module's). */
export interface TrainSettings {
  optimizer: 'gd' | 'sgd' | 'momentum' | 'nesterov' | 'adam' | 'sam' | 'asam' | 'flow';
  lr: number;
  steps: number;
  /** Minibatch size; undefined = full batch. */
  batchSize?: number;
  momentum?: number;
  rho?: number;
  /** Explicit IGR regularizer strength mu: the loss L + mu |grad L|^2. */
  igr?: number;
  weightDecay?: number;
  /** 'constant', 'step:EVERY:GAMMA', 'cosine:TOTAL[:MINLR]'. */
  schedule: string;
  seed: number;
  /** Steps between probes (lambda_max, threshold, IGR term, distances); the loss is logged every step. */
  probeEvery: number;
  /** Steps between the costlier probes: trace, gradient noise, per-layer sharpness (0 = never). */
  traceEvery: number;
  noiseEvery: number;
  layersEvery: number;
  /** Steps between checkpoints (0 = none by step; the last step is always saved). */
  checkpointEvery: number;
  /**
   * Seconds of training between checkpoints (0 = none by time; undefined = the default, 30), so a
   * killed run can be resumed losing at most this much work; only the newest few are kept.
   */
  checkpointSeconds?: number;
  /** Probe on the first N training samples instead of all. */
  probeSubset?: number;
  /**
   * A curvature probed besides the Hessian ('ggn', 'fisher', 'empirical-fisher'): its top
   * eigenvalue is recorded as `curvatureMax` next to the Hessian's `lambdaMax` (undefined or
   * 'hessian': the Hessian only).
   */
  curvature?: CurvatureName;
  /** Stop when the loss exceeds this multiple of the initial loss (or is not finite). */
  divergeFactor: number;
}

/** One line of metrics.jsonl. Fields other than step/loss/lr appear at their cadence. */
export interface ProbeRecord {
  step: number;
  epoch: number;
  lr: number;
  /** Full-batch training loss (for minibatch methods, measured at probe steps; else the step's loss). */
  loss: number;
  /** The minibatch loss of the step, for minibatch methods. */
  batchLoss?: number;
  accuracy?: number;
  testLoss?: number;
  testAccuracy?: number;
  lambdaMax?: number;
  /** Products the lambda_max probe used (warm start plus fresh random directions). */
  lambdaMaxProducts?: number;
  /** cos^2 between the gradient and lambda_max's eigenvector (Gur-Ari et al. 2018). */
  lambdaMaxOverlap?: number;
  /**
   * True when lambda_max's eigenvector is (numerically) orthogonal to a nonzero gradient
   * (cos^2 < 1e-6): gradient descent has no component along it and is not limited by it.
   */
  lambdaMaxUnseen?: boolean;
  /** The top eigenvalue of `settings.curvature` (e.g. the GGN's), beside the Hessian's lambdaMax. */
  curvatureMax?: number;
  /** The stability threshold on lambda_max: 2/lr, or the momentum version. */
  threshold?: number;
  trace?: number;
  traceStderr?: number;
  /** Barrett & Dherin's (h/4)|grad L|^2. */
  igrTerm?: number;
  /** Smith et al. 2021's SGD term (h/4) E|grad L_B - grad L|^2, with its standard error. */
  sgdTerm?: number;
  sgdTermStderr?: number;
  /** McCandlish et al.'s B_simple. */
  noiseScale?: number;
  gradNorm?: number;
  distInit?: number;
  weightNorm?: number;
  layerSharpness?: Record<string, number>;
  /** Hessian-vector products this probe used. */
  hvps?: number;
  /** Samples the probe used (all unless probeSubset). */
  probeSamples?: number;
  ms: number;
}

export interface RunManifest {
  kind: 'basin-run';
  version: string;
  created: string;
  model: string;
  params: number;
  samples: number;
  lossName: string;
  backend: string;
  backendDetail: string;
  settings: TrainSettings;
  /** Where the model and data came from, so a resumed run can reload them. */
  problem: { model?: string; data?: string; labels?: string[]; noHeader?: boolean; loss?: string; experiment?: string };
  status: 'running' | 'completed' | 'diverged' | 'cancelled' | 'failed';
  /** The last step completed, and why the run stopped when it did not complete. */
  stoppedAt?: number;
  reason?: string;
  /** Oldest first. A resumed run continues from the one with the highest step. */
  checkpoints: RunCheckpoint[];
  /** Resumed from this step of an earlier run, if any (the latest resume). */
  resumedFrom?: number;
  /** The loss at step 0, which the divergence test compares against (kept so a resumed run uses the same). */
  initialLoss?: number;
  /** SHA-256 of the initial parameters (float32 bytes): a run restarted from step 0 checks it has the same. */
  initHash?: string;
}

/**
 * A checkpoint directory of a run. `by` says what wrote it: the step cadence, the time cadence
 * (only the newest few of these are kept), the end of the run, a stop (cancel or error), or the
 * divergence test (`last-good`: the last parameters whose loss was finite and under the threshold,
 * `loss` being that loss). Absent in manifests written before it existed.
 */
export interface RunCheckpoint {
  step: number;
  dir: string;
  by?: 'steps' | 'time' | 'final' | 'stop' | 'last-good';
  loss?: number;
}

export interface TrainDone {
  done: boolean;
  run: string;
  status: RunManifest['status'];
  reason?: string;
  steps: number;
}
