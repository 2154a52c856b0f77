/** Data-parallel evaluation over worker threads equals the single-thread objective. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend } from '../../src/engine/backend';
import { Objective } from '../../src/engine/objective';
import { LocalEvaluator } from '../../src/engine/evaluator';
import { ParallelEvaluator, shardWorkerPath, sliceSplit } from '../../src/engine/shard/parallel';
import { ExactHessian } from '../../src/engine/hvp/operators';
import { lanczos } from '../../src/engine/linalg/lanczos';
import { Rng } from '../../src/engine/rng';
import { mlpIR, randomProblem } from '../reference/float64';
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
