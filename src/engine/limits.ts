/**
 * Size limits, checked before anything is allocated. Every refusal states the estimate, the limit
 * and, where raising it makes sense, how: a hostile or mistaken file or option must end in a clear
 * message, never in an out-of-memory abort or a hang.
 */
import { BasinError } from './errors';

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
/** Points of a density grid. */
export const MAX_DENSITY_GRID = 10_000_000;

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
    !Number.isFinite(n) ? String(n) : opts.unit === 'bytes' ? formatBytes(n) : n >= 1e15 ? n.toPrecision(3) : n.toLocaleString('en-US');
  throw new BasinError(`${what} is ${fmt(estimate)}, over the limit of ${fmt(limit)}${opts.hint ? ` (${opts.hint})` : ''}`, opts.file);
}
