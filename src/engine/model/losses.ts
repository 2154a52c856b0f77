/**
 * Losses by TF.js/Keras name, built from ops whose gradients are twice differentiable (no
 * `customGrad`, no saved-output gradients), so exact Hessian-vector products through them are
 * right. Definitions: `ir.ts` (LossName). A user loss `(yTrue, yPred) => scalar` is also accepted;
 * it must be a mean over samples so chunked full-batch evaluation is exact.
 */
import { tf } from '../tf';
import type { Scalar, Tensor } from '../tf';
import { CLIP_EPS, outputActivation, type LossName, type ModelIR } from './ir';
import { applyActivation, forward } from './forward';

export type UserLoss = (yTrue: Tensor, yPred: Tensor) => Tensor;
export type LossSpec = LossName | UserLoss;

/**
 * log softmax over the last axis as z - (m + log sum exp(z - m)). The expression does not depend
 * on the shift m, so m = max z is taken as a constant (read back, a few KB): the gradient then has
 * no max mask, which cost two [n, k] Equal kernels per product (7% of an H·v on wasm).
 */
export function logSoftmax(z: Tensor): Tensor {
  const mx = tf.max(z, -1, true);
  const m = tf.tensor(mx.dataSync(), mx.shape);
  return tf.sub(z, tf.add(m, tf.log(tf.sum(tf.exp(tf.sub(z, m)), -1, true))));
}

/** Whether the loss is computed from the output node's logits (softmax/sigmoid folded in). */
export function usesLogits(ir: ModelIR, loss: LossSpec): boolean {
  const act = outputActivation(ir);
  return (loss === 'categoricalCrossentropy' && act === 'softmax') || (loss === 'binaryCrossentropy' && act === 'sigmoid');
}

/** The loss of a batch as a scalar tensor (a mean over the batch). */
export function batchLoss(ir: ModelIR, loss: LossSpec, params: Tensor[], consts: Tensor[], x: Tensor, y: Tensor): Scalar {
  const logits = usesLogits(ir, loss);
  const out = forward(ir, params, consts, x, { logits });
  return lossFromOutput(loss, out, y, logits);
}

export function lossFromOutput(loss: LossSpec, out: Tensor, y: Tensor, logits: boolean): Scalar {
  if (typeof loss === 'function') return tf.reshape(loss(y, out), []) as Scalar;
  const flat2 = (t: Tensor): Tensor => (t.rank === 2 ? t : tf.reshape(t, [t.shape[0], -1]));
  switch (loss) {
    case 'meanSquaredError':
      return tf.mean(tf.square(tf.sub(out, y))) as Scalar;
    case 'categoricalCrossentropy': {
      const z = flat2(out);
      const yy = flat2(y);
      if (logits) return tf.neg(tf.mean(tf.sum(tf.mul(yy, logSoftmax(z)), -1))) as Scalar;
      const p = tf.clipByValue(tf.div(z, tf.sum(z, -1, true)), CLIP_EPS, 1 - CLIP_EPS);
      return tf.neg(tf.mean(tf.sum(tf.mul(yy, tf.log(p)), -1))) as Scalar;
    }
    case 'binaryCrossentropy': {
      if (logits) return tf.mean(tf.sub(tf.softplus(out), tf.mul(y, out))) as Scalar;
      const p = tf.clipByValue(out, CLIP_EPS, 1 - CLIP_EPS);
      return tf.neg(tf.mean(tf.add(tf.mul(y, tf.log(p)), tf.mul(tf.sub(1, y), tf.log(tf.sub(1, p)))))) as Scalar;
    }
  }
  throw new Error(`unknown loss ${String(loss)}`);
}

/** Number of correct predictions in a batch: argmax agreement, or the 0.5 threshold for one output. */
export function correctCount(pred: Tensor, y: Tensor): Tensor {
  const n = pred.shape[0];
  const flat = tf.reshape(pred, [n, -1]);
  const yy = tf.reshape(y, [n, -1]);
  const hits = flat.shape[1] === 1 ? tf.equal(tf.greater(flat, 0.5), tf.greater(yy, 0.5)) : tf.equal(tf.argMax(flat, 1), tf.argMax(yy, 1));
  return tf.sum(tf.cast(hits, 'float32'));
}

/** Predictions (after the output activation) for accuracy and inspection. */
export function predict(ir: ModelIR, params: Tensor[], consts: Tensor[], x: Tensor): Tensor {
  const out = forward(ir, params, consts, x, { logits: true });
  const act = outputActivation(ir);
  return act === 'linear' ? out : applyActivation(out, act);
}
