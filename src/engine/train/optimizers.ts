/**
 * Optimizers for Basin's training runs, in plain TypeScript on flat float64 parameter vectors.
 *
 * The caller owns theta (the flat parameter vector, in the IR's parameter order) and passes a
 * gradient function; `step` updates theta in place. Full batch versus minibatch is the caller's
 * choice of `gradFn`: `gd` and `sgd` are the same update. Within one step `gradFn` must be one
 * function of theta (the same minibatch for both SAM/ASAM evaluations and all four RK4 stages).
 *
 * Updates, with g = grad L(theta) from `gradFn` and step size lr:
 * - gd / sgd (Robbins & Monro 1951):  theta <- theta - lr g.
 * - momentum, heavy ball (Polyak 1964), PyTorch convention (dampening 0, v_0 = 0):
 *     v <- beta v + g,  theta <- theta - lr v.
 * - nesterov (Nesterov 1983; Sutskever, Martens, Dahl & Hinton 2013), PyTorch convention:
 *     v <- beta v + g,  theta <- theta - lr (g + beta v).
 * - adam (Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization", Algorithm 1), t = 1, 2, ...:
 *     m <- beta1 m + (1 - beta1) g,  v <- beta2 v + (1 - beta2) g^2,
 *     mhat = m / (1 - beta1^t),  vhat = v / (1 - beta2^t),  theta <- theta - lr mhat / (sqrt(vhat) + eps).
 *   On the first step mhat = g and vhat = g^2, so the update is exactly lr g / (|g| + eps) per entry.
 * - sam (Foret, Kleiner, Mobahi & Neyshabur 2021, "Sharpness-Aware Minimization for Efficiently
 *   Improving Generalization", ICLR, eq. 2 and Algorithm 1):
 *     e = rho g / |g|,  g_sam = grad L(theta + e),  theta <- theta - lr g_sam.
 * - asam (Kwon, Kim, Park & Choi 2021, "ASAM: Adaptive Sharpness-Aware Minimization for
 *   Scale-Invariant Learning of Deep Neural Networks", ICML, Algorithm 1):
 *     e = rho T^2 g / |T g|,  g_asam = grad L(theta + e),  theta <- theta - lr g_asam,
 *   with T = diag(|theta| + eta) on the entries of `scaledRoles` (default kernels only) and 1
 *   elsewhere, built at the start point by `asamScaling` (see ../flatness/asam.ts for the choice of
 *   roles). Needs the model IR. If the (scaled) gradient is zero, e = 0.
 * - flow: gradient flow d theta / dt = -grad L(theta), one classical fourth-order Runge-Kutta step
 *   of length lr (four gradient evaluations), as in Cohen, Kaur, Li, Kolter & Talwalkar 2021
 *   ("Gradient Descent on Neural Networks Typically Occurs at the Edge of Stability", ICLR; the
 *   reference repo's `flow.py`):
 *     k1 = -g(theta), k2 = -g(theta + lr/2 k1), k3 = -g(theta + lr/2 k2), k4 = -g(theta + lr k3),
 *     theta <- theta + lr/6 (k1 + 2 k2 + 2 k3 + k4).
 *   RK4 only tracks the flow when lr is well below the stiffest time scale: the caller must keep
 *   lr below 1 / lambda_max (the reference repo adapts its step to about 1 / lambda_max as
 *   sharpness grows). The one-step error is O(lr^5), the global error over a fixed time O(lr^4).
 *
 * Weight decay `wd` (default 0):
 * - every optimizer but adam uses L2 coupled to the gradient, g <- g + wd theta (the gradient of
 *   L + wd/2 |theta|^2), as PyTorch's `weight_decay` does. For sam and asam the ascent direction e
 *   uses the plain loss gradient and the decay term is added to the gradient at the perturbed point
 *   with the unperturbed theta (what a base optimizer's `weight_decay` does in the reference SAM
 *   code): g_sam = grad L(theta + e) + wd theta. For flow, RK4 integrates the flow of L + wd/2 |theta|^2.
 * - adam uses decoupled decay (Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization",
 *   ICLR; AdamW, as PyTorch's `AdamW`): theta <- theta - lr wd theta - lr mhat / (sqrt(vhat) + eps);
 *   the moments see the plain gradient.
 *
 * Stability thresholds (`threshold(lr)`, on lambda_max of the Hessian of the objective the update
 * descends; with coupled weight decay that Hessian is H + wd I, so the line for the loss's own
 * lambda_max is threshold - wd). Full-batch GD on a quadratic diverges along an eigenvector with
 * eigenvalue lambda once lambda > 2 / lr; Cohen et al. 2021 observe lambda_max hovering at that
 * value (edge of stability). With momentum beta: heavy ball (2 + 2 beta) / lr, Nesterov
 * (2 + 2 beta) / ((1 + 2 beta) lr) (Cohen et al. 2021, appendix). sam/asam use GD's 2 / lr (their
 * perturbation changes the effective Hessian, so this is the GD reference line, not an exact
 * bound). adam has no classical threshold on lambda_max: its edge of stability is on the
 * preconditioned sharpness lambda_max(P^-1 H), P = diag(sqrt(vhat) + eps), at (2 + 2 beta1) /
 * ((1 - beta1) lr) (Cohen et al. 2022, "Adaptive Gradient Methods at the Edge of Stability"), so
 * `threshold` returns undefined. flow is a continuous-time reference and has none either.
 *
 * All state is float64 and every update is deterministic (fixed summation order, no randomness).
 *
 * Example:
 * ```ts
 * const opt = makeOptimizer('momentum', { momentum: 0.9 });
 * for (let k = 0; k < 100; k++) await opt.step(theta, gradFn, lrAt(0.1, schedule, k));
 * ```
 */
import { InputError } from '../errors';
import { asamScaling, type ParamRole } from '../flatness/asam';
import { norm } from '../linalg/operator';
import type { ModelIR } from '../model/ir';

/** The loss and its gradient at theta (the gradient has theta's length). */
export type GradFn = (theta: Float64Array) => Promise<{ loss: number; grad: Float64Array }>;

export interface StepInfo {
  /** L at the start point of the step (for sam/asam: at theta, not at the perturbed point). */
  loss: number;
  /** |grad L| at the start point (the loss gradient as `gradFn` returned it, without weight decay). */
  gradNorm: number;
  /** Calls to `gradFn` this step: 1, 2 for sam/asam, 4 for flow. */
  evaluations: number;
}

export type OptimizerName = 'gd' | 'sgd' | 'momentum' | 'nesterov' | 'adam' | 'sam' | 'asam' | 'flow';

export const OPTIMIZER_NAMES: readonly OptimizerName[] = ['gd', 'sgd', 'momentum', 'nesterov', 'adam', 'sam', 'asam', 'flow'];

/**
 * Checkpointable optimizer state: plain JSON plus float64 arrays (copies, never aliases of the
 * optimizer's own buffers). Hyperparameters are configuration, not state, and are not included.
 */
export interface OptimizerState {
  name: OptimizerName;
  /** Steps taken so far (Adam's t). */
  step: number;
  /** Per-parameter buffers: `velocity` for momentum/nesterov, `m` and `v` for adam; empty otherwise and before the first step. */
  buffers: Record<string, Float64Array>;
}

export interface OptimizerOptions {
  /** Momentum coefficient beta for momentum/nesterov (default 0.9), in [0, 1). */
  momentum?: number;
  /** Adam's first-moment decay (default 0.9), in [0, 1). */
  beta1?: number;
  /** Adam's second-moment decay (default 0.999), in [0, 1). */
  beta2?: number;
  /** Adam's epsilon (default 1e-8), > 0. */
  adamEps?: number;
  /** SAM/ASAM radius (default 0.05 for sam, 0.5 for asam), >= 0. */
  rho?: number;
  /** ASAM's eta in T = |w| + eta (default 0.01), >= 0. */
  eta?: number;
  /** ASAM: roles whose entries get T = |w| + eta, the others T = 1 (default ['kernel'], as `adaptiveSharpness`). */
  scaledRoles?: readonly ParamRole[];
  /** Weight decay (default 0), >= 0: L2 coupled to the gradient for all but adam, decoupled (AdamW) for adam. */
  weightDecay?: number;
  /** The model IR: required by asam (parameter roles and offsets). */
  ir?: ModelIR;
}

export interface Optimizer {
  readonly name: OptimizerName;
  /** Updates theta in place with one step of size lr, using gradFn for the gradient (SAM calls it twice). */
  step(theta: Float64Array, gradFn: GradFn, lr: number): Promise<StepInfo>;
  /**
   * The full-batch stability threshold on lambda_max for this optimizer at step size lr: 2/lr for
   * gd/sgd/sam/asam, (2 + 2 beta)/lr heavy ball, (2 + 2 beta)/((1 + 2 beta) lr) Nesterov, undefined
   * for adam and flow (see the module comment).
   */
  threshold(lr: number): number | undefined;
  /** Serializable state for checkpoints and resume (plain JSON + typed arrays). */
  getState(): OptimizerState;
  /** Restores a state from `getState` of an optimizer of the same name (copies the buffers). */
  setState(s: OptimizerState): void;
}

export function makeOptimizer(name: OptimizerName, opts: OptimizerOptions = {}): Optimizer {
  if (!OPTIMIZER_NAMES.includes(name)) {
    throw new InputError(`unknown optimizer '${String(name)}' (expected one of ${OPTIMIZER_NAMES.join(', ')})`);
  }
  const wd = opts.weightDecay ?? 0;
  checkNonNegative('weightDecay', wd);
  switch (name) {
    case 'gd':
    case 'sgd':
      return new PlainGD(name, wd);
    case 'momentum':
    case 'nesterov': {
      const beta = opts.momentum ?? 0.9;
      checkUnitInterval('momentum', beta);
      return new Momentum(name, beta, wd);
    }
    case 'adam': {
      const beta1 = opts.beta1 ?? 0.9;
      const beta2 = opts.beta2 ?? 0.999;
      const eps = opts.adamEps ?? 1e-8;
      checkUnitInterval('beta1', beta1);
      checkUnitInterval('beta2', beta2);
      if (!(Number.isFinite(eps) && eps > 0)) throw new InputError(`adamEps must be a positive number, got ${eps}`);
      return new Adam(beta1, beta2, eps, wd);
    }
    case 'sam': {
      const rho = opts.rho ?? 0.05;
      checkNonNegative('rho', rho);
      return new Sam(name, rho, wd, undefined);
    }
    case 'asam': {
      const rho = opts.rho ?? 0.5;
      const eta = opts.eta ?? 0.01;
      checkNonNegative('rho', rho);
      checkNonNegative('eta', eta);
      if (!opts.ir) throw new InputError('the asam optimizer needs the model IR (its parameter roles decide which entries ASAM rescales)');
      const ir = opts.ir;
      const roles = [...(opts.scaledRoles ?? ['kernel'])];
      return new Sam(name, rho, wd, (theta) => {
        if (theta.length !== ir.numParams) {
          throw new InputError(`asam: theta has ${theta.length} entries but the model '${ir.name}' has ${ir.numParams} parameters`);
        }
        return asamScaling({ ir }, theta, eta, roles);
      });
    }
    case 'flow':
      return new Flow(wd);
  }
}

function checkNonNegative(what: string, x: number): void {
  if (!(Number.isFinite(x) && x >= 0)) throw new InputError(`${what} must be a finite number >= 0, got ${x}`);
}

function checkUnitInterval(what: string, x: number): void {
  if (!(Number.isFinite(x) && x >= 0 && x < 1)) throw new InputError(`${what} must be in [0, 1), got ${x}`);
}

function checkLr(lr: number): void {
  if (!(Number.isFinite(lr) && lr > 0)) throw new InputError(`the learning rate must be a positive number, got ${lr}`);
}

/** Calls gradFn and checks the gradient's length. */
async function evaluate(gradFn: GradFn, theta: Float64Array): Promise<{ loss: number; grad: Float64Array }> {
  const r = await gradFn(theta);
  if (r.grad.length !== theta.length) {
    throw new InputError(`the gradient has ${r.grad.length} entries but theta has ${theta.length}`);
  }
  return r;
}

/** g + wd theta (a fresh array). */
function withDecay(g: Float64Array, theta: Float64Array, wd: number): Float64Array {
  const out = Float64Array.from(g);
  if (wd !== 0) for (let i = 0; i < out.length; i++) out[i] += wd * theta[i];
  return out;
}

abstract class Base implements Optimizer {
  protected steps = 0;
  protected buffers: Record<string, Float64Array> = {};

  constructor(readonly name: OptimizerName) {}

  abstract step(theta: Float64Array, gradFn: GradFn, lr: number): Promise<StepInfo>;

  threshold(lr: number): number | undefined {
    checkLr(lr);
    return 2 / lr;
  }

  getState(): OptimizerState {
    const buffers: Record<string, Float64Array> = {};
    for (const [k, b] of Object.entries(this.buffers)) buffers[k] = Float64Array.from(b);
    return { name: this.name, step: this.steps, buffers };
  }

  setState(s: OptimizerState): void {
    if (s.name !== this.name) throw new InputError(`cannot restore ${s.name} optimizer state into a ${this.name} optimizer`);
    if (!(Number.isInteger(s.step) && s.step >= 0)) throw new InputError(`optimizer state: step must be an integer >= 0, got ${s.step}`);
    const buffers: Record<string, Float64Array> = {};
    let len: number | undefined;
    for (const [k, b] of Object.entries(s.buffers)) {
      if (!(b instanceof Float64Array)) throw new InputError(`optimizer state: buffer '${k}' is not a Float64Array`);
      if (len !== undefined && b.length !== len) throw new InputError('optimizer state: buffers have different lengths');
      len = b.length;
      buffers[k] = Float64Array.from(b);
    }
    this.checkBuffers(Object.keys(buffers));
    this.steps = s.step;
    this.buffers = buffers;
  }

  /** The buffers a state of this optimizer may hold (all or none). */
  protected bufferNames(): string[] {
    return [];
  }

  private checkBuffers(keys: string[]): void {
    const want = this.bufferNames();
    const ok = keys.length === 0 || (keys.length === want.length && want.every((k) => keys.includes(k)));
    if (!ok) throw new InputError(`optimizer state for ${this.name}: expected buffers [${want.join(', ')}], got [${keys.join(', ')}]`);
  }

  /** The named buffer, created as zeros on first use; checks its length against theta. */
  protected buffer(key: string, n: number): Float64Array {
    let b = this.buffers[key];
    if (!b) {
      b = new Float64Array(n);
      this.buffers[key] = b;
    }
    if (b.length !== n) throw new InputError(`optimizer state has ${b.length} entries but theta has ${n}`);
    return b;
  }
}

/** gd / sgd: theta <- theta - lr (g + wd theta). */
class PlainGD extends Base {
  constructor(
    name: 'gd' | 'sgd',
    private readonly wd: number,
  ) {
    super(name);
  }

  async step(theta: Float64Array, gradFn: GradFn, lr: number): Promise<StepInfo> {
    checkLr(lr);
    const { loss, grad } = await evaluate(gradFn, theta);
    const g = withDecay(grad, theta, this.wd);
    for (let i = 0; i < theta.length; i++) theta[i] -= lr * g[i];
    this.steps++;
    return { loss, gradNorm: norm(grad), evaluations: 1 };
  }
}

/** Heavy ball and Nesterov, PyTorch convention: v <- beta v + g; theta -= lr v (heavy ball) or lr (g + beta v) (Nesterov). */
class Momentum extends Base {
  constructor(
    name: 'momentum' | 'nesterov',
    private readonly beta: number,
    private readonly wd: number,
  ) {
    super(name);
  }

  override threshold(lr: number): number {
    checkLr(lr);
    const b = this.beta;
    return this.name === 'nesterov' ? (2 + 2 * b) / ((1 + 2 * b) * lr) : (2 + 2 * b) / lr;
  }

  protected override bufferNames(): string[] {
    return ['velocity'];
  }

  async step(theta: Float64Array, gradFn: GradFn, lr: number): Promise<StepInfo> {
    checkLr(lr);
    const { loss, grad } = await evaluate(gradFn, theta);
    const v = this.buffer('velocity', theta.length);
    const g = withDecay(grad, theta, this.wd);
    const b = this.beta;
    const nesterov = this.name === 'nesterov';
    for (let i = 0; i < theta.length; i++) {
      v[i] = b * v[i] + g[i];
      theta[i] -= lr * (nesterov ? g[i] + b * v[i] : v[i]);
    }
    this.steps++;
    return { loss, gradNorm: norm(grad), evaluations: 1 };
  }
}

/** Adam with bias correction (Kingma & Ba 2015) and decoupled weight decay (Loshchilov & Hutter 2019). */
class Adam extends Base {
  constructor(
    private readonly beta1: number,
    private readonly beta2: number,
    private readonly eps: number,
    private readonly wd: number,
  ) {
    super('adam');
  }

  /** No classical threshold on lambda_max (Adam's edge of stability is on the preconditioned sharpness). */
  override threshold(lr: number): undefined {
    checkLr(lr);
    return undefined;
  }

  protected override bufferNames(): string[] {
    return ['m', 'v'];
  }

  async step(theta: Float64Array, gradFn: GradFn, lr: number): Promise<StepInfo> {
    checkLr(lr);
    const { loss, grad } = await evaluate(gradFn, theta);
    const m = this.buffer('m', theta.length);
    const v = this.buffer('v', theta.length);
    const t = this.steps + 1;
    const { beta1: b1, beta2: b2, eps, wd } = this;
    const c1 = 1 - Math.pow(b1, t);
    const c2 = 1 - Math.pow(b2, t);
    for (let i = 0; i < theta.length; i++) {
      const g = grad[i];
      m[i] = b1 * m[i] + (1 - b1) * g;
      v[i] = b2 * v[i] + (1 - b2) * g * g;
      const mhat = m[i] / c1;
      const vhat = v[i] / c2;
      theta[i] = theta[i] - lr * wd * theta[i] - (lr * mhat) / (Math.sqrt(vhat) + eps);
    }
    this.steps = t;
    return { loss, gradNorm: norm(grad), evaluations: 1 };
  }
}

/** SAM (scaling undefined) and ASAM (scaling gives the diagonal of T at theta). */
class Sam extends Base {
  constructor(
    name: 'sam' | 'asam',
    private readonly rho: number,
    private readonly wd: number,
    private readonly scaling: ((theta: Float64Array) => Float64Array) | undefined,
  ) {
    super(name);
  }

  async step(theta: Float64Array, gradFn: GradFn, lr: number): Promise<StepInfo> {
    checkLr(lr);
    const t = this.scaling?.(theta);
    const { loss, grad } = await evaluate(gradFn, theta);
    const n = theta.length;
    // e = rho T^2 g / |T g| (T = I for SAM).
    const tg = t ? grad.map((gi, i) => t[i] * gi) : grad;
    const tgNorm = norm(tg);
    const perturbed = Float64Array.from(theta);
    if (tgNorm > 0) {
      for (let i = 0; i < n; i++) perturbed[i] += (this.rho * (t ? t[i] * tg[i] : tg[i])) / tgNorm;
    }
    const { grad: gp } = await evaluate(gradFn, perturbed);
    const g = withDecay(gp, theta, this.wd);
    for (let i = 0; i < n; i++) theta[i] -= lr * g[i];
    this.steps++;
    return { loss, gradNorm: norm(grad), evaluations: 2 };
  }
}

/** Gradient flow by one classical RK4 step of length lr (Cohen et al. 2021, `flow.py`). */
class Flow extends Base {
  constructor(private readonly wd: number) {
    super('flow');
  }

  /** A continuous-time reference has no step-size threshold. */
  override threshold(lr: number): undefined {
    checkLr(lr);
    return undefined;
  }

  async step(theta: Float64Array, gradFn: GradFn, lr: number): Promise<StepInfo> {
    checkLr(lr);
    const n = theta.length;
    const x0 = Float64Array.from(theta);
    /** -(grad L + wd x) at x. */
    const field = async (x: Float64Array): Promise<{ loss: number; grad: Float64Array; k: Float64Array }> => {
      const r = await evaluate(gradFn, x);
      const k = withDecay(r.grad, x, this.wd);
      for (let i = 0; i < n; i++) k[i] = -k[i];
      return { ...r, k };
    };
    const at = (k: Float64Array, h: number): Float64Array => x0.map((xi, i) => xi + h * k[i]);
    const first = await field(x0);
    const k1 = first.k;
    const k2 = (await field(at(k1, lr / 2))).k;
    const k3 = (await field(at(k2, lr / 2))).k;
    const k4 = (await field(at(k3, lr))).k;
    for (let i = 0; i < n; i++) theta[i] = x0[i] + (lr / 6) * (k1[i] + 2 * k2[i] + 2 * k3[i] + k4[i]);
    this.steps++;
    return { loss: first.loss, gradNorm: norm(first.grad), evaluations: 4 };
  }
}
