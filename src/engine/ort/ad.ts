/**
 * Symbolic differentiation on ONNX graphs. ONNX Runtime has no gradient kernels, so every
 * derivative is emitted as ordinary forward ops: each primitive here emits its forward node and
 * records two rules written in the same primitives,
 * - a VJP (reverse mode: the cotangents of its inputs from its output's cotangent), and
 * - a JVP (forward mode: its output's tangent from its inputs' tangents).
 * `grad` runs the VJPs backwards over the recorded forward ops (the gradient); `jvp` runs the
 * JVPs forwards over everything recorded, the gradient's own ops included. Seeded with v at the
 * parameters, the JVP of the gradient is the Hessian-vector product H v (forward-over-reverse:
 * Pearlmutter's R-operator, "Fast exact multiplication by the Hessian", 1994): the R-VJP of
 * every op is the JVP of its VJP's ops, so no op needs a hand-derived second-order rule. A dense
 * layer's weight gradient x^T g, for example, gets R(x)^T g + x^T R(g) from the product rule.
 *
 * Values are `Sym`s: a graph value name and its static shape, where -1 marks the batch axis (the
 * only dynamic one; at most one per shape). Only values that depend on the parameters ("live")
 * are recorded, and missing tangents or cotangents stand for zeros, so nothing is emitted for
 * derivatives that are identically zero (e.g. with respect to the data).
 */
import { Graph, type AttrValue } from './graph';

export interface Sym {
  readonly id: number;
  readonly name: string;
  /** Static shape; -1 is the (dynamic) batch axis. */
  readonly shape: readonly number[];
  /** Depends on the parameters. */
  readonly live: boolean;
}

type Maybe = Sym | undefined;
type Vjp = (g: Sym, need: boolean[]) => Maybe[];
type Jvp = (t: Maybe[]) => Maybe;

interface Rec {
  out: Sym;
  ins: Sym[];
  jvp: Jvp;
  vjp?: Vjp;
}

/** 2-D convolution geometry (NCHW), ONNX conventions: pads [top, left, bottom, right]. */
export interface ConvGeom {
  kernel: [number, number];
  strides: [number, number];
  pads: [number, number, number, number];
}

/** How filter gradients are emitted (see AD.convFilterGrad); tests and the benchmark set it. */
export const FILTER_GRAD: { mode: 'im2col' | 'conv' | 'windows' } = { mode: 'windows' };

function prod(s: readonly number[]): number {
  return s.reduce((a, b) => a * b, 1);
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Numpy broadcasting of static shapes (-1, the batch axis, broadcasts like any size > 1). */
export function broadcastShapes(a: readonly number[], b: readonly number[]): number[] {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const x = a[a.length - r + i] ?? 1;
    const y = b[b.length - r + i] ?? 1;
    if (x === y || y === 1) out.push(x);
    else if (x === 1) out.push(y);
    else throw new Error(`cannot broadcast [${a}] with [${b}]`);
  }
  return out;
}

/** Output size of a convolution or pooling axis. */
function convOut(n: number, k: number, s: number, before: number, after: number): number {
  return Math.floor((n + before + after - k) / s) + 1;
}

export class AD {
  readonly g: Graph;
  private readonly tape: Rec[] = [];
  private nextId = 0;

  constructor(g: Graph) {
    this.g = g;
  }

  sym(name: string, shape: readonly number[], live: boolean): Sym {
    this.g.noteShape(name, shape);
    return { id: this.nextId++, name, shape: [...shape], live };
  }

  /** A parameter: live, with no recorded producer (a leaf of differentiation). */
  leaf(name: string, shape: readonly number[]): Sym {
    return this.sym(name, shape, true);
  }

  /** A value with no derivative (data, constants, masks). */
  constant(name: string, shape: readonly number[]): Sym {
    return this.sym(name, shape, false);
  }

  constFloat(values: ArrayLike<number>, shape: number[]): Sym {
    return this.constant(this.g.constFloat(values, shape), shape);
  }

  scalar(v: number): Sym {
    return this.constant(this.g.scalar(v), []);
  }

  /** Emits `opType` and records it when an input is live. */
  private prim(opType: string, ins: Sym[], attrs: Record<string, AttrValue>, shape: readonly number[], jvp: Jvp, vjp?: Vjp, extraInputs: string[] = []): Sym {
    const name = this.g.op(opType, [...ins.map((s) => s.name), ...extraInputs], attrs);
    return this.record(name, shape, ins, jvp, vjp);
  }

  private record(name: string, shape: readonly number[], ins: Sym[], jvp: Jvp, vjp?: Vjp): Sym {
    const live = ins.some((s) => s.live);
    const out = this.sym(name, shape, live);
    if (live) this.tape.push({ out, ins, jvp, vjp });
    return out;
  }

  // ---------------------------------------------------------------------------------------------
  // Differentiation
  // ---------------------------------------------------------------------------------------------

  /**
   * Reverse mode: the cotangents of `wrt` (undefined where identically zero) of the scalar `y`,
   * seeded with `seed` (default 1). The VJP ops emitted are recorded for a later `jvp`.
   */
  grad(y: Sym, wrt: Sym[], seed?: Sym): Maybe[] {
    const ct = new Map<number, Sym>();
    ct.set(y.id, seed ?? this.scalar(1));
    const n = this.tape.length;
    for (let i = n - 1; i >= 0; i--) {
      const r = this.tape[i];
      const g = ct.get(r.out.id);
      if (!g) continue;
      if (!r.vjp) throw new Error(`no reverse-mode rule for ${r.out.name}`);
      const need = r.ins.map((s) => s.live);
      const gs = r.vjp(g, need);
      r.ins.forEach((s, j) => {
        const gj = gs[j];
        if (!gj || !s.live) return;
        if (!sameShape(gj.shape, s.shape)) throw new Error(`cotangent of ${s.name} has shape [${gj.shape}], expected [${s.shape}]`);
        const prev = ct.get(s.id);
        ct.set(s.id, prev ? this.add(prev, gj) : gj);
      });
    }
    return wrt.map((w) => ct.get(w.id));
  }

  /** Forward mode over everything recorded so far: the tangents of `targets` given the seeds. */
  jvp(seeds: Map<number, Sym>, targets: Maybe[]): Maybe[] {
    const tan = new Map(seeds);
    const n = this.tape.length;
    for (let i = 0; i < n; i++) {
      const r = this.tape[i];
      const ts = r.ins.map((s) => tan.get(s.id));
      if (ts.every((t) => t === undefined)) continue;
      const t = r.jvp(ts);
      if (t) {
        if (!sameShape(t.shape, r.out.shape)) throw new Error(`tangent of ${r.out.name} has shape [${t.shape}], expected [${r.out.shape}]`);
        tan.set(r.out.id, t);
      }
    }
    return targets.map((s) => (s ? tan.get(s.id) : undefined));
  }

  // ---------------------------------------------------------------------------------------------
  // Helpers without derivatives
  // ---------------------------------------------------------------------------------------------

  /** Shape of a value as an int64 tensor. */
  private shapeOf(x: Sym): string {
    return this.g.op('Shape', [x.name]);
  }

  /** Zeros shaped like `x`. */
  zerosLike(x: Sym): Sym {
    return this.constant(this.g.op('ConstantOfShape', [this.shapeOf(x)]), x.shape);
  }

  /** A 0/1 float mask: `x op c` (op: Greater, Less, GreaterOrEqual, LessOrEqual). */
  mask(x: Sym, op: string, c: number): Sym {
    return this.constant(this.g.op('Cast', [this.g.op(op, [x.name, this.g.scalar(c)])], { to: 1 }), x.shape);
  }

  /** A float op on values without derivatives. */
  raw(opType: string, ins: Sym[], shape: readonly number[], attrs: Record<string, AttrValue> = {}): Sym {
    return this.constant(this.g.op(opType, ins.map((s) => s.name), attrs), shape);
  }

  // ---------------------------------------------------------------------------------------------
  // Broadcasting and shapes
  // ---------------------------------------------------------------------------------------------

  /** Sums `g` down to `shape` (the adjoint of broadcasting `shape` to g's shape). */
  sumTo(g: Sym, shape: readonly number[]): Sym {
    if (sameShape(g.shape, shape)) return g;
    const lead = g.shape.length - shape.length;
    const axes: number[] = [];
    g.shape.forEach((d, i) => {
      if (i < lead || (shape[i - lead] === 1 && d !== 1)) axes.push(i);
    });
    const s = axes.length ? this.reduceSum(g, axes, true) : g;
    return sameShape(s.shape, shape) ? s : this.reshape(s, shape);
  }

  /** `a` broadcast to the shape of `like`. */
  expandTo(a: Sym, like: Sym): Sym {
    if (sameShape(a.shape, like.shape)) return a;
    const shape = broadcastShapes(a.shape, like.shape);
    if (!sameShape(shape, like.shape)) throw new Error(`cannot expand [${a.shape}] to [${like.shape}]`);
    const sh = this.shapeOf(like);
    return this.prim(
      'Expand',
      [a],
      {},
      shape,
      ([t]) => (t ? this.expandTo(t, like) : undefined),
      (g) => [this.sumTo(g, a.shape)],
      [sh],
    );
  }

  /** Sum of tangents that may be missing or of a broadcast shape, as a tangent of `out`. */
  private sumTangents(out: Sym, terms: Maybe[]): Maybe {
    let acc: Maybe;
    for (const t of terms) if (t) acc = acc ? this.add(acc, t) : t;
    return acc && !sameShape(acc.shape, out.shape) ? this.expandTo(acc, out) : acc;
  }

  reshape(a: Sym, shape: readonly number[]): Sym {
    if (sameShape(a.shape, shape)) return a;
    if (shape.filter((d) => d === -1).length > 1) throw new Error(`reshape to [${shape}] with two dynamic axes`);
    return this.prim(
      'Reshape',
      [a],
      {},
      shape,
      ([t]) => (t ? this.reshape(t, shape) : undefined),
      (g) => [this.reshape(g, a.shape)],
      [this.g.constInt64([...shape])],
    );
  }

  transpose(a: Sym, perm: number[]): Sym {
    const inv = new Array<number>(perm.length);
    perm.forEach((p, i) => (inv[p] = i));
    return this.prim(
      'Transpose',
      [a],
      { perm },
      perm.map((p) => a.shape[p]),
      ([t]) => (t ? this.transpose(t, perm) : undefined),
      (g) => [this.transpose(g, inv)],
    );
  }

  /** Sum over `axes` (all when undefined). */
  reduceSum(a: Sym, axes: number[] | undefined, keepdims: boolean): Sym {
    const r = a.shape.length;
    const ax = (axes ?? a.shape.map((_, i) => i)).map((i) => (i < 0 ? i + r : i));
    const keepShape = a.shape.map((d, i) => (ax.includes(i) ? 1 : d));
    const shape = keepdims ? keepShape : a.shape.filter((_, i) => !ax.includes(i));
    return this.prim(
      'ReduceSum',
      [a],
      { keepdims: keepdims ? 1 : 0 },
      shape,
      ([t]) => (t ? this.reduceSum(t, ax, keepdims) : undefined),
      (g) => [this.expandTo(keepdims ? g : this.reshape(g, keepShape), a)],
      [this.g.constInt64(ax)],
    );
  }

  concat(xs: Sym[], axis: number): Sym {
    const r = xs[0].shape.length;
    const ax = axis < 0 ? axis + r : axis;
    const shape = [...xs[0].shape];
    shape[ax] = xs.reduce((a, x) => a + x.shape[ax], 0);
    const name = this.g.op('Concat', xs.map((x) => x.name), { axis: ax });
    return this.record(
      name,
      shape,
      xs,
      (ts) => this.concat(ts.map((t, i) => t ?? this.zerosLike(xs[i])), ax),
      (g, need) => {
        let off = 0;
        return xs.map((x, i) => {
          const s = off;
          off += x.shape[ax];
          return need[i] ? this.slice(g, ax, s, off) : undefined;
        });
      },
    );
  }

  /** x[..., start:end, ...] along a static axis; its reverse rule pads with zeros. */
  slice(a: Sym, axis: number, start: number, end: number): Sym {
    const shape = [...a.shape];
    shape[axis] = end - start;
    return this.prim(
      'Slice',
      [a],
      {},
      shape,
      ([t]) => (t ? this.slice(t, axis, start, end) : undefined),
      (g) => [this.padAxis(g, axis, start, a.shape[axis] - end)],
      [this.g.constInt64([start]), this.g.constInt64([end]), this.g.constInt64([axis])],
    );
  }

  /** Zeros before and after along a static axis. Linear. */
  padAxis(a: Sym, axis: number, before: number, after: number): Sym {
    if (before === 0 && after === 0) return a;
    const r = a.shape.length;
    const pads = new Array<number>(2 * r).fill(0);
    pads[axis] = before;
    pads[r + axis] = after;
    const shape = [...a.shape];
    shape[axis] += before + after;
    return this.prim(
      'Pad',
      [a],
      {},
      shape,
      ([t]) => (t ? this.padAxis(t, axis, before, after) : undefined),
      (g) => [this.slice(g, axis, before, before + a.shape[axis])],
      [this.g.constInt64(pads)],
    );
  }

  // ---------------------------------------------------------------------------------------------
  // Arithmetic
  // ---------------------------------------------------------------------------------------------

  add(a: Sym, b: Sym): Sym {
    const shape = broadcastShapes(a.shape, b.shape);
    const out: Sym = this.prim(
      'Add',
      [a, b],
      {},
      shape,
      ([da, db]) => this.sumTangents(out, [da, db]),
      (g, need) => [need[0] ? this.sumTo(g, a.shape) : undefined, need[1] ? this.sumTo(g, b.shape) : undefined],
    );
    return out;
  }

  sub(a: Sym, b: Sym): Sym {
    const shape = broadcastShapes(a.shape, b.shape);
    const out: Sym = this.prim(
      'Sub',
      [a, b],
      {},
      shape,
      ([da, db]) => this.sumTangents(out, [da, db ? this.neg(db) : undefined]),
      (g, need) => [need[0] ? this.sumTo(g, a.shape) : undefined, need[1] ? this.sumTo(this.neg(g), b.shape) : undefined],
    );
    return out;
  }

  neg(a: Sym): Sym {
    return this.prim('Neg', [a], {}, a.shape, ([t]) => (t ? this.neg(t) : undefined), (g) => [this.neg(g)]);
  }

  mul(a: Sym, b: Sym): Sym {
    const shape = broadcastShapes(a.shape, b.shape);
    const out: Sym = this.prim(
      'Mul',
      [a, b],
      {},
      shape,
      ([da, db]) => this.sumTangents(out, [da ? this.mul(da, b) : undefined, db ? this.mul(a, db) : undefined]),
      (g, need) => [need[0] ? this.sumTo(this.mul(g, b), a.shape) : undefined, need[1] ? this.sumTo(this.mul(g, a), b.shape) : undefined],
    );
    return out;
  }

  /** a * c for a number c. */
  scale(a: Sym, c: number): Sym {
    return c === 1 ? a : this.mul(a, this.scalar(c));
  }

  // ---------------------------------------------------------------------------------------------
  // Elementwise functions: f(x) with derivative d (emitted lazily, in differentiable primitives)
  // ---------------------------------------------------------------------------------------------

  private unary(opType: string, x: Sym, attrs: Record<string, AttrValue>, deriv: (y: Sym) => Sym): Sym {
    let d: Sym | undefined;
    const dOf = (): Sym => (d ??= deriv(out));
    const out: Sym = this.prim(
      opType,
      [x],
      attrs,
      x.shape,
      ([t]) => (t ? this.mul(t, dOf()) : undefined),
      (g) => [this.mul(g, dOf())],
    );
    return out;
  }

  exp(x: Sym): Sym {
    return this.unary('Exp', x, {}, (y) => y);
  }

  log(x: Sym): Sym {
    return this.unary('Log', x, {}, () => this.reciprocal(x));
  }

  reciprocal(x: Sym): Sym {
    return this.unary('Reciprocal', x, {}, (y) => this.neg(this.mul(y, y)));
  }

  tanh(x: Sym): Sym {
    return this.unary('Tanh', x, {}, (y) => this.sub(this.scalar(1), this.mul(y, y)));
  }

  sigmoid(x: Sym): Sym {
    return this.unary('Sigmoid', x, {}, (y) => this.mul(y, this.sub(this.scalar(1), y)));
  }

  softplus(x: Sym): Sym {
    return this.unary('Softplus', x, {}, () => this.sigmoid(x));
  }

  relu(x: Sym): Sym {
    return this.unary('Relu', x, {}, () => this.mask(x, 'Greater', 0));
  }

  /**
   * Leaky ReLU, x > 0 ? x : alpha x; derivative alpha + (1 - alpha) [x > 0] (alpha at 0, as
   * PyTorch), a constant mask whose own derivative is zero.
   */
  leakyRelu(x: Sym, alpha: number): Sym {
    return this.unary('LeakyRelu', x, { alpha: { f: alpha } }, () => {
      const m = this.mask(x, 'Greater', 0);
      return this.raw('Add', [this.raw('Mul', [m, this.scalar(1 - alpha)], m.shape), this.scalar(alpha)], m.shape);
    });
  }

  /** exp(min(x, 0)) = exp(x - relu(x)): elu's derivative (alpha 1), in differentiable ops. */
  private expNeg(x: Sym): Sym {
    return this.exp(this.sub(x, this.relu(x)));
  }

  elu(x: Sym): Sym {
    return this.unary('Elu', x, { alpha: { f: 1 } }, () => this.expNeg(x));
  }

  /** selu with TensorFlow's constants; derivative scale * (x > 0 ? 1 : alpha exp(x)). */
  selu(x: Sym): Sym {
    return this.unary('Selu', x, { alpha: { f: SELU_ALPHA }, gamma: { f: SELU_SCALE } }, () => {
      const m = this.mask(x, 'Greater', 0);
      const one = this.scalar(1);
      const neg = this.raw('Mul', [this.raw('Sub', [one, m], m.shape), this.scalar(SELU_SCALE * SELU_ALPHA)], m.shape);
      const pos = this.raw('Mul', [m, this.scalar(SELU_SCALE)], m.shape);
      return this.add(this.mul(this.expNeg(x), neg), pos);
    });
  }

  /** clip(x, lo, hi); derivative 1 on the closed interval (as TF.js's clipByValue). */
  clip(x: Sym, lo: number, hi: number): Sym {
    const inside = (): Sym => {
      const a = this.g.op('GreaterOrEqual', [x.name, this.g.scalar(lo)]);
      const b = this.g.op('LessOrEqual', [x.name, this.g.scalar(hi)]);
      return this.constant(this.g.op('Cast', [this.g.op('And', [a, b])], { to: 1 }), x.shape);
    };
    let m: Sym | undefined;
    const out: Sym = this.prim(
      'Clip',
      [x],
      {},
      x.shape,
      ([t]) => (t ? this.mul(t, (m ??= inside())) : undefined),
      (g) => [this.mul(g, (m ??= inside()))],
      [this.g.scalar(lo), this.g.scalar(hi)],
    );
    return out;
  }

  softmax(x: Sym, axis: number): Sym {
    const ax = axis < 0 ? axis + x.shape.length : axis;
    const rule = (y: Sym, t: Sym): Sym => this.mul(y, this.sub(t, this.reduceSum(this.mul(t, y), [ax], true)));
    const out: Sym = this.prim(
      'Softmax',
      [x],
      { axis: ax },
      x.shape,
      ([t]) => (t ? rule(out, t) : undefined),
      (g) => [rule(out, g)],
    );
    return out;
  }

  logSoftmax(x: Sym, axis: number): Sym {
    const ax = axis < 0 ? axis + x.shape.length : axis;
    let p: Sym | undefined;
    const probs = (): Sym => (p ??= this.exp(out));
    const out: Sym = this.prim(
      'LogSoftmax',
      [x],
      { axis: ax },
      x.shape,
      ([t]) => (t ? this.sub(t, this.reduceSum(this.mul(probs(), t), [ax], true)) : undefined),
      (g) => [this.sub(g, this.mul(probs(), this.reduceSum(g, [ax], true)))],
    );
    return out;
  }

  // ---------------------------------------------------------------------------------------------
  // Linear algebra
  // ---------------------------------------------------------------------------------------------

  /** op(a) op(b) for 2-D a, b (op: transpose when the flag is set): ONNX Gemm. */
  gemm(a: Sym, b: Sym, tA = false, tB = false): Sym {
    if (a.shape.length !== 2 || b.shape.length !== 2) throw new Error('gemm needs 2-D operands');
    const shape = [tA ? a.shape[1] : a.shape[0], tB ? b.shape[0] : b.shape[1]];
    return this.prim(
      'Gemm',
      [a, b],
      { transA: tA ? 1 : 0, transB: tB ? 1 : 0 },
      shape,
      ([da, db]) => {
        const terms = [da ? this.gemm(da, b, tA, tB) : undefined, db ? this.gemm(a, db, tA, tB) : undefined];
        return terms[0] && terms[1] ? this.add(terms[0], terms[1]) : (terms[0] ?? terms[1]);
      },
      (g, need) => [
        need[0] ? (tA ? this.gemm(b, g, tB, true) : this.gemm(g, b, false, !tB)) : undefined,
        need[1] ? (tB ? this.gemm(g, a, true, tA) : this.gemm(a, g, !tA, false)) : undefined,
      ],
    );
  }

  /**
   * 2-D convolution, NCHW input x [N, C, H, W], filter w [M, C, kh, kw] (group 1). Its reverse rules
   * are the two other bilinear maps of the same trilinear form <g, conv(x, w)>: the input gradient
   * (a ConvTranspose) and the filter gradient.
   */
  conv(x: Sym, w: Sym, geom: ConvGeom): Sym {
    const [, , h, wd] = x.shape;
    const [m] = w.shape;
    const [pt, pl, pb, pr] = geom.pads;
    const shape = [x.shape[0], m, convOut(h, geom.kernel[0], geom.strides[0], pt, pb), convOut(wd, geom.kernel[1], geom.strides[1], pl, pr)];
    return this.prim(
      'Conv',
      [x, w],
      { kernel_shape: geom.kernel, strides: geom.strides, pads: geom.pads },
      shape,
      ([dx, dw]) => this.bilinear(dx ? this.conv(dx, w, geom) : undefined, dw ? this.conv(x, dw, geom) : undefined),
      (g, need) => [need[0] ? this.convInputGrad(g, w, geom, x.shape) : undefined, need[1] ? this.convFilterGrad(x, g, geom, w.shape) : undefined],
    );
  }

  private bilinear(a: Maybe, b: Maybe): Maybe {
    return a && b ? this.add(a, b) : (a ?? b);
  }

  /** The adjoint of conv(., w): ConvTranspose, with output_padding restoring the input size. */
  convInputGrad(g: Sym, w: Sym, geom: ConvGeom, xShape: readonly number[]): Sym {
    const [pt, pl, pb, pr] = geom.pads;
    const [sh, sw] = geom.strides;
    const [kh, kw] = geom.kernel;
    const oph = xShape[2] - (sh * (g.shape[2] - 1) + kh - pt - pb);
    const opw = xShape[3] - (sw * (g.shape[3] - 1) + kw - pl - pr);
    return this.prim(
      'ConvTranspose',
      [g, w],
      { kernel_shape: geom.kernel, strides: geom.strides, pads: geom.pads, output_padding: [oph, opw] },
      [g.shape[0], w.shape[1], xShape[2], xShape[3]],
      ([dg, dw]) => this.bilinear(dg ? this.convInputGrad(dg, w, geom, xShape) : undefined, dw ? this.convInputGrad(g, dw, geom, xShape) : undefined),
    );
  }

  /**
   * The filter gradient dW[m,c,r,q] = sum_{n,oh,ow} g[n,m,oh,ow] xpad[n,c,oh*s+r,ow*s+q]. By
   * default one Gemm per kernel offset (r, q): g laid out [m, n*oh*ow] times the (r, q) strided
   * window of the padded input, [c, n*oh*ow] (built once per input and shared), the kh*kw [m, c]
   * results stacked. im2col (the windows concatenated, [c*kh*kw, n*oh*ow], and one Gemm) does the
   * same arithmetic but copies every window once more: on the MNIST-sized convnet of the benchmark
   * an H·v took 13% longer that way (`FILTER_GRAD.mode = 'im2col'`), and a Conv of x with g with
   * the batch and channel axes swapped (the stride becomes a dilation) 2-4x longer (`'conv'`).
   */
  convFilterGrad(x: Sym, g: Sym, geom: ConvGeom, wShape: readonly number[]): Sym {
    const [m, c, kh, kw] = wShape;
    const [oh, ow] = [g.shape[2], g.shape[3]];
    const gt = this.g.reshape(this.g.op('Transpose', [g.name], { perm: [1, 0, 2, 3] }), [m, -1]);
    const name =
      FILTER_GRAD.mode === 'conv'
        ? this.convFilterGradByConv(x, g, geom, wShape)
        : FILTER_GRAD.mode === 'windows'
          ? this.convFilterGradByWindows(x, gt, geom, wShape, oh, ow)
          : this.g.reshape(this.g.gemm(gt, this.im2col(x, geom, oh, ow), false, true), [m, c, kh, kw]);
    return this.record(name, [m, c, kh, kw], [x, g], ([dx, dg]) =>
      this.bilinear(dx ? this.convFilterGrad(dx, g, geom, wShape) : undefined, dg ? this.convFilterGrad(x, dg, geom, wShape) : undefined),
    );
  }

  private readonly cols = new Map<string, string>();
  private readonly wins = new Map<string, string[]>();

  /** One Gemm per kernel offset (r, q): g [m, n*oh*ow] times window (r, q) of x, [c, n*oh*ow]; stacked [m, c, kh, kw]. */
  private convFilterGradByWindows(x: Sym, gt: string, geom: ConvGeom, wShape: readonly number[], oh: number, ow: number): string {
    const [m, c, kh, kw] = wShape;
    const parts = this.windows(x, geom, oh, ow).map((win) => this.g.op('Unsqueeze', [this.g.gemm(gt, this.g.reshape(win, [c, -1]), false, true), this.g.constInt64([2])]));
    return this.g.reshape(parts.length === 1 ? parts[0] : this.g.op('Concat', parts, { axis: 2 }), [m, c, kh, kw]);
  }

  /** x's kh*kw strided windows, each [c, n, oh, ow] (row-major over (r, q)), built once per input. */
  private windows(x: Sym, geom: ConvGeom, oh: number, ow: number): string[] {
    const key = `${x.name}|${JSON.stringify(geom)}`;
    const hit = this.wins.get(key);
    if (hit) return hit;
    const [, , h, w] = x.shape;
    const [kh, kw] = geom.kernel;
    const [sh, sw] = geom.strides;
    const [pt, pl] = geom.pads;
    // Pad so that every window is in range (the bottom/right pads TF adds, or none for valid).
    const pb = Math.max(0, sh * (oh - 1) + kh - h - pt);
    const pr = Math.max(0, sw * (ow - 1) + kw - w - pl);
    let xt = this.g.op('Transpose', [x.name], { perm: [1, 0, 2, 3] });
    if (pt || pl || pb || pr) xt = this.g.op('Pad', [xt, this.g.constInt64([0, 0, pt, pl, 0, 0, pb, pr])]);
    const out: string[] = [];
    for (let r = 0; r < kh; r++) {
      for (let q = 0; q < kw; q++) {
        out.push(this.g.op('Slice', [xt, this.g.constInt64([r, q]), this.g.constInt64([r + sh * (oh - 1) + 1, q + sw * (ow - 1) + 1]), this.g.constInt64([2, 3]), this.g.constInt64([sh, sw])]));
      }
    }
    this.wins.set(key, out);
    return out;
  }

  /** x's kh*kw strided windows as [c*kh*kw, n*oh*ow] (row (c, r, q), column (n, oh, ow)): the windows concatenated. */
  private im2col(x: Sym, geom: ConvGeom, oh: number, ow: number): string {
    const key = `${x.name}|${JSON.stringify(geom)}`;
    const hit = this.cols.get(key);
    if (hit) return hit;
    const c = x.shape[1];
    const windows = this.windows(x, geom, oh, ow).map((win) => this.g.op('Unsqueeze', [win, this.g.constInt64([1])]));
    const stacked = windows.length === 1 ? windows[0] : this.g.op('Concat', windows, { axis: 1 });
    const cols = this.g.reshape(stacked, [c * geom.kernel[0] * geom.kernel[1], -1]);
    this.cols.set(key, cols);
    return cols;
  }

  private convFilterGradByConv(x: Sym, g: Sym, geom: ConvGeom, wShape: readonly number[]): string {
    const [, , kh, kw] = wShape;
    const [pt, pl] = geom.pads;
    const [sh, sw] = geom.strides;
    const [h, wd] = [x.shape[2], x.shape[3]];
    const [oh, ow] = [g.shape[2], g.shape[3]];
    const needB = kh + sh * (oh - 1) - h - pt;
    const needR = kw + sw * (ow - 1) - wd - pl;
    const xt = this.g.op('Transpose', [x.name], { perm: [1, 0, 2, 3] });
    const gt = this.g.op('Transpose', [g.name], { perm: [1, 0, 2, 3] });
    let r = this.g.op('Conv', [xt, gt], { kernel_shape: [oh, ow], dilations: [sh, sw], pads: [pt, pl, Math.max(needB, 0), Math.max(needR, 0)] });
    if (needB < 0 || needR < 0) r = this.g.slice(r, [0, 0], [kh, kw], [2, 3]);
    return this.g.op('Transpose', [r], { perm: [1, 0, 2, 3] });
  }

  // ---------------------------------------------------------------------------------------------
  // Pooling (NCHW)
  // ---------------------------------------------------------------------------------------------

  /**
   * Max pooling; padded cells never win (as TensorFlow). The winners' positions (MaxPool's Indices
   * output) make it linear in x for the derivatives: a gather forward, a scatter-add backward.
   */
  maxPool(x: Sym, geom: ConvGeom): Sym {
    const [, c, h, w] = x.shape;
    if (geom.strides[0] === geom.kernel[0] && geom.strides[1] === geom.kernel[1] && geom.pads.every((p) => p === 0)) return this.tiledMaxPool(x, geom);
    const [y, indices] = this.g.node('MaxPool', [x.name], { kernel_shape: geom.kernel, strides: geom.strides, pads: geom.pads }, 2);
    const oh = convOut(h, geom.kernel[0], geom.strides[0], geom.pads[0], geom.pads[2]);
    const ow = convOut(w, geom.kernel[1], geom.strides[1], geom.pads[1], geom.pads[3]);
    // Indices count over the whole NCHW tensor; the position within one [H, W] plane is idx mod HW.
    const idx = this.g.reshape(this.g.op('Mod', [indices, this.g.constInt64([h * w], [])]), [-1, c, oh * ow]);
    const shape = [x.shape[0], c, oh, ow];
    return this.record(
      y,
      shape,
      [x],
      ([t]) => (t ? this.gatherPlane(t, idx, shape) : undefined),
      (g) => [this.scatterPlane(g, idx, x)],
    );
  }

  /**
   * Max pooling whose windows tile the input (stride = pool size, no padding), differentiated
   * through the mask of each window's first maximum (row-major in the window, as PyTorch's and
   * TensorFlow's argmax): the reverse rule is the mask times g upsampled to the input, the forward
   * rule a sum pooling of the masked tangent. Mostly same-shape elementwise ops, which ONNX Runtime
   * runs much faster than a scatter. Ties are common (a constant region, such as an image's blank
   * border under a positive bias, gives every window of it equal values), and a mask of all the
   * tied maxima would route the gradient to each of them: a gradient k times too large, which is no
   * subgradient. The mask compares each cell's position in its plane with the position of its
   * window's winner, MaxPool's Indices output (the first maximum in row-major order: the kernel
   * replaces its running maximum only on a strictly greater value), upsampled over the window.
   */
  private tiledMaxPool(x: Sym, geom: ConvGeom): Sym {
    const [, c, h, w] = x.shape;
    const [ph, pw] = geom.kernel;
    const [oh, ow] = [Math.floor(h / ph), Math.floor(w / pw)];
    let xc = x;
    if (oh * ph !== h) xc = this.slice(xc, 2, 0, oh * ph);
    if (ow * pw !== w) xc = this.slice(xc, 3, 0, ow * pw);
    const [y, indices] = this.g.node('MaxPool', [xc.name], { kernel_shape: geom.kernel, strides: geom.strides }, 2);
    const plane = oh * ph * ow * pw;
    // Indices count over the whole NCHW tensor; idx mod plane is the position within the plane
    // (below 2^24, so exact in float32, which Resize takes).
    const winner = this.g.op('Cast', [this.g.op('Mod', [indices, this.g.constInt64([plane], [])])], { to: 1 });
    const up = this.g.op('Resize', [winner, '', this.g.constFloat([1, 1, ph, pw], [4])], { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' });
    const position = this.g.constFloat(Float32Array.from({ length: plane }, (_, i) => i), [1, 1, oh * ph, ow * pw]);
    const mask = this.constant(this.g.op('Cast', [this.g.op('Equal', [up, position])], { to: 1 }), xc.shape);
    const shape = [x.shape[0], c, oh, ow];
    return this.record(
      y,
      shape,
      [xc],
      ([t]) => (t ? this.sumPool(this.mul(t, mask), ph, pw) : undefined),
      (g) => [this.mul(this.upsample(g, ph, pw), mask)],
    );
  }

  /** Each cell repeated over a ph x pw block (nearest-neighbour upsampling). Linear. */
  upsample(a: Sym, ph: number, pw: number): Sym {
    const shape = [a.shape[0], a.shape[1], a.shape[2] * ph, a.shape[3] * pw];
    return this.prim(
      'Resize',
      [a],
      { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' },
      shape,
      ([t]) => (t ? this.upsample(t, ph, pw) : undefined),
      (g) => [this.sumPool(g, ph, pw)],
      ['', this.g.constFloat([1, 1, ph, pw], [4])],
    );
  }

  /** Sums over tiling ph x pw blocks (the adjoint of upsample). Linear. */
  sumPool(a: Sym, ph: number, pw: number): Sym {
    return this.scale(this.meanPool(a, ph, pw), ph * pw);
  }

  /** Means over tiling ph x pw blocks. Linear. */
  meanPool(a: Sym, ph: number, pw: number): Sym {
    return this.prim(
      'AveragePool',
      [a],
      { kernel_shape: [ph, pw], strides: [ph, pw] },
      [a.shape[0], a.shape[1], a.shape[2] / ph, a.shape[3] / pw],
      ([t]) => (t ? this.meanPool(t, ph, pw) : undefined),
      (g) => [this.upsample(this.scale(g, 1 / (ph * pw)), ph, pw)],
    );
  }

  /** out[n, c, k] = x[n, c, idx[n, c, k]] over flattened planes. Linear in x. */
  private gatherPlane(x: Sym, idx: string, shape: readonly number[]): Sym {
    const [, c, h, w] = x.shape;
    const x3 = this.g.reshape(x.name, [-1, c, h * w]);
    const name = this.g.reshape(this.g.op('GatherElements', [x3, idx], { axis: 2 }), [...shape]);
    return this.record(name, shape, [x], ([t]) => (t ? this.gatherPlane(t, idx, shape) : undefined));
  }

  /** The adjoint of gatherPlane: g scattered (added) into zeros shaped like `like`. Linear in g. */
  private scatterPlane(g: Sym, idx: string, like: Sym): Sym {
    const [, c, h, w] = like.shape;
    const g3 = this.g.reshape(g.name, [-1, c, g.shape[2] * g.shape[3]]);
    const shape3 = this.g.op('Concat', [this.g.slice(this.g.op('Shape', [like.name]), [0], [1], [0]), this.g.constInt64([c, h * w])], { axis: 0 });
    const z = this.g.op('ConstantOfShape', [shape3], {});
    const s = this.g.op('ScatterElements', [z, idx, g3], { axis: 2, reduction: 'add' });
    const name = this.g.reshape(s, [...like.shape]);
    return this.record(name, like.shape, [g], ([t]) => (t ? this.scatterPlane(t, idx, like) : undefined));
  }

  /** Average pooling over the in-bounds cells only (count_include_pad 0, as TensorFlow). */
  avgPool(x: Sym, geom: ConvGeom): Sym {
    const [, c, h, w] = x.shape;
    const oh = convOut(h, geom.kernel[0], geom.strides[0], geom.pads[0], geom.pads[2]);
    const ow = convOut(w, geom.kernel[1], geom.strides[1], geom.pads[1], geom.pads[3]);
    const shape = [x.shape[0], c, oh, ow];
    return this.prim(
      'AveragePool',
      [x],
      { kernel_shape: geom.kernel, strides: geom.strides, pads: geom.pads, count_include_pad: 0 },
      shape,
      ([t]) => (t ? this.avgPool(t, geom) : undefined),
      (g) => [this.avgPoolAdjoint(g, geom, x.shape)],
    );
  }

  /**
   * The adjoint of average pooling: g divided by each window's in-bounds count, spread back over
   * the window by a depthwise ConvTranspose with a kernel of ones.
   */
  avgPoolAdjoint(g: Sym, geom: ConvGeom, xShape: readonly number[]): Sym {
    const [, c, h, w] = xShape;
    const [oh, ow] = [g.shape[2], g.shape[3]];
    const [kh, kw] = geom.kernel;
    const [sh, sw] = geom.strides;
    const [pt, pl, pb, pr] = geom.pads;
    const inv = new Float32Array(oh * ow);
    for (let i = 0; i < oh; i++) {
      const rows = Math.min(i * sh - pt + kh, h) - Math.max(i * sh - pt, 0);
      for (let j = 0; j < ow; j++) {
        const cols = Math.min(j * sw - pl + kw, w) - Math.max(j * sw - pl, 0);
        inv[i * ow + j] = 1 / (rows * cols);
      }
    }
    const invCount = this.g.constFloat(inv, [1, 1, oh, ow]);
    const ones = this.g.constFloat(new Float32Array(c * kh * kw).fill(1), [c, 1, kh, kw]);
    const oph = h - (sh * (oh - 1) + kh - pt - pb);
    const opw = w - (sw * (ow - 1) + kw - pl - pr);
    const name = this.g.op('ConvTranspose', [this.g.op('Mul', [g.name, invCount]), ones], {
      kernel_shape: geom.kernel,
      strides: geom.strides,
      pads: geom.pads,
      output_padding: [oph, opw],
      group: c,
    });
    const shape = [g.shape[0], c, h, w];
    return this.record(name, shape, [g], ([t]) => (t ? this.avgPoolAdjoint(t, geom, xShape) : undefined));
  }
}

/** selu's constants, as TensorFlow and Keras. */
export const SELU_ALPHA = 1.6732632423543772;
export const SELU_SCALE = 1.0507009873554805;

export { prod };
