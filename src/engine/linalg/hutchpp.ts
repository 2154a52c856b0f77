/**
 * Hutch++ (Meyer, Musco, Musco & Woodruff 2021, "Hutch++: Optimal Stochastic Trace Estimation",
 * SOSA; Algorithm 1). With a budget of m products:
 *
 *   S: d x m/3 Rademacher;  Q = orth(A S)                              (m/3 products)
 *   exact part     t_1 = tr(Q^T A Q)                                     (rank(Q) products)
 *   residual part  t_2 = (1/l) sum_j g_j^T (I - QQ^T) A (I - QQ^T) g_j   (the l left, Rademacher g_j)
 *   tr(A) ~ t_1 + t_2
 *
 * Q captures the top of the spectrum, so Hutchinson only sees the tail; for PSD A this needs
 * O(1/eps) products for relative error eps instead of Hutchinson's O(1/eps^2). The estimate is
 * unbiased for any Q because g is independent of S. Columns of A S that are numerically dependent
 * (A of low rank) are dropped and their products go to the residual part; if Q spans R^d the result
 * is exact (stderr 0). The standard error is that of the residual part (the exact part has none).
 * Budgets below 3 fall back to plain Hutchinson.
 *
 * Example:
 * ```ts
 * const { trace, stderr, sketchRank } = await hutchpp(op, { matvecs: 60, rng: new Rng(3) });
 * ```
 */
import { Rng } from '../rng';
import { orthonormalize } from './dense';
import { hutchinson, meanAndStderr } from './hutchinson';
import { axpy, dot, IterOptions, LinearOperator, throwIfAborted } from './operator';
import { InternalError } from '../errors';

export interface HutchppOptions extends IterOptions {
  /** Total number of products, at least 1. */
  matvecs: number;
  /** Source of the Rademacher vectors (default new Rng(0)). */
  rng?: Rng;
}

export interface HutchppResult {
  trace: number;
  /** Standard error of the residual (Hutchinson) part; 0 when exact, Infinity with fewer than 2 samples. */
  stderr: number;
  matvecs: number;
  /** Rank of Q = orth(A S). */
  sketchRank: number;
  /** tr(Q^T A Q). */
  exactPart: number;
  /** Hutchinson estimate of tr((I - QQ^T) A (I - QQ^T)). */
  residualPart: number;
}

/** x -= Q (Q^T x), in place. */
function projectOut(q: readonly Float64Array[], x: Float64Array): void {
  for (const qi of q) axpy(-dot(qi, x), qi, x);
}

/** Hutch++ trace estimate with a budget of `matvecs` products (see the module comment). */
export async function hutchpp(op: LinearOperator, opts: HutchppOptions): Promise<HutchppResult> {
  const m = opts.matvecs;
  if (!Number.isInteger(m) || m < 1) throw new InternalError(`hutchpp: matvecs must be a positive integer, got ${m}`);
  const n = op.dim;
  const rng = opts.rng ?? new Rng(0);
  if (m < 3) {
    const h = await hutchinson(op, opts);
    return { trace: h.trace, stderr: h.stderr, matvecs: h.matvecs, sketchRank: 0, exactPart: 0, residualPart: h.trace };
  }
  let done = 0;
  const product = async (v: Float64Array): Promise<Float64Array> => {
    throwIfAborted(opts.signal);
    const y = await op.matvec(v);
    done++;
    opts.onProgress?.(done, m);
    return y;
  };

  // Sketch: Q = orth(A S).
  const sketchCols = Math.min(Math.floor(m / 3), n);
  const as: Float64Array[] = [];
  for (let j = 0; j < sketchCols; j++) as.push(await product(rng.rademacherVector(n)));
  const dropTol = Math.max(1e-10, 4 * (op.relativeNoise ?? 0));
  const q = orthonormalize(as, { dropTol });

  // Exact part: tr(Q^T A Q).
  let exactPart = 0;
  for (const qi of q) exactPart += dot(qi, await product(qi));

  if (q.length >= n) {
    return { trace: exactPart, stderr: 0, matvecs: done, sketchRank: q.length, exactPart, residualPart: 0 };
  }

  // Residual part: Hutchinson on (I - QQ^T) A (I - QQ^T) with the rest of the budget.
  const samples: number[] = [];
  while (done < m) {
    const g = rng.rademacherVector(n);
    projectOut(q, g);
    const y = Float64Array.from(await product(g));
    projectOut(q, y);
    samples.push(dot(g, y));
  }
  const { mean, stderr } = meanAndStderr(samples);
  const residualPart = samples.length > 0 ? mean : 0;
  return {
    trace: exactPart + residualPart,
    stderr: samples.length > 0 ? stderr : Infinity,
    matvecs: done,
    sketchRank: q.length,
    exactPart,
    residualPart,
  };
}
