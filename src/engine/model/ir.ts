/**
 * Basin's model intermediate representation.
 *
 * A TF.js layers model (loaded from model.json or returned by an experiment module) is lowered to
 * this plain, backend-free description: a DAG of nodes in topological order plus a list of
 * trainable parameters. Everything numeric in Basin (the TF.js forward pass in `forward.ts`, the
 * float64 reference used by the tests) interprets the same IR, so they agree by construction on
 * what the model computes.
 *
 * Conventions (the same as TF.js / Keras):
 * - activations are NHWC (`channelsLast`); the batch dimension is never part of a shape here;
 * - a Dense kernel is stored `[in, out]`, a Conv2D kernel `[kh, kw, cin, cout]`;
 * - `same` padding follows TensorFlow: total padding `max((ceil(n/s) - 1) * s + k - n, 0)`, the
 *   smaller half before and the larger half after;
 * - average pooling with `same` padding averages over the in-bounds elements only;
 * - batch normalization runs in inference mode: `gamma * (x - movingMean) / sqrt(movingVariance +
 *   epsilon) + beta` over the last axis; moving statistics are constants, not parameters;
 * - dropout is the identity (inference mode).
 *
 * Parameters are the trainable weights in model order. The flat parameter vector that curvature
 * operators act on is the concatenation of every parameter's row-major values in that order.
 */

export type Activation = 'linear' | 'relu' | 'elu' | 'selu' | 'tanh' | 'sigmoid' | 'softplus' | 'softmax';

export const ACTIVATIONS: readonly Activation[] = ['linear', 'relu', 'elu', 'selu', 'tanh', 'sigmoid', 'softplus', 'softmax'];

export type Padding = 'valid' | 'same';

/** Index into `ModelIR.params`. */
export type ParamRef = number;
/** Index into `ModelIR.constants`. */
export type ConstRef = number;

export type LayerOp =
  | { kind: 'input'; shape: number[] }
  /** y = act(x W + b) over the last axis. */
  | { kind: 'dense'; units: number; activation: Activation; kernel: ParamRef; bias?: ParamRef }
  /** 2-D convolution, NHWC, dilation 1. */
  | {
      kind: 'conv2d';
      filters: number;
      kernelSize: [number, number];
      strides: [number, number];
      padding: Padding;
      activation: Activation;
      kernel: ParamRef;
      bias?: ParamRef;
    }
  | { kind: 'maxPool2d' | 'avgPool2d'; poolSize: [number, number]; strides: [number, number]; padding: Padding }
  /** Mean over the two spatial axes: [h, w, c] -> [c]. */
  | { kind: 'globalAvgPool2d' }
  /** Row-major flatten of everything but the batch axis. */
  | { kind: 'flatten' }
  /** Identity at inference. */
  | { kind: 'dropout'; rate: number }
  | {
      kind: 'batchNorm';
      epsilon: number;
      gamma?: ParamRef;
      beta?: ParamRef;
      movingMean: ConstRef;
      movingVariance: ConstRef;
    }
  | { kind: 'activation'; activation: Activation }
  /** Leaky ReLU: x for x > 0, alpha x otherwise (ONNX LeakyRelu, PyTorch's nn.LeakyReLU; alpha 0.01 by default there). */
  | { kind: 'leakyRelu'; alpha: number }
  /** Elementwise sum of all inputs (same shapes). */
  | { kind: 'add' }
  /** Concatenation of all inputs along the last axis. */
  | { kind: 'concatenate' };

export interface IRNode {
  /** The Keras layer name. */
  name: string;
  op: LayerOp;
  /** Indices of earlier nodes this node reads, in order. Empty for `input`. */
  inputs: number[];
  /** Output shape without the batch dimension. */
  outShape: number[];
}

export interface ParamInfo {
  /** Full weight name, e.g. `dense_1/kernel`. */
  name: string;
  /** Name of the layer (node) that owns it. */
  layer: string;
  role: 'kernel' | 'bias' | 'gamma' | 'beta';
  shape: number[];
  size: number;
  /** Offset of this parameter in the flat parameter vector. */
  offset: number;
}

export interface ConstInfo {
  name: string;
  shape: number[];
  values: Float32Array;
}

export interface ModelIR {
  /** Model name from the topology, for messages. */
  name: string;
  nodes: IRNode[];
  /** Index of the single input node. */
  input: number;
  /** Index of the output node. */
  output: number;
  params: ParamInfo[];
  constants: ConstInfo[];
  /** Total number of trainable scalars (length of the flat parameter vector). */
  numParams: number;
}

/** The activation applied by the output node, if any (decides how some losses are computed). */
export function outputActivation(ir: ModelIR): Activation {
  const op = ir.nodes[ir.output].op;
  if (op.kind === 'dense' || op.kind === 'conv2d' || op.kind === 'activation') return op.activation;
  return 'linear';
}

/** Built-in losses by their TF.js/Keras names. */
export type LossName = 'meanSquaredError' | 'categoricalCrossentropy' | 'binaryCrossentropy' | 'crossEntropyFromLogits';

export const LOSS_NAMES: readonly LossName[] = ['meanSquaredError', 'categoricalCrossentropy', 'binaryCrossentropy', 'crossEntropyFromLogits'];

/**
 * Exact loss definitions (per batch of n samples with k outputs each; `z` is the output node's
 * pre-activation when the output activation is folded into the loss):
 * - meanSquaredError: mean over samples and outputs of (yhat - y)^2.
 * - categoricalCrossentropy: with a softmax output, from the logits z:
 *   -(1/n) sum_i sum_j y_ij * logSoftmax(z_i)_j. Otherwise on the probabilities p:
 *   -(1/n) sum_i sum_j y_ij * log(clip(p_ij / sum_j p_ij, 1e-7, 1 - 1e-7)).
 * - binaryCrossentropy: with a sigmoid output, from the logits:
 *   mean over samples and outputs of softplus(z) - y z. Otherwise on p:
 *   -mean(y log(clip(p, 1e-7, 1 - 1e-7)) + (1 - y) log(1 - clip(p, 1e-7, 1 - 1e-7))).
 * - crossEntropyFromLogits: PyTorch's nn.CrossEntropyLoss on the model's outputs o taken as
 *   logits, whatever the output activation: -(1/n) sum_i sum_j y_ij * logSoftmax(o_i)_j (integer
 *   class labels are one-hot encoded when the data is loaded).
 * All are means over samples, so a full-batch loss is the sample-weighted mean of chunk losses.
 */
export const CLIP_EPS = 1e-7;

/**
 * Multiply-adds of one sample's forward pass in the dense and convolution layers (the rest is
 * small beside them): each kernel's size times the positions it is applied at.
 */
export function forwardMultiplyAdds(ir: ModelIR): number {
  let total = 0;
  for (const node of ir.nodes) {
    const op = node.op;
    if (op.kind !== 'dense' && op.kind !== 'conv2d') continue;
    const positions = node.outShape.slice(0, -1).reduce((a, b) => a * b, 1);
    total += ir.params[op.kernel].size * positions;
  }
  return total;
}
