/**
 * Second-order-safe gradients for TF.js.
 *
 * An exact Hessian-vector product is the gradient of (grad L . v) (Pearlmutter 1994, "Fast exact
 * multiplication by the Hessian"): double backprop. TF.js records the first backward pass on the
 * outer tape, but several registered gradients read the op's *saved output* (Tanh: 1 - y^2,
 * Sigmoid: y(1 - y), Exp: y, Softmax, LogSoftmax, Elu, Pow): the outer tape does not see that y
 * depends on x, so the second derivative silently loses a term. Others have no gradient at all
 * (Greater in Elu/Selu's gradient, Conv2DBackpropFilter, AvgPoolGrad) and fail loudly.
 *
 * This module replaces those gradients with ones that recompute everything from the op's inputs,
 * so the outer tape sees every dependency, and adds the missing ones. Each is proved against the
 * float64 oracle in test/unit/hvp.test.ts.
 */
import { tf } from '../tf';
import type { Tensor } from '../tf';

type GradFunc = (dy: Tensor | Tensor[], saved: Tensor[], attrs: Record<string, unknown>) => Record<string, () => Tensor>;

interface SafeGrad {
  kernelName: string;
  inputsToSave?: string[];
  gradFunc: GradFunc;
  why: string;
}

const SELU_SCALE = 1.0507009873554804934193349852946;
const SELU_ALPHA = 1.6732632423543772848170429916717;

const one = (dy: Tensor | Tensor[]): Tensor => (Array.isArray(dy) ? dy[0] : dy);

/** Softmax recomputed from logits with exp/sum only (so its gradient is the safe Exp's). */
function softmaxOf(x: Tensor, axis: number): Tensor {
  const shifted = tf.sub(x, tf.max(x, axis, true));
  const e = tf.exp(shifted);
  return tf.div(e, tf.sum(e, axis, true));
}

const zeroGrad = (names: string[]): GradFunc => (_dy, saved) =>
  Object.fromEntries(names.map((n, i) => [n, () => tf.zeros(saved[i].shape, 'float32')]));

export const SAFE_GRADIENTS: SafeGrad[] = [
  {
    kernelName: 'Tanh',
    inputsToSave: ['x'],
    why: 'reads saved output y (1 - y^2)',
    gradFunc: (dy, [x]) => ({ x: () => tf.mul(one(dy), tf.sub(1, tf.square(tf.tanh(x)))) }),
  },
  {
    kernelName: 'Sigmoid',
    inputsToSave: ['x'],
    why: 'reads saved output y (y (1 - y))',
    gradFunc: (dy, [x]) => ({
      x: () => {
        const s = tf.sigmoid(x);
        return tf.mul(one(dy), tf.mul(s, tf.sub(1, s)));
      },
    }),
  },
  {
    kernelName: 'Exp',
    inputsToSave: ['x'],
    why: 'reads saved output y',
    gradFunc: (dy, [x]) => ({ x: () => tf.mul(one(dy), tf.exp(x)) }),
  },
  {
    kernelName: 'Softmax',
    inputsToSave: ['logits'],
    why: 'reads saved output y',
    gradFunc: (dy, [logits], attrs) => ({
      logits: () => {
        const dim = (attrs.dim as number) ?? -1;
        const y = softmaxOf(logits, dim);
        const g = one(dy);
        return tf.mul(y, tf.sub(g, tf.sum(tf.mul(g, y), dim, true)));
      },
    }),
  },
  {
    kernelName: 'LogSoftmax',
    inputsToSave: ['logits'],
    why: 'reads saved output y',
    gradFunc: (dy, [logits], attrs) => ({
      logits: () => {
        const axis = (attrs.axis as number) ?? -1;
        const g = one(dy);
        return tf.sub(g, tf.mul(softmaxOf(logits, axis), tf.sum(g, axis, true)));
      },
    }),
  },
  {
    kernelName: 'Elu',
    inputsToSave: ['x'],
    why: 'reads saved output y (EluGrad has no gradient)',
    gradFunc: (dy, [x]) => ({ x: () => tf.mul(one(dy), tf.where(tf.greater(x, 0), tf.onesLike(x), tf.exp(x))) }),
  },
  {
    kernelName: 'Selu',
    inputsToSave: ['x'],
    why: 'its gradient uses Greater, which has no gradient',
    gradFunc: (dy, [x]) => ({
      x: () =>
        tf.mul(
          one(dy),
          tf.where(tf.greater(x, 0), tf.fill(x.shape, SELU_SCALE), tf.mul(SELU_SCALE * SELU_ALPHA, tf.exp(x))),
        ),
    }),
  },
  {
    kernelName: 'Pow',
    inputsToSave: ['a', 'b'],
    why: 'reads saved output y for the exponent gradient',
    gradFunc: (dy, [a, b]) => {
      const g = one(dy);
      return {
        a: () => reduceTo(tf.mul(g, tf.mul(b, tf.pow(a, tf.sub(b, 1)))), a.shape),
        b: () => {
          const safeLog = tf.where(tf.greater(a, 0), tf.log(tf.maximum(a, 1e-38)), tf.zerosLike(a));
          return reduceTo(tf.mul(g, tf.mul(tf.pow(a, b), safeLog)), b.shape);
        },
      };
    },
  },
  {
    kernelName: 'Conv2DBackpropFilter',
    inputsToSave: ['x', 'dy'],
    why: 'no gradient registered',
    gradFunc: (ddw, [x, dy], attrs) => {
      const strides = attrs.strides as [number, number];
      const pad = attrs.pad as 'valid' | 'same';
      return {
        x: () => tf.conv2dTranspose(dy as tf.Tensor4D, one(ddw) as tf.Tensor4D, x.shape as [number, number, number, number], strides, pad),
        dy: () => tf.conv2d(x as tf.Tensor4D, one(ddw) as tf.Tensor4D, strides, pad),
      };
    },
  },
  {
    kernelName: 'AvgPool',
    inputsToSave: ['x'],
    why: "TF.js's AvgPoolGrad spreads dy with 1/(fh fw) while 'same' pooling averages over in-bounds cells only: wrong at borders",
    gradFunc: (dy, [x], attrs) => ({
      x: () => {
        const g = one(dy);
        const w = borderWeights(x.shape, attrs);
        const scaled = w ? tf.mul(g, w) : g;
        return tf.engine().runKernel('AvgPoolGrad', { dy: scaled, input: x }, attrs as never) as Tensor;
      },
    }),
  },
  {
    kernelName: 'AvgPoolGrad',
    inputsToSave: ['dy', 'input'],
    why: 'no gradient registered',
    // avgPoolGrad(dy) = S^T dy / (fh fw) with S the window sum, so its adjoint is S ddx / (fh fw),
    // which is avgPool(ddx) (= S ddx / count) times count / (fh fw).
    gradFunc: (ddx, [, input], attrs) => ({
      dy: () => {
        const pooled = tf.avgPool(one(ddx) as tf.Tensor4D, attrs.filterSize as [number, number], attrs.strides as [number, number], attrs.pad as 'valid' | 'same');
        const w = borderWeights(input.shape, attrs);
        return w ? tf.div(pooled, w) : pooled;
      },
      input: () => tf.zerosLike(input),
    }),
  },
  ...['Greater', 'GreaterEqual', 'Less', 'LessEqual', 'Equal', 'NotEqual', 'LogicalAnd', 'LogicalOr'].map(
    (kernelName): SafeGrad => ({ kernelName, inputsToSave: ['a', 'b'], why: 'piecewise constant: zero gradient', gradFunc: zeroGrad(['a', 'b']) }),
  ),
  { kernelName: 'LogicalNot', inputsToSave: ['x'], why: 'piecewise constant: zero gradient', gradFunc: zeroGrad(['x']) },
];

/**
 * For 'same' average pooling: fh fw / count per output cell (count = in-bounds cells of its
 * window), shape [1, oh, ow, 1]; undefined when every window is full (valid padding).
 */
function borderWeights(xShape: number[], attrs: Record<string, unknown>): Tensor | undefined {
  if (attrs.pad !== 'same') return undefined;
  const info = tf.backend_util.computePool2DInfo(
    xShape as [number, number, number, number],
    attrs.filterSize as [number, number],
    attrs.strides as [number, number],
    1,
    'same',
  );
  const { outHeight, outWidth, filterHeight, filterWidth, strideHeight, strideWidth, inHeight, inWidth } = info;
  const w = new Float32Array(outHeight * outWidth);
  let partial = false;
  for (let r = 0; r < outHeight; r++) {
    const r0 = r * strideHeight - info.padInfo.top;
    const rows = Math.min(inHeight, r0 + filterHeight) - Math.max(0, r0);
    for (let c = 0; c < outWidth; c++) {
      const c0 = c * strideWidth - info.padInfo.left;
      const cols = Math.min(inWidth, c0 + filterWidth) - Math.max(0, c0);
      w[r * outWidth + c] = (filterHeight * filterWidth) / (rows * cols);
      if (rows * cols !== filterHeight * filterWidth) partial = true;
    }
  }
  return partial ? tf.tensor4d(w, [1, outHeight, outWidth, 1]) : undefined;
}

/** Sums a broadcast gradient back to `shape`. */
function reduceTo(t: Tensor, shape: number[]): Tensor {
  if (t.shape.length === shape.length && t.shape.every((d, i) => d === shape[i])) return t;
  const lead = t.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < t.rank; i++) if (i < lead || (shape[i - lead] === 1 && t.shape[i] !== 1)) axes.push(i);
  return tf.reshape(tf.sum(t, axes), shape);
}

let installed = false;

/** Installs the safe gradients (idempotent). Called before any exact Hessian-vector product. */
export function installSecondOrderGradients(): void {
  if (installed) return;
  for (const g of SAFE_GRADIENTS) {
    tf.registerGradient({ kernelName: g.kernelName, inputsToSave: g.inputsToSave, gradFunc: g.gradFunc as never });
  }
  installed = true;
}
