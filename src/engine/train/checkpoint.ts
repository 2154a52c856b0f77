/**
 * A run's checkpoint writer. Each checkpoint is a directory `checkpoints/step-N` (or `last-good`)
 * holding the model with the run's parameters, in the format it was loaded from, and
 * optimizer.json (the float64 parameters and the optimizer state, for a bit-exact resume):
 * - a TF.js layers model: model.json + weights.bin (`model/archive.ts`);
 * - an ONNX model: `<name>.onnx`, the original file with its parameter initializers replaced
 *   (`model/onnx/export.ts`), which Basin, ONNX Runtime and PyTorch's onnx tools load; and beside
 *   it a TF.js copy (model.json + weights.bin, NHWC: `model/onnx/tfjs.ts`) when every node maps
 *   to a TF.js layer.
 * Time-cadence checkpoints are pruned to the newest KEEP_TIME_CHECKPOINTS; the manifest lists
 * what is on disk after every write.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RunCheckpoint } from '../../shared/results';
import type { Problem } from '../problem';
import { BasinError } from '../errors';
import { MAX_PARAMS } from '../limits';
import { writeCheckpoint } from '../model/archive';
import { isOnnxFile } from '../model/onnx/import';
import { openOnnxSource, writeOnnxCheckpoint, writeOnnxFile } from '../model/onnx/export';
import { tfjsCopy } from '../model/onnx/tfjs';
import type { OptimizerState } from './optimizers';
import { encodeState } from './state';
import { stepLabel, writeFileAtomic } from './resume';
import type { ManifestFile } from './manifest';

/** Time-cadence checkpoints kept (the newest); step-cadence, final and stop checkpoints are all kept. */
export const KEEP_TIME_CHECKPOINTS = 3;

/** Writes a checkpoint's model files into a directory (replacing it whole). */
export interface ModelWriter {
  /** The model file inside a checkpoint directory: 'model.json' or the ONNX file's name. */
  fileName: string;
  write(theta: ArrayLike<number>, dir: string, meta: { step: number; run: string }): void;
}

/** The writer for the format `problem`'s model was loaded from. */
export function modelWriter(problem: Problem): ModelWriter {
  const file = problem.modelFile;
  if (file && !problem.experiment && isOnnxFile(file)) {
    const src = openOnnxSource(file, problem.ir, problem.source?.maxParams ?? MAX_PARAMS);
    const fileName = path.basename(file);
    const copy = tfjsCopy(src.imported.ir, src.imported.values);
    if (!copy) return { fileName, write: (theta, dir) => writeOnnxCheckpoint(src, theta, dir, fileName) };
    // The TF.js copy first (it replaces the directory whole), then the .onnx beside it.
    return {
      fileName,
      write: (theta, dir, meta) => {
        writeCheckpoint(copy.archive, copy.ir, theta, dir, { basin: meta });
        writeOnnxFile(src, theta, dir, fileName);
      },
    };
  }
  const archive = problem.archive;
  if (!archive) throw new BasinError('this problem has no model topology to write checkpoints with');
  return { fileName: 'model.json', write: (theta, dir, meta) => writeCheckpoint(archive, problem.ir, theta, dir, { basin: meta }) };
}

export class CheckpointWriter {
  /** When the last checkpoint was written (performance.now()), for the time cadence. */
  lastSave = performance.now();

  constructor(
    private readonly out: string,
    private readonly manifest: ManifestFile,
    private readonly model: ModelWriter,
  ) {}

  /**
   * Writes the checkpoint of `theta` (the parameters at the start of `step`) with the optimizer
   * state that goes with them, lists it in the manifest and prunes old time checkpoints. Returns
   * its directory relative to the run.
   */
  save(step: number, theta: Float64Array, state: OptimizerState, by: NonNullable<RunCheckpoint['by']>, loss?: number): string {
    const rel = path.join('checkpoints', by === 'last-good' ? 'last-good' : stepLabel(step));
    const dir = path.join(this.out, rel);
    this.model.write(theta, dir, { step, run: path.basename(this.out) });
    writeFileAtomic(path.join(dir, 'optimizer.json'), JSON.stringify(encodeState({ optimizer: state, theta })));
    const m = this.manifest.value;
    const before = m.checkpoints.find((c) => c.dir === rel);
    // A stop at a step the cadence already saved keeps the cadence's reason (time checkpoints are pruned).
    const entry: RunCheckpoint = { step, dir: rel, by: before?.by === 'steps' && by !== 'last-good' ? 'steps' : by };
    if (loss !== undefined) entry.loss = loss;
    let list = [...m.checkpoints.filter((c) => c.dir !== rel), entry];
    const timed = list.filter((c) => c.by === 'time');
    const pruned = timed.slice(0, Math.max(0, timed.length - KEEP_TIME_CHECKPOINTS));
    list = list.filter((c) => !pruned.includes(c));
    this.manifest.update({ checkpoints: list });
    for (const c of pruned) fs.rmSync(path.join(this.out, c.dir), { recursive: true, force: true });
    this.lastSave = performance.now();
    return rel;
  }
}
