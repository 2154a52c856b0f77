/**
 * Test fixtures for the linear-algebra core: dense symmetric matrices with exactly known spectra
 * and a dense matrix as a `LinearOperator`, the references the curvature algorithms are checked
 * against. Not part of Basin: only the tests use them.
 *
 * - `randomOrthogonal`: a Haar-distributed orthogonal matrix as a product of Householder
 *   reflections of Gaussian vectors with the sign correction (Stewart 1980, "The efficient
 *   generation of random orthogonal matrices", SIAM J. Numer. Anal. 17).
 * - `matrixWithSpectrum`: Q diag(eigs) Q^T with Q from `randomOrthogonal`.
 *
 * Matrices are row-major `Float64Array`s: entry (i, j) of an n x n matrix is `a[i * n + j]`.
 *
 * Example:
 * ```ts
 * const op = new DenseOperator(matrixWithSpectrum([100, 90, 80, 1, 0.5], new Rng(1)), 5);
 * const res = await lanczos(op, { k: 2, which: 'top' }); // res.eigenvalues ~ [100, 90]
 * ```
 */
import { dot, type LinearOperator } from '../../src/engine/linalg/operator';
import type { Rng } from '../../src/engine/rng';

/** A dense symmetric matrix as an operator (row-major n x n). */
export class DenseOperator implements LinearOperator {
  readonly dim: number;
  matvecs = 0;
  constructor(readonly a: Float64Array, n: number) {
    if (a.length !== n * n) throw new Error(`DenseOperator: expected ${n * n} entries, got ${a.length}`);
    this.dim = n;
  }
  async matvec(v: Float64Array): Promise<Float64Array> {
    const n = this.dim;
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let s = 0;
      const row = i * n;
      for (let j = 0; j < n; j++) s += this.a[row + j] * v[j];
      y[i] = s;
    }
    this.matvecs++;
    return y;
  }
}

/**
 * A Haar-distributed random orthogonal n x n matrix (row-major), as D H_0 H_1 ... H_{n-2} with
 * Householder reflections H_k of Gaussian vectors of length n - k and sign corrections D (Stewart
 * 1980). Cost about (4/3) n^3 flops.
 */
export function randomOrthogonal(n: number, rng: Rng): Float64Array {
  if (!Number.isInteger(n) || n < 0) throw new Error(`randomOrthogonal: bad size ${n}`);
  const m = new Float64Array(n * n);
  if (n === 0) return m;
  // Reflectors and signs, drawn first so the sequence of random numbers is fixed per seed.
  const vs: Float64Array[] = [];
  const signs = new Float64Array(n);
  for (let k = 0; k < n - 1; k++) {
    const x = rng.normalVector(n - k);
    const nx = Math.sqrt(dot(x, x));
    const s = x[0] >= 0 ? 1 : -1;
    x[0] += s * nx; // v = x + sign(x0)|x| e1; H x = -sign(x0)|x| e1, so R_kk has sign -sign(x0)
    signs[k] = -s;
    vs.push(x);
  }
  signs[n - 1] = rng.normal() >= 0 ? 1 : -1;
  // Q = H_0 ... H_{n-2} D: start from D and apply reflectors from the last to the first. Before
  // H_k is applied, the accumulated matrix differs from diagonal only in its trailing block from
  // row/column k + 1, so H_k (acting on rows k..n-1) touches columns k..n-1 only.
  for (let i = 0; i < n; i++) m[i * n + i] = signs[i];
  const w = new Float64Array(n);
  for (let k = n - 2; k >= 0; k--) {
    const v = vs[k];
    const vv = dot(v, v);
    if (vv === 0) continue;
    const tau = 2 / vv;
    w.fill(0, k, n);
    for (let i = k; i < n; i++) {
      const vi = v[i - k];
      if (vi === 0) continue;
      const row = i * n;
      for (let j = k; j < n; j++) w[j] += vi * m[row + j];
    }
    for (let i = k; i < n; i++) {
      const c = tau * v[i - k];
      if (c === 0) continue;
      const row = i * n;
      for (let j = k; j < n; j++) m[row + j] -= c * w[j];
    }
  }
  return m;
}

/** Q diag(eigs) Q^T for an orthogonal n x n row-major Q (n = eigs.length); exactly symmetric. */
export function composeSpectrum(q: Float64Array, eigs: ArrayLike<number>): Float64Array {
  const n = eigs.length;
  if (q.length !== n * n) throw new Error(`composeSpectrum: expected ${n * n} entries in q, got ${q.length}`);
  const b = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < n; k++) b[i * n + k] = q[i * n + k] * eigs[k];
  }
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const bi = i * n;
    for (let j = 0; j <= i; j++) {
      const qj = j * n;
      let s = 0;
      for (let k = 0; k < n; k++) s += b[bi + k] * q[qj + k];
      a[i * n + j] = s;
      a[j * n + i] = s;
    }
  }
  return a;
}

/**
 * A dense symmetric matrix (row-major, n = eigs.length) with exactly the spectrum `eigs`:
 * Q diag(eigs) Q^T with Q = randomOrthogonal(n, rng). Eigenvector k is column k of that Q; pass
 * your own Q to `composeSpectrum` when the test needs the eigenvectors too.
 */
export function matrixWithSpectrum(eigs: readonly number[], rng: Rng): Float64Array {
  return composeSpectrum(randomOrthogonal(eigs.length, rng), eigs);
}
