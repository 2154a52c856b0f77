/**
 * Which files the editor treats as models, and where a run's checkpoint keeps its model: a TF.js
 * layers model.json, or an ONNX file (a run of an ONNX model writes its checkpoints as `.onnx`).
 * Plain Node, no vscode: unit-tested.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RunCheckpoint } from '../shared/results';

/** The workspace search for models and experiment modules. */
export const MODEL_GLOB = '**/{*.basin.ts,*.basin.js,*model.json,*.onnx}';

export function isOnnxModel(file: string): boolean {
  return file.toLowerCase().endsWith('.onnx');
}

/** A TF.js model.json (model.json, my-model.json, ...) or an ONNX file. */
export function isModelFile(file: string): boolean {
  return /(^|[._-])model\.json$/.test(path.basename(file)) || isOnnxModel(file);
}

/** The losses an ONNX model can be analysed with (the file holds none), for the editor's picker. */
export const ONNX_LOSSES: readonly { label: string; description: string }[] = [
  { label: 'crossEntropyFromLogits', description: "PyTorch's nn.CrossEntropyLoss on the outputs (logits); integer class labels or one-hot" },
  { label: 'meanSquaredError', description: "PyTorch's nn.MSELoss" },
  { label: 'binaryCrossentropy', description: 'on probabilities (a sigmoid output), as nn.BCELoss' },
  { label: 'categoricalCrossentropy', description: 'on probabilities (a softmax output)' },
];

/**
 * The model file of checkpoint `c` of the run in `runDir`: its one .onnx file (a run of an ONNX
 * model; a TF.js copy may lie beside it), else its model.json; undefined when there is neither.
 */
export function checkpointModel(runDir: string, c: Pick<RunCheckpoint, 'dir'>): string | undefined {
  const dir = path.join(runDir, c.dir);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return undefined;
  }
  const onnx = names.filter(isOnnxModel);
  if (onnx.length === 1) return path.join(dir, onnx[0]);
  return names.includes('model.json') ? path.join(dir, 'model.json') : undefined;
}
