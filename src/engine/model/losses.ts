/**
 * Losses by TF.js/Keras name, built from ops whose gradients are twice differentiable (no
 * `customGrad`, no saved-output gradients), so exact Hessian-vector products through them are
 * right. Definitions: `ir.ts` (LossName). A user loss `(yTrue, yPred) => scalar` is also accepted;
 * it must be a mean over samples so chunked full-batch evaluation is exact.
 */
import { tf } from '../tf';
import type { Scalar, Tensor } from '../tf';
import { UserCodeError } from '../errors';
import { CLIP_EPS, outputActivation, type LossName, type ModelIR } from './ir';
import { applyActivation, forward } from './forward';

/**
 * A loss written by the user. `file` names the experiment module it came from (set by the
 * module loader, which also maps what the function throws to the module's lines), for messages.
 */
export type UserLoss = ((yTrue: Tensor, yPred: Tensor) => Tensor) & { readonly file?: string };
export type LossSpec = LossName | UserLoss;

/** What a user loss is called in messages. */
export const USER_LOSS = 'loss(yTrue, yPred)';

/**
 * log softmax over the last axis as (z - m) - log sum exp(z - m). The expression does not depend
 * on the shift m, so m = max z is taken as a constant (read back, a few KB): the gradient then has
 * no max mask, which cost two [n, k] Equal kernels per product (7% of an H·v on wasm).
 */
export function logSoftmax(z: Tensor): Tensor {
  const mx = tf.max(z, -1, true);
  const m = tf.tensor(mx.dataSync(), mx.shape);
  // Not z - (m + log sum ...): for logits of 1e30, m + log(k) rounds to m and the cross-entropy
  // of k equal logits came out 0 instead of log(k).
  const d = tf.sub(z, m);
  return tf.sub(d, tf.log(tf.sum(tf.exp(d), -1, true)));
}

/**
 * Whether every element of `t` is finite: one product and one reduction, read back (0 * Inf and
 * 0 * NaN are NaN, and a sum keeps a NaN).
 */
export function allFinite(t: Tensor): boolean {
  return Number.isFinite(tf.sum(tf.mul(t, 0)).dataSync()[0]);
}

/**
 * The loss, made NaN when the model's outputs `out` are not finite. The built-in losses from
 * logits and MSE carry a non-finite output to the loss by themselves; clipping (probabilities)
 * and user losses can hide it behind a finite value, so those pass through here. The check is
 * read back, not added to the graph: gradients are unchanged.
 */
function nanUnlessFinite(loss: Scalar, out: Tensor): Scalar {
  return allFinite(out) ? loss : (tf.add(loss, NaN) as Scalar);
}

/** What a user loss returned, in words, for messages. */
function describeReturn(r: unknown): string {
  if (r === undefined) return 'undefined (is a return statement missing?)';
  if (r === null) return 'null';
  if (typeof r === 'number') return `a number (${r}), not a tensor`;
  if (r instanceof tf.Tensor) return `a tensor of shape [${r.shape.join(',')}]`;
  if (typeof (r as { then?: unknown }).then === 'function') return 'a Promise (the loss must be synchronous: no async, no await)';
  if (Array.isArray(r)) return 'an array, not a tensor';
  const t = r as { shape?: unknown; dtype?: unknown };
  if (typeof r === 'object' && Array.isArray(t.shape) && typeof t.dtype === 'string') return "a tensor of another copy of TF.js (use yPred's methods, or the tf that model(tf) receives)";
  return `${typeof r === 'object' ? 'an object' : `a ${typeof r}`}, not a tensor`;
}

/**
 * Checks what a user loss returned: a float32 tensor holding one value (a scalar: the mean over
 * the batch), not disposed. Returns it as a scalar; anything else is a `BasinError` saying what
 * came back. The arguments must still be alive after the call (the loss must not dispose them).
 */
export function checkUserLossValue(r: unknown, yTrue: Tensor, yPred: Tensor, file?: string): Scalar {
  const fail = (what: string): never => {
    throw new UserCodeError(`${USER_LOSS} ${what}`, file);
  };
  if (!(r instanceof tf.Tensor)) {
    const hint = typeof r === 'number' ? ': compute it from yTrue and yPred with tf ops, e.g. tf.mean(tf.square(tf.sub(yPred, yTrue))), so it can be differentiated' : '; it must return a scalar tensor (a mean over samples)';
    return fail(`returned ${describeReturn(r)}${hint}`);
  }
  if (yTrue.isDisposed || yPred.isDisposed) fail('disposed its argument; it must leave yTrue and yPred alone');
  if (r.isDisposed) fail('returned a disposed tensor (return the value itself, not a tensor disposed or created inside a tf.tidy that did not return it)');
  if (r.size !== 1) fail(`returned a tensor of shape [${r.shape.join(',')}]; it must return a scalar (a mean over samples)`);
  if (r.dtype !== 'float32') fail(`returned a tensor of dtype ${r.dtype}; it must return a float32 scalar computed from yPred`);
  return (r.rank === 0 ? r : tf.reshape(r, [])) as Scalar;
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
  if (typeof loss === 'function') return nanUnlessFinite(checkUserLossValue(loss(y, out), y, out, loss.file), out);
  const flat2 = (t: Tensor): Tensor => (t.rank === 2 ? t : tf.reshape(t, [t.shape[0], -1]));
  switch (loss) {
    case 'meanSquaredError':
      return tf.mean(tf.square(tf.sub(out, y))) as Scalar;
    case 'categoricalCrossentropy': {
      const z = flat2(out);
      const yy = flat2(y);
      if (logits) return tf.neg(tf.mean(tf.sum(tf.mul(yy, logSoftmax(z)), -1))) as Scalar;
      const p = tf.clipByValue(tf.div(z, tf.sum(z, -1, true)), CLIP_EPS, 1 - CLIP_EPS);
      return nanUnlessFinite(tf.neg(tf.mean(tf.sum(tf.mul(yy, tf.log(p)), -1))) as Scalar, z);
    }
    case 'crossEntropyFromLogits':
      return tf.neg(tf.mean(tf.sum(tf.mul(flat2(y), logSoftmax(flat2(out))), -1))) as Scalar;
    case 'binaryCrossentropy': {
      if (logits) return tf.mean(tf.sub(tf.softplus(out), tf.mul(y, out))) as Scalar;
      const p = tf.clipByValue(out, CLIP_EPS, 1 - CLIP_EPS);
      return nanUnlessFinite(tf.neg(tf.mean(tf.add(tf.mul(y, tf.log(p)), tf.mul(tf.sub(1, y), tf.log(tf.sub(1, p)))))) as Scalar, out);
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
