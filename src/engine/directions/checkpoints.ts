/**
 * Checkpoints: model files loaded as a flat parameter vector, checked against each other, and the
 * interpolation direction between two of them (Goodfellow, Vinyals and Saxe 2015, "Qualitatively
 * characterizing neural network optimization problems", ICLR): the loss along
 *
 *   theta(alpha) = (1 - alpha) theta_a + alpha theta_b = theta_a + alpha (theta_b - theta_a),
 *
 * sampled on the reference range alpha in -0.5:1.5 with 401 steps (`INTERPOLATE` in grid.ts), so
 * alpha = 0 is checkpoint a and alpha = 1 is checkpoint b.
 */
import { InputError } from '../errors';
import type { ModelIR } from '../model/ir';
import { loadLayersModelFile } from '../model/io';
import { lowerLayersModel } from '../model/lower';

export interface Checkpoint {
  ir: ModelIR;
  /** The flat parameter vector: every `ir.params[i]` at its offset. */
  theta: Float32Array;
  /** The model.json it came from, for messages. */
  file: string;
}

/** Loads a TF.js layers model.json (and its shards) and lowers it to the IR plus a flat theta. */
export async function loadCheckpoint(file: string): Promise<Checkpoint> {
  const model = await loadLayersModelFile(file);
  let lowered;
  try {
    lowered = lowerLayersModel(model, file);
  } finally {
    model.dispose();
  }
  const { ir, values } = lowered;
  const theta = new Float32Array(ir.numParams);
  ir.params.forEach((p, i) => theta.set(values[i], p.offset));
  return { ir, theta, file };
}

/**
 * A weight name without the '_N' suffix TF.js appends when a name is reused within one process
 * ('dense_1/kernel_1' -> 'dense_1/kernel'), so the same file loaded twice compares equal.
 */
export function baseParamName(name: string): string {
  return name.replace(/_\d+$/, '');
}

const shapeText = (s: readonly number[]): string => `[${s.join(', ')}]`;

/**
 * Throws a BasinError unless `b` has the same parameters as `a`: the same count, and parameter by
 * parameter the same name (modulo TF.js's '_N' suffix) and shape. The message is prefixed with b's
 * file and names a's file and the first mismatch (parameters are numbered from 1).
 */
export function assertCompatible(a: Pick<Checkpoint, 'ir' | 'file'>, b: Pick<Checkpoint, 'ir' | 'file'>): void {
  const pa = a.ir.params;
  const pb = b.ir.params;
  const n = Math.min(pa.length, pb.length);
  for (let i = 0; i < n; i++) {
    const x = pa[i];
    const y = pb[i];
    const nx = baseParamName(x.name);
    const ny = baseParamName(y.name);
    if (nx !== ny) throw new InputError(`parameter ${i + 1} is '${ny}' but ${a.file} has '${nx}': the models differ`, b.file);
    if (x.shape.length !== y.shape.length || x.shape.some((d, k) => d !== y.shape[k])) {
      throw new InputError(`parameter ${i + 1} '${ny}' has shape ${shapeText(y.shape)} but ${a.file} has ${shapeText(x.shape)}`, b.file);
    }
  }
  if (pa.length !== pb.length) {
    const extra = pa.length > pb.length
      ? `${a.file} also has '${baseParamName(pa[n].name)}'`
      : `this file also has '${baseParamName(pb[n].name)}'`;
    throw new InputError(`the model has ${pb.length} parameter tensors but ${a.file} has ${pa.length} (${extra})`, b.file);
  }
  if (a.ir.numParams !== b.ir.numParams) {
    throw new InputError(`the model has ${b.ir.numParams} parameters but ${a.file} has ${a.ir.numParams}`, b.file);
  }
}

/** theta_b - theta_a in float64, after `assertCompatible(a, b)`. */
export function interpolationDirection(a: Checkpoint, b: Checkpoint): Float64Array {
  assertCompatible(a, b);
  const d = new Float64Array(a.theta.length);
  for (let i = 0; i < d.length; i++) d[i] = b.theta[i] - a.theta[i];
  return d;
}
