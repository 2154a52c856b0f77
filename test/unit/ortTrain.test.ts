/**
 * Training on the ONNX Runtime engine: minibatch gradients (`OrtEvaluator.batchGradient`) against
 * TF.js's and against the full gradient of the same samples, and `train` with no TF.js backend
 * asked for: its steps take their gradients from ONNX Runtime, the manifest names the engine, the
 * same seed gives the same run and a cancelled run resumes to bit-identical float64 parameters.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend } from '../../src/engine/backend';
import { loadProblem, type Problem } from '../../src/engine/problem';
import { createOrtEvaluator, OrtEvaluator } from '../../src/engine/ort/evaluator';
import { Objective } from '../../src/engine/objective';
import { DEFAULT_SETTINGS, train } from '../../src/engine/train/run';
import { decodeState } from '../../src/engine/train/state';
import type { Split } from '../../src/engine/data';
import type { ProbeRecord, RunManifest, TrainSettings } from '../../src/shared/results';

const EXAMPLE = path.join(__dirname, '../../examples/spiral');
let problem: Problem;

before(async () => {
  // No backend asked for by name: evaluators run on ONNX Runtime.
  const be = await initBackend();
  assert.ok(!be.requested);
  problem = await loadProblem({ model: path.join(EXAMPLE, 'model.json'), data: path.join(EXAMPLE, 'data.json') });
});

const tmp = (): string => path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'basin-orttrain-')), 'run');
const settings = (s: Partial<TrainSettings>): TrainSettings => ({ ...DEFAULT_SETTINGS, ...s });
const strip = (r: ProbeRecord): Omit<ProbeRecord, 'ms'> => {
  const { ms: _ms, ...rest } = r;
  return rest;
};

function rows(split: Split, idx: Int32Array): Split {
  const xPer = split.xShape.slice(1).reduce((a, b) => a * b, 1);
  const yPer = split.yShape.slice(1).reduce((a, b) => a * b, 1);
  const x = new Float32Array(idx.length * xPer);
  const y = new Float32Array(idx.length * yPer);
  idx.forEach((r, i) => {
    x.set(split.x.subarray(r * xPer, (r + 1) * xPer), i * xPer);
    y.set(split.y.subarray(r * yPer, (r + 1) * yPer), i * yPer);
  });
  return { x, xShape: [idx.length, ...split.xShape.slice(1)], y, yShape: [idx.length, ...split.yShape.slice(1)] };
}

function maxRel(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    s = Math.max(s, Math.abs(b[i]));
  }
  return d / s;
}

function finalTheta(run: string, step: number): Float64Array {
  const file = path.join(run, 'checkpoints', `step-${String(step).padStart(6, '0')}`, 'optimizer.json');
  return (decodeState(JSON.parse(fs.readFileSync(file, 'utf8'))) as { theta: Float64Array }).theta;
}

test('minibatch gradients on ONNX Runtime: as TF.js, and as the full gradient of the same samples, in chunks or not', async () => {
  const idx = Int32Array.from([17, 3, 250, 3, 99, 0, 299, 128, 64, 5, 77]); // a repeated index counts twice
  const theta = Float32Array.from(problem.theta, (v, i) => v + 0.01 * Math.sin(i));
  const obj = new Objective(problem.ir, problem.theta, problem.loss, problem.train);
  const want = obj.batchGradient(idx, theta);
  obj.dispose();
  for (const chunkSize of [undefined, 4]) {
    const r = await createOrtEvaluator(problem.ir, problem.theta, problem.lossName as 'categoricalCrossentropy', problem.train, { chunkSize });
    assert.ok(r.evaluator, r.reason);
    const ev = r.evaluator;
    try {
      const got = await ev.batchGradient(idx, theta);
      assert.ok(Math.abs(got.loss - want.loss) < 1e-6 * Math.abs(want.loss), `chunk ${chunkSize}: loss ${got.loss} vs TF.js ${want.loss}`);
      assert.ok(maxRel(got.grad, want.grad) < 1e-5, `chunk ${chunkSize}: gradient ${maxRel(got.grad, want.grad)} from TF.js's`);
      // The same samples as a data set of their own: the full gradient there is the minibatch's.
      const sub = await createOrtEvaluator(problem.ir, problem.theta, 'categoricalCrossentropy', rows(problem.train, idx));
      assert.ok(sub.evaluator, sub.reason);
      const whole = await sub.evaluator.gradient(theta);
      await sub.evaluator.released();
      assert.ok(maxRel(got.grad, whole.grad) < 1e-6, `chunk ${chunkSize}: ${maxRel(got.grad, whole.grad)} from the full gradient of the batch`);
      // Every batch size runs the one gradient graph (its sums rescaled to the batch's mean).
      const five = await ev.batchGradient(idx.subarray(0, 5), theta);
      const want5 = new Objective(problem.ir, problem.theta, problem.loss, problem.train);
      assert.ok(maxRel(five.grad, want5.batchGradient(idx.subarray(0, 5), theta).grad) < 1e-5, 'a batch of 5');
      want5.dispose();
      assert.deepEqual(ev.sessionKinds.filter((k) => k.startsWith('grad')), ['grad:1']);
      await assert.rejects(ev.batchGradient(Int32Array.from([300]), theta), /sample index 300 outside 0\.\.299/);
    } finally {
      await ev.released();
    }
  }
});

test('SGD steps take their gradients from ONNX Runtime; the same seed gives the same run; a cancelled run resumes bit for bit', async () => {
  const s = settings({ optimizer: 'momentum', momentum: 0.9, batchSize: 32, lr: 0.1, steps: 30, probeEvery: 10, checkpointEvery: 10, seed: 3 });
  const proto = OrtEvaluator.prototype;
  const original = proto.batchGradient;
  let calls = 0;
  proto.batchGradient = function (this: OrtEvaluator, ...args: Parameters<typeof original>) {
    calls++;
    return original.apply(this, args);
  };
  try {
    const whole = tmp();
    const a: ProbeRecord[] = [];
    await train(problem, s, whole, { onProbe: (r) => a.push(r) });
    assert.equal(calls, 30, 'one ONNX Runtime minibatch gradient per step');
    const m = JSON.parse(fs.readFileSync(path.join(whole, 'manifest.json'), 'utf8')) as RunManifest;
    assert.equal(m.backend, 'onnxruntime');
    assert.match(m.backendDetail, /^onnxruntime \d+\.\d+\.\d+ \(CPU/);
    const b: ProbeRecord[] = [];
    const again = tmp();
    await train(problem, s, again, { onProbe: (r) => b.push(r) });
    assert.deepEqual(b.map(strip), a.map(strip));
    assert.deepEqual(Array.from(finalTheta(again, 30)), Array.from(finalTheta(whole, 30)));
    // Stopped at step 20, resumed: the same float64 parameters as the uninterrupted run.
    const cut = tmp();
    const controller = new AbortController();
    const done = await train(problem, s, cut, { signal: controller.signal, onProbe: (r) => r.step >= 20 && controller.abort() });
    assert.equal(done.status, 'cancelled');
    const resumed = await train(problem, s, cut, {}, { resume: true });
    assert.equal(resumed.status, 'completed');
    assert.deepEqual(Array.from(finalTheta(cut, 30)), Array.from(finalTheta(whole, 30)));
    // The trajectory is TF.js's to float32 rounding: the same algorithm on another engine.
    const last = a[a.length - 1];
    assert.ok(last.loss < a[0].loss, `loss ${a[0].loss} -> ${last.loss}`);
  } finally {
    proto.batchGradient = original;
  }
});

test('full-batch GD on ONNX Runtime resumes bit for bit', async () => {
  const s = settings({ optimizer: 'gd', lr: 0.2, steps: 20, probeEvery: 10, checkpointEvery: 5, seed: 0 });
  const whole = tmp();
  await train(problem, s, whole);
  const cut = tmp();
  const controller = new AbortController();
  await train(problem, s, cut, { signal: controller.signal, onProbe: (r) => r.step >= 10 && controller.abort() });
  await train(problem, s, cut, {}, { resume: true });
  assert.deepEqual(Array.from(finalTheta(cut, 20)), Array.from(finalTheta(whole, 20)));
  const m = JSON.parse(fs.readFileSync(path.join(cut, 'manifest.json'), 'utf8')) as RunManifest;
  assert.equal(m.backend, 'onnxruntime');
  assert.equal(m.status, 'completed');
});
