/** Data-parallel evaluation over worker threads equals the single-thread objective. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Objective } from '../../src/engine/objective';
import { LocalEvaluator } from '../../src/engine/evaluator';
import { closeShardThreads, ParallelEvaluator, shardWorkerPath, sliceSplit } from '../../src/engine/shard/parallel';
import { ExactHessian } from '../../src/engine/hvp/operators';
import { lanczos } from '../../src/engine/linalg/lanczos';
import { Rng } from '../../src/engine/rng';
import { asFloat32, convIR, mlpIR, randomProblem, refGradHvp } from '../reference/float64';
import { createOrtEvaluator } from '../../src/engine/ort/evaluator';
import { forwardMultiplyAdds } from '../../src/engine/model/ir';
import { ORT_SHARD_MULTIPLY_ADDS } from '../../src/engine/problem';
import { engineInfo, initBackend } from '../../src/engine/backend';
import { problemOf } from '../helpers/problem';
import { PointParallelEvaluator } from '../../src/engine/shard/points';
import { relErr } from '../reference/compare';

test('sliceSplit keeps rows together', () => {
  const s = sliceSplit({ x: Float32Array.from([1, 2, 3, 4, 5, 6]), xShape: [3, 2], y: Float32Array.from([7, 8, 9]), yShape: [3, 1] }, 1, 3);
  assert.deepEqual(Array.from(s.x), [3, 4, 5, 6]);
  assert.deepEqual(s.xShape, [2, 2]);
  assert.deepEqual(Array.from(s.y), [8, 9]);
});

test('two and three threads give the single-thread loss, gradient, H·v and eigenvalue', async () => {
  await initBackend('wasm');
  const worker = shardWorkerPath();
  assert.ok(worker, 'the shard bundle is built beside the tests');
  const ir = mlpIR([5, 12, 4], ['tanh', 'softmax']);
  const p = randomProblem(ir, 'categoricalCrossentropy', 601, 4);
  const data = { x: Float32Array.from(p.x), xShape: p.xShape, y: Float32Array.from(p.y), yShape: p.yShape };
  const theta = Float32Array.from(p.params);
  const local = new LocalEvaluator(new Objective(ir, theta, 'categoricalCrossentropy', data));
  for (const threads of [2, 3]) {
    const par = await ParallelEvaluator.create(ir, theta, 'categoricalCrossentropy', data, 'wasm', worker, { threads });
    try {
      assert.equal(par.threads, threads);
      assert.ok(Math.abs((await par.loss()) - (await local.loss())) < 1e-6);
      assert.ok(relErr((await par.gradient()).grad, (await local.gradient()).grad) < 1e-5);
      const v = new Rng(3).normalVector(ir.numParams);
      assert.ok(relErr(await par.hvp(v), await local.hvp(v)) < 1e-5);
      // Moving the parameters moves every shard.
      const moved = theta.map((t, i) => t + 0.01 * Math.sin(i));
      await par.setParameters(moved);
      await local.setParameters(moved);
      assert.ok(Math.abs((await par.loss()) - (await local.loss())) < 1e-6);
      const a = await lanczos(new ExactHessian(par), { k: 2, which: 'top', rng: new Rng(1) });
      const b = await lanczos(new ExactHessian(local), { k: 2, which: 'top', rng: new Rng(1) });
      assert.ok(Math.abs(a.eigenvalues[0] - b.eigenvalues[0]) < 1e-5 * Math.abs(b.eigenvalues[0]));
      await local.setParameters(theta);
    } finally {
      par.dispose();
    }
  }
  local.dispose();
});

test('ONNX Runtime shares (one ONNX Runtime thread each) give the single evaluator\'s numbers: loss, gradient, H·v at two points, minibatches, planes; Hessian products only', async () => {
  await initBackend('wasm');
  const worker = shardWorkerPath();
  assert.ok(worker, 'the shard bundle is built beside the tests');
  const ir = convIR([6, 6, 1], [
    { kind: 'conv2d', filters: 3, kernelSize: 3, activation: 'relu' },
    { kind: 'maxPool2d', poolSize: 2 },
    { kind: 'flatten' },
    { kind: 'dense', units: 3, activation: 'softmax' },
  ]);
  const p = randomProblem(ir, 'categoricalCrossentropy', 41, 9);
  const data = { x: Float32Array.from(p.x), xShape: p.xShape, y: Float32Array.from(p.y), yShape: p.yShape };
  const theta = Float32Array.from(p.params);
  const one = (await createOrtEvaluator(ir, theta, 'categoricalCrossentropy', data)).evaluator;
  assert.ok(one);
  const par = await ParallelEvaluator.create(ir, theta, 'categoricalCrossentropy', data, 'wasm', worker, { threads: 2, engine: 'onnxruntime', chunkSize: 7 });
  try {
    assert.equal(par.threads, 2);
    assert.equal(par.engine.name, 'onnxruntime');
    assert.equal(par.curvature, undefined, 'ONNX Runtime computes Hessian products only (curvature jobs fall back to TF.js)');
    assert.ok(Math.abs((await par.loss()) - (await one.loss())) < 1e-6);
    assert.ok(relErr((await par.gradient()).grad, (await one.gradient()).grad) < 1e-5);
    const v = new Rng(3).normalVector(ir.numParams);
    const w = new Rng(4).normalVector(ir.numParams);
    const ref = asFloat32(p);
    assert.ok(relErr(await par.hvp(v), refGradHvp(ref, v).hvp) < 1e-5, 'H·v against float64');
    assert.ok(relErr(await par.hvp(w), refGradHvp(ref, w).hvp) < 1e-5, 'a second H·v at the same point');
    const moved = theta.map((t, i) => t + 0.05 * Math.sin(i));
    await par.setParameters(moved);
    assert.ok(relErr(await par.hvp(v), refGradHvp({ ...ref, params: Float64Array.from(moved) }, v).hvp) < 1e-5, 'H·v after moving');
    // Minibatches: each share computes its rows (a repeated row counts twice).
    const idx = Int32Array.from([40, 3, 3, 25, 0, 19, 21]);
    const a = await par.batchGradient!(idx, moved);
    const b = await one.batchGradient(idx, moved);
    assert.ok(Math.abs(a.loss - b.loss) < 1e-6 * Math.abs(b.loss) && relErr(a.grad, b.grad) < 1e-5, `minibatch: ${relErr(a.grad, b.grad)}`);
    await assert.rejects(par.batchGradient!(Int32Array.from([41]), moved), /sample index 41 outside 0\.\.40/);
    const d = Float64Array.from(new Rng(5).normalVector(ir.numParams), (x) => 0.1 * x);
    const plane = await par.planeLosses(moved, [d], Float64Array.from([0, 1, -0.5]), true);
    const planeOne = await one.planeLosses(moved, [d], Float64Array.from([0, 1, -0.5]), true);
    assert.ok(relErr(plane.loss, planeOne.loss) < 1e-6);
    assert.deepEqual(Array.from(plane.accuracy ?? []), Array.from(planeOne.accuracy ?? []));
  } finally {
    par.dispose();
    await one.released();
  }
});

test('heavy models run on ONNX Runtime shares, light ones on one evaluator: forwardMultiplyAdds counts dense and convolution kernels at every position', async () => {
  await initBackend(); // no TF.js backend asked for: ONNX Runtime first
  const mlp = mlpIR([64, 128, 10], ['tanh', 'softmax']);
  assert.equal(forwardMultiplyAdds(mlp), 64 * 128 + 128 * 10);
  const conv = convIR([28, 28, 1], [
    { kind: 'conv2d', filters: 32, kernelSize: 3, activation: 'relu' },
    { kind: 'conv2d', filters: 64, kernelSize: 3, activation: 'relu' },
    { kind: 'maxPool2d', poolSize: 2 },
    { kind: 'flatten' },
    { kind: 'dense', units: 10, activation: 'softmax' },
  ]);
  assert.equal(forwardMultiplyAdds(conv), 26 * 26 * 9 * 32 + 24 * 24 * 9 * 32 * 64 + 12 * 12 * 64 * 10);
  const n = Math.ceil(ORT_SHARD_MULTIPLY_ADDS / forwardMultiplyAdds(conv));
  const heavy = await problemOf(randomProblem(conv, 'categoricalCrossentropy', n, 2)).evaluator({ threads: 2 });
  const light = await problemOf(randomProblem(conv, 'categoricalCrossentropy', n - 1, 2)).evaluator({ threads: 2 });
  try {
    assert.ok(heavy instanceof ParallelEvaluator, 'a heavy model runs in shares');
    assert.equal(engineInfo(heavy).name, 'onnxruntime');
    assert.ok(light instanceof PointParallelEvaluator, 'below the threshold: one ONNX Runtime evaluator (planes split by points)');
    assert.equal(engineInfo(light).name, 'onnxruntime');
  } finally {
    heavy.dispose();
    light.dispose();
  }
});

test('light models: planes split by points over worker threads once they are up, the same numbers as one evaluator; everything else on it', async () => {
  await initBackend();
  const ir = mlpIR([5, 16, 3], ['tanh', 'softmax']);
  const p = asFloat32(randomProblem(ir, 'categoricalCrossentropy', 50, 12));
  const problem = problemOf(p);
  const ev = await problem.evaluator({ threads: 2 });
  const one = (await createOrtEvaluator(ir, problem.theta, 'categoricalCrossentropy', problem.train)).evaluator;
  assert.ok(ev instanceof PointParallelEvaluator && one);
  try {
    const d1 = Float64Array.from(new Rng(1).normalVector(ir.numParams), (x) => 0.2 * x);
    const d2 = Float64Array.from(new Rng(2).normalVector(ir.numParams), (x) => 0.2 * x);
    const P = 37;
    const coeffs = Float64Array.from({ length: 2 * P }, (_, i) => Math.sin(3 * i));
    const want = await one.planeLosses(problem.theta, [d1, d2], coeffs, true);
    // The first call starts the workers and is answered here; later ones go to the workers.
    let got = await ev.planeLosses(problem.theta, [d1, d2], coeffs, true);
    const deadline = Date.now() + 30_000;
    while (ev.planeWorkers === 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(ev.planeWorkers, 2, 'two workers evaluate planes');
    got = await ev.planeLosses(problem.theta, [d1, d2], coeffs, true);
    assert.ok(relErr(got.loss, want.loss) < 1e-6, `plane losses: ${relErr(got.loss, want.loss)}`);
    assert.deepEqual(Array.from(got.accuracy ?? []), Array.from(want.accuracy ?? []));
    // A few points stay here; the rest of the evaluator is the inner one.
    const few = await ev.planeLosses(problem.theta, [d1, d2], coeffs.subarray(0, 6), false);
    assert.ok(relErr(few.loss, want.loss.subarray(0, 3)) < 1e-6);
    const v = new Rng(3).normalVector(ir.numParams);
    assert.ok(relErr(await ev.hvp(v), refGradHvp(p, v).hvp) < 1e-5);
    assert.ok(Math.abs((await ev.loss()) - (await one.loss())) < 1e-6);
  } finally {
    ev.dispose();
    await one.released();
  }
});

test('shard threads end by themselves: a job that ends while its plane workers are still starting closes them (exit 0, never terminated inside an ONNX Runtime call), and none is left', async () => {
  await initBackend();
  const ir = mlpIR([5, 16, 3], ['tanh', 'softmax']);
  const problem = problemOf(asFloat32(randomProblem(ir, 'categoricalCrossentropy', 50, 13)));
  const ev = await problem.evaluator({ threads: 2 });
  assert.ok(ev instanceof PointParallelEvaluator);
  const d = Float64Array.from(new Rng(4).normalVector(ir.numParams), (x) => 0.1 * x);
  // 9 points: the workers start in the background; the job ends before they are up.
  const r = await ev.planeLosses(problem.theta, [d], Float64Array.from({ length: 9 }, (_, i) => i / 8), false);
  assert.equal(r.loss.length, 9);
  assert.equal(ev.planeWorkers, 0, 'the workers were still starting');
  ev.dispose();
  // Terminating a thread gives exit code 1; each must have released its sessions and exited.
  assert.deepEqual(await closeShardThreads(), [0, 0]);
  assert.deepEqual(await closeShardThreads(), [], 'no shard thread is left');

  // A heavy model's ONNX Runtime shares, closed the same way after their work.
  const conv = convIR([6, 6, 1], [{ kind: 'conv2d', filters: 2, kernelSize: 3, activation: 'relu' }, { kind: 'flatten' }, { kind: 'dense', units: 3, activation: 'softmax' }]);
  const c = asFloat32(randomProblem(conv, 'categoricalCrossentropy', 12, 5));
  const heavy = await ParallelEvaluator.create(conv, Float32Array.from(c.params), 'categoricalCrossentropy', problemOf(c).train, 'wasm', shardWorkerPath() ?? '', { threads: 3, engine: 'onnxruntime' });
  assert.ok((await heavy.gradient()).grad.every(Number.isFinite));
  heavy.dispose();
  assert.deepEqual(await closeShardThreads(), [0, 0]);
});
