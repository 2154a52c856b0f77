/**
 * Size checks in the engine (src/engine/limits.ts and the jobs): every count and every memory
 * estimate is refused before anything is allocated or any product is taken, with a BasinError
 * stating the estimate and the limit, and without naming a CLI flag. A "big" problem here is a
 * stand-in whose evaluator throws: the refusal must come before the job touches it.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/engine/tf';
import { initBackend } from '../../src/engine/backend';
import { problemFrom, type Problem } from '../../src/engine/problem';
import { runDensity, runEigs, runTrace } from '../../src/engine/jobs';
import { runSlice, runSurface } from '../../src/engine/surface/slice';
import { runTrajectory } from '../../src/engine/surface/checkpoints';
import { runFlatness } from '../../src/engine/flatness/job';
import { parseRange } from '../../src/engine/directions';
import { BasinError } from '../../src/engine/errors';
import { checkCount, checkPositive, refuseOver } from '../../src/engine/limits';
import { lanczos, lanczosSteps, powerIteration } from '../../src/engine/linalg';
import { DenseOperator, matrixWithSpectrum } from '../helpers/linalg';
import { Rng } from '../../src/engine/rng';
import { mlpIR, randomProblem } from '../reference/float64';

before(async () => {
  await initBackend('wasm');
});

const ir = mlpIR([3, 4, 2], ['tanh', 'linear']);
const ref = randomProblem(ir, 'meanSquaredError', 20, 3);

function smallProblem(): Problem {
  const values = ir.params.map((q) => Float32Array.from(ref.params.subarray(q.offset, q.offset + q.size)));
  const split = { x: Float32Array.from(ref.x), xShape: ref.xShape, y: Float32Array.from(ref.y), yShape: ref.yShape };
  return problemFrom(ir, values, 'meanSquaredError', split);
}

/** A model of 40 million parameters that is never evaluated: the checks must come first. */
const BIG = 40_000_000;
const big = {
  ir: { numParams: BIG, params: [{ name: 'dense/kernel', layer: 'dense', role: 'kernel', shape: [BIG], size: BIG, offset: 0 }], nodes: [] },
  theta: new Float32Array(0),
  description: 'big',
  evaluator: () => Promise.reject(new Error('the job evaluated the model before checking its sizes')),
  objective: () => {
    throw new Error('the job evaluated the model before checking its sizes');
  },
} as unknown as Problem;

/**
 * Awaits a refusal: a BasinError with exactly this message, within `ms` (a second: generous for a
 * shared machine, where the refused work would take minutes or abort), with no tensor left behind.
 */
async function refused(run: () => Promise<unknown> | unknown, message: string, ms = 1000): Promise<void> {
  const tensors = tf.memory().numTensors;
  const t0 = performance.now();
  await assert.rejects(
    async () => run(),
    (e: unknown) => {
      assert.ok(e instanceof BasinError, `expected a BasinError, got ${String(e)}`);
      assert.equal(e.message, message);
      return true;
    },
  );
  const elapsed = performance.now() - t0;
  assert.ok(elapsed < ms, `refused after ${elapsed.toFixed(0)} ms, expected within ${ms} ms`);
  assert.equal(tf.memory().numTensors, tensors, 'tensors leaked');
  assert.doesNotMatch(message, /--[a-z]/, 'engine messages name no CLI flag');
}

test('refuseOver, checkCount, checkPositive: the estimate and the limit, whole numbers, finite values', async () => {
  await refused(() => refuseOver('the thing', 1e300, 10), 'the thing is 1.00e+300, over the limit of 10');
  await refused(() => refuseOver('the memory', 3.2e9, 1e9, { unit: 'bytes', hint: 'use less' }), 'the memory is 3.2 GB, over the limit of 1.0 GB (use less)');
  await refused(() => refuseOver('the count', Number.NaN, 10), 'the count is NaN, over the limit of 10');
  await refused(() => checkCount('the count', 2.5, 1, 10), 'the count must be a whole number >= 1 (got 2.5)');
  await refused(() => checkCount('the count', 11, 1, 10), 'the count is 11, over the limit of 10');
  await refused(() => checkPositive('the radius', Infinity), 'the radius must be a finite number > 0 (got Infinity)');
  await refused(() => checkPositive('the radius', 0), 'the radius must be a finite number > 0 (got 0)');
  checkPositive('the radius', 0, { allowZero: true });
  checkCount('the count', undefined, 1, 10);
  checkCount('the count', 10, 1, 10);
});

test('density: a 1e9-point grid is refused in milliseconds with the estimate and the limit', async () => {
  const problem = smallProblem();
  await refused(() => runDensity(problem, { gridPoints: 1e9 }), 'the number of density grid points is 1,000,000,000, over the limit of 1,000,000');
  await refused(() => runDensity(problem, { gridPoints: 1.5 }), 'the number of density grid points must be a whole number >= 2 (got 1.5)');
  await refused(() => runDensity(problem, { steps: 20_000 }), 'the number of SLQ steps is 20,000, over the limit of 10,000');
  await refused(() => runDensity(problem, { runs: 20_000 }), 'the number of Hessian-vector products planned (SLQ steps x runs) is 1,800,000, over the limit of 1,000,000');
  await refused(() => runDensity(big, {}), 'the memory for the Lanczos basis is 28.8 GB, over the limit of 8.0 GB (90 float64 vectors of 40,000,000 parameters; analyse one layer, or use fewer SLQ steps)');
  // Within the limits the job runs.
  const r = await runDensity(problem, { steps: 10, gridPoints: 50 });
  assert.equal(r.grid.length, 50);
});

test('eigenvalues: k within the dimension (of the layer block too) and the limits; finite tolerance', async () => {
  const problem = smallProblem();
  const dim = ir.numParams;
  assert.equal(dim, 26);
  const last = ir.params[ir.params.length - 1].layer;
  await refused(() => runEigs(problem, { k: 27 }), 'the number of eigenvalues asked for is 27, over the limit of 26 (the Hessian has dimension 26)');
  await refused(() => runEigs(problem, { k: 11, layer: last }), `the number of eigenvalues asked for is 11, over the limit of 10 (the Hessian block of layer '${last}' has dimension 10)`);
  await refused(() => runEigs(problem, { k: 20_000 }), 'the number of eigenvalues asked for is 20,000, over the limit of 10,000');
  await refused(() => runEigs(problem, { k: 0 }), 'the number of eigenvalues asked for must be a whole number >= 1 (got 0)');
  await refused(() => runEigs(problem, { maxIter: 1e6 }), 'the iteration limit is 1,000,000, over the limit of 10,000');
  await refused(() => runEigs(problem, { tol: Number.NaN }), 'the tolerance must be a finite number > 0 (got NaN)');
  await refused(() => runEigs(problem, { tol: Infinity }), 'the tolerance must be a finite number > 0 (got Infinity)');
  await refused(() => runEigs(problem, { method: 'power', which: 'bottom' }), 'power iteration finds the top eigenvalues only; use the Lanczos method for the bottom ones');
  await refused(() => runEigs(big, {}), 'the memory for the Lanczos basis is 16.3 GB, over the limit of 8.0 GB (51 float64 vectors of 40,000,000 parameters; analyse one layer, or allow fewer iterations)');
  await refused(() => runEigs(big, { method: 'power', k: 200, maxIter: 10_000 }), 'the number of Hessian-vector products planned (eigenvalues x iterations) is 2,000,000, over the limit of 1,000,000');
  // k = dim is allowed and finds the whole spectrum.
  const r = await runEigs(problem, { k: dim, tol: 1e-4 });
  assert.equal(r.eigenvalues.length, dim);
});

test('trace: the product budget and the Hutch++ sketch', async () => {
  const problem = smallProblem();
  await refused(() => runTrace(problem, { matvecs: 1e7 }), 'the number of Hessian-vector products is 10,000,000, over the limit of 1,000,000');
  await refused(() => runTrace(problem, { matvecs: -3 }), 'the number of Hessian-vector products must be a whole number >= 1 (got -3)');
  await refused(
    () => runTrace(big, { matvecs: 600 }),
    "the memory for the Hutch++ sketch is 128.0 GB, over the limit of 8.0 GB (400 float64 vectors of 40,000,000 parameters; analyse one layer, or use fewer products or Hutchinson's method)",
  );
});

test('ranges: an overflowing span, reversed and too-narrow ranges, and too many steps are refused', async () => {
  await refused(() => parseRange('-1e308:1e308:3', 'x range'), "x range: range '-1e308:1e308:3' spans stop - start = Infinity, beyond the largest double; use a narrower range");
  await refused(() => parseRange('1e308:-1e308:3', 'x range'), 'x range: inverted range 1e308:-1e308: start must be below stop');
  await refused(() => parseRange('2:-2:5', 'y range'), 'y range: inverted range 2:-2: start must be below stop');
  await refused(() => parseRange('0:5e-324:3', 'x range'), "x range: range '0:5e-324:3' is too narrow for 3 distinct steps (points 1 and 2 are both 0); use fewer steps or a wider range");
  await refused(() => parseRange('0:1:200000', 'x range'), "x range: the number of steps in '0:1:200000' is 200,000, over the limit of 100,000 (per axis)");
  assert.deepEqual(parseRange('-1e307:1e307:3', 'x range').values, [-1e307, 0, 1e307]);
  // The jobs refuse them before opening anything.
  await refused(() => runSlice(big, { dirs: ['random'], x: '-1e308:1e308:3' }), "x range: range '-1e308:1e308:3' spans stop - start = Infinity, beyond the largest double; use a narrower range");
  await refused(() => runSurface(big, { x: '-1:1:5', y: '1:0:5' }), 'y range: inverted range 1:0: start must be below stop');
});

test('grids and directions: the results, the direction vectors and eigenvector indices', async () => {
  const problem = smallProblem();
  await refused(
    () => runSurface(big, { x: '-1:1:100000' }),
    'the memory for the results of a grid of 10,000,000,000 points is 480.0 GB, over the limit of 500 MB (use fewer steps)',
  );
  await refused(() => runSlice(problem, { dirs: ['eigen27'] }), "the eigenvector index of 'eigen27' is 27, over the limit of 26 (the Hessian has dimension 26)");
  await refused(() => runSlice(problem, { dirs: ['random', 'bottom99999999999999999999'] }), "the eigenvector index of 'bottom99999999999999999999' is 1.00e+20, over the limit of 26 (the Hessian has dimension 26)");
  await refused(() => runSlice(big, { dirs: ['eigen20000'] }), "the eigenvector index of 'eigen20000' is 20,000, over the limit of 10,000");
  await refused(
    () => runSlice(big, { dirs: Array<string>(30).fill('random') }),
    'the memory for the directions is 9.6 GB, over the limit of 8.0 GB (30 float64 vectors of 40,000,000 parameters; use fewer directions)',
  );
});

test('trajectory: steps and the checkpoints are checked before any checkpoint is loaded', async () => {
  const missing = ['/nope/a/model.json', '/nope/b/model.json', '/nope/c/model.json'];
  await refused(() => runTrajectory(big, { checkpoints: missing, steps: 1e9 }), 'the number of steps per axis is 1,000,000,000, over the limit of 100,000');
  await refused(() => runTrajectory(big, { checkpoints: missing, steps: 1 }), 'the number of steps per axis must be a whole number >= 2 (got 1)');
  await refused(() => runTrajectory(big, { checkpoints: missing, x: '0:1:2', y: '-1e308:1e308:2' }), "y range: range '-1e308:1e308:2' spans stop - start = Infinity, beyond the largest double; use a narrower range");
  await refused(
    () => runTrajectory(big, { checkpoints: Array.from({ length: 100 }, (_, i) => `/nope/${i}/model.json`) }),
    'the memory for the checkpoints is 16.0 GB, over the limit of 8.0 GB (100 checkpoints of 40,000,000 parameters; use fewer checkpoints)',
  );
});

test('flatness: finite radii and thresholds, draws and directions within the limit', async () => {
  await refused(() => runFlatness(big, { draws: 1e6 }), 'the number of PAC-Bayes draws is 1,000,000, over the limit of 10,000');
  await refused(() => runFlatness(big, { directions: 0 }), 'the number of basin-radius directions must be a whole number >= 1 (got 0)');
  await refused(() => runFlatness(big, { rho: Number.NaN }), 'the SAM radius rho must be a finite number >= 0 (got NaN)');
  await refused(() => runFlatness(big, { asamRho: Infinity }), 'the ASAM radius must be a finite number >= 0 (got Infinity)');
  await refused(() => runFlatness(big, { epsilon: 0 }), 'the epsilon-sharpness box size must be a finite number > 0 (got 0)');
  await refused(() => runFlatness(big, { delta: -1 }), 'the basin-radius loss rise delta must be a finite number > 0 (got -1)');
  await refused(() => runFlatness(big, { measures: [] }), 'no flatness measure asked for (choose from sam, asam, epsilon, pacbayes, radius)');
  await refused(() => runFlatness(big, { measures: ['sam', 'vibes' as 'sam'] }), "unknown flatness measure 'vibes' (sam, asam, epsilon, pacbayes, radius)");
});

test('linalg argument checks: non-finite tolerances and iteration limits are programming errors', async () => {
  const op = new DenseOperator(matrixWithSpectrum([3, 2, 1, 0.5], new Rng(1)), 4);
  await assert.rejects(lanczos(op, { k: 1, which: 'top', tol: Number.NaN }), /^InternalError: lanczos: tol must be a finite number >= 0, got NaN$/);
  await assert.rejects(lanczos(op, { k: 1, which: 'top', tol: Infinity }), /^InternalError: lanczos: tol must be a finite number >= 0, got Infinity$/);
  await assert.rejects(lanczos(op, { k: 1, which: 'top', maxIter: Number.NaN }), /^InternalError: lanczos: maxIter must be >= 1, got NaN$/);
  await assert.rejects(powerIteration(op, { tol: Number.NaN }), /^InternalError: powerIteration: tol must be a finite number >= 0, got NaN$/);
  assert.equal(op.matvecs, 0, 'refused before any product');
  // The Lanczos step count the memory estimates use: the default, maxIter, clamped to k and to n.
  assert.equal(lanczosSteps(1000, 1), 50);
  assert.equal(lanczosSteps(1000, 20), 80);
  assert.equal(lanczosSteps(1000, 5, 7), 7);
  assert.equal(lanczosSteps(1000, 5, 2), 5);
  assert.equal(lanczosSteps(30, 5), 30);
  assert.equal(lanczosSteps(4, 9, 100), 4);
  const r = await lanczos(op, { k: 1, which: 'top', tol: 0 });
  assert.equal(r.matvecs, lanczosSteps(4, 1));
});
