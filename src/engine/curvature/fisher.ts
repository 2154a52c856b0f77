/**
 * The (true) Fisher information matrix, following curvlinops' conventions (Dangel et al.,
 * f-dangel/curvlinops, `FisherMCLinearOperator`; Martens 2020, "New insights and perspectives on
 * the natural gradient method", sec. 9): the loss is read as a reduction factor c times a sum of
 * negative log-likelihoods, L = c sum_n -log p(y_n | f_n), and
 *
 *   F = c sum_n E_{y ~ p(y | f_n)} [ g_n(y) g_n(y)^T ],   g_n(y) = d/d theta (-log p(y | f_n))
 *     = c sum_n J_n^T F_n J_n,   F_n = E_y [ (d/df -log p)(d/df -log p)^T ]  (output space).
 *
 * The likelihoods of Basin's losses (C outputs per sample):
 * - meanSquaredError, L = (1/(N C)) sum ||f - y||^2: c = 1/(N C), p(y | f) = Normal(f, I / 2) (the
 *   variance that makes ||f - y||^2 the negative log-likelihood, up to a constant), F_n = 2 I. A
 *   Gaussian of another variance s^2 would scale F by 1/(2 s^2): the Fisher of MSE is defined only
 *   up to that noise scale, and this one is the scale the loss implies.
 * - categoricalCrossentropy on logits (softmax folded in), c = 1/N: p = Categorical(softmax(f)),
 *   F_n = diag(p) - p p^T.
 * - binaryCrossentropy on logits (sigmoid folded in), c = 1/(N C): independent Bernoulli(sigmoid(f)),
 *   F_n = diag(q (1 - q)).
 * In all three, F_n is the Hessian of -log p with respect to f (exponential families in their
 * natural parameter), so F equals the generalized Gauss-Newton matrix exactly (for cross-entropy
 * when each row of targets sums to 1). It is computed here from the closed forms above, not from the
 * loss's second derivatives, so the identity is a check, not a definition. A cross-entropy on
 * probabilities (the output activation not folded) or a custom loss is not read as a likelihood:
 * the true Fisher is refused there (the empirical Fisher and the GGN still work).
 *
 * Cost: as the GGN (J v, an output-space product, J^T).
 */
import { tf } from '../tf';
import type { Tensor } from '../tf';
import type { OutputCurvature } from '../objective';
import type { LossSpec } from '../model/losses';
import { InputError } from '../errors';

/** Why the true Fisher is not defined for this loss, or undefined when it is. */
export function fisherUnavailable(loss: LossSpec, logits: boolean): string | undefined {
  if (typeof loss === 'function') return 'the true Fisher needs the loss to be a negative log-likelihood, and a custom loss does not say of which distribution; use the generalized Gauss-Newton or the empirical Fisher';
  if (loss !== 'meanSquaredError' && loss !== 'crossEntropyFromLogits' && !logits) {
    return `the true Fisher needs ${loss} on logits (a ${loss === 'categoricalCrossentropy' ? 'softmax' : 'sigmoid'} output layer, folded into the loss); this model's output activation is not; use the generalized Gauss-Newton or the empirical Fisher`;
  }
  return undefined;
}

export const fisherOutput: OutputCurvature = (s) => {
  const why = fisherUnavailable(s.loss, s.logits);
  if (why) throw new InputError(why);
  const rows = (t: Tensor): Tensor => tf.reshape(t, [s.n, -1]);
  switch (s.loss) {
    case 'meanSquaredError':
      return tf.mul(s.jv, 2 / s.out.size);
    case 'categoricalCrossentropy':
    case 'crossEntropyFromLogits': {
      const p = tf.softmax(rows(s.out));
      const u = rows(s.jv);
      const pu = tf.mul(p, u);
      const fu = tf.sub(pu, tf.mul(p, tf.sum(pu, -1, true)));
      return tf.reshape(tf.mul(fu, 1 / s.n), s.out.shape);
    }
    default: {
      const q = tf.sigmoid(s.out);
      return tf.mul(tf.mul(s.jv, tf.mul(q, tf.sub(1, q))), 1 / s.out.size);
    }
  }
};
