/**
 * Hutchinson's stochastic trace estimator with Rademacher vectors (Hutchinson 1989, "A stochastic
 * estimator of the trace of the influence matrix for Laplacian smoothing splines", Commun. Stat.
 * Simul. Comput. 18):
 *
 *   tr(A) ~ (1/m) sum_{j=1..m} g_j^T A g_j,   g_j with independent +-1 entries,
 *
 * unbiased, with variance 2 (|A|_F^2 - sum_i A_ii^2) / m, so relative accuracy eps needs
 * O(1/eps^2) products. The reported standard error is the sample standard deviation of the
 * m samples g_j^T A g_j divided by sqrt(m) (Infinity when m < 2).
 *
 * Example:
 * ```ts
 * const { trace, stderr } = await hutchinson(op, { matvecs: 100, rng: new Rng(7) });
 * ```
 */
import { Rng } from '../rng';
import { dot, IterOptions, LinearOperator, throwIfAborted } from './operator';
import { InternalError } from '../errors';

export interface HutchinsonOptions extends IterOptions {
  /** Number of products (= samples), at least 1. */
  matvecs: number;
  /** Source of the Rademacher vectors (default new Rng(0)). */
  rng?: Rng;
}

export interface HutchinsonResult {
  /** Mean of the samples. */
  trace: number;
  /** Sample standard deviation / sqrt(m); Infinity when m < 2. */
  stderr: number;
  matvecs: number;
  /** The samples g_j^T A g_j. */
  samples: number[];
}

/** Mean and standard error (sample std / sqrt(m)) of a list of samples; stderr Infinity below 2 samples. */
export function meanAndStderr(samples: readonly number[]): { mean: number; stderr: number } {
  const m = samples.length;
  if (m === 0) return { mean: NaN, stderr: Infinity };
  let mean = 0;
  for (const x of samples) mean += x;
  mean /= m;
  if (m < 2) return { mean, stderr: Infinity };
  let ss = 0;
  for (const x of samples) ss += (x - mean) * (x - mean);
  return { mean, stderr: Math.sqrt(ss / (m - 1) / m) };
}

/** Hutchinson's trace estimate from `matvecs` Rademacher samples (see the module comment). */
export async function hutchinson(op: LinearOperator, opts: HutchinsonOptions): Promise<HutchinsonResult> {
  const m = opts.matvecs;
  if (!Number.isInteger(m) || m < 1) throw new InternalError(`hutchinson: matvecs must be a positive integer, got ${m}`);
  const rng = opts.rng ?? new Rng(0);
  const samples: number[] = [];
  for (let j = 0; j < m; j++) {
    const g = rng.rademacherVector(op.dim);
    throwIfAborted(opts.signal);
    const ag = await op.matvec(g);
    opts.onProgress?.(j + 1, m);
    samples.push(dot(g, ag));
  }
  const { mean, stderr } = meanAndStderr(samples);
  return { trace: mean, stderr, matvecs: m, samples };
}
