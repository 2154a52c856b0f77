/**
 * The linear-operator interface every curvature algorithm is written against
 * (after scipy's `LinearOperator` and curvlinops' `_LinearOperator`).
 *
 * An operator is a symmetric real matrix known only through products with vectors. The Hessian of
 * a model's loss is one (`hvp/`); so is a dense test matrix (`DenseOperator` in
 * test/helpers/linalg.ts), which is how the algorithms are tested against exact spectra. Products are async so a model-backed operator can
 * yield to the event loop (progress, cancellation) between products.
 */
export interface LinearOperator {
  /** Dimension n of the n x n operator. */
  readonly dim: number;
  /** y = A v. Must not modify v. The result is owned by the caller. */
  matvec(v: Float64Array): Promise<Float64Array>;
  /**
   * An estimate of the absolute error of one product relative to |A| |v| (float32 rounding,
   * finite-difference truncation). 0 for exact operators. Algorithms use it as a noise floor so
   * they neither chase accuracy a product cannot deliver nor claim it.
   */
  readonly relativeNoise?: number;
}

/** Options shared by the iterative algorithms. */
export interface IterOptions {
  /** Checked between products; when aborted, the algorithm throws `CancelledError`. */
  signal?: AbortSignal;
  /** Called after each product with the number of products so far and the planned total. */
  onProgress?: (done: number, total: number, note?: string) => void;
}

export class CancelledError extends Error {
  constructor() {
    super('cancelled');
    this.name = 'CancelledError';
  }
}

export function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new CancelledError();
}

export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

export function norm(a: ArrayLike<number>): number {
  return Math.sqrt(dot(a, a));
}

/** y += alpha * x, in place. */
export function axpy(alpha: number, x: ArrayLike<number>, y: Float64Array): void {
  for (let i = 0; i < y.length; i++) y[i] += alpha * x[i];
}

export function scale(alpha: number, x: Float64Array): Float64Array {
  for (let i = 0; i < x.length; i++) x[i] *= alpha;
  return x;
}
