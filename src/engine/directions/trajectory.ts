/**
 * The plane of a training trajectory (Li, Xu, Taylor, Studer, Goldstein 2018, "Visualizing the Loss
 * Landscape of Neural Nets", sec. 7): PCA of the checkpoints theta_1 .. theta_T, with the path
 * projected onto the two top principal directions.
 *
 * As in the reference code (loss-landscape `plot_trajectory.py` / `setup_PCA_directions`), the
 * rows are centred on the FINAL point, not on their mean: M has rows m_i = theta_i - theta_T for
 * i < T (row T would be zero), the origin of the plane is theta_T, and the "variance" is the
 * uncentred second moment sum_i |m_i|^2 = sum_k sigma_k^2 over M's singular values.
 *
 * n (the parameter count) may be 1e6 and T is small, so nothing n x n is formed: with the
 * (T-1) x (T-1) Gram matrix G = M M^T = U diag(sigma^2) U^T (`symmetricEigen`), the principal
 * directions are v_k = M^T u_k / sigma_k, unit vectors, and explained_k = sigma_k^2 / trace(G).
 * G is accumulated in float64 from the checkpoints one row at a time (O(T^2 n) time, O(n) extra).
 *
 * Signs (PCA leaves them free) are fixed so that the first checkpoint has x <= 0 (the path runs
 * from the left towards the origin) and the checkpoint farthest from the x axis has y > 0.
 */
import { InputError } from '../errors';
import { symmetricEigen } from '../linalg/dense';

export interface TrajectoryPlane {
  /** The final checkpoint theta_T: (0, 0) of the plane. */
  origin: Float64Array;
  /** Unit first principal direction. */
  dx: Float64Array;
  /** Unit second principal direction, orthogonal to dx. */
  dy: Float64Array;
  /** Fraction of sum_i |theta_i - theta_T|^2 captured by dx and by dy. */
  explained: [number, number];
  /** Every checkpoint (the last one included, at (0, 0)) projected: (theta_i - origin) . dx, . dy. */
  coords: { x: number; y: number }[];
}

/** PCA plane of a trajectory; `checkpoints` are in training order, all of one length. */
export function trajectoryPlane(checkpoints: readonly ArrayLike<number>[]): TrajectoryPlane {
  const T = checkpoints.length;
  if (T < 3) throw new InputError(`a trajectory plane needs at least 3 checkpoints (got ${T})`);
  const n = checkpoints[T - 1].length;
  checkpoints.forEach((c, i) => {
    if (c.length !== n) throw new InputError(`checkpoint ${i + 1} has ${c.length} parameters but the last one has ${n}`);
  });
  const origin = Float64Array.from(checkpoints[T - 1]);
  const m = T - 1;
  const row = (i: number, out: Float64Array): Float64Array => {
    const c = checkpoints[i];
    for (let k = 0; k < n; k++) out[k] = c[k] - origin[k];
    return out;
  };

  // Gram matrix G_ij = m_i . m_j.
  const gram = new Float64Array(m * m);
  const ri = new Float64Array(n);
  const rj = new Float64Array(n);
  for (let i = 0; i < m; i++) {
    row(i, ri);
    for (let j = 0; j <= i; j++) {
      const b = j === i ? ri : row(j, rj);
      let s = 0;
      for (let k = 0; k < n; k++) s += ri[k] * b[k];
      gram[i * m + j] = s;
      gram[j * m + i] = s;
    }
  }
  let trace = 0;
  for (let i = 0; i < m; i++) trace += gram[i * m + i];
  if (!(trace > 0)) throw new InputError('the checkpoints are all identical: the trajectory spans no plane');
  const { values, vectors } = symmetricEigen(gram, m);
  const l1 = Math.max(values[0], 0);
  const l2 = Math.max(values[1], 0);
  if (!(l2 > 1e-13 * l1)) {
    throw new InputError('the checkpoints lie on a line through the last one: the trajectory spans no plane');
  }

  // v_k = M^T u_k / sigma_k, accumulated row by row, then renormalized (and dy re-orthogonalized
  // against dx) to clean up rounding.
  const dx = new Float64Array(n);
  const dy = new Float64Array(n);
  for (let i = 0; i < m; i++) {
    row(i, ri);
    const a = vectors[i * m];
    const b = vectors[i * m + 1];
    for (let k = 0; k < n; k++) {
      dx[k] += a * ri[k];
      dy[k] += b * ri[k];
    }
  }
  normalizeInPlace(dx);
  const c = dotF(dx, dy);
  for (let k = 0; k < n; k++) dy[k] -= c * dx[k];
  normalizeInPlace(dy);

  const coords: { x: number; y: number }[] = [];
  for (let i = 0; i < T; i++) {
    row(i, ri);
    coords.push({ x: dotF(ri, dx), y: dotF(ri, dy) });
  }
  if (coords[0].x > 0) flip(dx, coords, 'x');
  let far = 0;
  for (let i = 1; i < T; i++) if (Math.abs(coords[i].y) > Math.abs(coords[far].y)) far = i;
  if (coords[far].y < 0) flip(dy, coords, 'y');

  return { origin, dx, dy, explained: [l1 / trace, l2 / trace], coords };
}

function dotF(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let k = 0; k < a.length; k++) s += a[k] * b[k];
  return s;
}

function normalizeInPlace(v: Float64Array): void {
  const s = Math.sqrt(dotF(v, v));
  for (let k = 0; k < v.length; k++) v[k] /= s;
}

function flip(v: Float64Array, coords: { x: number; y: number }[], axis: 'x' | 'y'): void {
  for (let k = 0; k < v.length; k++) v[k] = -v[k];
  for (const p of coords) p[axis] = 0 - p[axis]; // 0 - x, not -x: no -0 at the origin
}
