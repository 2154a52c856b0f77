/** Messages between a ParallelEvaluator and its shard threads (plain data, typed arrays transferred). */
import type { LossName, ModelIR } from '../model/ir';
import type { Split } from '../data';
import type { BackendName } from '../backend';
import type { OutputCurvatureName } from '../curvature/output';

export interface ShardInit {
  ir: ModelIR;
  theta: Float32Array;
  loss: LossName;
  data: Split;
  chunkSize?: number;
  /** The TF.js backend of a TF.js shard. */
  backend: BackendName;
  /** The shard's engine: TF.js (default) or ONNX Runtime with one intra-op thread. */
  engine?: ShardEngine;
}

export type ShardEngine = 'tfjs' | 'onnxruntime';

export type ShardRequest =
  | { id: number; op: 'loss'; theta?: Float32Array }
  | { id: number; op: 'gradient'; theta?: Float32Array }
  | { id: number; op: 'batchGradient'; indices: Int32Array; theta: Float32Array }
  | { id: number; op: 'hvp'; v: Float64Array }
  | { id: number; op: 'curvature'; kind: OutputCurvatureName; v: Float64Array }
  | { id: number; op: 'accuracy'; theta?: Float32Array }
  | { id: number; op: 'setParameters'; theta: Float32Array }
  | { id: number; op: 'plane'; origin: Float32Array; dirs: Float64Array[]; coeffs: Float64Array; withAccuracy: boolean }
  /** Release the engine and end the thread (after the requests before it). */
  | { id: number; op: 'close' };

export type ShardReply =
  | { id: number; ok: true; value?: number; vector?: Float64Array; vector2?: Float64Array }
  | { id: number; ok: false; error: string };
