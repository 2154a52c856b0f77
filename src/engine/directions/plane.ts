/**
 * Two-direction planes for 2-D slices (Li, Xu, Taylor, Studer, Goldstein 2018, "Visualizing the
 * Loss Landscape of Neural Nets", sec. 4: f(a, b) = L(theta + a x + b y)).
 *
 * Two independent random directions in a space of many dimensions are nearly orthogonal (their
 * cosine is about 1/sqrt(n)), which is why the paper does not orthogonalize them. Basin offers one
 * Gram-Schmidt step when the second direction is a chosen one (an eigenvector, the gradient) that
 * may lean towards the first:
 *
 *   y' = y - (x . y / x . x) x,   then   y' <- y' |y| / |y'|,
 *
 * so the axes are orthogonal and y keeps its length. This changes y's filter norms slightly: a
 * filter-normalized y is no longer exactly filter-normalized afterwards (the smaller the cosine,
 * the smaller the change). The caller reports the cosine before the step so the reader can judge.
 */
import { InputError } from '../errors';
import { dot, norm } from '../linalg/operator';

export { dot, norm };

/** v / |v| as a new array; throws on a zero vector. */
export function unit(v: ArrayLike<number>): Float64Array {
  const n = norm(v);
  if (!(n > 0) || !Number.isFinite(n)) throw new Error(`unit: cannot normalize a vector of norm ${n}`);
  const out = new Float64Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = v[i] / n;
  return out;
}

/** x . y / (|x| |y|); 0 when either is zero. */
export function cosine(x: ArrayLike<number>, y: ArrayLike<number>): number {
  const nx = norm(x);
  const ny = norm(y);
  return nx > 0 && ny > 0 ? dot(x, y) / (nx * ny) : 0;
}

/**
 * One Gram-Schmidt step: y made orthogonal to x and rescaled to its original norm, plus the cosine
 * between x and y before the step. `x` and `y` are not modified. Throws a BasinError when y is
 * (numerically) parallel to x, since no plane is left.
 */
export function orthogonalize(x: Float64Array, y: Float64Array): { y: Float64Array; cosine: number } {
  if (x.length !== y.length) throw new Error(`orthogonalize: lengths differ (${x.length} and ${y.length})`);
  const xx = dot(x, x);
  const ny = norm(y);
  const cos = cosine(x, y);
  const out = Float64Array.from(y);
  if (!(xx > 0) || !(ny > 0)) return { y: out, cosine: cos };
  const c = dot(x, y) / xx;
  for (let i = 0; i < out.length; i++) out[i] -= c * x[i];
  const left = norm(out);
  if (!(left > 1e-12 * ny)) {
    throw new InputError(`the two directions are parallel (cosine ${cos.toPrecision(6)}): they do not span a plane`);
  }
  const s = ny / left;
  for (let i = 0; i < out.length; i++) out[i] *= s;
  return { y: out, cosine: cos };
}
