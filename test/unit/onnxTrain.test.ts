// Training from an ONNX model (issue 12): a run started from a PyTorch-exported .onnx fixture writes
// its checkpoints back as .onnx (the original file with the parameter initializers replaced, every
// other byte kept), on ONNX Runtime and on TF.js. The written file loads with Basin's importer to
// the run's final parameters (float32) and loss, a run resumes from it bit for bit, and
// interpolation and trajectories read it. External-data weights are read from inside the model's
// folder only, with their range checked against the file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { onnx } from 'onnx-proto';
import { initBackend } from '../../src/engine/backend';
import { loadProblem, problemFrom, type Problem } from '../../src/engine/problem';
import { loadLayersModelFile } from '../../src/engine/model/io';
import { lowerLayersModel } from '../../src/engine/model/lower';
import { BasinError } from '../../src/engine/errors';
import { loadOnnxModel } from '../../src/engine/model/onnx/import';
import { onnxWithParameters, openOnnxSource } from '../../src/engine/model/onnx/export';
import { tfjsCopy } from '../../src/engine/model/onnx/tfjs';
import { tf } from '../../src/engine/tf';
import { DEFAULT_SETTINGS, train } from '../../src/engine/train/run';
import { decodeState } from '../../src/engine/train/state';
import { checkpointModelFile, openRunForResume } from '../../src/engine/train/resume';
import { runInterpolate, runTrajectory } from '../../src/engine/surface/checkpoints';
import type { ProbeRecord, RunManifest, TrainSettings } from '../../src/shared/results';

// The bundle runs from .test-dist/unit/.
const FIXTURES = path.join(__dirname, '../../test/fixtures/onnx');
const fixture = (name: string): string => path.join(FIXTURES, name);
const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 'basin-onnxtrain-'));
const settings = (s: Partial<TrainSettings>): TrainSettings => ({ ...DEFAULT_SETTINGS, checkpointSeconds: 0, ...s });
const stepDir = (run: string, step: number): string => path.join(run, 'checkpoints', `step-${String(step).padStart(6, '0')}`);
const state = (run: string, step: number): Float64Array =>
  (decodeState(JSON.parse(fs.readFileSync(path.join(stepDir(run, step), 'optimizer.json'), 'utf8'))) as { theta: Float64Array }).theta;

/** A decoded model's graph, typed as decoded (every repeated field present). */
const graphOf = (m: onnx.ModelProto): onnx.GraphProto => m.graph as onnx.GraphProto;

const ENGINES = [
  { name: 'onnxruntime', init: () => initBackend() },
  { name: 'wasm', init: () => initBackend('wasm') },
] as const;

async function onnxProblem(model: string, data: string): Promise<Problem> {
  return loadProblem({ model, data, loss: 'crossEntropyFromLogits' });
}

/** The loss the final probe logs, computed the same way (the evaluator's gradient) on another problem. */
async function lossOf(p: Problem): Promise<number> {
  const ev = await p.evaluator();
  try {
    return (await ev.gradient(p.theta)).loss;
  } finally {
    ev.dispose();
  }
}

for (const engine of ENGINES) {
  for (const name of ['mlp', 'convnet']) {
    test(`${name} on ${engine.name}: GD from the .onnx writes .onnx checkpoints holding the run's parameters and loss; a run resumes from one bit for bit`, async () => {
      await engine.init();
      const model = fixture(`${name}.onnx`);
      const data = fixture(`${name}.npz`);
      const problem = await onnxProblem(model, data);
      const s = settings({ optimizer: 'gd', lr: 0.1, steps: 6, probeEvery: 100, checkpointEvery: 3 });
      const run = path.join(tmp(), 'run');
      const probes: ProbeRecord[] = [];
      const done = await train(problem, s, run, { onProbe: (r) => probes.push(r) });
      assert.equal(done.status, 'completed');
      const m = JSON.parse(fs.readFileSync(path.join(run, 'manifest.json'), 'utf8')) as RunManifest;
      assert.equal(m.backend, engine.name);
      assert.deepEqual(
        m.checkpoints.map((c) => `${c.dir}:${c.by}`),
        [`checkpoints/step-000003:steps`, `checkpoints/step-000006:final`],
      );
      // Each checkpoint is <name>.onnx + optimizer.json, and a TF.js copy (every node maps).
      assert.deepEqual(fs.readdirSync(stepDir(run, 6)).sort(), [`${name}.onnx`, 'model.json', 'optimizer.json', 'weights.bin']);
      assert.equal(checkpointModelFile(stepDir(run, 6)), `${name}.onnx`);
      const written = path.join(stepDir(run, 6), `${name}.onnx`);
      const theta = state(run, 6);
      const back = loadOnnxModel(written);
      const flat = new Float32Array(back.ir.numParams);
      back.ir.params.forEach((p, i) => flat.set(back.values[i], p.offset));
      assert.deepEqual(Array.from(flat), Array.from(Float32Array.from(theta)), 'the .onnx holds the final parameters (float32)');
      assert.notDeepEqual(Array.from(flat), Array.from(problem.theta), 'training moved them');
      // The checkpoint as a model: its loss is the final probe's.
      const last = probes[probes.length - 1];
      assert.equal(last.step, 6);
      assert.equal(await lossOf(await onnxProblem(written, data)), last.loss);
      // The TF.js copy (NHWC, the IR's layout): the same parameters, and the loss on the same data.
      const tfjs = await loadLayersModelFile(path.join(stepDir(run, 6), 'model.json'));
      const lowered = lowerLayersModel(tfjs, 'model.json');
      tfjs.dispose();
      assert.deepEqual(lowered.ir.nodes.map((n) => n.op.kind), problem.ir.nodes.map((n) => n.op.kind));
      const copyTheta = new Float32Array(lowered.ir.numParams);
      lowered.ir.params.forEach((p, i) => copyTheta.set(lowered.values[i], p.offset));
      assert.deepEqual(Array.from(copyTheta), Array.from(flat));
      const copyLoss = await lossOf(problemFrom(lowered.ir, lowered.values, 'crossEntropyFromLogits', problem.train));
      assert.ok(Math.abs(copyLoss - last.loss) <= 1e-6 * last.loss, `TF.js copy: loss ${copyLoss} vs ${last.loss}`);
      // Half the steps, then resumed from the ONNX checkpoint: the same float64 parameters.
      const cut = path.join(tmp(), 'run');
      await train(problem, settings({ ...s, steps: 3 }), cut);
      assert.deepEqual(openRunForResume(cut).notes, ['resuming at step 3 from checkpoints/step-000003; no steps are redone']);
      const resumed = await train(problem, s, cut, {}, { resume: true });
      assert.equal(resumed.status, 'completed');
      assert.deepEqual(Array.from(state(cut, 6)), Array.from(theta));
      assert.deepEqual(fs.readFileSync(path.join(stepDir(cut, 6), `${name}.onnx`)), fs.readFileSync(written));
    });
  }
}

test('an ONNX checkpoint is the original file with only the parameter tensors rewritten', async () => {
  await initBackend('wasm');
  for (const name of ['mlp', 'convnet']) {
    const file = fixture(`${name}.onnx`);
    const original = fs.readFileSync(file);
    const imported = loadOnnxModel(file);
    const src = openOnnxSource(file, imported.ir, 1e6);
    const theta = new Float32Array(imported.ir.numParams);
    imported.ir.params.forEach((p, i) => theta.set(imported.values[i], p.offset));
    // The same parameters give back the same bytes: nothing else is touched or reordered.
    assert.deepEqual(Buffer.from(onnxWithParameters(src, theta)), original, `${name}: written back unchanged`);
    // New parameters: every field but the parameter initializers' values is the same.
    const moved = Float64Array.from(theta, (v, i) => v + 0.001 * (i + 1));
    const a = graphOf(onnx.ModelProto.decode(original));
    const b = graphOf(onnx.ModelProto.decode(onnxWithParameters(src, moved)));
    const params = new Set(imported.torch.map((t) => t.name));
    const enc = (t: onnx.ITensorProto): string => Buffer.from(onnx.TensorProto.encode(t).finish()).toString('hex');
    assert.deepEqual(b.node.map((n) => onnx.NodeProto.encode(n).finish()), a.node.map((n) => onnx.NodeProto.encode(n).finish()));
    assert.deepEqual(b.initializer.map((t) => t.name), a.initializer.map((t) => t.name));
    for (let i = 0; i < a.initializer.length; i++) {
      const [x, y] = [a.initializer[i] as onnx.TensorProto, b.initializer[i] as onnx.TensorProto];
      if (params.has(x.name)) {
        assert.deepEqual([y.dataType, y.dims.map(Number)], [x.dataType, x.dims.map(Number)]);
        assert.notEqual(enc(y), enc(x), `${x.name} changed`);
      } else assert.equal(enc(y), enc(x), `${x.name} (not a parameter) is byte-identical`);
    }
    if (name === 'convnet') assert.deepEqual([...params].length, 8, 'running mean and variance are constants, not parameters');
    // The TF.js copy is built and captured without leaving a tensor behind.
    const before = tf.memory().numTensors;
    const copy = tfjsCopy(imported.ir, imported.values);
    assert.ok(copy);
    assert.equal(tf.memory().numTensors, before);
    assert.equal(copy.archive.weights.length, imported.ir.params.length + imported.ir.constants.length, 'every parameter, and the moving statistics');
    const reloaded = loadOnnxModel(writeTemp(`${name}.onnx`, onnxWithParameters(src, moved)));
    const flat = new Float32Array(reloaded.ir.numParams);
    reloaded.ir.params.forEach((p, i) => flat.set(reloaded.values[i], p.offset));
    assert.deepEqual(Array.from(flat), Array.from(Float32Array.from(moved)));
    assert.deepEqual(reloaded.ir.constants.map((c) => Array.from(c.values)), imported.ir.constants.map((c) => Array.from(c.values)));
  }
});

function writeTemp(name: string, bytes: Uint8Array): string {
  const file = path.join(tmp(), name);
  fs.writeFileSync(file, bytes);
  return file;
}

test('interpolation and trajectories read a run\'s .onnx checkpoints; a damaged one is skipped by resume', async () => {
  await initBackend('wasm');
  const data = fixture('mlp.npz');
  const problem = await onnxProblem(fixture('mlp.onnx'), data);
  const run = path.join(tmp(), 'run');
  const probes: ProbeRecord[] = [];
  await train(problem, settings({ optimizer: 'gd', lr: 0.2, steps: 6, probeEvery: 100, checkpointEvery: 2 }), run, { onProbe: (r) => probes.push(r) });
  const cks = [2, 4, 6].map((k) => path.join(stepDir(run, k), 'mlp.onnx'));
  const r = await runInterpolate(problem, { other: cks[2], x: '0:1:3' });
  assert.equal(r.endpoints?.[1].loss, probes[probes.length - 1].loss);
  assert.equal(r.endpoints?.[0].loss, probes[0].loss);
  const last = await onnxProblem(cks[2], data);
  const t = await runTrajectory(last, { checkpoints: cks, steps: 3 });
  assert.equal(t.path?.length, 3);
  assert.equal(t.path?.[2].loss, probes[probes.length - 1].loss);
  // A checkpoint .onnx cut short: resume falls back to the one before it.
  fs.truncateSync(cks[2], 100);
  const notes = openRunForResume(run).notes;
  assert.equal(notes[0].startsWith('checkpoints/step-000006/mlp.onnx does not load (not a valid ONNX model'), true, notes[0]);
  assert.equal(notes[notes.length - 1], 'resuming at step 4 from checkpoints/step-000004; 2 steps after it are redone');
});

/** The MLP fixture with its initializers moved to `weights.bin` in the same folder (as onnx.save_model(..., save_as_external_data=True)). */
function externalMlp(edit?: (t: onnx.TensorProto, i: number) => void): { file: string; dir: string } {
  const m = onnx.ModelProto.decode(fs.readFileSync(fixture('mlp.onnx')));
  const dir = tmp();
  const chunks: Buffer[] = [];
  let at = 0;
  (graphOf(m).initializer as onnx.TensorProto[]).forEach((t, i) => {
    const raw = Buffer.from(t.rawData);
    chunks.push(Buffer.alloc(8), raw); // 8 bytes of padding before each, so the offsets matter
    at += 8;
    t.rawData = new Uint8Array();
    t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
    t.externalData = [
      { key: 'location', value: 'weights.bin' },
      { key: 'offset', value: String(at) },
      { key: 'length', value: String(raw.length) },
    ];
    at += raw.length;
    edit?.(t, i);
  });
  fs.writeFileSync(path.join(dir, 'weights.bin'), Buffer.concat(chunks));
  const file = path.join(dir, 'mlp.onnx');
  fs.writeFileSync(file, onnx.ModelProto.encode(m).finish());
  return { file, dir };
}

function refused(fn: () => unknown, message: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof BasinError, `not a BasinError: ${String(e)}`);
    assert.equal(e.message, message);
    return true;
  });
}

test('external data: read from a file inside the model\'s folder at its offset; checkpoints hold the weights inline', async () => {
  await initBackend('wasm');
  const inline = loadOnnxModel(fixture('mlp.onnx'));
  const { file } = externalMlp();
  const ext = loadOnnxModel(file);
  assert.deepEqual(ext.values.map((v) => Array.from(v)), inline.values.map((v) => Array.from(v)));
  const problem = await onnxProblem(file, fixture('mlp.npz'));
  const run = path.join(tmp(), 'run');
  await train(problem, settings({ steps: 2, probeEvery: 100 }), run);
  const written = path.join(stepDir(run, 2), 'mlp.onnx');
  const m = onnx.ModelProto.decode(fs.readFileSync(written));
  assert.deepEqual(
    (graphOf(m).initializer as onnx.TensorProto[]).map((t) => [t.dataLocation, t.externalData.length, t.rawData.length]),
    inline.ir.params.map((p) => [0, 0, 4 * p.size]),
  );
  assert.deepEqual(Array.from(loadOnnxModel(written).values[3]), Array.from(Float32Array.from(state(run, 2).subarray(inline.ir.numParams - 3))));
});

test('hostile external data: a range past the end, a wrong length, a symlink out of the folder, a directory; refused naming the file', () => {
  const past = externalMlp((t, i) => {
    if (i === 3) t.externalData[1].value = '1000';
  });
  refused(() => loadOnnxModel(past.file), `${past.file}: initializer 'fc2.bias': its external data (offset 1000, length 12) runs past the end of 'weights.bin', which is 428 bytes: the file is truncated or not this model's`);
  const length = externalMlp((t, i) => {
    if (i === 0) t.externalData[2].value = '190';
  });
  refused(() => loadOnnxModel(length.file), `${length.file}: initializer 'fc1.weight' (float32, dimensions [12, 4]) has an external data length of 190 bytes but needs 192`);
  const notNumber = externalMlp((t, i) => {
    if (i === 0) t.externalData[1].value = '-8';
  });
  refused(() => loadOnnxModel(notNumber.file), `${notNumber.file}: initializer 'fc1.weight': its external data offset '-8' is not a whole number of bytes`);
  const outsideDir = tmp();
  fs.writeFileSync(path.join(outsideDir, 'secret.bin'), Buffer.alloc(4096));
  const link = externalMlp((t, i) => {
    if (i === 0) t.externalData[0].value = 'link.bin';
  });
  fs.symlinkSync(path.join(outsideDir, 'secret.bin'), path.join(link.dir, 'link.bin'));
  refused(
    () => loadOnnxModel(link.file),
    `${link.file}: initializer 'fc1.weight' refers to external data at 'link.bin', a symbolic link to ${fs.realpathSync(path.join(outsideDir, 'secret.bin'))}, outside the model's folder (${fs.realpathSync(link.dir)}); refused, nothing was read`,
  );
  const folder = externalMlp((t, i) => {
    if (i === 0) t.externalData[0].value = 'sub';
  });
  fs.mkdirSync(path.join(folder.dir, 'sub'));
  refused(() => loadOnnxModel(folder.file), `${folder.file}: initializer 'fc1.weight': its external data file 'sub' is a directory, not a regular file`);
});

test('a model with a node TF.js cannot take back (LeakyRelu) gets .onnx checkpoints only', async () => {
  await initBackend('wasm');
  const problem = await onnxProblem(fixture('leaky.onnx'), fixture('leaky.npz'));
  const run = path.join(tmp(), 'run');
  await train(problem, settings({ steps: 2, probeEvery: 100 }), run);
  assert.deepEqual(fs.readdirSync(stepDir(run, 2)).sort(), ['leaky.onnx', 'optimizer.json']);
  const back = loadOnnxModel(path.join(stepDir(run, 2), 'leaky.onnx'));
  const flat = new Float32Array(back.ir.numParams);
  back.ir.params.forEach((p, i) => flat.set(back.values[i], p.offset));
  assert.deepEqual(Array.from(flat), Array.from(Float32Array.from(state(run, 2))));
});

test('a model file changed since the problem was loaded is refused before the run directory is made', async () => {
  await initBackend('wasm');
  const dir = tmp();
  const file = path.join(dir, 'model.onnx');
  fs.copyFileSync(fixture('mlp.onnx'), file);
  const problem = await onnxProblem(file, fixture('mlp.npz'));
  fs.copyFileSync(fixture('leaky.onnx'), file);
  const run = path.join(dir, 'run');
  await assert.rejects(train(problem, settings({ steps: 1 }), run), new BasinError('the model file changed since it was loaded (its parameters differ): load it again', file));
  assert.equal(fs.existsSync(run), false);
});
