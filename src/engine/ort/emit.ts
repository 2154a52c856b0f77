/**
 * Emits ONNX graphs for a model IR (`model/ir.ts`) and a named loss: the loss, the loss and its
 * gradient, the Hessian-vector product, and the predictions. The flat parameter vector `theta`
 * (and the direction `v`) are graph inputs, sliced and reshaped inside the graph, so one session
 * serves every point; the data `x`, `y` are inputs too (one chunk of samples per run, any size).
 *
 * Each graph's loss output is the chunk's share of the full-batch mean (its sum over samples
 * divided by the total number of samples), so chunk results add up to the full-batch value.
 *
 * Layout: the IR is NHWC (Keras); inside the graph every [h, w, c] activation is NCHW, the
 * layout of ONNX's Conv and pooling ops. The input is transposed once; flatten and dense layers
 * on images transpose back so that their element order is the IR's.
 *
 * The losses are Basin's definitions (`model/ir.ts`, `model/losses.ts`): categorical
 * cross-entropy from the logits when the output is a softmax, binary cross-entropy from the logits
 * when it is a sigmoid, otherwise on the probabilities clipped to [CLIP_EPS, 1 - CLIP_EPS].
 */
import { CLIP_EPS, outputActivation, type Activation, type LossName, type ModelIR, type Padding } from '../model/ir';
import { AD, type ConvGeom, type Sym } from './ad';
import { Graph, type SplitGraph } from './graph';

export type GraphKind = 'loss' | 'grad' | 'hvp' | 'predict' | 'lossPredict' | 'pre' | 'planeLoss' | 'planeLossPredict';

/**
 * The dense node that alone reads the input, if any: its pre-activation x W + b is linear in the
 * parameters, so along a plane of parameters it is z0 + sum_j c_j z_j with z_j = x D_j + d_j
 * computed once ('pre' graph), and each point of the plane ('planeLoss') skips that product.
 */
export function linearFirstDense(ir: ModelIR): number | undefined {
  const readers = ir.nodes.map((n, i) => (n.inputs.includes(ir.input) ? i : -1)).filter((i) => i >= 0);
  return readers.length === 1 && ir.nodes[readers[0]].op.kind === 'dense' && readers[0] !== ir.output ? readers[0] : undefined;
}

export interface EmittedGraph {
  kind: GraphKind;
  bytes: Uint8Array;
  /** Input names, of 'theta', 'v', 'x', 'y', 'zs' (K pre-activations), 'c' (their K coefficients). */
  inputs: string[];
  /** Output names, of 'loss', 'grad', 'hv', 'pred', 'correct', 'pre'. */
  outputs: string[];
  nodes: number;
  /** An H·v graph split at `v` (graph.ts SplitGraph): what does not depend on v, run once per point. */
  split?: SplitGraph;
}

function prod(s: readonly number[]): number {
  return s.reduce((a, b) => a * b, 1);
}

/** Whether the output activation is folded into the loss (computed from the logits). */
export function foldsOutput(ir: ModelIR, loss: LossName): boolean {
  const act = outputActivation(ir);
  return (loss === 'categoricalCrossentropy' && act === 'softmax') || (loss === 'binaryCrossentropy' && act === 'sigmoid');
}

/** Why this engine cannot run the model, or undefined when it can. */
export function unsupportedReason(ir: ModelIR): string | undefined {
  for (const node of ir.nodes) {
    const op = node.op;
    const inRank = node.inputs.length ? ir.nodes[node.inputs[0]].outShape.length : 0;
    switch (op.kind) {
      case 'input':
      case 'dense':
      case 'flatten':
      case 'dropout':
      case 'batchNorm':
      case 'activation':
      case 'leakyRelu':
      case 'add':
      case 'concatenate':
        break;
      case 'conv2d':
      case 'maxPool2d':
      case 'avgPool2d':
      case 'globalAvgPool2d':
        if (inRank !== 3) return `layer '${node.name}' (${op.kind}) needs an [h, w, c] input`;
        break;
      default:
        return `layer '${node.name}' (${(op as { kind: string }).kind}) has no ONNX emitter`;
    }
  }
  return undefined;
}

/** TensorFlow's padding along one axis: `same` puts the smaller half before. */
function padding(n: number, k: number, s: number, mode: Padding): [number, number] {
  if (mode === 'valid') return [0, 0];
  const out = Math.ceil(n / s);
  const total = Math.max((out - 1) * s + k - n, 0);
  const before = Math.floor(total / 2);
  return [before, total - before];
}

function geometry(inShape: readonly number[], kernel: [number, number], strides: [number, number], mode: Padding): ConvGeom {
  const [t, b] = padding(inShape[0], kernel[0], strides[0], mode);
  const [l, r] = padding(inShape[1], kernel[1], strides[1], mode);
  return { kernel: [...kernel], strides: [...strides], pads: [t, l, b, r] };
}

/** A value with its layout: NCHW when the IR shape is [h, w, c]. */
interface Val {
  s: Sym;
  nchw: boolean;
}

class ModelEmitter {
  constructor(
    readonly ad: AD,
    readonly ir: ModelIR,
  ) {}

  activation(x: Sym, a: Activation, axis: number): Sym {
    const ad = this.ad;
    switch (a) {
      case 'linear':
        return x;
      case 'relu':
        return ad.relu(x);
      case 'elu':
        return ad.elu(x);
      case 'selu':
        return ad.selu(x);
      case 'tanh':
        return ad.tanh(x);
      case 'sigmoid':
        return ad.sigmoid(x);
      case 'softplus':
        return ad.softplus(x);
      case 'softmax':
        return ad.softmax(x, axis);
    }
  }

  private nhwc(v: Val): Sym {
    return v.nchw ? this.ad.transpose(v.s, [0, 2, 3, 1]) : v.s;
  }

  /**
   * The model's output for a batch `x` ([-1, ...inputShape], NHWC), in the IR's layout. With
   * `logits`, the output node's activation is not applied.
   */
  forward(params: Sym[], x: Sym, logits: boolean, pre?: { node: number; z?: Sym; stop?: boolean }): Sym {
    const { ad, ir } = this;
    let stopped: Sym | undefined;
    const vals: Val[] = new Array<Val>(ir.nodes.length);
    ir.nodes.forEach((node, i) => {
      if (stopped) return;
      const outRank = node.outShape.length;
      if (pre?.z && i === ir.input) return;
      if (i === ir.input) {
        vals[i] = outRank === 3 ? { s: ad.transpose(x, [0, 3, 1, 2]), nchw: true } : { s: x, nchw: false };
        return;
      }
      const ins = node.inputs.map((j) => vals[j]);
      const inShape = ir.nodes[node.inputs[0]].outShape;
      const skip = logits && i === ir.output;
      const act = (s: Sym, a: Activation, axis: number): Sym => (skip ? s : this.activation(s, a, axis));
      const op = node.op;
      let out: Val;
      switch (op.kind) {
        case 'input':
          throw new Error(`second input node '${node.name}'`);
        case 'dense': {
          let z: Sym;
          if (pre?.z && pre.node === i) z = pre.z;
          else {
            const xin = this.nhwc(ins[0]);
            const inDim = inShape[inShape.length - 1];
            z = ad.gemm(inShape.length === 1 ? xin : ad.reshape(xin, [-1, inDim]), params[op.kernel]);
            if (op.bias !== undefined) z = ad.add(z, params[op.bias]);
          }
          if (pre?.stop && pre.node === i) {
            stopped = z;
            return;
          }
          z = act(z, op.activation, -1);
          if (inShape.length > 1) z = ad.reshape(z, [-1, ...node.outShape]);
          out = outRank === 3 ? { s: ad.transpose(z, [0, 3, 1, 2]), nchw: true } : { s: z, nchw: false };
          break;
        }
        case 'conv2d': {
          const w = ad.transpose(params[op.kernel], [3, 2, 0, 1]);
          let z = ad.conv(ins[0].s, w, geometry(inShape, op.kernelSize, op.strides, op.padding));
          if (op.bias !== undefined) z = ad.add(z, ad.reshape(params[op.bias], [op.filters, 1, 1]));
          out = { s: act(z, op.activation, 1), nchw: true };
          break;
        }
        case 'maxPool2d':
          out = { s: ad.maxPool(ins[0].s, geometry(inShape, op.poolSize, op.strides, op.padding)), nchw: true };
          break;
        case 'avgPool2d':
          out = { s: ad.avgPool(ins[0].s, geometry(inShape, op.poolSize, op.strides, op.padding)), nchw: true };
          break;
        case 'globalAvgPool2d':
          out = { s: ad.scale(ad.reduceSum(ins[0].s, [2, 3], false), 1 / (inShape[0] * inShape[1])), nchw: false };
          break;
        case 'flatten':
          out = { s: ad.reshape(this.nhwc(ins[0]), [-1, prod(inShape)]), nchw: false };
          break;
        case 'dropout':
          out = ins[0];
          break;
        case 'batchNorm': {
          const c = inShape[inShape.length - 1];
          const cshape = ins[0].nchw ? [c, 1, 1] : [c];
          const mean = ir.constants[op.movingMean].values;
          const variance = ir.constants[op.movingVariance].values;
          const rs = Float32Array.from(variance, (v) => 1 / Math.sqrt(Math.fround(v + op.epsilon)));
          let y = ad.mul(ad.sub(ins[0].s, ad.constFloat(mean, cshape)), ad.constFloat(rs, cshape));
          if (op.gamma !== undefined) y = ad.mul(y, ad.reshape(params[op.gamma], cshape));
          if (op.beta !== undefined) y = ad.add(y, ad.reshape(params[op.beta], cshape));
          out = { s: y, nchw: ins[0].nchw };
          break;
        }
        case 'activation':
          out = { s: act(ins[0].s, op.activation, ins[0].nchw ? 1 : -1), nchw: ins[0].nchw };
          break;
        case 'leakyRelu':
          out = { s: ad.leakyRelu(ins[0].s, op.alpha), nchw: ins[0].nchw };
          break;
        case 'add':
          out = { s: ins.slice(1).reduce((a, b) => ad.add(a, b.s), ins[0].s), nchw: ins[0].nchw };
          break;
        case 'concatenate':
          out = { s: ins.length === 1 ? ins[0].s : ad.concat(ins.map((v) => v.s), ins[0].nchw ? 1 : -1), nchw: ins[0].nchw };
          break;
      }
      vals[i] = out;
    });
    return stopped ?? this.nhwc(vals[ir.output]);
  }

  /** The chunk's share of the full-batch loss: sum over its samples / numSamples. */
  loss(out: Sym, y: Sym, loss: LossName, logits: boolean, numSamples: number): Sym {
    const ad = this.ad;
    const k = prod(out.shape.slice(1));
    switch (loss) {
      case 'meanSquaredError': {
        const d = ad.sub(out, y);
        return ad.scale(ad.reduceSum(ad.mul(d, d), undefined, false), 1 / (numSamples * k));
      }
      case 'categoricalCrossentropy': {
        const z = ad.reshape(out, [-1, k]);
        const yy = ad.reshape(y, [-1, k]);
        let logp: Sym;
        if (logits) logp = ad.logSoftmax(z, 1);
        else {
          const p = ad.mul(z, ad.reciprocal(ad.reduceSum(z, [1], true)));
          logp = ad.log(ad.clip(p, CLIP_EPS, 1 - CLIP_EPS));
        }
        return ad.scale(ad.reduceSum(ad.mul(yy, logp), undefined, false), -1 / numSamples);
      }
      case 'crossEntropyFromLogits': {
        const logp = ad.logSoftmax(ad.reshape(out, [-1, k]), 1);
        return ad.scale(ad.reduceSum(ad.mul(ad.reshape(y, [-1, k]), logp), undefined, false), -1 / numSamples);
      }
      case 'binaryCrossentropy': {
        let terms: Sym;
        if (logits) terms = ad.sub(ad.softplus(out), ad.mul(y, out));
        else {
          const p = ad.clip(out, CLIP_EPS, 1 - CLIP_EPS);
          const oneMinusY = ad.raw('Sub', [ad.scalar(1), y], y.shape);
          terms = ad.neg(ad.add(ad.mul(y, ad.log(p)), ad.mul(oneMinusY, ad.log(ad.sub(ad.scalar(1), p)))));
        }
        return ad.scale(ad.reduceSum(terms, undefined, false), 1 / (numSamples * k));
      }
    }
  }
}

/**
 * Emits one graph. `numSamples` is the number of samples the full-batch mean is over (the sum of
 * every chunk's size).
 */
export function emitGraph(ir: ModelIR, lossName: LossName, numSamples: number, kind: GraphKind, planeK = 1): EmittedGraph {
  const g = new Graph(`${ir.name}-${kind}`);
  const first = linearFirstDense(ir);
  const plane = kind === 'planeLoss' || kind === 'planeLossPredict';
  if ((plane || kind === 'pre') && first === undefined) throw new Error(`${kind}: the input does not feed one dense layer alone`);
  const ad = new AD(g);
  const D = ir.numParams;
  const xShape = ir.nodes[ir.input].outShape;
  const outShape = ir.nodes[ir.output].outShape;
  const k = prod(outShape);
  const inputs = ['theta'];
  g.input('theta', 'float', [D]);
  if (kind === 'hvp') {
    g.input('v', 'float', [D]);
    inputs.push('v');
  }
  if (!plane) {
    g.input('x', 'float', ['N', ...xShape]);
    inputs.push('x');
  }
  const withLoss = kind !== 'predict' && kind !== 'pre';
  if (withLoss) {
    g.input('y', 'float', ['N', ...outShape]);
    inputs.push('y');
  }
  const sliceOf = (flat: string, p: ModelIR['params'][number]): string => g.reshape(g.slice(flat, [p.offset], [p.offset + p.size], [0]), p.shape);
  const params = ir.params.map((p) => ad.leaf(sliceOf('theta', p), p.shape));
  const x = ad.constant('x', [-1, ...xShape]);
  const m = new ModelEmitter(ad, ir);
  const outputs: string[] = [];
  const logits = foldsOutput(ir, lossName);
  let preZ: Sym | undefined;
  if (plane && first !== undefined) {
    // pre = sum_k c_k zs[k]: one [1, K] x [K, n * units] product.
    const units = (ir.nodes[first].op as { units: number }).units;
    g.input('zs', 'float', [planeK, 'N', ...ir.nodes[first].outShape]);
    g.input('c', 'float', [planeK]);
    inputs.push('zs', 'c');
    const mixed = g.matmul(g.reshape('c', [1, planeK]), g.reshape('zs', [planeK, -1]));
    preZ = ad.constant(g.reshape(mixed, [-1, units]), [-1, units]);
  }
  if (kind === 'pre' && first !== undefined) {
    const z = m.forward(params, x, false, { node: first, stop: true });
    const firstShape = ir.nodes[first].outShape;
    g.output(g.reshape(z.name, [-1, ...firstShape]), 'pre', 'float', ['N', ...firstShape]);
    outputs.push('pre');
  } else if (withLoss) {
    const y = ad.constant('y', [-1, ...outShape]);
    const out = m.forward(params, x, logits, preZ && first !== undefined ? { node: first, z: preZ } : undefined);
    const loss = m.loss(out, y, lossName, logits, numSamples);
    if (kind !== 'hvp') {
      g.output(loss.name, 'loss', 'float', []);
      outputs.push('loss');
    }
    if (kind === 'lossPredict' || kind === 'planeLossPredict') {
      const act = outputActivation(ir);
      const pred = logits ? m.activation(out, act, -1) : out;
      g.output(correctCount(g, g.reshape(pred.name, [-1, k]), g.reshape('y', [-1, k]), k), 'correct', 'float', []);
      outputs.push('correct');
    }
    if (kind === 'grad' || kind === 'hvp') {
      const grads = ad.grad(loss, params);
      if (kind === 'grad') {
        g.output(flatConcat(g, ir, grads.map((s) => s?.name)), 'grad', 'float', [D]);
        outputs.push('grad');
      } else {
        const seeds = new Map<number, Sym>();
        ir.params.forEach((p, i) => seeds.set(params[i].id, ad.constant(sliceOf('v', p), p.shape)));
        const hv = ad.jvp(seeds, grads);
        g.output(flatConcat(g, ir, hv.map((s) => s?.name)), 'hv', 'float', [D]);
        outputs.push('hv');
      }
    }
  } else {
    const out = m.forward(params, x, false);
    g.output(g.reshape(out.name, [-1, k]), 'pred', 'float', ['N', k]);
    outputs.push('pred');
  }
  return { kind, bytes: g.encode(), inputs, outputs, nodes: g.nodeCount, split: kind === 'hvp' ? g.split('v') : undefined };
}

/**
 * The number of correct predictions among the rows of pred and y ([N, k]), as a float scalar: the
 * rule of TF.js's accuracy metrics (and of `correctCount` in evaluator.ts) in the graph, so a point
 * of a plane returns one number instead of its predictions: argmax agreement, the first maximum
 * winning ties (ArgMax's select_last_index 0); for one output, the same side of 0.5.
 */
function correctCount(g: Graph, pred: string, y: string, k: number): string {
  const agree =
    k === 1
      ? g.op('Equal', [g.op('Greater', [pred, g.scalar(0.5)]), g.op('Greater', [y, g.scalar(0.5)])])
      : g.op('Equal', [g.op('ArgMax', [pred], { axis: 1, keepdims: 0 }), g.op('ArgMax', [y], { axis: 1, keepdims: 0 })]);
  return g.reduceSum(g.op('Cast', [agree], { to: 1 }), undefined, false);
}

/** Per-parameter vectors (undefined: zeros) flattened and concatenated in parameter order. */
function flatConcat(g: Graph, ir: ModelIR, parts: (string | undefined)[]): string {
  const flat = ir.params.map((p, i) => {
    const s = parts[i];
    return s ? g.reshape(s, [p.size]) : g.op('ConstantOfShape', [g.constInt64([p.size])]);
  });
  return flat.length === 1 ? flat[0] : g.op('Concat', flat, { axis: 0 });
}
