/**
 * Lanczos with full reorthogonalization for the extreme eigenpairs of a symmetric operator
 * (Lanczos 1950, "An iteration method for the solution of the eigenvalue problem of linear
 * differential and integral operators", J. Res. Nat. Bur. Standards 45; full reorthogonalization
 * and the error bounds after Parlett 1998, "The Symmetric Eigenvalue Problem", ch. 11-13, and
 * Golub & Van Loan 2013, sec. 10.1-10.3).
 *
 * From a unit q_1 the three-term recurrence
 *
 *   beta_j q_{j+1} = A q_j - alpha_j q_j - beta_{j-1} q_{j-1},   alpha_j = q_j^T A q_j,
 *
 * builds an orthonormal basis Q_m of the Krylov space K_m(A, q_1) with A Q_m = Q_m T_m + beta_m
 * q_{m+1} e_m^T, T_m = tridiag(beta, alpha, beta). The eigenpairs (theta_i, s_i) of T_m give Ritz
 * pairs (theta_i, y_i = Q_m s_i) with residual |A y_i - theta_i y_i| = |beta_m s_{m,i}|. In floating
 * point the q_j lose orthogonality as Ritz values converge and the plain recurrence produces
 * spurious copies ("ghost" eigenvalues); here every new vector is reorthogonalized against all
 * stored ones twice by classical Gram-Schmidt ("twice is enough"), so T_m stays the projection of A
 * to working precision. Extreme eigenvalues converge at a rate set by sqrt(gap / spread) per step
 * (Kaniel-Paige-Saad), versus gap / spread for power iteration.
 *
 * Error bounds (per wanted Ritz value theta_i with residual r_i): every interval [theta_i - r_i,
 * theta_i + r_i] contains an eigenvalue of A; when theta_i is separated from the rest of the
 * spectrum by gap_i > r_i, the Kato-Temple bound r_i^2 / gap_i also holds. The gap is estimated from
 * the other Ritz values, shrunk by their own residuals: gap_i = min_{j != i} (|theta_i - theta_j| -
 * r_j). A bound can only cover eigenvalues the Krylov space has seen: an eigenvalue whose
 * eigenvector is (numerically) orthogonal to the start vector, or a cluster the space has not split
 * yet, can hide from any Krylov method. The residual r_i is the rigorous bound (some eigenvalue of A
 * lies within r_i of theta_i); the squared form additionally assumes no unseen eigenvalue lies
 * within gap_i. Example of the failure: eigenvalues 1 and 1 - 1e-6 over 298 eigenvalues in [0, 0.9],
 * k = 1: the run stops after 23 products at theta = 1 - 1.65e-7 with r = 9.5e-7 and a squared bound
 * of 1e-11, because the second member of the pair only appears after about 30 steps. Ask for k = 2
 * (or more) to see a suspected cluster: once both Ritz values are present and closer than their
 * residuals, the bound falls back to r.
 *
 * Example (with the tests' dense fixtures, test/helpers/linalg.ts):
 * ```ts
 * const op = new DenseOperator(matrixWithSpectrum([100, 90, 80, 1, 0.5], new Rng(1)), 5);
 * const res = await lanczos(op, { k: 2, which: 'top' }); // res.eigenvalues ~ [100, 90]
 * ```
 */
import { Rng } from '../rng';
import { axpy, dot, IterOptions, LinearOperator, norm, throwIfAborted } from './operator';
import { tridiagonalEigen, tridiagonalEigenRows } from './tridiagonal';
import { createBasis } from './gramSchmidt';
import { InternalError } from '../errors';

/** A second Gram-Schmidt pass runs when the first leaves at most this fraction of the norm. */
const DGKS = Math.SQRT1_2;
/** A beta_j at most this times the running estimate of |A| is treated as an invariant subspace. */
const BREAKDOWN_TOL = 1e-12;
/**
 * Roundoff floor, relative to max |theta|: the smallest absolute error the error bounds claim and the
 * smallest residual the stopping rule asks for. Matrix-vector products, the reorthogonalization and
 * the tridiagonal eigensolver each commit errors of a few ulps of |A|.
 */
const ROUNDOFF = 64 * Number.EPSILON;

/** The state of a Lanczos process after m steps (m = alpha.length). */
export interface LanczosTridiagonal {
  /** Diagonal of T_m, length m. */
  alpha: number[];
  /** Off-diagonal of T_m, length m - 1; 0 where the basis was restarted after a breakdown. */
  beta: number[];
  /**
   * beta_m: the norm of the unnormalised next vector r_m in A Q_m = Q_m T_m + r_m e_m^T (after
   * reorthogonalization). The Ritz residual of (theta_i, Q_m s_i) is |beta_m s_{m,i}|.
   */
  residualNorm: number;
  /** q_1 .. q_m, orthonormal (length m). */
  basis: Float64Array[];
  /** Products with the operator in this call. */
  matvecs: number;
  /** Number of breakdowns (invariant subspaces) after which a fresh random vector was used. */
  restarts: number;
  /** Largest beta replaced by 0 at a restart (adds at most this to any Ritz residual). */
  droppedBeta: number;
  /** True when the process stopped because the Krylov space became invariant or the basis filled R^n. */
  exhausted: boolean;
  /**
   * True while `afterStep` runs if this step found an invariant subspace (beta_m ~ 0): the Ritz values
   * are then exact, but eigenvalues outside the Krylov space (a second copy of a repeated one, or any
   * missing from the start vector) have not been looked for yet.
   */
  atBreakdown: boolean;
  /** A running estimate of |A|: the largest |alpha_j| + beta_j + beta_{j-1} seen (a lower bound on the 1-norm of T). */
  normEstimate: number;
  /** Done with `basis`: its memory may serve the next run (the vectors are then invalid). Optional to call. */
  release(): void;
}

export interface LanczosTridiagonalOptions extends IterOptions {
  /** Source of restart vectors after a breakdown (default new Rng(0)). */
  rng?: Rng;
  /** On an invariant subspace: continue from a fresh random orthogonal vector (default) or stop. */
  onBreakdown?: 'restart' | 'stop';
  /** Total passed to onProgress (default `steps`). */
  progressTotal?: number;
  /** Products done before this call, added to the count passed to onProgress (default 0). */
  progressOffset?: number;
  /** Called after each step with the current state; return true to stop. */
  afterStep?: (state: LanczosTridiagonal) => boolean;
}

/**
 * Runs up to `steps` Lanczos steps with full reorthogonalization (classical Gram-Schmidt, twice unless once suffices)
 * from v0 (not modified; normalised internally). One product per step. Shared by `lanczos` and
 * `slq`. Stops early when `afterStep` returns true, or at an invariant subspace with nowhere to go.
 */
export async function lanczosTridiagonal(
  op: LinearOperator,
  v0: Float64Array,
  steps: number,
  opts: LanczosTridiagonalOptions = {},
): Promise<LanczosTridiagonal> {
  const n = op.dim;
  if (!Number.isInteger(steps) || steps < 1) throw new InternalError(`lanczos: steps must be a positive integer, got ${steps}`);
  if (v0.length !== n) throw new InternalError(`lanczos: start vector has length ${v0.length}, expected ${n}`);
  const v0Norm = norm(v0);
  if (!(v0Norm > 0) || !Number.isFinite(v0Norm)) throw new InternalError('lanczos: start vector must be finite and nonzero');
  const rng = opts.rng ?? new Rng(0);
  const total = opts.progressTotal ?? steps;
  const offset = opts.progressOffset ?? 0;
  // The basis is allocated once for the run (slot m is where the product of step m - 1 is written
  // and becomes q_m), so no step allocates a vector; the Gram-Schmidt loops run in WebAssembly SIMD
  // where they can (gramSchmidt.ts).
  const cap = Math.min(steps, n);
  const slots = createBasis(n, cap + 1);
  const q0 = slots.get(0);
  for (let i = 0; i < n; i++) q0[i] = v0[i] / v0Norm;
  const state: LanczosTridiagonal = {
    alpha: [],
    beta: [],
    residualNorm: 0,
    basis: [q0],
    matvecs: 0,
    restarts: 0,
    droppedBeta: 0,
    exhausted: false,
    atBreakdown: false,
    normEstimate: 0,
    release: () => slots.release(),
  };
  let normEstimate = 0;
  const coeffs = new Float64Array(Math.max(1, cap));
  for (let j = 0; j < steps; j++) {
    const q = state.basis[j];
    throwIfAborted(opts.signal);
    const product = await op.matvec(q);
    state.matvecs++;
    opts.onProgress?.(offset + state.matvecs, total);
    if (product.length !== n) throw new InternalError(`lanczos: operator returned length ${product.length}, expected ${n}`);
    const wi = state.basis.length;
    const w = slots.get(wi);
    w.set(product);
    let a = slots.dot(j, wi);
    if (!Number.isFinite(a)) throw new InternalError('lanczos: the operator returned a non-finite product');
    slots.axpy(-a, j, wi);
    if (j > 0) slots.axpy(-state.beta[j - 1], j - 1, wi);
    // Full reorthogonalization: classical Gram-Schmidt against every stored vector, and a second
    // pass unless the first kept more than 1/sqrt(2) of w's norm (the criterion of Daniel, Gragg,
    // Kaufman & Stewart 1976: then w is orthogonal to working precision after one pass).
    const m = state.basis.length;
    let before = Math.sqrt(slots.dot(wi, wi));
    let b = before;
    for (let pass = 0; pass < 2; pass++) {
      slots.project(m, wi, coeffs);
      a += coeffs[j];
      b = Math.sqrt(slots.dot(wi, wi));
      if (b > DGKS * before) break;
      before = b;
    }
    state.alpha.push(a);
    state.residualNorm = b;
    normEstimate = Math.max(normEstimate, Math.abs(a) + b + (j > 0 ? state.beta[j - 1] : 0));
    state.normEstimate = normEstimate;
    const breakdown = b <= BREAKDOWN_TOL * normEstimate;
    state.atBreakdown = breakdown;
    if (opts.afterStep?.(state)) break;
    if (j + 1 >= steps) break;
    if (state.basis.length >= n) {
      state.exhausted = true;
      break;
    }
    if (breakdown) {
      // Invariant subspace: the Ritz values so far are exact eigenvalues.
      const fresh = opts.onBreakdown === 'stop' ? undefined : freshVector(state.basis, n, rng);
      if (!fresh) {
        state.exhausted = true;
        break;
      }
      state.beta.push(0);
      state.droppedBeta = Math.max(state.droppedBeta, b);
      state.restarts++;
      w.set(fresh);
      state.basis.push(w);
    } else {
      state.beta.push(b);
      slots.scale(1 / b, wi);
      state.basis.push(w);
    }
  }
  return state;
}

/** A random unit vector orthogonal to the basis (CGS twice), or undefined if none is found. */
function freshVector(basis: Float64Array[], n: number, rng: Rng): Float64Array | undefined {
  for (let attempt = 0; attempt < 3; attempt++) {
    const r = rng.normalVector(n);
    const before = norm(r);
    for (let pass = 0; pass < 2; pass++) {
      const c = basis.map((q) => dot(q, r));
      basis.forEach((q, i) => axpy(-c[i], q, r));
    }
    const after = norm(r);
    if (after > 1e-8 * before) {
      for (let i = 0; i < n; i++) r[i] /= after;
      return r;
    }
  }
  return undefined;
}

export interface LanczosOptions extends IterOptions {
  /** Number of wanted eigenpairs (clamped to the dimension). */
  k: number;
  /** 'top': the k largest (algebraic); 'bottom': the k smallest, i.e. the most negative. */
  which: 'top' | 'bottom';
  /**
   * Maximum number of products (= Krylov dimension; default min(dim, max(3k + 20, 50))). Memory is
   * maxIter stored vectors of dim float64s. Raised to k if smaller, clamped to dim.
   */
  maxIter?: number;
  /** Relative residual tolerance (default 1e-6): stop when every wanted r_i <= tol |theta_i|. */
  tol?: number;
  /** Source of the start vector and of restart vectors (default new Rng(0)). */
  rng?: Rng;
  /** Start vector (warm start, e.g. the previous step's top eigenvector); default rng.normalVector(dim). */
  v0?: Float64Array;
  /**
   * What `tol` bounds: 'residual' (default), the rigorous |A y - theta y| <= tol |theta|; or 'bound',
   * the eigenvalue error bound (Kato-Temple r^2 / gap when separated), which stops far earlier
   * for the same eigenvalue accuracy but trusts the gap estimate (see the module comment).
   */
  stopOn?: 'residual' | 'bound';
  /** No convergence test before this many products (default k, clamped to [k, maxIter]). */
  minIter?: number;
}

export interface LanczosResult {
  /** The k wanted Ritz values: descending for 'top', ascending (most negative first) for 'bottom'. */
  eigenvalues: number[];
  /** Unit Ritz vectors, in the same order. */
  eigenvectors: Float64Array[];
  /**
   * Residual bounds: the Ritz residual |A~ y_i - theta_i y_i| = |beta_m s_{m,i}| of the products A~
   * actually computed, plus `noise` (their error: op.relativeNoise times the norm estimate). With
   * float32 products the Ritz residual alone can be far below the true distance to an eigenvalue of
   * A; with the noise added, some eigenvalue of A lies within r_i as long as |A~ v - A v| <=
   * relativeNoise |A| |v| (Weyl). 0 noise for exact operators (dense test matrices).
   */
  residuals: number[];
  /** The Ritz residuals alone, |beta_m s_{m,i}|. */
  ritzResiduals: number[];
  /** The absolute product noise added to the residuals. */
  noise: number;
  /**
   * Bounds on sin(angle) between each Ritz vector and the eigenvector of the eigenvalue it
   * approximates: r_i / gap_i (Davis-Kahan sin theta), gap_i from the other Ritz values shrunk by
   * their residuals; 1 (no claim) when the gap is not larger than r_i. Like the squared eigenvalue
   * bound, it assumes no unseen eigenvalue lies within the gap.
   */
  angleBounds: number[];
  /**
   * Absolute error bounds: min(r_i, r_i^2 / gap_i) (the squared form only when gap_i > r_i), never
   * below max(op.relativeNoise, 64 eps) * max |theta| nor below `noise`. See the module comment for what they cover.
   */
  errorBounds: number[];
  matvecs: number;
  /** Lanczos steps taken (equals matvecs). */
  iterations: number;
  /** Every wanted residual met max(tol |theta_i|, noise floor, roundoff floor), or the basis filled R^n. */
  converged: boolean;
  /** All Ritz values of the final T_m, descending. */
  ritzValues: number[];
}

interface RitzSummary {
  values: Float64Array;
  residuals: Float64Array;
  wanted: number[];
  floor: number;
  converged: boolean;
}

/** Ritz values, residuals, wanted indices (into the descending values) and the stopping test. */
function summarize(
  state: LanczosTridiagonal,
  k: number,
  which: 'top' | 'bottom',
  tol: number,
  relativeNoise: number,
  stopOn: 'residual' | 'bound',
): RitzSummary {
  const m = state.alpha.length;
  const { values, rows } = tridiagonalEigenRows(state.alpha, state.beta, [m - 1]);
  const last = rows[0];
  const residuals = Float64Array.from(last, (s) => Math.abs(state.residualNorm * s) + state.droppedBeta);
  let maxAbs = 0;
  for (const t of values) maxAbs = Math.max(maxAbs, Math.abs(t));
  const floor = Math.max(relativeNoise, ROUNDOFF) * maxAbs;
  const kk = Math.min(k, m);
  const wanted = Array.from({ length: kk }, (_, i) => (which === 'top' ? i : m - 1 - i));
  const measure = (i: number): number => (stopOn === 'bound' ? ritzBound(values, residuals, i) : residuals[i]);
  const converged = wanted.every((i) => measure(i) <= Math.max(tol * Math.abs(values[i]), floor));
  return { values, residuals, wanted, floor, converged };
}

/**
 * The error bound of Ritz value i: the residual r_i, or the Kato-Temple r_i^2 / gap_i when the gap
 * to the other Ritz values (shrunk by their residuals) exceeds r_i. See the module comment for
 * what the squared form assumes.
 */
function ritzBound(values: Float64Array, residuals: Float64Array, i: number): number {
  const m = values.length;
  const r = residuals[i];
  let gap = Infinity;
  for (let j = 0; j < m; j++) {
    if (j !== i) gap = Math.min(gap, Math.abs(values[i] - values[j]) - residuals[j]);
  }
  // With a single Ritz value there is no gap estimate, so only the residual bound applies.
  return m > 1 && gap > r ? Math.min(r, (r * r) / gap) : r;
}

/** Davis-Kahan: sin(angle) <= (r_i + noise) / gap_i, 1 when the gap does not exceed that residual. */
function angleBound(values: Float64Array, residuals: Float64Array, i: number, noise: number): number {
  const r = residuals[i] + noise;
  let gap = Infinity;
  for (let j = 0; j < values.length; j++) if (j !== i) gap = Math.min(gap, Math.abs(values[i] - values[j]) - residuals[j] - noise);
  if (values.length < 2 || !(gap > r)) return r === 0 && values.length < 2 ? 0 : 1;
  return Math.min(1, r / gap);
}

/**
 * The most products `lanczos` takes on an operator of dimension n for k eigenpairs and `maxIter`:
 * min(n, max(k, maxIter ?? max(3k + 20, 50))). It keeps that many float64 basis vectors of length n.
 */
export function lanczosSteps(n: number, k: number, maxIter?: number): number {
  const kk = Math.min(k, n);
  return Math.min(n, Math.max(kk, Math.floor(maxIter ?? Math.max(3 * kk + 20, 50))));
}

/**
 * The k largest or k most negative eigenpairs of a symmetric operator by Lanczos with full
 * reorthogonalization. Stops after step m >= minIter when every wanted Ritz residual is at most
 * max(tol |theta_i|, relativeNoise max|theta|, 64 eps max|theta|), or after maxIter products. At an
 * invariant subspace (beta_m ~ 0) it continues from a random vector orthogonal to the basis and does
 * not stop at that step, so repeated eigenvalues get a chance to show up again.
 */
export async function lanczos(op: LinearOperator, opts: LanczosOptions): Promise<LanczosResult> {
  const n = op.dim;
  if (!Number.isInteger(opts.k) || opts.k < 1) throw new InternalError(`lanczos: k must be a positive integer, got ${opts.k}`);
  if (opts.which !== 'top' && opts.which !== 'bottom') throw new InternalError(`lanczos: bad which ${String(opts.which)}`);
  if (!Number.isInteger(n) || n < 1) throw new InternalError(`lanczos: operator dimension must be positive, got ${n}`);
  if (opts.maxIter !== undefined && !(opts.maxIter >= 1)) throw new InternalError(`lanczos: maxIter must be >= 1, got ${opts.maxIter}`);
  if (opts.minIter !== undefined && !(opts.minIter >= 0)) throw new InternalError(`lanczos: minIter must be >= 0, got ${opts.minIter}`);
  const k = Math.min(opts.k, n);
  const maxIter = lanczosSteps(n, opts.k, opts.maxIter);
  const minIter = Math.min(maxIter, Math.max(k, Math.floor(opts.minIter ?? k)));
  const tol = opts.tol ?? 1e-6;
  if (!(tol >= 0) || !Number.isFinite(tol)) throw new InternalError(`lanczos: tol must be a finite number >= 0, got ${tol}`);
  const rng = opts.rng ?? new Rng(0);
  const relativeNoise = op.relativeNoise ?? 0;
  const stopOn = opts.stopOn ?? 'residual';
  const v0 = opts.v0 ?? rng.normalVector(n);

  const state = await lanczosTridiagonal(op, v0, maxIter, {
    rng,
    signal: opts.signal,
    onProgress: opts.onProgress,
    progressTotal: maxIter,
    afterStep: (s) => {
      const m = s.alpha.length;
      if (m < minIter) return false;
      // An invariant subspace makes every Ritz residual ~0 but says nothing about the rest of R^n
      // (repeated eigenvalues, directions missing from v0): take at least one step after the restart.
      if (s.atBreakdown && m < n) return false;
      return summarize(s, k, opts.which, tol, relativeNoise, stopOn).converged;
    },
  });

  const m = state.alpha.length;
  const summary = summarize(state, k, opts.which, tol, relativeNoise, stopOn);
  const { values, residuals, wanted, floor } = summary;
  const { vectors: s } = tridiagonalEigen(state.alpha, state.beta);
  const eigenvalues: number[] = [];
  const eigenvectors: Float64Array[] = [];
  const outResiduals: number[] = [];
  const ritzResiduals: number[] = [];
  const angleBounds: number[] = [];
  const errorBounds: number[] = [];
  const noise = relativeNoise * state.normEstimate;
  for (const i of wanted) {
    eigenvalues.push(values[i]);
    ritzResiduals.push(residuals[i]);
    outResiduals.push(residuals[i] + noise);
    angleBounds.push(angleBound(values, residuals, i, noise));
    errorBounds.push(Math.max(ritzBound(values, residuals, i), floor, noise));
    const y = new Float64Array(n);
    for (let j = 0; j < m; j++) axpy(s[j * m + i], state.basis[j], y);
    const ny = norm(y);
    for (let t = 0; t < n; t++) y[t] /= ny;
    eigenvectors.push(y);
  }
  state.release();
  return {
    eigenvalues,
    eigenvectors,
    residuals: outResiduals,
    ritzResiduals,
    noise,
    angleBounds,
    errorBounds,
    matvecs: state.matvecs,
    iterations: m,
    converged: summary.converged || m === n,
    ritzValues: Array.from(values),
  };
}
