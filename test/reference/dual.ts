/**
 * A small scalar forward-over-reverse automatic differentiator in float64: the exact oracle that
 * Basin's float32 TF.js gradients and Hessian-vector products are tested against.
 *
 * Every value is a dual number (value, tangent), where the tangent is the directional derivative
 * along the seed direction v given to the variables. Each operation appends one scalar node to a
 * tape (struct-of-arrays in flat typed arrays, no object per node) holding its value, its tangent,
 * up to two parents, the local first partials (d out / d a, d out / d b) and the local second
 * partials (d2 out / da2, d2 out / da db, d2 out / db2). The tangent of a local partial is then
 * `haa * tan(a) + hab * tan(b)`, so the partials are dual numbers too.
 *
 * The reverse pass propagates dual adjoints: `adj(a) += adj(out) * d out / d a` in dual
 * arithmetic. Its value part is the exact gradient; its tangent part is the directional
 * derivative of the gradient along v, i.e. exactly the Hessian-vector product H v. This is
 * forward-over-reverse differentiation (Pearlmutter, "Fast exact multiplication by the Hessian",
 * Neural Computation 6(1), 1994, the R{.} operator applied to back-propagation).
 *
 * Because the tape stores local second partials rather than only dual partials, one recorded tape
 * can be reseeded with a new direction (a forward tangent sweep) and differentiated again, so a
 * dense Hessian costs one recording plus n sweep pairs.
 *
 * Nondifferentiable points follow TF's gradient conventions: relu'(0) = 0; max routes to the
 * first argument on ties; clip passes the derivative through on the closed interval [lo, hi].
 */

/** Handle of a node on a tape. */
export type Node = number;

/** Scale of TF's selu. */
export const SELU_SCALE = 1.0507009873554804934193349852946;
/** Alpha of TF's selu. */
export const SELU_ALPHA = 1.6732632423543772848170429916717;

/** Result of a reverse sweep. */
export interface GradHvp {
  /** d output / d variable, for each requested variable. */
  grad: Float64Array;
  /** (H v) for each requested variable, where v is the tangent seeded on the variables. */
  hvp: Float64Array;
}

/** Numerically stable logistic sigmoid. */
export function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

/** Numerically stable softplus, log(1 + exp(x)). */
export function softplus(x: number): number {
  return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
}

export class Tape {
  private n = 0;
  private cap: number;
  private val: Float64Array;
  private tan: Float64Array;
  private pa: Float64Array;
  private pb: Float64Array;
  private haa: Float64Array;
  private hab: Float64Array;
  private hbb: Float64Array;
  private pA: Int32Array;
  private pB: Int32Array;

  constructor(capacity = 1 << 14) {
    this.cap = Math.max(16, capacity);
    this.val = new Float64Array(this.cap);
    this.tan = new Float64Array(this.cap);
    this.pa = new Float64Array(this.cap);
    this.pb = new Float64Array(this.cap);
    this.haa = new Float64Array(this.cap);
    this.hab = new Float64Array(this.cap);
    this.hbb = new Float64Array(this.cap);
    this.pA = new Int32Array(this.cap);
    this.pB = new Int32Array(this.cap);
  }

  /** Number of nodes recorded. */
  get size(): number {
    return this.n;
  }

  value(x: Node): number {
    return this.val[x];
  }

  tangent(x: Node): number {
    return this.tan[x];
  }

  private grow(): void {
    const cap = this.cap * 2;
    const f = (old: Float64Array): Float64Array => {
      const a = new Float64Array(cap);
      a.set(old);
      return a;
    };
    const g = (old: Int32Array): Int32Array => {
      const a = new Int32Array(cap);
      a.set(old);
      return a;
    };
    this.val = f(this.val);
    this.tan = f(this.tan);
    this.pa = f(this.pa);
    this.pb = f(this.pb);
    this.haa = f(this.haa);
    this.hab = f(this.hab);
    this.hbb = f(this.hbb);
    this.pA = g(this.pA);
    this.pB = g(this.pB);
    this.cap = cap;
  }

  /** Appends a node with parents a, b (-1 for none), first partials and second partials. */
  private push(v: number, a: number, pa: number, b: number, pb: number, haa: number, hab: number, hbb: number): Node {
    if (this.n === this.cap) this.grow();
    const i = this.n++;
    this.val[i] = v;
    let t = 0;
    if (a >= 0) t += pa * this.tan[a];
    if (b >= 0) t += pb * this.tan[b];
    this.tan[i] = t;
    this.pA[i] = a;
    this.pB[i] = b;
    this.pa[i] = pa;
    this.pb[i] = pb;
    this.haa[i] = haa;
    this.hab[i] = hab;
    this.hbb[i] = hbb;
    return i;
  }

  private unary(x: Node, v: number, d1: number, d2: number): Node {
    return this.push(v, x, d1, -1, 0, d2, 0, 0);
  }

  /** A constant (zero tangent, no parents). */
  constant(v: number): Node {
    return this.push(v, -1, 0, -1, 0, 0, 0, 0);
  }

  /** An independent variable with the given tangent (its component of the seed direction v). */
  variable(v: number, tangent = 0): Node {
    const i = this.push(v, -1, 0, -1, 0, 0, 0, 0);
    this.tan[i] = tangent;
    return i;
  }

  add(x: Node, y: Node): Node {
    return this.push(this.val[x] + this.val[y], x, 1, y, 1, 0, 0, 0);
  }

  sub(x: Node, y: Node): Node {
    return this.push(this.val[x] - this.val[y], x, 1, y, -1, 0, 0, 0);
  }

  mul(x: Node, y: Node): Node {
    const a = this.val[x];
    const b = this.val[y];
    return this.push(a * b, x, b, y, a, 0, 1, 0);
  }

  div(x: Node, y: Node): Node {
    const a = this.val[x];
    const b = this.val[y];
    const ib = 1 / b;
    return this.push(a / b, x, ib, y, -a * ib * ib, 0, -ib * ib, 2 * a * ib * ib * ib);
  }

  neg(x: Node): Node {
    return this.unary(x, -this.val[x], -1, 0);
  }

  /** x * c for a constant c. */
  scale(x: Node, c: number): Node {
    return this.unary(x, this.val[x] * c, c, 0);
  }

  /** x + c for a constant c. */
  shift(x: Node, c: number): Node {
    return this.unary(x, this.val[x] + c, 1, 0);
  }

  exp(x: Node): Node {
    const e = Math.exp(this.val[x]);
    return this.unary(x, e, e, e);
  }

  log(x: Node): Node {
    const a = this.val[x];
    return this.unary(x, Math.log(a), 1 / a, -1 / (a * a));
  }

  tanh(x: Node): Node {
    const t = Math.tanh(this.val[x]);
    const d = 1 - t * t;
    return this.unary(x, t, d, -2 * t * d);
  }

  sigmoid(x: Node): Node {
    const s = sigmoid(this.val[x]);
    const d = s * (1 - s);
    return this.unary(x, s, d, d * (1 - 2 * s));
  }

  softplus(x: Node): Node {
    const a = this.val[x];
    const s = sigmoid(a);
    return this.unary(x, softplus(a), s, s * (1 - s));
  }

  relu(x: Node): Node {
    const a = this.val[x];
    return a > 0 ? this.unary(x, a, 1, 0) : this.unary(x, 0, 0, 0);
  }

  /** Leaky ReLU: x > 0 ? x : alpha x (derivative alpha at 0, as PyTorch). */
  leakyRelu(x: Node, alpha: number): Node {
    const a = this.val[x];
    return a > 0 ? this.unary(x, a, 1, 0) : this.unary(x, alpha * a, alpha, 0);
  }

  /** ELU with alpha = 1. */
  elu(x: Node): Node {
    const a = this.val[x];
    if (a > 0) return this.unary(x, a, 1, 0);
    const e = Math.exp(a);
    return this.unary(x, e - 1, e, e);
  }

  /** SELU with TF's constants. */
  selu(x: Node): Node {
    const a = this.val[x];
    if (a > 0) return this.unary(x, SELU_SCALE * a, SELU_SCALE, 0);
    const e = SELU_SCALE * SELU_ALPHA * Math.exp(a);
    return this.unary(x, SELU_SCALE * SELU_ALPHA * (Math.exp(a) - 1), e, e);
  }

  sqrt(x: Node): Node {
    const a = this.val[x];
    const s = Math.sqrt(a);
    return this.unary(x, s, 0.5 / s, -0.25 / (s * a));
  }

  square(x: Node): Node {
    const a = this.val[x];
    return this.unary(x, a * a, 2 * a, 2);
  }

  /** clip(x, lo, hi); derivative 1 on [lo, hi], 0 outside. */
  clip(x: Node, lo: number, hi: number): Node {
    const a = this.val[x];
    if (a < lo) return this.unary(x, lo, 0, 0);
    if (a > hi) return this.unary(x, hi, 0, 0);
    return this.unary(x, a, 1, 0);
  }

  /** The larger of x and y by value (x on ties); the derivative routes to that argument. */
  max(x: Node, y: Node): Node {
    const a = this.val[x];
    const b = this.val[y];
    return a >= b ? this.push(a, x, 1, y, 0, 0, 0, 0) : this.push(b, x, 0, y, 1, 0, 0, 0);
  }

  /** Sum of the nodes, left to right (a constant 0 when empty). */
  sum(xs: ArrayLike<Node>): Node {
    if (xs.length === 0) return this.constant(0);
    let s = xs[0];
    for (let i = 1; i < xs.length; i++) s = this.add(s, xs[i]);
    return s;
  }

  /**
   * Replaces the tangents of `vars` by `tangents` (all other leaves keep theirs, normally 0) and
   * recomputes every tangent by a forward sweep: the tape now carries the direction `tangents`.
   */
  reseed(vars: ArrayLike<Node>, tangents: ArrayLike<number>): void {
    if (vars.length !== tangents.length) throw new Error(`reseed: ${vars.length} vars but ${tangents.length} tangents`);
    for (let k = 0; k < vars.length; k++) {
      if (this.pA[vars[k]] >= 0 || this.pB[vars[k]] >= 0) throw new Error(`reseed: node ${vars[k]} is not a leaf`);
      this.tan[vars[k]] = tangents[k];
    }
    const { tan, pA, pB, pa, pb } = this;
    for (let i = 0; i < this.n; i++) {
      const a = pA[i];
      const b = pB[i];
      if (a < 0 && b < 0) continue;
      let t = 0;
      if (a >= 0) t += pa[i] * tan[a];
      if (b >= 0) t += pb[i] * tan[b];
      tan[i] = t;
    }
  }

  /**
   * Reverse sweep with dual adjoints from `output`: the gradient of output with respect to
   * `vars` (value parts) and the Hessian-vector product along the seeded tangents (tangent parts).
   */
  reverse(output: Node, vars: ArrayLike<Node>): GradHvp {
    const m = output + 1;
    const adjV = new Float64Array(m);
    const adjT = new Float64Array(m);
    adjV[output] = 1;
    const { tan, pA, pB, pa, pb, haa, hab, hbb } = this;
    for (let i = output; i >= 0; i--) {
      const gv = adjV[i];
      const gt = adjT[i];
      if (gv === 0 && gt === 0) continue;
      const a = pA[i];
      const b = pB[i];
      const ta = a >= 0 ? tan[a] : 0;
      const tb = b >= 0 ? tan[b] : 0;
      if (a >= 0) {
        const p = pa[i];
        adjV[a] += gv * p;
        adjT[a] += gt * p + gv * (haa[i] * ta + hab[i] * tb);
      }
      if (b >= 0) {
        const p = pb[i];
        adjV[b] += gv * p;
        adjT[b] += gt * p + gv * (hab[i] * ta + hbb[i] * tb);
      }
    }
    const grad = new Float64Array(vars.length);
    const hvp = new Float64Array(vars.length);
    for (let k = 0; k < vars.length; k++) {
      const j = vars[k];
      if (j < m) {
        grad[k] = adjV[j];
        hvp[k] = adjT[j];
      }
    }
    return { grad, hvp };
  }
}
