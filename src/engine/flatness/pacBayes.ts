/**
 * PAC-Bayesian flatness (Jiang, Neyshabur, Mobahi, Krishnan & Bengio 2020, "Fantastic
 * Generalization Measures and Where to Find Them", ICLR; the `pacbayes.flatness` and
 * `pacbayes.mag.flatness` measures of their appendix): the largest noise level sigma' whose
 * Gaussian perturbation raises the training error by at most a target, reported as
 *
 *   flatness = 1 / sigma'^2.
 *
 * Noise: magnitude-aware (default) u_i ~ N(0, sigma'^2 w_i^2 + eps^2) with eps = 1e-3 over every
 * parameter; plain (`magnitudeAware: false`) u_i ~ N(0, sigma'^2).
 *
 * Criterion: `'error'` (default; classification) compares training errors 1 - accuracy, target 0.1
 * (an absolute rise of the error rate). `'loss'` (regression, e.g. meanSquaredError, where
 * accuracy means nothing) compares the loss, with target 0.1 * (1 + L(w)): the same
 * scale-normalisation as Keskar et al.'s epsilon-sharpness, absolute 0.1 near a zero-loss
 * minimum and 10% of the loss when it is large. `target` overrides either default.
 *
 * Search: for each sigma the rise is the mean over M draws (default 10) of crit(w + u_j) -
 * crit(w) (signed: a perturbation that lowers the error counts as a negative rise). sigma' is found
 * by bisection on log sigma in [1e-5, 10] (12 iterations by default: a factor 10^(6/4096), about
 * 0.34%, of resolution): a midpoint whose mean rise is <= target becomes the lower end, otherwise
 * the upper end; sigma' is the final lower end (the largest sigma known to meet the target). The
 * draws are common random numbers: draw j is z_j ~ N(0, I) from a seed fixed for the whole search
 * and u_j = s(sigma) * z_j, so the estimated rise is a deterministic function of sigma and the
 * bisection is well defined. `bound` says when the answer is censored: `'upper'` when every
 * tested sigma met the target (the true sigma' is at least the one reported), `'lower'` when none
 * did (the rise exceeds the target even at the lower bound, which is then reported).
 *
 * Reported with sigma': the mean rise at sigma' and its standard error over the M draws
 * (sample std / sqrt(M)). Cost: M evaluations per iteration (accuracy for `'error'`, loss for
 * `'loss'`), plus M more when no midpoint met the target, plus the base.
 *
 * Example:
 * ```ts
 * const r = await pacBayesFlatness(ev, { criterion: 'loss', draws: 10, seed: 1 });
 * console.log(r.sigma, r.flatness, r.increase, r.increaseStderr);
 * ```
 */
import type { Evaluator } from '../evaluator';
import type { IterOptions } from '../linalg/operator';
import { meanAndStderr } from '../linalg/hutchinson';
import { Rng } from '../rng';
import { checkInteger, checkPositive, CountingEvaluator, type EvaluationCounts } from './common';

export type PacBayesCriterion = 'error' | 'loss';

export interface PacBayesOptions extends IterOptions {
  /** What must not rise by more than the target (default 'error'; use 'loss' for regression). */
  criterion?: PacBayesCriterion;
  /** Allowed mean rise (default 0.1 for 'error', 0.1 * (1 + L(w)) for 'loss'). */
  target?: number;
  /** u_i ~ N(0, sigma^2 w_i^2 + eps^2) when true (default), N(0, sigma^2) when false. */
  magnitudeAware?: boolean;
  /** The eps of the magnitude-aware noise (default 1e-3). */
  epsilon?: number;
  /** Monte Carlo draws M per noise level (default 10). */
  draws?: number;
  /** Bisection iterations (default 12). */
  iterations?: number;
  /** Search interval for sigma (default 1e-5 and 10). */
  sigmaMin?: number;
  sigmaMax?: number;
  /** Seed of the noise draws (default 0). */
  seed?: number;
}

export interface PacBayesResult {
  method: 'pacBayes';
  criterion: PacBayesCriterion;
  magnitudeAware: boolean;
  /** eps of the magnitude-aware noise (0 in the plain variant). */
  epsilon: number;
  target: number;
  /** sigma'. */
  sigma: number;
  /** 1 / sigma'^2. */
  flatness: number;
  /** Mean rise of the criterion over the draws at sigma'. */
  increase: number;
  /** Its standard error (sample std / sqrt(M)). */
  increaseStderr: number;
  /** L(w). */
  baseLoss: number;
  /** 1 - accuracy at w (criterion 'error' only). */
  baseError?: number;
  draws: number;
  iterations: number;
  sigmaMin: number;
  sigmaMax: number;
  /** 'upper': every tested sigma met the target; 'lower': none did; 'none': bracketed. */
  bound: 'none' | 'upper' | 'lower';
  seed: number;
  evaluations: EvaluationCounts;
}

export async function pacBayesFlatness(ev: Evaluator, opts: PacBayesOptions = {}): Promise<PacBayesResult> {
  const criterion = opts.criterion ?? 'error';
  const magnitudeAware = opts.magnitudeAware ?? true;
  const epsilon = magnitudeAware ? (opts.epsilon ?? 1e-3) : 0;
  const draws = opts.draws ?? 10;
  const iterations = opts.iterations ?? 12;
  const sigmaMin = opts.sigmaMin ?? 1e-5;
  const sigmaMax = opts.sigmaMax ?? 10;
  const seed = opts.seed ?? 0;
  checkInteger('draws', draws, 1);
  checkInteger('iterations', iterations, 0);
  checkPositive('epsilon', epsilon, true);
  checkPositive('sigmaMin', sigmaMin);
  checkPositive('sigmaMax', sigmaMax);
  if (!(sigmaMin < sigmaMax)) throw new Error(`sigmaMin (${sigmaMin}) must be below sigmaMax (${sigmaMax})`);

  const c = new CountingEvaluator(ev, opts.signal);
  const w = ev.parameters();
  const n = w.length;
  const baseLoss = await c.loss(w);
  const baseError = criterion === 'error' ? 1 - (await c.accuracy(w)) : undefined;
  const base = baseError ?? baseLoss;
  const target = opts.target ?? (criterion === 'error' ? 0.1 : 0.1 * (1 + baseLoss));
  checkPositive('target', target, true);

  const root = new Rng(seed);
  const drawSeeds = Array.from({ length: draws }, () => root.nextU32());
  let total = iterations * draws;
  let done = 0;
  const rises = async (sigma: number): Promise<number[]> => {
    const out: number[] = [];
    for (let j = 0; j < draws; j++) {
      const z = new Rng(drawSeeds[j]).normalVector(n);
      const theta = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        const s = magnitudeAware ? Math.sqrt(sigma * sigma * w[i] * w[i] + epsilon * epsilon) : sigma;
        theta[i] = w[i] + s * z[i];
      }
      const value = criterion === 'error' ? 1 - (await c.accuracy(theta)) : await c.loss(theta);
      out.push(value - base);
      opts.onProgress?.(++done, total);
    }
    return out;
  };

  let lo = Math.log(sigmaMin);
  let hi = Math.log(sigmaMax);
  let atLo: number[] | undefined;
  let missed = false;
  for (let it = 0; it < iterations; it++) {
    const mid = (lo + hi) / 2;
    const r = await rises(Math.exp(mid));
    if (meanAndStderr(r).mean <= target) {
      lo = mid;
      atLo = r;
    } else {
      hi = mid;
      missed = true;
    }
  }
  const sigma = Math.exp(lo);
  if (!atLo) {
    total += draws;
    atLo = await rises(sigma);
  }
  const { mean, stderr } = meanAndStderr(atLo);
  const bound = mean > target ? 'lower' : missed ? 'none' : 'upper';
  return {
    method: 'pacBayes',
    criterion,
    magnitudeAware,
    epsilon,
    target,
    sigma,
    flatness: 1 / (sigma * sigma),
    increase: mean,
    increaseStderr: stderr,
    baseLoss,
    baseError,
    draws,
    iterations,
    sigmaMin,
    sigmaMax,
    bound,
    seed,
    evaluations: c.snapshot(),
  };
}
