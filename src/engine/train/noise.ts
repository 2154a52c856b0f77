/**
 * Gradient-noise measurements from minibatch gradients (pure TypeScript; the caller supplies a
 * `BatchGradFn` that returns the gradient of the MEAN loss over a set of example indices).
 *
 * Notation: N (or n) examples with per-example losses C_i and gradients g_i; the full-batch loss
 * C = (1/N) sum_i C_i with gradient G = (1/N) sum_i g_i; the per-example covariance
 * Sigma = (1/N) sum_i (g_i - G)(g_i - G)^T (population normalisation, 1/N) so that
 * tr Sigma = (1/N) sum_i |g_i - G|^2 (= Gamma of Smith et al. 2021). G_B is the mean gradient of a
 * minibatch of B examples.
 *
 * Sampling. Minibatches are drawn uniformly WITHOUT replacement (`sampleIndices`). Then
 *
 *   E G_B = G,   Cov G_B = c_B Sigma,   c_B = (N - B) / ((N - 1) B)   (finite population correction),
 *   E |G_B|^2 = |G|^2 + c_B tr Sigma,                                                          (*)
 *
 * which is exact for any finite set of examples; with replacement (or N -> infinity) c_B = 1/B.
 *
 * - `gradientNoiseScale`: McCandlish, Kaplan, Amodei & OpenAI Dota Team 2018, "An Empirical Model
 *   of Large-Batch Training" (arXiv:1812.06162), the simple noise scale B_simple = tr(Sigma) / |G|^2
 *   and its two-batch-size estimator (App. A.1).
 * - `exactBSimple`: the same quantity from all per-example gradients.
 * - `sgdImplicitTerm`: Smith, Dherin, Barrett & De 2021, "On the Origin of Implicit Regularization
 *   in Stochastic Gradient Descent" (ICLR), the SGD-specific implicit regularizer.
 * - `igrTerm`: Barrett & Dherin 2021, "Implicit Gradient Regularization" (ICLR), (h/4) |grad L|^2.
 * - `smithLeNoiseScale`: Smith & Le 2018, "A Bayesian Perspective on Generalization and Stochastic
 *   Gradient Descent" (ICLR), g = eps (N/B - 1) / (1 - m).
 */
import type { Rng } from '../rng';
import { meanAndStderr } from '../linalg/hutchinson';
import { dot, throwIfAborted, type IterOptions } from '../linalg/operator';

/** Gradient of the mean loss over the samples `indices` (a minibatch), at the current parameters. */
export type BatchGradFn = (indices: Int32Array) => Promise<Float64Array>;

/** Options shared by the estimators: the source of minibatches, cancellation and progress (one call per gradient). */
export interface NoiseOptions extends IterOptions {
  rng: Rng;
}

export interface NoiseScaleResult {
  /** traceSigma / gradNormSq (ratio of the draw-averaged estimates; can be negative or huge when |G|^2 is not resolved). */
  bSimple: number;
  /** Delta-method standard error of bSimple (from the per-draw pairs); Infinity below 2 draws. */
  stderrBSimple: number;
  /** Estimate of |G|^2 (unbiased; may come out negative when the noise dominates). */
  gradNormSq: number;
  /** Estimate of tr Sigma (unbiased under the chosen sampling model). */
  traceSigma: number;
  stderrGradNormSq: number;
  stderrTraceSigma: number;
  bSmall: number;
  bBig: number;
  draws: number;
  /** Calls of the gradient function. */
  evaluations: number;
  /** Whether the finite population correction c_B = (N - B)/((N - 1) B) was used (else c_B = 1/B). */
  finitePopulation: boolean;
}

export interface SgdTermResult {
  /** (eps/4) mean_k |g_Bk - g|^2, the SGD-specific implicit regularizer (0 when B = N). */
  term: number;
  /** Standard error of `term` over the draws (0 when B = N; Infinity below 2 draws). */
  stderr: number;
  /** mean_k |g_Bk - g|^2, an unbiased estimate of (N - B)/(B (N - 1)) Gamma. */
  meanSqDeviation: number;
  /** mean_k |g_Bk - g|^2 * B (N - 1)/(N - B), unbiased for Gamma; undefined when B = N. */
  gammaEstimate: number | undefined;
  /** Standard error of gammaEstimate; undefined when B = N. */
  gammaStderr: number | undefined;
  /** The full-batch IGR term (eps/4) |g|^2 (Barrett & Dherin 2021), for comparison. */
  igr: number;
  batchSize: number;
  lr: number;
  draws: number;
  /** Calls of the gradient function. */
  evaluations: number;
}

/** Sample without replacement: `count` distinct indices from 0..n-1 (partial Fisher-Yates). */
export function sampleIndices(n: number, count: number, rng: Rng): Int32Array {
  if (!Number.isInteger(n) || n < 0 || n > 0x7fffffff) throw new Error(`sampleIndices: n must be an integer in [0, 2^31), got ${n}`);
  if (!Number.isInteger(count) || count < 0 || count > n) {
    throw new Error(`sampleIndices: count must be an integer in [0, ${n}], got ${count}`);
  }
  const out = new Int32Array(count);
  // Partial Fisher-Yates on the virtual array a = [0, 1, ..., n-1]; only displaced slots are stored,
  // so memory is O(count) however large n is.
  const displaced = new Map<number, number>();
  for (let i = 0; i < count; i++) {
    const j = i + uniformInt(n - i, rng);
    const aj = displaced.get(j) ?? j;
    const ai = displaced.get(i) ?? i;
    displaced.set(j, ai);
    out[i] = aj;
  }
  return out;
}

/** Uniform integer in [0, m) without modulo bias (rejection on the 32-bit draw). */
function uniformInt(m: number, rng: Rng): number {
  if (m === 1) return 0;
  const limit = 4294967296 - (4294967296 % m);
  let u = rng.nextU32();
  while (u >= limit) u = rng.nextU32();
  return u % m;
}

/** c_B such that E|G_B|^2 = |G|^2 + c_B tr Sigma: (N - B)/((N - 1) B) without replacement, 1/B in the infinite-population model. */
export function batchVarianceFactor(n: number, batch: number, finitePopulation = true): number {
  return finitePopulation ? (n - batch) / ((n - 1) * batch) : 1 / batch;
}

/**
 * McCandlish et al. 2018 ("An Empirical Model of Large-Batch Training", App. A.1): the simple noise
 * scale B_simple = tr(Sigma) / |G|^2, estimated from gradients at two batch sizes B_small < B_big.
 *
 * Each of `draws` rounds takes one big batch (bBig distinct random indices) and one small batch,
 * the first bSmall of the big batch's indices (a uniform random subset, since `sampleIndices`
 * returns them in random order; nesting the small batch in the big one is the data-parallel setting
 * of App. A.1 and lowers the variance of |G_small|^2 - |G_big|^2). Let S_s, S_b be the draw means
 * of |G_small|^2 and |G_big|^2. By (*) E S = |G|^2 + c_B tr Sigma for either size, and solving the
 * 2 x 2 system gives unbiased estimates
 *
 *   tr Sigma ~ (S_s - S_b) / (c_small - c_big),
 *   |G|^2    ~ (c_small S_b - c_big S_s) / (c_small - c_big),
 *
 * whose ratio is B_simple (the averages are taken BEFORE the ratio, as the paper prescribes; the
 * ratio itself is biased at O(1/draws)).
 *
 * - `finitePopulation: false`: c_B = 1/B, McCandlish et al.'s formulas
 *   |G|^2 ~ (B_big S_b - B_small S_s)/(B_big - B_small), tr Sigma ~ (S_s - S_b)/(1/B_small - 1/B_big),
 *   exact for sampling with replacement / an infinite data stream. Used on a finite set sampled
 *   without replacement (B c_B = (N - B)/(N - 1)) it is biased whatever the two sizes: in expectation
 *   its tr Sigma is N/(N - 1) tr Sigma and its |G|^2 is |G|^2 - tr Sigma/(N - 1), so its B_simple
 *   tends to (N/(N - 1)) B_simple / (1 - B_simple/(N - 1)), a relative excess of about (1 + B_simple)/N.
 *   (The same identities hold draw by draw between the two estimators on the same batches.)
 * - `finitePopulation: true` (default): c_B = (N - B)/((N - 1) B), exact without replacement. When
 *   bBig = N the big batch is the full gradient (c_big = 0, so |G|^2 = S_b exactly): it is computed
 *   once and reused.
 *
 * Standard errors come from the per-draw estimates (the formulas above applied to one draw), whose
 * means are the reported values; that of bSimple is the delta method on the per-draw pairs.
 */
export async function gradientNoiseScale(
  gradFn: BatchGradFn,
  n: number,
  opts: NoiseOptions & { bSmall: number; bBig: number; draws?: number; finitePopulation?: boolean },
): Promise<NoiseScaleResult> {
  const { bSmall, bBig } = opts;
  const draws = opts.draws ?? 100;
  const finitePopulation = opts.finitePopulation ?? true;
  if (!Number.isInteger(n) || n < 2) throw new Error(`gradientNoiseScale: n must be an integer >= 2, got ${n}`);
  if (!Number.isInteger(bSmall) || !Number.isInteger(bBig) || bSmall < 1 || bSmall >= bBig || bBig > n) {
    throw new Error(`gradientNoiseScale: need integers 1 <= bSmall < bBig <= n (= ${n}), got bSmall ${bSmall}, bBig ${bBig}`);
  }
  if (!Number.isInteger(draws) || draws < 1) throw new Error(`gradientNoiseScale: draws must be a positive integer, got ${draws}`);

  const cS = batchVarianceFactor(n, bSmall, finitePopulation);
  const cB = batchVarianceFactor(n, bBig, finitePopulation);
  const denom = cS - cB;
  const fullBig = bBig === n;
  const total = fullBig ? draws + 1 : 2 * draws;
  let evaluations = 0;
  let dim = -1;
  const evaluate = async (indices: Int32Array): Promise<Float64Array> => {
    throwIfAborted(opts.signal);
    const g = await gradFn(indices);
    evaluations++;
    if (dim < 0) dim = g.length;
    else if (g.length !== dim) throw new Error(`gradientNoiseScale: gradient length changed from ${dim} to ${g.length}`);
    opts.onProgress?.(evaluations, total);
    return g;
  };

  let fullSq = NaN;
  if (fullBig) {
    const all = new Int32Array(n);
    for (let i = 0; i < n; i++) all[i] = i;
    const g = await evaluate(all);
    fullSq = dot(g, g);
  }
  const traces: number[] = [];
  const norms: number[] = [];
  for (let k = 0; k < draws; k++) {
    let bigSq: number;
    let small: Int32Array;
    if (fullBig) {
      small = sampleIndices(n, bSmall, opts.rng);
      bigSq = fullSq;
    } else {
      const big = sampleIndices(n, bBig, opts.rng);
      small = big.slice(0, bSmall);
      const gb = await evaluate(big);
      bigSq = dot(gb, gb);
    }
    const gs = await evaluate(small);
    const smallSq = dot(gs, gs);
    traces.push((smallSq - bigSq) / denom);
    norms.push((cS * bigSq - cB * smallSq) / denom);
  }
  throwIfAborted(opts.signal);
  const tr = meanAndStderr(traces);
  const gn = meanAndStderr(norms);
  const bSimple = tr.mean / gn.mean;
  const residuals = traces.map((t, k) => t - bSimple * norms[k]);
  const stderrBSimple = meanAndStderr(residuals).stderr / Math.abs(gn.mean);
  return {
    bSimple,
    stderrBSimple,
    gradNormSq: gn.mean,
    traceSigma: tr.mean,
    stderrGradNormSq: gn.stderr,
    stderrTraceSigma: tr.stderr,
    bSmall,
    bBig,
    draws,
    evaluations,
    finitePopulation,
  };
}

/**
 * The exact B_simple = tr(Sigma) / |G|^2 (McCandlish et al. 2018, eq. 2.8 with Sigma the
 * per-example covariance) from all N per-example gradients: G = (1/N) sum_i g_i,
 * tr Sigma = (1/N) sum_i |g_i - G|^2 (two-pass). Accepts an array of rows or a row-major N x dim
 * Float64Array with `dim`. For tests and small problems. bSimple is Infinity when G = 0 (NaN if also Sigma = 0).
 */
export function exactBSimple(
  perExample: readonly Float64Array[] | Float64Array,
  dim?: number,
): { bSimple: number; traceSigma: number; gradNormSq: number } {
  const rows = toRows(perExample, dim);
  const n = rows.length;
  if (n === 0) throw new Error('exactBSimple: no per-example gradients');
  const d = rows[0].length;
  const mean = new Float64Array(d);
  for (const r of rows) {
    if (r.length !== d) throw new Error(`exactBSimple: rows of different lengths (${d} and ${r.length})`);
    for (let j = 0; j < d; j++) mean[j] += r[j];
  }
  for (let j = 0; j < d; j++) mean[j] /= n;
  let ss = 0;
  for (const r of rows) {
    for (let j = 0; j < d; j++) {
      const e = r[j] - mean[j];
      ss += e * e;
    }
  }
  const traceSigma = ss / n;
  const gradNormSq = dot(mean, mean);
  return { bSimple: traceSigma / gradNormSq, traceSigma, gradNormSq };
}

function toRows(perExample: readonly Float64Array[] | Float64Array, dim?: number): Float64Array[] {
  if (!(perExample instanceof Float64Array)) return [...perExample];
  if (dim === undefined || !Number.isInteger(dim) || dim < 1 || perExample.length % dim !== 0) {
    throw new Error(`exactBSimple: a row-major matrix needs a positive dim dividing its length ${perExample.length}, got ${dim}`);
  }
  const rows: Float64Array[] = [];
  for (let i = 0; i < perExample.length; i += dim) rows.push(perExample.subarray(i, i + dim));
  return rows;
}

/**
 * Smith, Dherin, Barrett & De 2021 ("On the Origin of Implicit Regularization in Stochastic Gradient
 * Descent"): one epoch of SGD with step eps over m minibatches follows, to O(eps^2), the gradient flow
 * of C_SGD = C + (eps/4m) sum_k |grad C_k|^2; in expectation over random shuffles (batches of size B
 * drawn without replacement),
 *
 *   E C_SGD = C + (eps/4) |grad C|^2 + (eps/4) (N - B)/(B (N - 1)) Gamma,   Gamma = (1/N) sum_i |grad C_i - grad C|^2.
 *
 * The last, SGD-specific term is (eps/4) E_B |grad C_B - grad C|^2 exactly, by (*) with Gamma = tr Sigma.
 * This estimates it from `draws` random minibatches of size B and the full gradient `fullGrad`:
 *
 *   term = (eps/4) mean_k |g_Bk - g|^2   (standard error from the spread of the draws),
 *   gammaEstimate = mean_k |g_Bk - g|^2 * B (N - 1)/(N - B).
 *
 * B = N: every batch is the full batch, so term = 0 exactly (no gradients are evaluated) and Gamma
 * is not identified (undefined).
 */
export async function sgdImplicitTerm(
  gradFn: BatchGradFn,
  fullGrad: Float64Array,
  n: number,
  opts: NoiseOptions & { batchSize: number; lr: number; draws?: number },
): Promise<SgdTermResult> {
  const { batchSize: b, lr } = opts;
  const draws = opts.draws ?? 100;
  if (!Number.isInteger(n) || n < 1) throw new Error(`sgdImplicitTerm: n must be a positive integer, got ${n}`);
  if (!Number.isInteger(b) || b < 1 || b > n) throw new Error(`sgdImplicitTerm: batchSize must be an integer in [1, ${n}], got ${b}`);
  if (!Number.isInteger(draws) || draws < 1) throw new Error(`sgdImplicitTerm: draws must be a positive integer, got ${draws}`);
  if (!Number.isFinite(lr)) throw new Error(`sgdImplicitTerm: lr must be finite, got ${lr}`);
  const igr = igrTerm(fullGrad, lr);
  if (b === n) {
    return {
      term: 0,
      stderr: 0,
      meanSqDeviation: 0,
      gammaEstimate: undefined,
      gammaStderr: undefined,
      igr,
      batchSize: b,
      lr,
      draws,
      evaluations: 0,
    };
  }
  const samples: number[] = [];
  for (let k = 0; k < draws; k++) {
    throwIfAborted(opts.signal);
    const g = await gradFn(sampleIndices(n, b, opts.rng));
    if (g.length !== fullGrad.length) {
      throw new Error(`sgdImplicitTerm: batch gradient has length ${g.length}, full gradient ${fullGrad.length}`);
    }
    let s = 0;
    for (let j = 0; j < g.length; j++) {
      const e = g[j] - fullGrad[j];
      s += e * e;
    }
    samples.push(s);
    opts.onProgress?.(k + 1, draws);
  }
  throwIfAborted(opts.signal);
  const { mean, stderr } = meanAndStderr(samples);
  const scale = (b * (n - 1)) / (n - b);
  return {
    term: (lr / 4) * mean,
    stderr: (Math.abs(lr) / 4) * stderr,
    meanSqDeviation: mean,
    gammaEstimate: mean * scale,
    gammaStderr: stderr * scale,
    igr,
    batchSize: b,
    lr,
    draws,
    evaluations: draws,
  };
}

/**
 * Barrett & Dherin 2021 ("Implicit Gradient Regularization"): gradient descent with step h follows, to
 * O(h^2), the gradient flow of L~ = L + (h/4) |grad L|^2. Returns the IGR term (h/4) |grad L|^2.
 */
export function igrTerm(grad: Float64Array, lr: number): number {
  return (lr / 4) * dot(grad, grad);
}

/**
 * Smith & Le 2018 ("A Bayesian Perspective on Generalization and Stochastic Gradient Descent", sec. 4-5):
 * the SGD noise scale g = eps (N/B - 1), about eps N / B when B << N; with momentum coefficient m,
 * g = eps/(1 - m) (N/B - 1), about eps N / (B (1 - m)). `noiseScale` is the first form, `approx` the second.
 */
export function smithLeNoiseScale(lr: number, n: number, batch: number, momentum = 0): { noiseScale: number; approx: number } {
  if (!(batch > 0) || !(n > 0)) throw new Error(`smithLeNoiseScale: n and batch must be positive, got n ${n}, batch ${batch}`);
  if (!(momentum >= 0 && momentum < 1)) throw new Error(`smithLeNoiseScale: momentum must be in [0, 1), got ${momentum}`);
  const eff = lr / (1 - momentum);
  return { noiseScale: eff * (n / batch - 1), approx: (eff * n) / batch };
}
