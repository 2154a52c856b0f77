/**
 * Eigenvalues and eigenvectors of a real symmetric tridiagonal matrix by the implicit QL algorithm
 * with Wilkinson-type shifts: `tql2` of EISPACK (Bowdler, Martin, Reinsch & Wilkinson 1968, "The QR
 * and QL algorithms for symmetric matrices", Numer. Math. 11; Handbook for Automatic Computation
 * II/3), as transcribed in JAMA. Everything is float64.
 *
 *   T = tridiag(beta, alpha, beta) = S diag(theta) S^T,   S orthogonal,
 *
 * where `alpha[i] = T[i][i]` (length m) and `beta[i] = T[i][i+1] = T[i+1][i]` (length m - 1).
 * Each QL sweep applies plane rotations T <- R^T T R; accumulating them into chosen rows of the
 * identity yields those rows of S. Lanczos needs only the last row of S (Ritz residuals
 * |beta_m s_{m,i}|) and stochastic Lanczos quadrature only the first (weights s_{1,i}^2), so the
 * row-selective form costs O(m^2) instead of O(m^3).
 *
 * Example:
 * ```ts
 * const { values, vectors } = tridiagonalEigen([2, 2, 2], [-1, -1]);
 * // values = [2 + sqrt(2), 2, 2 - sqrt(2)] (descending); eigenvector i is column i of `vectors`.
 * ```
 */
import { InternalError } from '../errors';

const EPS = Number.EPSILON;

/**
 * In-place implicit QL on the symmetric tridiagonal (d, e): d (length n) the diagonal, e (length n)
 * the off-diagonal with `e[i]` coupling i and i + 1 (`e[n - 1]` is ignored and set to 0). On return
 * d holds the eigenvalues (unsorted) and e is destroyed. The rotations are applied to the columns
 * of z, a `rows x n` row-major matrix (pass rows = 0 and an empty array for eigenvalues only): start
 * z as rows of the identity (or as the transform that produced the tridiagonal) and column i of the
 * result is the corresponding part of eigenvector i.
 *
 * Throws if an eigenvalue fails to converge in 60 sweeps (never seen on finite input).
 */
export function tql2(d: Float64Array, e: Float64Array, z: Float64Array, rows: number): void {
  const n = d.length;
  if (e.length !== n) throw new InternalError(`tql2: e has length ${e.length}, expected ${n}`);
  if (z.length !== rows * n) throw new InternalError(`tql2: z has length ${z.length}, expected ${rows * n}`);
  if (n === 0) return;
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(d[i]) || (i < n - 1 && !Number.isFinite(e[i]))) {
      throw new InternalError('tql2: the matrix has a non-finite entry');
    }
  }
  e[n - 1] = 0;
  let f = 0;
  let tst1 = 0;
  for (let l = 0; l < n; l++) {
    // Find a small subdiagonal element.
    tst1 = Math.max(tst1, Math.abs(d[l]) + Math.abs(e[l]));
    let m = l;
    while (m < n - 1) {
      if (Math.abs(e[m]) <= EPS * tst1) break;
      m++;
    }
    // If m == l, d[l] is already an eigenvalue; otherwise iterate.
    if (m > l) {
      let iter = 0;
      do {
        if (++iter > 60) throw new InternalError('tql2: no convergence after 60 sweeps');
        // Compute the implicit shift.
        let g = d[l];
        let p = (d[l + 1] - g) / (2 * e[l]);
        let r = Math.hypot(p, 1);
        if (p < 0) r = -r;
        d[l] = e[l] / (p + r);
        d[l + 1] = e[l] * (p + r);
        const dl1 = d[l + 1];
        let h = g - d[l];
        for (let i = l + 2; i < n; i++) d[i] -= h;
        f += h;
        // Implicit QL transformation.
        p = d[m];
        let c = 1;
        let c2 = c;
        let c3 = c;
        const el1 = e[l + 1];
        let s = 0;
        let s2 = 0;
        for (let i = m - 1; i >= l; i--) {
          c3 = c2;
          c2 = c;
          s2 = s;
          g = c * e[i];
          h = c * p;
          r = Math.hypot(p, e[i]);
          e[i + 1] = s * r;
          s = e[i] / r;
          c = p / r;
          p = c * d[i] - s * g;
          d[i + 1] = h + s * (c * g + s * d[i]);
          // Accumulate the rotation into columns i and i + 1 of z.
          for (let k = 0; k < rows; k++) {
            const o = k * n;
            const zi = z[o + i];
            const zi1 = z[o + i + 1];
            z[o + i + 1] = s * zi + c * zi1;
            z[o + i] = c * zi - s * zi1;
          }
        }
        p = (-s * s2 * c3 * el1 * e[l]) / dl1;
        e[l] = s * p;
        d[l] = c * p;
      } while (Math.abs(e[l]) > EPS * tst1);
    }
    d[l] = d[l] + f;
    e[l] = 0;
  }
}

/** Indices that sort `values` descending (stable). */
export function descendingOrder(values: ArrayLike<number>): number[] {
  const idx = Array.from({ length: values.length }, (_, i) => i);
  idx.sort((a, b) => values[b] - values[a] || a - b);
  return idx;
}

function checkShapes(alpha: ArrayLike<number>, beta: ArrayLike<number>): number {
  const m = alpha.length;
  if (m > 0 && beta.length < m - 1) {
    throw new InternalError(`tridiagonal: beta has length ${beta.length}, expected ${m - 1}`);
  }
  return m;
}

function prepare(alpha: ArrayLike<number>, beta: ArrayLike<number>): { d: Float64Array; e: Float64Array } {
  const m = checkShapes(alpha, beta);
  const d = Float64Array.from(alpha);
  const e = new Float64Array(m);
  for (let i = 0; i < m - 1; i++) e[i] = beta[i];
  return { d, e };
}

/** Eigenvalues of tridiag(beta, alpha, beta), descending. O(m^2). */
export function tridiagonalEigenvalues(alpha: ArrayLike<number>, beta: ArrayLike<number>): Float64Array {
  const { d, e } = prepare(alpha, beta);
  tql2(d, e, new Float64Array(0), 0);
  return Float64Array.from(descendingOrder(d), (i) => d[i]);
}

/**
 * Eigenvalues (descending) and the full orthonormal eigenvector matrix of tridiag(beta, alpha, beta).
 * `vectors` is m x m row-major with eigenvector i in column i: `vectors[r * m + i]` is component r
 * of the eigenvector for `values[i]`. O(m^3).
 */
export function tridiagonalEigen(
  alpha: ArrayLike<number>,
  beta: ArrayLike<number>,
): { values: Float64Array; vectors: Float64Array } {
  const { d, e } = prepare(alpha, beta);
  const m = d.length;
  const z = new Float64Array(m * m);
  for (let i = 0; i < m; i++) z[i * m + i] = 1;
  tql2(d, e, z, m);
  const order = descendingOrder(d);
  const values = Float64Array.from(order, (i) => d[i]);
  const vectors = new Float64Array(m * m);
  for (let r = 0; r < m; r++) {
    for (let c = 0; c < m; c++) vectors[r * m + c] = z[r * m + order[c]];
  }
  return { values, vectors };
}

/**
 * Eigenvalues (descending) and selected rows of the eigenvector matrix S of tridiag(beta, alpha,
 * beta): `rows[j][i]` is component `rowIndices[j]` of the eigenvector for `values[i]`. O(m^2 (1 +
 * rowIndices.length)). Lanczos asks for the last row, SLQ for the first.
 */
export function tridiagonalEigenRows(
  alpha: ArrayLike<number>,
  beta: ArrayLike<number>,
  rowIndices: readonly number[],
): { values: Float64Array; rows: Float64Array[] } {
  const { d, e } = prepare(alpha, beta);
  const m = d.length;
  const r = rowIndices.length;
  const z = new Float64Array(r * m);
  rowIndices.forEach((ri, j) => {
    if (!Number.isInteger(ri) || ri < 0 || ri >= m) throw new InternalError(`tridiagonalEigenRows: bad row index ${ri}`);
    z[j * m + ri] = 1;
  });
  tql2(d, e, z, r);
  const order = descendingOrder(d);
  const values = Float64Array.from(order, (i) => d[i]);
  const rows = rowIndices.map((_, j) => Float64Array.from(order, (i) => z[j * m + i]));
  return { values, rows };
}
