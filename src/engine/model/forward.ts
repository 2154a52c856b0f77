/**
 * The TF.js forward pass of a model IR as a pure function of its parameters: `forward(params, x)`.
 * Unlike `LayersModel.apply`, parameters are ordinary tensors passed in, so `tf.grads` can
 * differentiate with respect to them, twice (Hessian-vector products), and several parameter
 * sets can be evaluated without rebuilding a model.
 */
import { tf } from '../tf';
import type { Tensor } from '../tf';
import type { Activation, LayerOp, ModelIR } from './ir';

export interface ForwardOptions {
  /**
   * Stop before the output node's activation (softmax, sigmoid) so the loss can be computed from
   * the logits, stably.
   */
  logits?: boolean;
  /**
   * Precomputed pre-activations (x W + b) for some dense or conv nodes, by node index: those nodes
   * only apply their activation. Used to evaluate many points of a plane cheaply (surface/).
   */
  preActivation?: ReadonlyMap<number, Tensor>;
}

/**
 * On the wasm backend tanh is computed as 2 sigmoid(2x) - 1: wasm's Tanh kernel is scalar libm
 * (5.2 ms for 256k values here) while Sigmoid is vectorised (0.8 ms), and the identity costs at
 * most ~1e-7 absolute error, below float32 resolution of the activations that follow.
 */

export function applyActivation(x: Tensor, act: Activation): Tensor {
  switch (act) {
    case 'linear':
      return x;
    case 'relu':
      return tf.relu(x);
    case 'elu':
      return tf.elu(x);
    case 'selu':
      return tf.selu(x);
    case 'tanh':
      return tf.getBackend() === 'wasm' ? tf.sub(tf.mul(tf.sigmoid(tf.mul(x, 2)), 2), 1) : tf.tanh(x);
    case 'sigmoid':
      return tf.sigmoid(x);
    case 'softplus':
      return tf.softplus(x);
    case 'softmax':
      return tf.softmax(x, -1);
  }
}

/** Runs the model on a batch x ([n, ...inputShape]). Call inside tf.tidy or a gradient scope. */
export function forward(ir: ModelIR, params: Tensor[], consts: Tensor[], x: Tensor, opts: ForwardOptions = {}): Tensor {
  const values: Tensor[] = new Array(ir.nodes.length);
  ir.nodes.forEach((node, i) => {
    const ins = node.inputs.map((j) => values[j]);
    const skipAct = opts.logits === true && i === ir.output;
    const pre = opts.preActivation?.get(i);
    if (pre && (node.op.kind === 'dense' || node.op.kind === 'conv2d')) values[i] = skipAct ? pre : applyActivation(pre, node.op.activation);
    else values[i] = i === ir.input ? x : applyOp(node.op, ins, params, consts, skipAct);
  });
  return values[ir.output];
}

function applyOp(op: LayerOp, ins: Tensor[], params: Tensor[], consts: Tensor[], skipAct: boolean): Tensor {
  const act = (t: Tensor, a: Activation): Tensor => (skipAct ? t : applyActivation(t, a));
  const x = ins[0];
  switch (op.kind) {
    case 'input':
      return x;
    case 'dense': {
      const w = params[op.kernel] as tf.Tensor2D;
      let y: Tensor;
      if (x.rank === 2) y = tf.matMul(x as tf.Tensor2D, w);
      else {
        const lead = x.shape.slice(0, -1);
        y = tf.reshape(tf.matMul(tf.reshape(x, [-1, x.shape[x.rank - 1]]) as tf.Tensor2D, w), [...lead, op.units]);
      }
      if (op.bias !== undefined) y = tf.add(y, params[op.bias]);
      return act(y, op.activation);
    }
    case 'conv2d': {
      let y: Tensor = tf.conv2d(x as tf.Tensor4D, params[op.kernel] as tf.Tensor4D, op.strides, op.padding);
      if (op.bias !== undefined) y = tf.add(y, params[op.bias]);
      return act(y, op.activation);
    }
    case 'maxPool2d':
      return maxPool(x as tf.Tensor4D, op.poolSize, op.strides, op.padding);
    case 'avgPool2d':
      return tf.avgPool(x as tf.Tensor4D, op.poolSize, op.strides, op.padding);
    case 'globalAvgPool2d':
      return tf.mean(x, [1, 2]);
    case 'flatten':
      return tf.reshape(x, [x.shape[0], -1]);
    case 'dropout':
      return x;
    case 'batchNorm': {
      const mean = consts[op.movingMean];
      const variance = consts[op.movingVariance];
      let y = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, op.epsilon)));
      if (op.gamma !== undefined) y = tf.mul(y, params[op.gamma]);
      if (op.beta !== undefined) y = tf.add(y, params[op.beta]);
      return y;
    }
    case 'activation':
      return act(x, op.activation);
    case 'leakyRelu':
      return tf.leakyRelu(x, op.alpha);
    case 'add':
      return ins.length === 1 ? x : tf.addN(ins);
    case 'concatenate':
      return tf.concat(ins, -1);
  }
}

/**
 * Max pooling. When windows tile the input (stride == pool size) it is computed as a reshape and
 * the sum over the window axes of x times the mask of each window's first maximum (row-major in
 * the window, as tf.maxPool's and PyTorch's argmax). Its gradient is that mask (the mask's own
 * gradient is zero: `firstMaxMask`) and can be differentiated again, so exact
 * Hessian-vector products work. tf.max's gradient would route dy to every tied maximum, a gradient
 * k times too large where k values tie, and ties are common (a constant region under a bias).
 * Other geometries use tf.maxPool, whose MaxPoolGrad cannot be differentiated (those models get
 * finite-difference products).
 */
function maxPool(x: tf.Tensor4D, pool: [number, number], strides: [number, number], padding: 'valid' | 'same'): Tensor {
  const [n, h, w, c] = x.shape;
  const [ph, pw] = pool;
  if (strides[0] === ph && strides[1] === pw && (padding === 'valid' || (h % ph === 0 && w % pw === 0))) {
    const oh = Math.floor(h / ph);
    const ow = Math.floor(w / pw);
    const cropped = oh * ph === h && ow * pw === w ? x : tf.slice(x, [0, 0, 0, 0], [n, oh * ph, ow * pw, c]);
    const win = tf.reshape(cropped, [n, oh, ph, ow, pw, c]);
    if (ph * pw === 1) return tf.reshape(win, [n, oh, ow, c]);
    return tf.sum(tf.mul(win, firstMaxMask(win)), [2, 4]);
  }
  return tf.maxPool(x, pool, strides, padding);
}

/**
 * Of windows laid out [n, oh, ph, ow, pw, c], the 0/1 mask of each window's first maximum in
 * row-major order: the cells whose count of maxima up to them (earlier rows of the window, then
 * their row up to and including them) is 1. Piecewise constant, so its gradient is zero; a custom
 * gradient says so, which also keeps TF.js from differentiating Cumsum (its gradient is wrong for
 * an axis other than the last).
 */
const firstMaxMask = tf.customGrad(((win: tf.Tensor) => {
  const eq = tf.cast(tf.equal(win, tf.max(win, [2, 4], true)), 'float32');
  const count = tf.mul(tf.add(tf.cumsum(eq, 4), tf.cumsum(tf.sum(eq, 4, true), 2, true)), eq);
  return { value: tf.cast(tf.equal(count, 1), 'float32'), gradFunc: () => tf.zerosLike(win) };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as (win: tf.Tensor) => tf.Tensor;

/** True when every op of the model has gradients that TF.js can differentiate again. */
export function twiceDifferentiable(ir: ModelIR): { ok: boolean; reason?: string } {
  for (const node of ir.nodes) {
    const op = node.op;
    if (op.kind === 'maxPool2d') {
      const tiles = op.strides[0] === op.poolSize[0] && op.strides[1] === op.poolSize[1];
      const [h, w] = ir.nodes[node.inputs[0]].outShape;
      if (!tiles || (op.padding === 'same' && (h % op.poolSize[0] !== 0 || w % op.poolSize[1] !== 0))) {
        return { ok: false, reason: `layer '${node.name}' is an overlapping or padded max pooling (MaxPoolGrad has no gradient)` };
      }
    }
  }
  return { ok: true };
}
