/**
 * Checkpoints load in any process, whatever ran before: TF.js's global name registry makes a
 * second model with the same layer names hold variables named 'dense_Dense1/kernel_1'; a
 * checkpoint must be written with the names the topology's layers give ('dense_Dense1/kernel'),
 * which is what `tf.loadLayersModel` matches.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { tf, tfl } from '../../src/engine/tf';
import { initBackend } from '../../src/engine/backend';
import { loadProblem } from '../../src/engine/problem';
import { DEFAULT_SETTINGS, train } from '../../src/engine/train/run';
import type { ProbeRecord, RunManifest } from '../../src/shared/results';

const SPIRAL = path.join(__dirname, '../../examples/spiral');
const EDGE = path.join(__dirname, '../../examples/edge-of-stability.basin.ts');

before(async () => {
  await initBackend('wasm');
});

/** Weight names in a checkpoint's manifest. */
function manifestNames(modelJson: string): string[] {
  const json = JSON.parse(fs.readFileSync(modelJson, 'utf8')) as { weightsManifest: { weights: { name: string }[] }[] };
  return json.weightsManifest.flatMap((g) => g.weights.map((w) => w.name));
}

test('a run trained after another model was loaded in the same process writes checkpoints tf.loadLayersModel reloads', async () => {
  // First the spiral model (layers dense_Dense1..3), then again, so the names are surely taken.
  for (let i = 0; i < 2; i++) await loadProblem({ model: path.join(SPIRAL, 'model.json'), data: path.join(SPIRAL, 'data.json') });
  const spiralNames = manifestNames(path.join(SPIRAL, 'model.json'));
  assert.deepEqual(spiralNames.slice(0, 2), ['dense_Dense1/kernel', 'dense_Dense1/bias']);

  // The same model.json as a training problem: its variables are now 'dense_Dense1/kernel_2'...
  const problem = await loadProblem({ model: path.join(SPIRAL, 'model.json'), data: path.join(SPIRAL, 'data.json') });
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'basin-ckname-')), 'run');
  const probes: ProbeRecord[] = [];
  await train(problem, { ...DEFAULT_SETTINGS, optimizer: 'sgd', batchSize: 32, lr: 0.1, steps: 5, probeEvery: 5, seed: 3 }, out, { onProbe: (r) => probes.push(r) });
  const m = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8')) as RunManifest;
  const ck = path.join(out, m.checkpoints[m.checkpoints.length - 1].dir, 'model.json');
  assert.deepEqual(manifestNames(ck), spiralNames);

  // Reloads with TF.js's own loader (names matched against the topology) and with Basin's.
  const json = JSON.parse(fs.readFileSync(ck, 'utf8')) as { modelTopology: object; weightsManifest: { weights: tf.io.WeightsManifestEntry[] }[] };
  const data = fs.readFileSync(path.join(path.dirname(ck), 'weights.bin'));
  const model = await tfl.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: json.modelTopology,
      weightSpecs: json.weightsManifest.flatMap((g) => g.weights),
      weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength),
    }),
  );
  assert.equal(model.weights.length, spiralNames.length);
  model.dispose();
  const again = await loadProblem({ model: ck, data: path.join(SPIRAL, 'data.json') });
  const obj = again.objective();
  assert.ok(Math.abs(obj.lossAt() - probes[probes.length - 1].loss) < 1e-6);
  obj.dispose();
});

test('an experiment module trained after a model.json with the same layer names writes loadable checkpoints', async () => {
  await loadProblem({ model: path.join(SPIRAL, 'model.json'), data: path.join(SPIRAL, 'data.json') });
  const problem = await loadProblem({ experiment: EDGE });
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'basin-ckname-')), 'run');
  await train(problem, { ...DEFAULT_SETTINGS, optimizer: 'gd', lr: 0.1, steps: 3, probeEvery: 3, seed: 1 }, out);
  const m = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8')) as RunManifest;
  const ck = path.join(out, m.checkpoints[m.checkpoints.length - 1].dir, 'model.json');
  const names = manifestNames(ck);
  assert.equal(names.length, 6);
  for (const n of names) assert.match(n, /^[a-z_A-Z0-9]+\/(kernel|bias)$/, `weight name ${n} carries TF.js's uniquifying suffix`);
  const json = JSON.parse(fs.readFileSync(ck, 'utf8')) as { modelTopology: object; weightsManifest: { weights: tf.io.WeightsManifestEntry[] }[] };
  const data = fs.readFileSync(path.join(path.dirname(ck), 'weights.bin'));
  const model = await tfl.loadLayersModel(
    tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: json.weightsManifest.flatMap((g) => g.weights), weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) }),
  );
  assert.equal(model.weights.length, 6);
  model.dispose();
  const again = await loadProblem({ experiment: EDGE, model: ck });
  assert.equal(again.ir.numParams, problem.ir.numParams);
});
