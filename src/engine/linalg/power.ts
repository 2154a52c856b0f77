/**
 * Power iteration exactly as PyHessian's `hessian.eigenvalues` (Yao, Gholami, Keutzer & Mahoney
 * 2020, "PyHessian: Neural Networks Through the Lens of the Hessian", IEEE BigData;
 * `pyhessian/hessian.py`), kept for the comparison benchmark, warts included:
 *
 *   v = normalize(randn);  repeat maxIter times:
 *     v = orthnormal(v, against)            (w -= (w.u) u for each u, then normalize)
 *     Hv = A v;  tmp = Hv . v;  v = normalize(Hv)
 *     if first: ev = tmp  elif |ev - tmp| / (|ev| + 1e-6) < tol: break  else: ev = tmp
 *
 * with normalize(x) = x / (|x| + 1e-6). On a break the returned eigenvalue is the PREVIOUS
 * Rayleigh quotient `ev`, not the one just computed, and the test is a relative change of 1e-3
 * between consecutive estimates, not an error bound: with lambda_2 / lambda_1 = 0.9 it stops with a
 * relative error around 1e-3 (the error falls like (lambda_2 / lambda_1)^(2k)). The +1e-6 in the
 * normalisation also leaves v slightly short of unit length. Use `lanczos` for real work.
 *
 * Example:
 * ```ts
 * const { eigenvalue, matvecs } = await powerIteration(op, { rng: new Rng(0) }); // maxIter 100, tol 1e-3
 * ```
 */
import { Rng } from '../rng';
import { dot, IterOptions, LinearOperator, throwIfAborted } from './operator';
import { InternalError } from '../errors';

export interface PowerOptions extends IterOptions {
  /** Maximum products (PyHessian default 100). */
  maxIter?: number;
  /** Relative change between consecutive Rayleigh quotients that stops the loop (default 1e-3). */
  tol?: number;
  /** Source of the random start vector (default new Rng(0)). */
  rng?: Rng;
  /** Start vector instead of a random one (normalised PyHessian-style). */
  v0?: Float64Array;
  /** Previously found eigenvectors to project out each iteration (PyHessian's top_n deflation). */
  against?: readonly Float64Array[];
}

export interface PowerResult {
  /** PyHessian's returned estimate (the previous Rayleigh quotient when the tolerance test fired). */
  eigenvalue: number;
  /** normalize(A v) from the last iteration (norm slightly below 1, as in PyHessian). */
  eigenvector: Float64Array;
  matvecs: number;
  iterations: number;
  /** True when the relative-change test fired before maxIter. */
  converged: boolean;
}

/** PyHessian's normalization: x / (|x| + 1e-6). Returns a new array. */
function normalization(x: Float64Array): Float64Array {
  const s = Math.sqrt(dot(x, x)) + 1e-6;
  return Float64Array.from(x, (xi) => xi / s);
}

/** PyHessian's power iteration for the top eigenvalue (see the module comment). */
export async function powerIteration(op: LinearOperator, opts: PowerOptions = {}): Promise<PowerResult> {
  const n = op.dim;
  const maxIter = opts.maxIter ?? 100;
  const tol = opts.tol ?? 1e-3;
  if (!Number.isInteger(maxIter) || maxIter < 1) throw new InternalError(`powerIteration: bad maxIter ${maxIter}`);
  if (!(tol >= 0) || !Number.isFinite(tol)) throw new InternalError(`powerIteration: tol must be a finite number >= 0, got ${tol}`);
  if (opts.v0 && opts.v0.length !== n) {
    throw new InternalError(`powerIteration: v0 has length ${opts.v0.length}, expected ${n}`);
  }
  const rng = opts.rng ?? new Rng(0);
  const against = opts.against ?? [];
  let v = normalization(opts.v0 ? Float64Array.from(opts.v0) : rng.normalVector(n));
  let eigenvalue: number | undefined;
  let matvecs = 0;
  let converged = false;
  for (let i = 0; i < maxIter; i++) {
    // orthnormal(v, eigenvectors)
    for (const u of against) {
      const c = dot(v, u);
      for (let t = 0; t < n; t++) v[t] -= c * u[t];
    }
    v = normalization(v);
    throwIfAborted(opts.signal);
    const hv = await op.matvec(v);
    matvecs++;
    opts.onProgress?.(matvecs, maxIter);
    const tmp = dot(hv, v);
    v = normalization(hv);
    if (eigenvalue === undefined) {
      eigenvalue = tmp;
    } else if (Math.abs(eigenvalue - tmp) / (Math.abs(eigenvalue) + 1e-6) < tol) {
      converged = true;
      break;
    } else {
      eigenvalue = tmp;
    }
  }
  return { eigenvalue: eigenvalue ?? NaN, eigenvector: v, matvecs, iterations: matvecs, converged };
}
