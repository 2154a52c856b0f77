/**
 * What a training probe is asked (`ProbeAt`) and what it may spend (`PROBE_BUDGETS`, seeds). The
 * prober itself (`makeProber`) lives with the training loop in run.ts.
 */
import type { Optimizer } from './optimizers';

/** The point of a run at which to probe the landscape. */
export interface ProbeAt {
  /** The parameters (float64, as the optimizer holds them). */
  theta: Float64Array;
  step: number;
  epoch: number;
  /** The learning rate at this step (the schedule's), for the stability threshold and the IGR term. */
  lr: number;
  /** The run's optimizer: its stability threshold (2/eta, or its momentum version) is recorded. */
  optimizer: Optimizer;
  /** The loss of the last step taken; recorded as the minibatch loss when training on minibatches. */
  stepLoss?: number;
  /** The run's last probe, which always includes per-layer sharpness. */
  final?: boolean;
}

/**
 * Products a probe may spend. A probe runs every few steps, so it buys a good estimate, not a
 * converged one; the tolerances are relative, on the Lanczos stopping bound (Kato-Temple).
 */
export const PROBE_BUDGETS = {
  /** lambda_max of the Hessian (and of another curvature when asked): warm-started Lanczos. */
  top: { maxIter: 40, tol: 1e-4 },
  /** Per-layer sharpness, one block of the Hessian per layer: cheaper and looser than the whole. */
  layer: { maxIter: 20, tol: 1e-3 },
  /** Hessian-vector products for the Hutch++ trace (Meyer et al. 2021). */
  traceMatvecs: 30,
  /** Minibatch gradients drawn for the gradient noise scale and for SGD's implicit term. */
  noiseDraws: 8,
} as const;

/**
 * Offsets added to the run's seed, so that each random stream of a run is its own and repeats
 * with the seed: the random vectors of the automatic choice between exact and finite-difference
 * products (the same offset as the analysis commands use, `HVP_CHECK_SEED_OFFSET`), and the
 * probes' own draws (Lanczos start directions, Hutch++ and minibatch samples). Both are primes,
 * far from the small seeds people choose, so no two streams of nearby seeds coincide.
 */
export const PROBE_SEED_OFFSET = 104729;
