/**
 * The float64 reference ("oracle") for Basin's model IR: an interpreter of `ModelIR` over the
 * scalar forward-over-reverse differentiator in `dual.ts`, independent of TF.js. It gives a
 * model's outputs, loss, exact gradient, exact Hessian-vector products (forward-over-reverse,
 * Pearlmutter 1994) and dense Hessian, against which the float32 TF.js numbers are tested.
 *
 * It follows the semantics documented in `src/engine/model/ir.ts` literally: NHWC, Dense kernels
 * `[in, out]`, Conv2D kernels `[kh, kw, cin, cout]`, TensorFlow `same` padding (the smaller half
 * before), max pooling over in-bounds elements, average pooling over in-bounds elements only,
 * inference-mode batch normalization and dropout, and the loss definitions (softmax +
 * categoricalCrossentropy and sigmoid + binaryCrossentropy computed from the logits; otherwise
 * the output activation is applied and probabilities are clipped to [1e-7, 1 - 1e-7]).
 *
 * Also here: small IR builders (`IRBuilder`, `sequentialIR`, `mlpIR`, `convIR`) so tests can make
 * valid IRs without TF.js, and seeded random parameters and problems.
 */
import {
  CLIP_EPS,
  outputActivation,
  type Activation,
  type ConstInfo,
  type ConstRef,
  type IRNode,
  type LayerOp,
  type LossName,
  type ModelIR,
  type Padding,
  type ParamInfo,
  type ParamRef,
} from '../../src/engine/model/ir';
import { Rng } from '../../src/engine/rng';
import { Tape, type Node } from './dual';

/** A model, its flat parameters and a batch of data: everything the loss depends on. */
export interface RefProblem {
  ir: ModelIR;
  /** Flat parameter vector, in `ir.params` order, each parameter row-major. */
  params: Float64Array;
  /** Inputs, row-major, batch first. */
  x: Float64Array;
  /** Shape of `x` including the batch dimension first. */
  xShape: number[];
  /** Targets, row-major, batch first. */
  y: Float64Array;
  /** Shape of `y` including the batch dimension first. */
  yShape: number[];
  loss: LossName;
}

/** The problem with its numbers rounded to float32 (what the engines see), so both sides compute the same function. */
export function asFloat32(p: RefProblem): RefProblem {
  const r = (a: Float64Array): Float64Array => Float64Array.from(Float32Array.from(a));
  return { ...p, params: r(p.params), x: r(p.x), y: r(p.y) };
}

// ---------------------------------------------------------------------------------------------
// Shapes
// ---------------------------------------------------------------------------------------------

function prod(shape: readonly number[]): number {
  let p = 1;
  for (const d of shape) p *= d;
  return p;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Output length and padding before, along one spatial axis, with TensorFlow's rules. */
export function windowGeometry(n: number, k: number, s: number, padding: Padding): { out: number; before: number } {
  if (padding === 'valid') {
    const out = Math.ceil((n - k + 1) / s);
    if (out < 1) throw new Error(`window ${k} does not fit in ${n} with valid padding`);
    return { out, before: 0 };
  }
  const out = Math.ceil(n / s);
  const total = Math.max((out - 1) * s + k - n, 0);
  return { out, before: Math.floor(total / 2) };
}

/** The output shape (no batch dimension) of an op given its input shapes. */
export function inferShape(op: LayerOp, inShapes: number[][]): number[] {
  const rank3 = (what: string): number[] => {
    const s = inShapes[0];
    if (s === undefined || s.length !== 3) throw new Error(`${what} needs an [h, w, c] input, got [${s}]`);
    return s;
  };
  switch (op.kind) {
    case 'input':
      return [...op.shape];
    case 'dense':
      return [...inShapes[0].slice(0, -1), op.units];
    case 'conv2d': {
      const [h, w] = rank3('conv2d');
      const gh = windowGeometry(h, op.kernelSize[0], op.strides[0], op.padding);
      const gw = windowGeometry(w, op.kernelSize[1], op.strides[1], op.padding);
      return [gh.out, gw.out, op.filters];
    }
    case 'maxPool2d':
    case 'avgPool2d': {
      const [h, w, c] = rank3(op.kind);
      const gh = windowGeometry(h, op.poolSize[0], op.strides[0], op.padding);
      const gw = windowGeometry(w, op.poolSize[1], op.strides[1], op.padding);
      return [gh.out, gw.out, c];
    }
    case 'globalAvgPool2d':
      return [rank3('globalAvgPool2d')[2]];
    case 'flatten':
      return [prod(inShapes[0])];
    case 'dropout':
    case 'batchNorm':
    case 'activation':
    case 'leakyRelu':
      return [...inShapes[0]];
    case 'add': {
      if (inShapes.length < 1) throw new Error('add needs inputs');
      for (const s of inShapes) {
        if (!sameShape(s, inShapes[0])) throw new Error(`add of mismatched shapes [${s}] and [${inShapes[0]}]`);
      }
      return [...inShapes[0]];
    }
    case 'concatenate': {
      if (inShapes.length < 1) throw new Error('concatenate needs inputs');
      const lead = inShapes[0].slice(0, -1);
      let last = 0;
      for (const s of inShapes) {
        if (!sameShape(s.slice(0, -1), lead)) {
          throw new Error(`concatenate of mismatched shapes [${s}] and [${inShapes[0]}]`);
        }
        last += s[s.length - 1];
      }
      return [...lead, last];
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Interpreter
// ---------------------------------------------------------------------------------------------

/** Whether the output activation is folded into the loss (computed from the logits). */
export function foldsOutputActivation(ir: ModelIR, loss: LossName): boolean {
  const act = outputActivation(ir);
  return (
    (loss === 'categoricalCrossentropy' && act === 'softmax') || (loss === 'binaryCrossentropy' && act === 'sigmoid')
  );
}

/** Applies an activation elementwise (softmax over the last axis of length `last`). */
function applyActivation(tape: Tape, xs: Node[], last: number, act: Activation): Node[] {
  switch (act) {
    case 'linear':
      return xs;
    case 'relu':
      return xs.map((x) => tape.relu(x));
    case 'elu':
      return xs.map((x) => tape.elu(x));
    case 'selu':
      return xs.map((x) => tape.selu(x));
    case 'tanh':
      return xs.map((x) => tape.tanh(x));
    case 'sigmoid':
      return xs.map((x) => tape.sigmoid(x));
    case 'softplus':
      return xs.map((x) => tape.softplus(x));
    case 'softmax': {
      const out: Node[] = new Array<Node>(xs.length);
      for (let g = 0; g < xs.length; g += last) {
        // exp(z - m) / sum exp(z - m) with m a constant (the max): exact for any m.
        let m = -Infinity;
        for (let j = 0; j < last; j++) m = Math.max(m, tape.value(xs[g + j]));
        const es: Node[] = [];
        for (let j = 0; j < last; j++) es.push(tape.exp(tape.shift(xs[g + j], -m)));
        const s = tape.sum(es);
        for (let j = 0; j < last; j++) out[g + j] = tape.div(es[j], s);
      }
      return out;
    }
  }
}

/** log(sum_j exp(z_j)) over one group, shifted by the (constant) max for stability. */
function logSumExp(tape: Tape, zs: Node[]): Node {
  let m = -Infinity;
  for (const z of zs) m = Math.max(m, tape.value(z));
  const s = tape.sum(zs.map((z) => tape.exp(tape.shift(z, -m))));
  return tape.shift(tape.log(s), m);
}

class Interpreter {
  /** Shapes (no batch) of every node, validated against `outShape`. */
  readonly shapes: number[][];

  constructor(
    readonly ir: ModelIR,
    private readonly tape: Tape,
    /** Tape node of every flat parameter scalar. */
    private readonly vars: Int32Array,
  ) {
    this.shapes = validateIR(ir);
  }

  private param(ref: ParamRef, shape: number[]): number {
    const info = this.ir.params[ref];
    if (info === undefined) throw new Error(`no parameter ${ref}`);
    if (!sameShape(info.shape, shape)) {
      throw new Error(`parameter ${info.name} has shape [${info.shape}], expected [${shape}]`);
    }
    return info.offset;
  }

  private constant(ref: ConstRef, shape: number[]): Float32Array {
    const c = this.ir.constants[ref];
    if (c === undefined) throw new Error(`no constant ${ref}`);
    if (c.values.length !== prod(shape)) {
      throw new Error(`constant ${c.name} has ${c.values.length} values, expected [${shape}]`);
    }
    return c.values;
  }

  /**
   * The output node's values for one sample (flat, row-major) given its input values. With
   * `foldOutput`, the output node's activation is not applied (its pre-activation is returned).
   */
  run(input: Node[], foldOutput: boolean): Node[] {
    const { ir } = this;
    const vals: Node[][] = new Array<Node[]>(ir.nodes.length);
    for (let k = 0; k <= ir.output; k++) {
      const node = ir.nodes[k];
      if (k === ir.input) {
        if (input.length !== prod(this.shapes[k])) throw new Error(`input has ${input.length} values`);
        vals[k] = input;
        continue;
      }
      const ins = node.inputs.map((i) => {
        const v = vals[i];
        if (v === undefined) throw new Error(`node ${node.name} reads node ${i}, not computed before it`);
        return v;
      });
      const inShapes = node.inputs.map((i) => this.shapes[i]);
      vals[k] = this.node(node, ins, inShapes, !(foldOutput && k === ir.output));
    }
    return vals[ir.output];
  }

  private node(node: IRNode, ins: Node[][], inShapes: number[][], applyAct: boolean): Node[] {
    const { tape, vars } = this;
    const op = node.op;
    const out = node.outShape;
    const act = (xs: Node[], a: Activation): Node[] =>
      applyAct ? applyActivation(tape, xs, out[out.length - 1], a) : xs;
    switch (op.kind) {
      case 'input':
        throw new Error(`second input node ${node.name}`);
      case 'dense': {
        const x = ins[0];
        const inDim = inShapes[0][inShapes[0].length - 1];
        const u = op.units;
        const kOff = this.param(op.kernel, [inDim, u]);
        const bOff = op.bias === undefined ? -1 : this.param(op.bias, [u]);
        const groups = x.length / inDim;
        const res: Node[] = [];
        for (let g = 0; g < groups; g++) {
          for (let j = 0; j < u; j++) {
            let acc = bOff >= 0 ? vars[bOff + j] : -1;
            for (let i = 0; i < inDim; i++) {
              const t = tape.mul(x[g * inDim + i], vars[kOff + i * u + j]);
              acc = acc < 0 ? t : tape.add(acc, t);
            }
            res.push(acc < 0 ? tape.constant(0) : acc);
          }
        }
        return act(res, op.activation);
      }
      case 'conv2d': {
        const x = ins[0];
        const [h, w, cin] = inShapes[0];
        const [kh, kw] = op.kernelSize;
        const [sh, sw] = op.strides;
        const f = op.filters;
        const kOff = this.param(op.kernel, [kh, kw, cin, f]);
        const bOff = op.bias === undefined ? -1 : this.param(op.bias, [f]);
        const gh = windowGeometry(h, kh, sh, op.padding);
        const gw = windowGeometry(w, kw, sw, op.padding);
        const res: Node[] = [];
        for (let oh = 0; oh < gh.out; oh++) {
          for (let ow = 0; ow < gw.out; ow++) {
            for (let co = 0; co < f; co++) {
              let acc = bOff >= 0 ? vars[bOff + co] : -1;
              for (let r = 0; r < kh; r++) {
                const ih = oh * sh + r - gh.before;
                if (ih < 0 || ih >= h) continue;
                for (let c = 0; c < kw; c++) {
                  const iw = ow * sw + c - gw.before;
                  if (iw < 0 || iw >= w) continue;
                  for (let ci = 0; ci < cin; ci++) {
                    const t = tape.mul(x[(ih * w + iw) * cin + ci], vars[kOff + ((r * kw + c) * cin + ci) * f + co]);
                    acc = acc < 0 ? t : tape.add(acc, t);
                  }
                }
              }
              res.push(acc < 0 ? tape.constant(0) : acc);
            }
          }
        }
        return act(res, op.activation);
      }
      case 'maxPool2d':
      case 'avgPool2d': {
        const x = ins[0];
        const [h, w, ch] = inShapes[0];
        const [ph, pw] = op.poolSize;
        const [sh, sw] = op.strides;
        const gh = windowGeometry(h, ph, sh, op.padding);
        const gw = windowGeometry(w, pw, sw, op.padding);
        const res: Node[] = [];
        for (let oh = 0; oh < gh.out; oh++) {
          for (let ow = 0; ow < gw.out; ow++) {
            for (let c = 0; c < ch; c++) {
              let acc = -1;
              let count = 0;
              for (let r = 0; r < ph; r++) {
                const ih = oh * sh + r - gh.before;
                if (ih < 0 || ih >= h) continue;
                for (let q = 0; q < pw; q++) {
                  const iw = ow * sw + q - gw.before;
                  if (iw < 0 || iw >= w) continue;
                  const v = x[(ih * w + iw) * ch + c];
                  acc = acc < 0 ? v : op.kind === 'maxPool2d' ? tape.max(acc, v) : tape.add(acc, v);
                  count++;
                }
              }
              if (acc < 0) throw new Error(`${node.name}: empty pooling window`);
              res.push(op.kind === 'maxPool2d' ? acc : tape.scale(acc, 1 / count));
            }
          }
        }
        return res;
      }
      case 'globalAvgPool2d': {
        const x = ins[0];
        const [h, w, ch] = inShapes[0];
        const res: Node[] = [];
        for (let c = 0; c < ch; c++) {
          const terms: Node[] = [];
          for (let p = 0; p < h * w; p++) terms.push(x[p * ch + c]);
          res.push(tape.scale(tape.sum(terms), 1 / (h * w)));
        }
        return res;
      }
      case 'flatten':
      case 'dropout':
        return ins[0];
      case 'batchNorm': {
        const x = ins[0];
        const ch = inShapes[0][inShapes[0].length - 1];
        const mean = this.constant(op.movingMean, [ch]);
        const variance = this.constant(op.movingVariance, [ch]);
        const gOff = op.gamma === undefined ? -1 : this.param(op.gamma, [ch]);
        const bOff = op.beta === undefined ? -1 : this.param(op.beta, [ch]);
        const res: Node[] = [];
        for (let i = 0; i < x.length; i++) {
          const c = i % ch;
          // gamma * (x - mean) / sqrt(var + eps) + beta, the statistics being constants.
          let t = tape.scale(tape.shift(x[i], -mean[c]), 1 / Math.sqrt(variance[c] + op.epsilon));
          if (gOff >= 0) t = tape.mul(vars[gOff + c], t);
          if (bOff >= 0) t = tape.add(t, vars[bOff + c]);
          res.push(t);
        }
        return res;
      }
      case 'activation':
        return act(ins[0], op.activation);
      case 'leakyRelu':
        return ins[0].map((x) => tape.leakyRelu(x, op.alpha));
      case 'add': {
        const res = [...ins[0]];
        for (let k = 1; k < ins.length; k++) for (let i = 0; i < res.length; i++) res[i] = tape.add(res[i], ins[k][i]);
        return res;
      }
      case 'concatenate': {
        const lasts = inShapes.map((s) => s[s.length - 1]);
        const groups = prod(out.slice(0, -1));
        const res: Node[] = [];
        for (let g = 0; g < groups; g++) {
          for (let k = 0; k < ins.length; k++) for (let j = 0; j < lasts[k]; j++) res.push(ins[k][g * lasts[k] + j]);
        }
        return res;
      }
    }
  }
}

/**
 * Checks an IR's structure (topological order, shapes, parameter table) and returns every node's
 * shape. Throws with a message on the first inconsistency.
 */
export function validateIR(ir: ModelIR): number[][] {
  const shapes: number[][] = [];
  ir.nodes.forEach((node, k) => {
    for (const i of node.inputs) if (!(i >= 0 && i < k)) throw new Error(`node ${node.name} reads node ${i}`);
    if (node.op.kind === 'input' && k !== ir.input) throw new Error(`second input node ${node.name}`);
    const s = inferShape(
      node.op,
      node.inputs.map((i) => shapes[i]),
    );
    if (!sameShape(s, node.outShape)) {
      throw new Error(`node ${node.name}: outShape [${node.outShape}], computed [${s}]`);
    }
    shapes.push(s);
  });
  if (ir.nodes[ir.input]?.op.kind !== 'input') throw new Error('ir.input is not an input node');
  if (!(ir.output >= 0 && ir.output < ir.nodes.length)) throw new Error(`bad output index ${ir.output}`);
  let offset = 0;
  for (const p of ir.params) {
    if (p.offset !== offset) throw new Error(`parameter ${p.name} at offset ${p.offset}, expected ${offset}`);
    if (p.size !== prod(p.shape)) throw new Error(`parameter ${p.name} size ${p.size} != prod([${p.shape}])`);
    offset += p.size;
  }
  if (offset !== ir.numParams) throw new Error(`numParams ${ir.numParams}, parameters sum to ${offset}`);
  return shapes;
}

/** The recorded computation of a problem. */
interface Recording {
  tape: Tape;
  vars: Int32Array;
  /** Output-node values (pre-activation when folded), batch x out, row-major. */
  outputs: Node[];
  /** The loss node, or -1 when not requested. */
  loss: Node;
}

function record(p: RefProblem, tangent: ArrayLike<number> | undefined, withLoss: boolean): Recording {
  const { ir } = p;
  if (p.params.length !== ir.numParams) {
    throw new Error(`params has ${p.params.length} entries, IR has ${ir.numParams}`);
  }
  if (tangent !== undefined && tangent.length !== ir.numParams) {
    throw new Error(`direction has ${tangent.length} entries, IR has ${ir.numParams}`);
  }
  const tape = new Tape(1 << 16);
  const vars = new Int32Array(ir.numParams);
  for (let i = 0; i < ir.numParams; i++) vars[i] = tape.variable(p.params[i], tangent === undefined ? 0 : tangent[i]);
  const interp = new Interpreter(ir, tape, vars);
  const inShape = interp.shapes[ir.input];
  const outShape = interp.shapes[ir.output];
  const n = p.xShape[0];
  const inSize = prod(inShape);
  const outSize = prod(outShape);
  if (!sameShape(p.xShape.slice(1), inShape) || p.x.length !== n * inSize) {
    throw new Error(`x has shape [${p.xShape}] (${p.x.length} values), model input is [${inShape}]`);
  }
  const fold = withLoss && foldsOutputActivation(ir, p.loss);
  const outputs: Node[] = [];
  for (let s = 0; s < n; s++) {
    const input: Node[] = [];
    for (let i = 0; i < inSize; i++) input.push(tape.constant(p.x[s * inSize + i]));
    outputs.push(...interp.run(input, fold));
  }
  if (!withLoss) return { tape, vars, outputs, loss: -1 };
  if (p.yShape[0] !== n || prod(p.yShape) !== n * outSize || p.y.length !== n * outSize) {
    throw new Error(`y has shape [${p.yShape}] (${p.y.length} values), expected ${n} x [${outShape}]`);
  }
  const loss = lossNode(tape, outputs, p.y, n * outSize, outShape[outShape.length - 1], p.loss, fold);
  return { tape, vars, outputs, loss };
}

/**
 * The loss over m = n * k outputs. The class axis of the cross-entropies is the last axis (of
 * length `last`); with a rank-1 output that is the ir.ts definition, with a higher rank the loss
 * is the mean over samples and leading positions (Keras).
 */
function lossNode(
  tape: Tape,
  o: Node[],
  y: Float64Array,
  m: number,
  last: number,
  loss: LossName,
  fold: boolean,
): Node {
  const terms: Node[] = [];
  switch (loss) {
    case 'meanSquaredError':
      for (let i = 0; i < m; i++) terms.push(tape.square(tape.shift(o[i], -y[i])));
      return tape.scale(tape.sum(terms), 1 / m);
    case 'categoricalCrossentropy': {
      for (let g = 0; g < m; g += last) {
        const group = o.slice(g, g + last);
        if (fold) {
          // y . logSoftmax(z) = sum_j y_j z_j - (sum_j y_j) lse(z)
          const lse = logSumExp(tape, group);
          for (let j = 0; j < last; j++) {
            if (y[g + j] !== 0) terms.push(tape.scale(tape.sub(group[j], lse), y[g + j]));
          }
        } else {
          const s = tape.sum(group);
          for (let j = 0; j < last; j++) {
            if (y[g + j] === 0) continue;
            const q = tape.clip(tape.div(group[j], s), CLIP_EPS, 1 - CLIP_EPS);
            terms.push(tape.scale(tape.log(q), y[g + j]));
          }
        }
      }
      return tape.scale(tape.sum(terms), -last / m);
    }
    case 'crossEntropyFromLogits': {
      // The outputs are the logits whatever the output activation (nn.CrossEntropyLoss).
      for (let g = 0; g < m; g += last) {
        const group = o.slice(g, g + last);
        const lse = logSumExp(tape, group);
        for (let j = 0; j < last; j++) {
          if (y[g + j] !== 0) terms.push(tape.scale(tape.sub(group[j], lse), y[g + j]));
        }
      }
      return tape.scale(tape.sum(terms), -last / m);
    }
    case 'binaryCrossentropy':
      for (let i = 0; i < m; i++) {
        if (fold) {
          terms.push(tape.sub(tape.softplus(o[i]), tape.scale(o[i], y[i])));
        } else {
          const q = tape.clip(o[i], CLIP_EPS, 1 - CLIP_EPS);
          const a = tape.scale(tape.log(q), y[i]);
          const b = tape.scale(tape.log(tape.shift(tape.neg(q), 1)), 1 - y[i]);
          terms.push(tape.neg(tape.add(a, b)));
        }
      }
      return tape.scale(tape.sum(terms), 1 / m);
  }
}

// ---------------------------------------------------------------------------------------------
// Public oracle
// ---------------------------------------------------------------------------------------------

/** Model outputs (after the output activation), batch x out, row-major. */
export function refForward(p: RefProblem): Float64Array {
  const r = record(p, undefined, false);
  return Float64Array.from(r.outputs, (o) => r.tape.value(o));
}

/** The loss. */
export function refLoss(p: RefProblem): number {
  const r = record(p, undefined, true);
  return r.tape.value(r.loss);
}

/** The loss and its exact gradient with respect to the flat parameters. */
export function refGradient(p: RefProblem): { loss: number; grad: Float64Array } {
  const r = record(p, undefined, true);
  return { loss: r.tape.value(r.loss), grad: r.tape.reverse(r.loss, r.vars).grad };
}

/** Loss, gradient and the exact Hessian-vector product H v in one forward-over-reverse sweep. */
export function refGradHvp(p: RefProblem, v: Float64Array): { loss: number; grad: Float64Array; hvp: Float64Array } {
  const r = record(p, v, true);
  const { grad, hvp } = r.tape.reverse(r.loss, r.vars);
  return { loss: r.tape.value(r.loss), grad, hvp };
}

/** The exact Hessian-vector product H v (forward-over-reverse, Pearlmutter 1994). */
export function refHvp(p: RefProblem, v: Float64Array): Float64Array {
  return refGradHvp(p, v).hvp;
}

/**
 * The dense Hessian, n x n row-major, column j being H e_j from one forward-over-reverse sweep
 * (the loss is recorded once and reseeded per column). Not symmetrised.
 */
export function refHessian(p: RefProblem): Float64Array {
  const n = p.ir.numParams;
  const r = record(p, undefined, true);
  const h = new Float64Array(n * n);
  const e = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    e.fill(0);
    e[j] = 1;
    r.tape.reseed(r.vars, e);
    const col = r.tape.reverse(r.loss, r.vars).hvp;
    for (let i = 0; i < n; i++) h[i * n + j] = col[i];
  }
  return h;
}

// ---------------------------------------------------------------------------------------------
// IR builders
// ---------------------------------------------------------------------------------------------

type Pair = number | [number, number];

function pair(v: Pair): [number, number] {
  return typeof v === 'number' ? [v, v] : [v[0], v[1]];
}

export interface DenseOptions {
  activation?: Activation;
  /** Default true. */
  bias?: boolean;
  name?: string;
}

export interface Conv2dOptions {
  /** Default 1. */
  strides?: Pair;
  /** Default 'valid' (as Keras). */
  padding?: Padding;
  activation?: Activation;
  /** Default true. */
  bias?: boolean;
  name?: string;
}

export interface PoolOptions {
  /** Default: the pool size (as Keras). */
  strides?: Pair;
  /** Default 'valid'. */
  padding?: Padding;
  name?: string;
}

export interface BatchNormOptions {
  /** Default 1e-3 (as Keras). */
  epsilon?: number;
  /** Learn beta (default true). */
  center?: boolean;
  /** Learn gamma (default true). */
  scale?: boolean;
  /** Moving mean per channel; default a fixed nontrivial pattern. */
  movingMean?: ArrayLike<number>;
  /** Moving variance per channel; default a fixed nontrivial pattern. */
  movingVariance?: ArrayLike<number>;
  name?: string;
}

/**
 * Builds a valid `ModelIR` node by node (Keras-style names, parameter offsets, output shapes).
 * Each method returns the new node's index.
 */
export class IRBuilder {
  private readonly nodes: IRNode[] = [];
  private readonly params: ParamInfo[] = [];
  private readonly constants: ConstInfo[] = [];
  private numParams = 0;
  private readonly counts = new Map<string, number>();

  constructor(private readonly name = 'model') {}

  private layerName(prefix: string, name?: string): string {
    if (name !== undefined) return name;
    const k = (this.counts.get(prefix) ?? 0) + 1;
    this.counts.set(prefix, k);
    return `${prefix}_${k}`;
  }

  private param(layer: string, role: ParamInfo['role'], shape: number[]): ParamRef {
    const size = prod(shape);
    this.params.push({ name: `${layer}/${role}`, layer, role, shape, size, offset: this.numParams });
    this.numParams += size;
    return this.params.length - 1;
  }

  private constant(name: string, values: ArrayLike<number>): ConstRef {
    this.constants.push({ name, shape: [values.length], values: Float32Array.from(values) });
    return this.constants.length - 1;
  }

  private shapeOf(i: number): number[] {
    const node = this.nodes[i];
    if (node === undefined) throw new Error(`no node ${i}`);
    return node.outShape;
  }

  private node(name: string, op: LayerOp, inputs: number[]): number {
    const outShape = inferShape(
      op,
      inputs.map((i) => this.shapeOf(i)),
    );
    this.nodes.push({ name, op, inputs, outShape });
    return this.nodes.length - 1;
  }

  input(shape: number[], name?: string): number {
    if (this.nodes.some((n) => n.op.kind === 'input')) throw new Error('IRBuilder supports one input');
    return this.node(this.layerName('input', name), { kind: 'input', shape: [...shape] }, []);
  }

  dense(from: number, units: number, opts: DenseOptions = {}): number {
    const name = this.layerName('dense', opts.name);
    const s = this.shapeOf(from);
    const kernel = this.param(name, 'kernel', [s[s.length - 1], units]);
    const bias = opts.bias === false ? undefined : this.param(name, 'bias', [units]);
    return this.node(name, { kind: 'dense', units, activation: opts.activation ?? 'linear', kernel, bias }, [from]);
  }

  conv2d(from: number, filters: number, kernelSize: Pair, opts: Conv2dOptions = {}): number {
    const name = this.layerName('conv2d', opts.name);
    const ks = pair(kernelSize);
    const s = this.shapeOf(from);
    const kernel = this.param(name, 'kernel', [ks[0], ks[1], s[2], filters]);
    const bias = opts.bias === false ? undefined : this.param(name, 'bias', [filters]);
    const op: LayerOp = {
      kind: 'conv2d',
      filters,
      kernelSize: ks,
      strides: pair(opts.strides ?? 1),
      padding: opts.padding ?? 'valid',
      activation: opts.activation ?? 'linear',
      kernel,
      bias,
    };
    return this.node(name, op, [from]);
  }

  private pool(kind: 'maxPool2d' | 'avgPool2d', from: number, poolSize: Pair, opts: PoolOptions): number {
    const name = this.layerName(kind === 'maxPool2d' ? 'max_pooling2d' : 'average_pooling2d', opts.name);
    const ps = pair(poolSize);
    const op: LayerOp = { kind, poolSize: ps, strides: pair(opts.strides ?? ps), padding: opts.padding ?? 'valid' };
    return this.node(name, op, [from]);
  }

  maxPool2d(from: number, poolSize: Pair, opts: PoolOptions = {}): number {
    return this.pool('maxPool2d', from, poolSize, opts);
  }

  avgPool2d(from: number, poolSize: Pair, opts: PoolOptions = {}): number {
    return this.pool('avgPool2d', from, poolSize, opts);
  }

  globalAvgPool2d(from: number, name?: string): number {
    return this.node(this.layerName('global_average_pooling2d', name), { kind: 'globalAvgPool2d' }, [from]);
  }

  flatten(from: number, name?: string): number {
    return this.node(this.layerName('flatten', name), { kind: 'flatten' }, [from]);
  }

  dropout(from: number, rate = 0.5, name?: string): number {
    return this.node(this.layerName('dropout', name), { kind: 'dropout', rate }, [from]);
  }

  batchNorm(from: number, opts: BatchNormOptions = {}): number {
    const name = this.layerName('batch_normalization', opts.name);
    const s = this.shapeOf(from);
    const c = s[s.length - 1];
    const gamma = opts.scale === false ? undefined : this.param(name, 'gamma', [c]);
    const beta = opts.center === false ? undefined : this.param(name, 'beta', [c]);
    const mm = opts.movingMean ?? Array.from({ length: c }, (_, i) => 0.1 * ((i % 3) - 1));
    const mv = opts.movingVariance ?? Array.from({ length: c }, (_, i) => 0.5 + 0.25 * (i % 4));
    if (mm.length !== c || mv.length !== c) throw new Error(`batchNorm statistics must have ${c} entries`);
    const op: LayerOp = {
      kind: 'batchNorm',
      epsilon: opts.epsilon ?? 1e-3,
      gamma,
      beta,
      movingMean: this.constant(`${name}/moving_mean`, mm),
      movingVariance: this.constant(`${name}/moving_variance`, mv),
    };
    return this.node(name, op, [from]);
  }

  activation(from: number, activation: Activation, name?: string): number {
    return this.node(this.layerName('activation', name), { kind: 'activation', activation }, [from]);
  }

  leakyRelu(from: number, alpha: number, name?: string): number {
    return this.node(this.layerName('leaky_re_lu', name), { kind: 'leakyRelu', alpha }, [from]);
  }

  add(inputs: number[], name?: string): number {
    return this.node(this.layerName('add', name), { kind: 'add' }, [...inputs]);
  }

  concatenate(inputs: number[], name?: string): number {
    return this.node(this.layerName('concatenate', name), { kind: 'concatenate' }, [...inputs]);
  }

  /** The IR with `output` (default: the last node added) as its output. */
  build(output = this.nodes.length - 1): ModelIR {
    const input = this.nodes.findIndex((n) => n.op.kind === 'input');
    if (input < 0) throw new Error('IRBuilder: no input');
    const ir: ModelIR = {
      name: this.name,
      nodes: this.nodes.map((n) => ({ ...n, inputs: [...n.inputs], outShape: [...n.outShape] })),
      input,
      output,
      params: this.params.map((p) => ({ ...p, shape: [...p.shape] })),
      constants: this.constants.map((c) => ({ ...c, values: Float32Array.from(c.values) })),
      numParams: this.numParams,
    };
    validateIR(ir);
    return ir;
  }
}

/** One layer of a sequential model. */
export type LayerSpec =
  | ({ kind: 'dense'; units: number } & DenseOptions)
  | ({ kind: 'conv2d'; filters: number; kernelSize: Pair } & Conv2dOptions)
  | ({ kind: 'maxPool2d' | 'avgPool2d'; poolSize: Pair } & PoolOptions)
  | { kind: 'globalAvgPool2d' }
  | { kind: 'flatten' }
  | { kind: 'dropout'; rate?: number }
  | ({ kind: 'batchNorm' } & BatchNormOptions)
  | { kind: 'activation'; activation: Activation };

/** A sequential model: an input of `inputShape` followed by `layers`. */
export function sequentialIR(inputShape: number[], layers: LayerSpec[], name = 'sequential'): ModelIR {
  const b = new IRBuilder(name);
  let x = b.input(inputShape);
  for (const l of layers) {
    switch (l.kind) {
      case 'dense':
        x = b.dense(x, l.units, l);
        break;
      case 'conv2d':
        x = b.conv2d(x, l.filters, l.kernelSize, l);
        break;
      case 'maxPool2d':
        x = b.maxPool2d(x, l.poolSize, l);
        break;
      case 'avgPool2d':
        x = b.avgPool2d(x, l.poolSize, l);
        break;
      case 'globalAvgPool2d':
        x = b.globalAvgPool2d(x);
        break;
      case 'flatten':
        x = b.flatten(x);
        break;
      case 'dropout':
        x = b.dropout(x, l.rate);
        break;
      case 'batchNorm':
        x = b.batchNorm(x, l);
        break;
      case 'activation':
        x = b.activation(x, l.activation);
        break;
    }
  }
  return b.build();
}

/**
 * A multilayer perceptron: input of width sizes[0], then one dense layer of width sizes[i] with
 * activations[i - 1] for each i >= 1.
 */
export function mlpIR(
  sizes: number[],
  activations: Activation[],
  opts: { bias?: boolean; name?: string } = {},
): ModelIR {
  if (sizes.length < 2 || activations.length !== sizes.length - 1) {
    throw new Error(`mlpIR: ${sizes.length} sizes need ${sizes.length - 1} activations, got ${activations.length}`);
  }
  const layers: LayerSpec[] = activations.map((activation, i) => ({
    kind: 'dense',
    units: sizes[i + 1],
    activation,
    bias: opts.bias,
  }));
  return sequentialIR([sizes[0]], layers, opts.name ?? 'mlp');
}

/** A sequential convolutional model on an [h, w, c] input. */
export function convIR(inputShape: [number, number, number], layers: LayerSpec[], name = 'convnet'): ModelIR {
  return sequentialIR(inputShape, layers, name);
}

// ---------------------------------------------------------------------------------------------
// Random parameters and problems
// ---------------------------------------------------------------------------------------------

/**
 * Seeded random parameters: kernels N(0, 1 / fanIn), biases and betas N(0, 0.1^2), gammas
 * 1 + N(0, 0.2^2). `scale` multiplies the kernels.
 */
export function randomParams(ir: ModelIR, seed: number, scale = 1): Float64Array {
  const rng = new Rng(seed);
  const out = new Float64Array(ir.numParams);
  for (const p of ir.params) {
    const fanIn = p.role === 'kernel' ? prod(p.shape.slice(0, -1)) : 1;
    for (let i = 0; i < p.size; i++) {
      const z = rng.normal();
      let v: number;
      if (p.role === 'kernel') v = (scale * z) / Math.sqrt(fanIn);
      else if (p.role === 'gamma') v = 1 + 0.2 * z;
      else v = 0.1 * z;
      out[p.offset + i] = v;
    }
  }
  return out;
}

/** Seeded standard normal inputs of shape [batch, ...inputShape]. */
export function randomInputs(ir: ModelIR, batch: number, seed: number): { x: Float64Array; xShape: number[] } {
  const xShape = [batch, ...ir.nodes[ir.input].outShape];
  return { x: new Rng(seed).normalVector(prod(xShape)), xShape };
}

/**
 * Seeded targets of shape [batch, ...outShape] suited to the loss: normal values for MSE; one-hot
 * rows (or, with `soft`, random distributions) over the last axis for categorical cross-entropy;
 * 0/1 values (or, with `soft`, values in (0, 1)) for binary cross-entropy.
 */
export function randomTargets(
  ir: ModelIR,
  loss: LossName,
  batch: number,
  seed: number,
  soft = false,
): { y: Float64Array; yShape: number[] } {
  const outShape = ir.nodes[ir.output].outShape;
  const yShape = [batch, ...outShape];
  const m = prod(yShape);
  const k = outShape[outShape.length - 1];
  const rng = new Rng(seed);
  const y = new Float64Array(m);
  if (loss === 'meanSquaredError') {
    for (let i = 0; i < m; i++) y[i] = rng.normal();
  } else if (loss === 'categoricalCrossentropy' || loss === 'crossEntropyFromLogits') {
    for (let g = 0; g < m; g += k) {
      if (soft) {
        let s = 0;
        for (let j = 0; j < k; j++) s += y[g + j] = rng.uniform() + 0.05;
        for (let j = 0; j < k; j++) y[g + j] /= s;
      } else {
        y[g + Math.min(k - 1, Math.floor(rng.uniform() * k))] = 1;
      }
    }
  } else {
    for (let i = 0; i < m; i++) y[i] = soft ? 0.05 + 0.9 * rng.uniform() : rng.uniform() < 0.5 ? 0 : 1;
  }
  return { y, yShape };
}

/** A complete seeded problem: random parameters, inputs and targets for `ir` and `loss`. */
export function randomProblem(
  ir: ModelIR,
  loss: LossName,
  batch: number,
  seed: number,
  opts: { softTargets?: boolean; paramScale?: number } = {},
): RefProblem {
  const { x, xShape } = randomInputs(ir, batch, seed + 1);
  const { y, yShape } = randomTargets(ir, loss, batch, seed + 2, opts.softTargets ?? false);
  return { ir, params: randomParams(ir, seed, opts.paramScale ?? 1), x, xShape, y, yShape, loss };
}

// ---------------------------------------------------------------------------------------------
// Curvatures beyond the Hessian: generalized Gauss-Newton, Fisher, empirical Fisher (dense)
// ---------------------------------------------------------------------------------------------

/** Values per sample of the output node and the number of rows the loss averages over. */
function outputLayout(p: RefProblem): { perSample: number; last: number } {
  const outShape = p.ir.nodes[p.ir.output].outShape;
  return { perSample: prod(outShape), last: outShape[outShape.length - 1] };
}

/**
 * The Jacobian of the model's outputs as the loss receives them (logits when the loss folds in the
 * output activation) with respect to the parameters: m x n row-major, m = samples x outputs per
 * sample, one reverse sweep per output.
 */
export function refOutputJacobian(p: RefProblem): { jacobian: Float64Array; outputs: Float64Array } {
  const r = record(p, undefined, true);
  const n = p.ir.numParams;
  const m = r.outputs.length;
  const jacobian = new Float64Array(m * n);
  for (let o = 0; o < m; o++) jacobian.set(r.tape.reverse(r.outputs[o], r.vars).grad, o * n);
  return { jacobian, outputs: Float64Array.from(r.outputs, (o) => r.tape.value(o)) };
}

/**
 * The Hessian of the mean loss with respect to the outputs (as the loss receives them): m x m,
 * block diagonal by sample, from the textbook second derivatives (independent of TF.js and of the
 * engine's closed forms): MSE 2/m I; softmax cross-entropy on logits (sum_j y_j)(diag p - p p^T)/N;
 * sigmoid binary cross-entropy on logits diag(q (1 - q))/m. Only these (the losses whose GGN is
 * positive semi-definite).
 */
export function refLossOutputHessian(p: RefProblem, outputs: Float64Array): Float64Array {
  const m = outputs.length;
  const N = p.xShape[0];
  const h = new Float64Array(m * m);
  const fold = foldsOutputActivation(p.ir, p.loss);
  const { perSample } = outputLayout(p);
  if (p.loss === 'meanSquaredError') {
    for (let i = 0; i < m; i++) h[i * m + i] = 2 / m;
  } else if ((p.loss === 'categoricalCrossentropy' && fold) || p.loss === 'crossEntropyFromLogits') {
    for (let s = 0; s < N; s++) {
      const z = outputs.subarray(s * perSample, (s + 1) * perSample);
      const mx = Math.max(...z);
      const e = Array.from(z, (v) => Math.exp(v - mx));
      const tot = e.reduce((a, b) => a + b, 0);
      const q = e.map((v) => v / tot);
      let ySum = 0;
      for (let j = 0; j < perSample; j++) ySum += p.y[s * perSample + j];
      for (let a = 0; a < perSample; a++) {
        for (let b = 0; b < perSample; b++) {
          h[(s * perSample + a) * m + s * perSample + b] = (ySum * ((a === b ? q[a] : 0) - q[a] * q[b])) / N;
        }
      }
    }
  } else if (p.loss === 'binaryCrossentropy' && fold) {
    for (let i = 0; i < m; i++) {
      const q = 1 / (1 + Math.exp(-outputs[i]));
      h[i * m + i] = (q * (1 - q)) / m;
    }
  } else {
    throw new Error(`refLossOutputHessian: no reference for ${p.loss} without logits`);
  }
  return h;
}

/** J^T M J for an m x n Jacobian and an m x m middle matrix: n x n row-major. */
function sandwich(j: Float64Array, mid: Float64Array, m: number, n: number): Float64Array {
  const mj = new Float64Array(m * n);
  for (let a = 0; a < m; a++) {
    for (let b = 0; b < m; b++) {
      const w = mid[a * m + b];
      if (w === 0) continue;
      for (let c = 0; c < n; c++) mj[a * n + c] += w * j[b * n + c];
    }
  }
  const out = new Float64Array(n * n);
  for (let a = 0; a < m; a++) {
    for (let r = 0; r < n; r++) {
      const jr = j[a * n + r];
      if (jr === 0) continue;
      for (let c = 0; c < n; c++) out[r * n + c] += jr * mj[a * n + c];
    }
  }
  return out;
}

/** The generalized Gauss-Newton matrix J^T H_L J (dense, n x n). */
export function refGGN(p: RefProblem): Float64Array {
  const { jacobian, outputs } = refOutputJacobian(p);
  return sandwich(jacobian, refLossOutputHessian(p, outputs), outputs.length, p.ir.numParams);
}

/** The problem restricted to sample s with targets `y` (one sample's worth). */
function oneSample(p: RefProblem, s: number, y: Float64Array): RefProblem {
  const inSize = p.x.length / p.xShape[0];
  return { ...p, x: p.x.slice(s * inSize, (s + 1) * inSize), xShape: [1, ...p.xShape.slice(1)], y, yShape: [1, ...p.yShape.slice(1)] };
}

/** Adds w g g^T to the n x n matrix a. */
function addOuter(a: Float64Array, g: Float64Array, w: number): void {
  const n = g.length;
  for (let r = 0; r < n; r++) for (let c = 0; c < n; c++) a[r * n + c] += w * g[r] * g[c];
}

/**
 * The true Fisher by its definition, for the cross-entropies on logits: F = c sum_n E_{y ~ p(y |
 * f_n)} [g_n(y) g_n(y)^T] with g_n(y) the parameter gradient of sample n's negative log-likelihood
 * for label y, every label enumerated with its model probability (softmax: k one-hot labels;
 * sigmoid: all 2^k label vectors), the gradients from this oracle's reverse sweeps on one-sample
 * problems. c = 1/N (softmax), 1/(N k) (sigmoid), curvlinops' reduction factors.
 */
export function refFisher(p: RefProblem): Float64Array {
  const n = p.ir.numParams;
  const N = p.xShape[0];
  const { perSample } = outputLayout(p);
  const out = refForward(p); // probabilities (the output activation applied)
  if (p.loss === 'crossEntropyFromLogits') {
    // The model outputs logits: the predictive distribution is their softmax.
    for (let s = 0; s < N; s++) {
      const z = out.subarray(s * perSample, (s + 1) * perSample);
      const mx = Math.max(...z);
      let tot = 0;
      for (let j = 0; j < perSample; j++) tot += z[j] = Math.exp(z[j] - mx);
      for (let j = 0; j < perSample; j++) z[j] /= tot;
    }
  }
  const f = new Float64Array(n * n);
  if (!foldsOutputActivation(p.ir, p.loss) && p.loss !== 'crossEntropyFromLogits') throw new Error('refFisher: cross-entropies on logits only');
  for (let s = 0; s < N; s++) {
    const probs = out.subarray(s * perSample, (s + 1) * perSample);
    if (p.loss === 'categoricalCrossentropy' || p.loss === 'crossEntropyFromLogits') {
      for (let c = 0; c < perSample; c++) {
        const y = new Float64Array(perSample);
        y[c] = 1;
        // One sample's loss is its negative log-likelihood.
        addOuter(f, refGradient(oneSample(p, s, y)).grad, probs[c] / N);
      }
    } else {
      for (let mask = 0; mask < 1 << perSample; mask++) {
        const y = Float64Array.from({ length: perSample }, (_, j) => (mask >> j) & 1);
        let pr = 1;
        for (let j = 0; j < perSample; j++) pr *= y[j] ? probs[j] : 1 - probs[j];
        // One sample's loss is its NLL / k.
        const g = refGradient(oneSample(p, s, y)).grad.map((v) => v * perSample);
        addOuter(f, g, pr / (N * perSample));
      }
    }
  }
  return f;
}

/**
 * The empirical Fisher c sum_n g_n g_n^T with the training labels, g_n the gradient of sample n's
 * loss l_n (curvlinops' convention: L = c sum_n l_n; MSE and BCE c = 1/(N k), l_n the sample's
 * summed error; CE c = 1/N), from one-sample problems.
 */
export function refEmpiricalFisher(p: RefProblem): Float64Array {
  const n = p.ir.numParams;
  const N = p.xShape[0];
  const { perSample } = outputLayout(p);
  const perRow = p.loss === 'categoricalCrossentropy' || p.loss === 'crossEntropyFromLogits';
  const c = perRow ? 1 / N : 1 / (N * perSample);
  const f = new Float64Array(n * n);
  for (let s = 0; s < N; s++) {
    const g = refGradient(oneSample(p, s, p.y.slice(s * perSample, (s + 1) * perSample))).grad;
    // One sample's mean loss is l_n (CE) or l_n / k (MSE, BCE).
    if (!perRow) for (let i = 0; i < n; i++) g[i] *= perSample;
    addOuter(f, g, c);
  }
  return f;
}
