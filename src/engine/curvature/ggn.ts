/**
 * The generalized Gauss-Newton matrix (Schraudolph 2002, "Fast curvature matrix-vector products
 * for second-order gradient descent", Neural Computation 14; Martens 2020, "New insights and
 * perspectives on the natural gradient method", JMLR 21, sec. 8):
 *
 *   G = sum_n (1/N) J_n^T (d^2 l_n / d f_n^2) J_n  =  J^T H_L J,
 *
 * where f_n are the model's outputs on sample n as the loss receives them (logits when the loss
 * folds in the softmax or sigmoid), J_n = d f_n / d theta, and H_L the Hessian of the mean loss with
 * respect to the outputs. It is the Hessian without the term sum_n (dl/df_n) . d^2 f_n / d theta^2,
 * the part that carries the network's own second derivatives. G is positive semi-definite whenever
 * the loss is convex in the outputs (mean squared error; cross-entropies on logits); a loss on
 * probabilities or a custom loss need not be, and then neither need G.
 *
 * Product: J v by the double-backprop trick, H_L (J v) by double backprop in output space (small),
 * J^T of that by one backward pass: about the cost of one exact H v (see Objective.curvatureProduct).
 */
import type { OutputCurvature } from '../objective';

export const ggnOutput: OutputCurvature = (s) => s.lossHvp(s.jv);
