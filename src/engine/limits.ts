/**
 * Size limits, checked before anything is allocated. Every refusal states the estimate, the limit
 * and, where raising it makes sense, how: a hostile or mistaken file or option must end in a clear
 * message, never in an out-of-memory abort or a hang.
 */
import { InputError } from './errors';

/** Parameters a model may have (Lanczos keeps several float64 copies of the parameter vector). */
export const MAX_PARAMS = 50_000_000;
/** Float values (samples x features, inputs and labels together) a data set may hold in memory. */
export const MAX_DATA_VALUES = 500_000_000;
/**
 * Bytes of a model.json read into memory: it holds the topology only (weights are in shards), and
 * JSON.parse needs about ten times a file's size.
 */
export const MAX_JSON_BYTES = 64 * 1024 * 1024;
/**
 * Bytes of a .onnx model read into memory: protobuf messages are limited to 2 GB, and the weights
 * (float32, inside the file) of a model within MAX_PARAMS take 200 MB.
 */
export const MAX_ONNX_BYTES = 1024 * 1024 * 1024;
/** Nodes of an ONNX graph (an exported MLP or convnet has tens to hundreds). */
export const MAX_ONNX_NODES = 100_000;
/** Bytes of a .npz archive, and of all the members it inflates to together (a zip bomb is refused). */
export const MAX_NPZ_BYTES = 4_000_000_000;
/** Bytes of a JSON file Basin wrote itself (a checkpoint's optimizer state): V8's longest string. */
export const MAX_STATE_JSON_BYTES = 512 * 1024 * 1024;
/**
 * Bytes of a JSON data file. `JSON.parse` builds JS arrays of 10 to 30 times the text's size on
 * the JS heap (whose default limit can be 2 GB), so JSON data is kept small; .npy and CSV are read
 * straight into float32 arrays.
 */
export const MAX_DATA_JSON_BYTES = 64_000_000;
/** Bytes of a CSV data file (read whole, off the JS heap, and decoded a chunk at a time). */
export const MAX_CSV_BYTES = 2_000_000_000;
/** Bytes of one line of a CSV data file. */
export const MAX_CSV_LINE_BYTES = 256_000_000;
/** Bytes of a .npy header (numpy itself writes well under 1 KB and reads at most 10,000 by default). */
export const MAX_NPY_HEADER_BYTES = 65_536;
/** Dimensions of a data array: nesting depth of a JSON array, length of a .npy shape. */
export const MAX_DATA_DIMS = 32;
/** Krylov steps (Lanczos iterations, SLQ steps, power iterations, eigenvalues asked for). */
export const MAX_KRYLOV_STEPS = 10_000;
/**
 * Points of a density grid. The grid and the density are both returned, and a result must survive
 * JSON (the CLI's --json, the worker's IPC): at about 20 characters a number, 1e6 points make a
 * 40 MB text, where 1e7 would approach V8's longest string.
 */
export const MAX_DENSITY_GRID = 1_000_000;
/**
 * Hessian-vector products one job may plan: trace products, SLQ steps x runs, power iterations x
 * eigenvalues. Beyond this a job runs for days on any model worth analysing.
 */
export const MAX_PRODUCTS = 1_000_000;
/**
 * Bytes of parameter-length vectors one computation keeps at once: the Lanczos basis (one float64
 * vector per step), the Hutch++ sketch, the directions of a slice, the checkpoints of a trajectory.
 */
export const MAX_VECTOR_BYTES = 8e9;
/** Bytes a grid's results may take (the values, their JSON text and a partial copy). */
export const MAX_GRID_BYTES = 500e6;
/**
 * Bytes the ONNX Runtime engine may hold for a plane of parameters (surfaces, slices): the first
 * dense layer's pre-activations at the origin and along each direction, for every sample. Over
 * this, each point computes them itself (slower, no more memory). Evaluation chunks are sized as
 * on TF.js (objective.ts defaultChunkSize: activations kept eight times over fit 256 MB).
 */
export const MAX_PLANE_PRE_BYTES = 256 * 1024 * 1024;
/**
 * The values an ONNX Runtime evaluator keeps between Hessian-vector products at one point (the
 * forward and backward passes' activations, cotangents and masks over every sample: ort/evaluator.ts
 * hvp). Above this, each product recomputes them (a third slower, no more memory).
 */
export const MAX_HVP_CARRY_BYTES = 1536 * 1024 * 1024;
/** Random draws (PAC-Bayes) or directions (basin radius) of one flatness measure. */
export const MAX_FLATNESS_SAMPLES = 10_000;
/** Threads of a data-parallel evaluator. */
export const MAX_THREADS = 256;

/**
 * The refusal hint for a parameter count over `limit`: the float32 memory the count implies, and
 * whether the limit was the caller's (`maxParams`) or Basin's own.
 */
export function paramLimitHint(count: number, limit: number): string {
  const memory = `${formatBytes(4 * count)} as float32, and an analysis keeps several float64 copies of the parameters`;
  return limit === MAX_PARAMS ? `${memory}; the model is too large for Basin` : `${memory}; the caller set this limit (maxParams)`;
}

/** Bytes as a short human string: 3.2 GB, 512 MB, 12 KB. */
export function formatBytes(bytes: number): string {
  if (bytes >= 1e12) return `${(bytes / 1e12).toPrecision(3)} TB`;
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(1)} GB`;
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(0)} MB`;
  if (bytes >= 1e3) return `${(bytes / 1e3).toFixed(0)} KB`;
  return `${bytes} bytes`;
}

/**
 * Throws a `BasinError` when `estimate` exceeds `limit`: "<what> is <estimate>, over the limit of
 * <limit> (<hint>)". `unit` formats both numbers (a count by default, or bytes).
 */
export function refuseOver(what: string, estimate: number, limit: number, opts: { file?: string; hint?: string; unit?: 'count' | 'bytes' } = {}): void {
  if (Number.isFinite(estimate) && estimate <= limit) return;
  const fmt = (n: number): string =>
    !Number.isFinite(n) ? String(n) : opts.unit === 'bytes' ? formatBytes(n) : Math.abs(n) >= 1e15 ? n.toExponential(2) : n.toLocaleString('en-US');
  throw new InputError(`${what} is ${fmt(estimate)}, over the limit of ${fmt(limit)}${opts.hint ? ` (${opts.hint})` : ''}`, opts.file);
}

/**
 * Checks a count option before anything is sized by it: a whole number >= `min` (else "<what>
 * must be a whole number >= <min> (got <n>)"), then at most `limit` (`refuseOver`). `n` undefined
 * passes (the caller's default applies).
 */
export function checkCount(what: string, n: number | undefined, min: number, limit: number, opts: { file?: string; hint?: string } = {}): void {
  if (n === undefined) return;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min) throw new InputError(`${what} must be a whole number >= ${min} (got ${String(n)})`, opts.file);
  refuseOver(what, n, limit, opts);
}

/**
 * Checks a real-valued option: a finite number > 0, or >= 0 with `allowZero` (else "<what> must be
 * a finite number > 0 (got NaN)"). `x` undefined passes.
 */
export function checkPositive(what: string, x: number | undefined, opts: { allowZero?: boolean; file?: string } = {}): void {
  if (x === undefined) return;
  if (typeof x !== 'number' || !Number.isFinite(x) || x < 0 || (x === 0 && !opts.allowZero)) {
    throw new InputError(`${what} must be a finite number ${opts.allowZero ? '>= 0' : '> 0'} (got ${String(x)})`, opts.file);
  }
}
