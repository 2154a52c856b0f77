/**
 * Writing models back to disk in TF.js layers format (model.json + one weight shard), for training
 * checkpoints. The topology and every weight (trainable and not) are captured once when the model
 * is loaded; a checkpoint substitutes the trainable ones from a flat parameter vector. The files
 * load with `tf.loadLayersModel` and with Basin itself.
 *
 * Weight names: TF.js keeps one process-wide registry of variable names, so a second model with a
 * layer 'dense_Dense1' holds variables named 'dense_Dense1/kernel_1'. `tf.loadLayersModel` matches
 * the manifest against each variable's original (scoped, unsuffixed) name, as `model.save` writes
 * it; checkpoints are written with those names too, whatever was loaded before in the process.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { tfl } from '../tf';
import type { ModelIR } from './ir';
import { makeDirs } from '../files';

export interface ArchivedWeight {
  /** The name written to the manifest: the variable's original name, as `model.save` writes it. */
  name: string;
  /** The variable's name in this process (maybe with TF.js's '_N' suffix): the IR's parameter name. */
  key: string;
  shape: number[];
  values: Float32Array;
}

export interface ModelArchive {
  topology: unknown;
  weights: ArchivedWeight[];
}

export function captureArchive(model: tfl.LayersModel): ModelArchive {
  const topology = model.toJSON(null, false);
  const weights = model.weights.map((w) => ({ name: w.originalName || w.name, key: w.name, shape: w.shape.map((d) => d ?? 0), values: Float32Array.from(w.read().dataSync()) }));
  return { topology, weights };
}

/**
 * Writes dir/model.json and dir/weights.bin with the trainable weights taken from `theta`
 * (matched by name through the IR). Written to a temporary name and renamed, so a crash never
 * leaves a half-written checkpoint.
 */
export function writeCheckpoint(archive: ModelArchive, ir: ModelIR, theta: ArrayLike<number>, dir: string, extra: Record<string, unknown> = {}): void {
  const byName = new Map(ir.params.map((p) => [p.name, p]));
  const parts: Float32Array[] = archive.weights.map((w) => {
    const p = byName.get(w.key);
    if (!p) return w.values;
    const out = new Float32Array(p.size);
    for (let i = 0; i < p.size; i++) out[i] = theta[p.offset + i];
    return out;
  });
  const bytes = Buffer.concat(parts.map((a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength)));
  const json = {
    format: 'layers-model',
    generatedBy: 'basin',
    convertedBy: null,
    ...extra,
    modelTopology: archive.topology,
    weightsManifest: [{ paths: ['weights.bin'], weights: archive.weights.map((w) => ({ name: w.name, shape: w.shape, dtype: 'float32' })) }],
  };
  const tmp = `${dir}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  makeDirs(tmp);
  fs.writeFileSync(path.join(tmp, 'weights.bin'), bytes);
  fs.writeFileSync(path.join(tmp, 'model.json'), JSON.stringify(json));
  fs.rmSync(dir, { recursive: true, force: true });
  fs.renameSync(tmp, dir);
}
