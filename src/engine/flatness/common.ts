/**
 * Shared plumbing for the flatness measures: evaluation counting with cancellation checks between
 * evaluations, the perturbed parameter vector w + d, and lgamma / the unit-ball log-volume.
 */
import type { Evaluator } from '../evaluator';
import { throwIfAborted } from '../linalg/operator';

/** Evaluations a measure used. A gradient evaluation also yields the loss and is counted once, as a gradient. */
export interface EvaluationCounts {
  loss: number;
  gradient: number;
  accuracy: number;
}

/** Wraps an evaluator: counts evaluations and checks the abort signal before each one. */
export class CountingEvaluator {
  readonly counts: EvaluationCounts = { loss: 0, gradient: 0, accuracy: 0 };
  constructor(
    readonly ev: Evaluator,
    private readonly signal?: AbortSignal,
  ) {}

  async loss(theta?: ArrayLike<number>): Promise<number> {
    throwIfAborted(this.signal);
    this.counts.loss++;
    return this.ev.loss(theta);
  }

  async gradient(theta?: ArrayLike<number>): Promise<{ loss: number; grad: Float64Array }> {
    throwIfAborted(this.signal);
    this.counts.gradient++;
    return this.ev.gradient(theta);
  }

  async accuracy(theta?: ArrayLike<number>): Promise<number> {
    throwIfAborted(this.signal);
    this.counts.accuracy++;
    return this.ev.accuracy(theta);
  }

  snapshot(): EvaluationCounts {
    return { ...this.counts };
  }
}

/** w + t d as a new float64 vector (the evaluator rounds it to float32). */
export function shifted(w: ArrayLike<number>, d: ArrayLike<number>, t = 1): Float64Array {
  const out = new Float64Array(w.length);
  for (let i = 0; i < w.length; i++) out[i] = w[i] + t * d[i];
  return out;
}

/** Throws unless x is a finite number > 0 (or >= 0 with `allowZero`). */
export function checkPositive(name: string, x: number, allowZero = false): void {
  if (!Number.isFinite(x) || x < 0 || (!allowZero && x === 0)) {
    throw new Error(`${name} must be a finite number ${allowZero ? '>= 0' : '> 0'}, got ${x}`);
  }
}

/** Throws unless n is an integer >= min. */
export function checkInteger(name: string, n: number, min: number): void {
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer >= ${min}, got ${n}`);
}

const LANCZOS_G = 7;
const LANCZOS_C = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
  12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];

/**
 * log Gamma(x) for x > 0 by the Lanczos approximation (g = 7, 9 terms; relative error ~1e-15),
 * with the reflection formula below 0.5.
 */
export function lgamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - lgamma(1 - x);
  const z = x - 1;
  let a = LANCZOS_C[0];
  const t = z + LANCZOS_G + 0.5;
  for (let i = 1; i < LANCZOS_C.length; i++) a += LANCZOS_C[i] / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

/** log of the volume of the unit ball in R^n: (n/2) log pi - lgamma(n/2 + 1). */
export function logUnitBallVolume(n: number): number {
  return (n / 2) * Math.log(Math.PI) - lgamma(n / 2 + 1);
}
