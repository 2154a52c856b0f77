/**
 * An evaluator computes a model's full-batch loss, gradient and Hessian-vector products, however
 * it splits the work: `LocalEvaluator` on this thread, `ParallelEvaluator` (shard/parallel.ts)
 * across this thread and worker threads, each holding a share of the samples. Curvature
 * operators and jobs use this interface and do not care which.
 */
import type { ModelIR } from './model/ir';
import { twiceDifferentiable } from './model/forward';
import { Objective } from './objective';
import { OUTPUT_CURVATURES, type OutputCurvatureName } from './curvature/output';

export interface PlaneLosses {
  loss: Float64Array;
  accuracy?: Float64Array;
}

export interface Evaluator {
  readonly ir: ModelIR;
  readonly dim: number;
  readonly numSamples: number;
  /** Threads working on each evaluation. */
  readonly threads: number;
  readonly counts: { forward: number; gradient: number; hvp: number };
  /** Current parameters (a copy). */
  parameters(): Float32Array;
  setParameters(theta: ArrayLike<number>): Promise<void>;
  loss(theta?: ArrayLike<number>): Promise<number>;
  gradient(theta?: ArrayLike<number>): Promise<{ loss: number; grad: Float64Array }>;
  /** Exact H v by double backprop. */
  hvp(v: Float64Array): Promise<Float64Array>;
  /**
   * Whether this engine can differentiate the model twice (exact H v and the J v of Gauss-Newton
   * and Fisher products), and why not. TF.js cannot through overlapping or padded max pooling
   * (MaxPoolGrad has no gradient); ONNX Runtime's emitted graphs can through every IR op.
   */
  secondOrder(): { ok: boolean; reason?: string };
  /**
   * A curvature product C v other than the Hessian's: generalized Gauss-Newton, Fisher or empirical
   * Fisher (src/engine/curvature). Optional: an evaluator without it computes Hessian products
   * only, and curvature jobs fall back to a TF.js evaluator or refuse (curvature/index.ts).
   */
  curvature?(kind: OutputCurvatureName, v: Float64Array): Promise<Float64Array>;
  /**
   * The mean loss and gradient over the samples `indices` (a minibatch, rows of the data) at
   * `theta`, on this evaluator's engine. Optional: training takes the minibatches of an evaluator
   * without it from a TF.js objective on this thread.
   */
  batchGradient?(indices: Int32Array, theta: Float32Array): Promise<{ loss: number; grad: Float64Array }>;
  /** Classification accuracy at the current parameters (or at `theta`). */
  accuracy(theta?: ArrayLike<number>): Promise<number>;
  /** Losses (and accuracies) at origin + sum_k c_k d_k for P rows of coefficients (see Objective). */
  planeLosses(origin: Float32Array, dirs: Float64Array[], coeffs: Float64Array, withAccuracy: boolean): Promise<PlaneLosses>;
  dispose(): void;
}

/** An evaluator on this thread: a thin async face on `Objective`. */
export class LocalEvaluator implements Evaluator {
  readonly threads = 1;
  constructor(readonly objective: Objective) {}
  get ir(): ModelIR {
    return this.objective.ir;
  }
  get dim(): number {
    return this.objective.dim;
  }
  get numSamples(): number {
    return this.objective.numSamples;
  }
  get counts(): { forward: number; gradient: number; hvp: number } {
    return this.objective.counts;
  }
  parameters(): Float32Array {
    return this.objective.parameters;
  }
  async setParameters(theta: ArrayLike<number>): Promise<void> {
    this.objective.setParameters(theta);
  }
  async loss(theta?: ArrayLike<number>): Promise<number> {
    return this.objective.lossAt(theta);
  }
  async gradient(theta?: ArrayLike<number>): Promise<{ loss: number; grad: Float64Array }> {
    return this.objective.gradient(theta);
  }
  async hvp(v: Float64Array): Promise<Float64Array> {
    return this.objective.hvpExact(v);
  }
  secondOrder(): { ok: boolean; reason?: string } {
    return twiceDifferentiable(this.ir);
  }
  async curvature(kind: OutputCurvatureName, v: Float64Array): Promise<Float64Array> {
    return this.objective.curvatureProduct(OUTPUT_CURVATURES[kind], v);
  }
  async accuracy(theta?: ArrayLike<number>): Promise<number> {
    return this.objective.accuracy(theta);
  }
  async planeLosses(origin: Float32Array, dirs: Float64Array[], coeffs: Float64Array, withAccuracy: boolean): Promise<PlaneLosses> {
    return this.objective.planeLosses(origin, dirs, coeffs, withAccuracy);
  }
  dispose(): void {
    this.objective.dispose();
  }
}
