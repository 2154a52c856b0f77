/**
 * Dense symmetric linear algebra in float64, for small matrices (n up to a few hundred): the
 * projected matrices inside the curvature algorithms and the exact references in their tests.
 *
 * - `symmetricEigen`: Householder tridiagonalisation (`tred2`) followed by implicit QL (`tql2`),
 *   after EISPACK (Martin, Reinsch & Wilkinson 1968, "Householder's tridiagonalization of a
 *   symmetric matrix", Numer. Math. 11; Bowdler et al. 1968 for QL) as transcribed in JAMA.
 *   A = V diag(lambda) V^T with V orthogonal. Cost about 9 n^3 flops (n = 500: about a second).
 * - `orthonormalize`: modified Gram-Schmidt applied twice ("twice is enough", Giraud, Langou &
 *   Rozloznik 2005), dropping numerically dependent columns; used by Hutch++ for Q = orth(A S).
 *
 * The tests' matrices with exactly known spectra (`matrixWithSpectrum`) are in test/helpers/linalg.ts.
 *
 * Matrices are row-major `Float64Array`s: entry (i, j) of an n x n matrix is `a[i * n + j]`.
 *
 * Example:
 * ```ts
 * const a = Float64Array.from([2, 1, 0, 1, 2, 0, 0, 0, -2]);
 * const { values, vectors } = symmetricEigen(a, 3); // values ~ [3, 1, -2]; eigenvector i = column i
 * ```
 */
import { dot } from './operator';
import { descendingOrder, tql2 } from './tridiagonal';
import { InternalError } from '../errors';

/**
 * Householder reduction of a symmetric matrix to tridiagonal form: A = Q T Q^T with
 * T = tridiag(beta, alpha, beta). `q` is n x n row-major and orthogonal. `a` is symmetrised as
 * (A + A^T)/2 and not modified.
 */
export function tridiagonalize(
  a: Float64Array,
  n: number,
): { alpha: Float64Array; beta: Float64Array; q: Float64Array } {
  const { d, e, v } = tred2(a, n);
  return { alpha: d, beta: e.slice(1), q: v };
}

/** EISPACK tred2 (JAMA transcription). Returns d, e (e[i] couples i - 1 and i, e[0] = 0) and V. */
function tred2(a: Float64Array, n: number): { d: Float64Array; e: Float64Array; v: Float64Array } {
  if (a.length !== n * n) throw new InternalError(`tridiagonalize: expected ${n * n} entries, got ${a.length}`);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      const x = 0.5 * (a[i * n + j] + a[j * n + i]);
      if (!Number.isFinite(x)) throw new InternalError('symmetricEigen: the matrix has a non-finite entry');
      v[i * n + j] = x;
    }
  }
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  if (n === 0) return { d, e, v };
  for (let j = 0; j < n; j++) d[j] = v[(n - 1) * n + j];

  for (let i = n - 1; i > 0; i--) {
    // Scale to avoid under/overflow.
    let scale = 0;
    let h = 0;
    for (let k = 0; k < i; k++) scale += Math.abs(d[k]);
    if (scale === 0) {
      e[i] = d[i - 1];
      for (let j = 0; j < i; j++) {
        d[j] = v[(i - 1) * n + j];
        v[i * n + j] = 0;
        v[j * n + i] = 0;
      }
    } else {
      // Generate the Householder vector.
      for (let k = 0; k < i; k++) {
        d[k] /= scale;
        h += d[k] * d[k];
      }
      let f = d[i - 1];
      let g = Math.sqrt(h);
      if (f > 0) g = -g;
      e[i] = scale * g;
      h = h - f * g;
      d[i - 1] = f - g;
      for (let j = 0; j < i; j++) e[j] = 0;
      // Apply the similarity transformation to the remaining columns.
      for (let j = 0; j < i; j++) {
        f = d[j];
        v[j * n + i] = f;
        g = e[j] + v[j * n + j] * f;
        for (let k = j + 1; k <= i - 1; k++) {
          g += v[k * n + j] * d[k];
          e[k] += v[k * n + j] * f;
        }
        e[j] = g;
      }
      f = 0;
      for (let j = 0; j < i; j++) {
        e[j] /= h;
        f += e[j] * d[j];
      }
      const hh = f / (h + h);
      for (let j = 0; j < i; j++) e[j] -= hh * d[j];
      for (let j = 0; j < i; j++) {
        f = d[j];
        g = e[j];
        for (let k = j; k <= i - 1; k++) v[k * n + j] -= f * e[k] + g * d[k];
        d[j] = v[(i - 1) * n + j];
        v[i * n + j] = 0;
      }
    }
    d[i] = h;
  }

  // Accumulate the transformations.
  for (let i = 0; i < n - 1; i++) {
    v[(n - 1) * n + i] = v[i * n + i];
    v[i * n + i] = 1;
    const h = d[i + 1];
    if (h !== 0) {
      for (let k = 0; k <= i; k++) d[k] = v[k * n + i + 1] / h;
      for (let j = 0; j <= i; j++) {
        let g = 0;
        for (let k = 0; k <= i; k++) g += v[k * n + i + 1] * v[k * n + j];
        for (let k = 0; k <= i; k++) v[k * n + j] -= g * d[k];
      }
    }
    for (let k = 0; k <= i; k++) v[k * n + i + 1] = 0;
  }
  for (let j = 0; j < n; j++) {
    d[j] = v[(n - 1) * n + j];
    v[(n - 1) * n + j] = 0;
  }
  v[(n - 1) * n + n - 1] = 1;
  e[0] = 0;
  return { d, e, v };
}

/**
 * All eigenpairs of a dense symmetric matrix (row-major n x n; symmetrised as (A + A^T)/2).
 * `values` are descending; `vectors` is n x n row-major with the unit eigenvector for `values[i]`
 * in column i (`vectors[r * n + i]`), so A = V diag(values) V^T.
 */
export function symmetricEigen(a: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  const { d, e, v } = tred2(a, n);
  // tred2 stores e[i] as the coupling of i - 1 and i; tql2 wants e[i] coupling i and i + 1.
  for (let i = 1; i < n; i++) e[i - 1] = e[i];
  if (n > 0) e[n - 1] = 0;
  tql2(d, e, v, n);
  const order = descendingOrder(d);
  const values = Float64Array.from(order, (i) => d[i]);
  const vectors = new Float64Array(n * n);
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < n; c++) vectors[r * n + c] = v[r * n + order[c]];
  }
  return { values, vectors };
}

export interface OrthonormalizeOptions {
  /** Orthonormal vectors the result must also be orthogonal to (not included in the result). */
  against?: readonly Float64Array[];
  /**
   * A column is dropped as numerically dependent when what is left of it after both passes is at
   * most `dropTol` times its original norm (default 1e-10). Zero columns are always dropped.
   */
  dropTol?: number;
}

/**
 * Orthonormal basis of span(cols) (minus span(against)) by modified Gram-Schmidt, twice. The
 * inputs are not modified. Returns the surviving columns in input order; the result's length is
 * the numerical rank.
 */
export function orthonormalize(cols: readonly Float64Array[], opts: OrthonormalizeOptions = {}): Float64Array[] {
  const dropTol = opts.dropTol ?? 1e-10;
  const against = opts.against ?? [];
  const out: Float64Array[] = [];
  for (const col of cols) {
    const w = Float64Array.from(col);
    const original = Math.sqrt(dot(w, w));
    if (!(original > 0) || !Number.isFinite(original)) continue;
    for (let pass = 0; pass < 2; pass++) {
      for (const q of against) subtractProjection(q, w);
      for (const q of out) subtractProjection(q, w);
    }
    const left = Math.sqrt(dot(w, w));
    if (left <= dropTol * original) continue;
    for (let i = 0; i < w.length; i++) w[i] /= left;
    out.push(w);
  }
  return out;
}

/** w -= (q . w) q for a unit q. */
function subtractProjection(q: Float64Array, w: Float64Array): void {
  const c = dot(q, w);
  for (let i = 0; i < w.length; i++) w[i] -= c * q[i];
}
