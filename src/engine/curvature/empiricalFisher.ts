/**
 * The empirical Fisher (named and criticised in Kunstner, Hennig & Balles 2019, "Limitations of the
 * empirical Fisher approximation for natural gradient descent", NeurIPS): the true Fisher with the
 * model's predictive distribution replaced by the training labels,
 *
 *   E = c sum_n g_n g_n^T,   g_n = d l_n / d theta,
 *
 * with curvlinops' reduction convention (`EmpiricalFisherLinearOperator`): the loss is
 * L = c sum_n l_n, c = 1/(N C) for meanSquaredError and binaryCrossentropy (C outputs per sample, l_n
 * the sample's summed error), c = 1/N for categoricalCrossentropy and for a custom loss (l_n the
 * sample's share of the mean, times N). It is not a curvature of the loss (Kunstner et al.: it can
 * point far from the Hessian and the Fisher, and vanishes at an interpolating minimum); Basin
 * computes it to show that.
 *
 * No per-sample gradients are formed: g_n = J_n^T r_n with r_n = d l_n / d f_n, so
 * E v = c sum_n J_n^T r_n (r_n . J_n v) = J^T D (J v), D block-diagonal with blocks c r_n r_n^T:
 * one J v, one output-space product and one J^T per chunk, the cost of a GGN product, for any N.
 */
import { tf } from '../tf';
import type { OutputCurvature } from '../objective';

export const empiricalFisherOutput: OutputCurvature = (s) => {
  // The chunk's mean loss is c_chunk sum_n l_n; its output gradient is c_chunk r.
  const perSample = s.loss === 'categoricalCrossentropy' || s.loss === 'crossEntropyFromLogits' || typeof s.loss === 'function';
  const c = perSample ? 1 / s.n : 1 / s.out.size;
  const g = tf.reshape(s.lossGrad(), [s.n, -1]);
  const proj = tf.sum(tf.mul(g, tf.reshape(s.jv, [s.n, -1])), -1, true);
  return tf.reshape(tf.mul(g, tf.mul(proj, 1 / c)), s.out.shape);
};
