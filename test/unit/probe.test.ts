/**
 * Training probes that cannot miss a direction. The frozen-symmetry case after Cohen et al. 2021's
 * regression net, scaled down (1-20 tanh-1, MSE): first-layer and output biases start at zero and
 * the data has an odd target on inputs symmetric about 0, so the loss is invariant under
 * (b1, b2) -> (-b1, -b2), the biases never move under gradient descent, the gradient has no bias
 * component and the Hessian is block diagonal between the weights and the biases. A Lanczos warm
 * start from the previous eigenvector stays in its block; the prober must still find the true
 * lambda_max (within 1e-3 of a cold Lanczos) at every probe, and flag a top eigenvector the
 * gradient cannot see.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend } from '../../src/engine/backend';
import { tf } from '../../src/engine/tf';
import { Objective } from '../../src/engine/objective';
import { LocalEvaluator } from '../../src/engine/evaluator';
import { ExactHessian } from '../../src/engine/hvp/operators';
import { lanczos } from '../../src/engine/linalg/lanczos';
import { gradientOverlap } from '../../src/engine/curvature';
import { DEFAULT_SETTINGS, makeProber, UNSEEN_OVERLAP } from '../../src/engine/train/run';
import { makeOptimizer } from '../../src/engine/train/optimizers';
import { PROBE_BUDGETS } from '../../src/engine/train/probe';
import { problemFrom } from '../../src/engine/problem';
import { Rng } from '../../src/engine/rng';
import type { TrainSettings } from '../../src/shared/results';
import { mlpIR } from '../reference/float64';

before(async () => {
  await initBackend('wasm');
});

const H = 20;
const N = 32;
const LR = 0.3;

/** The symmetric problem: x and -x, targets sin(3x) and -sin(3x); weights random, biases zero. */
function symmetricProblem() {
  const ir = mlpIR([1, H, 1], ['tanh', 'linear']);
  const x = new Float32Array(N);
  const y = new Float32Array(N);
  for (let i = 0; i < N / 2; i++) {
    const t = (i + 0.5) / (N / 2);
    x[2 * i] = t;
    x[2 * i + 1] = -t;
    y[2 * i] = Math.fround(Math.sin(3 * t));
    y[2 * i + 1] = -y[2 * i];
  }
  const rng = new Rng(3);
  const theta = new Float64Array(ir.numParams);
  // Parameters in order: W1 [1, H], b1 [H], W2 [H, 1], b2 [1].
  for (let i = 0; i < H; i++) {
    theta[i] = rng.normal();
    theta[2 * H + i] = rng.normal() / Math.sqrt(H);
  }
  const split = { x, xShape: [N, 1], y, yShape: [N, 1] };
  return { ir, theta, split };
}

/** The fraction of a vector's squared norm in the bias coordinates (b1 and b2). */
function biasShare(v: Float64Array): number {
  let b = 0;
  let all = 0;
  for (let i = 0; i < v.length; i++) {
    all += v[i] * v[i];
    if ((i >= H && i < 2 * H) || i === 3 * H) b += v[i] * v[i];
  }
  return b / all;
}

test('frozen symmetry: the training probe finds the true lambda_max at every probe and flags the direction the gradient cannot see', async (t) => {
  const tensorsBefore = tf.memory().numTensors;
  const { ir, theta: theta0, split } = symmetricProblem();
  const problem = problemFrom(ir, ir.params.map((p) => Float32Array.from(theta0.subarray(p.offset, p.offset + p.size))), 'meanSquaredError', split);
  const settings: TrainSettings = { ...DEFAULT_SETTINGS, lr: LR, probeEvery: 20, seed: 1 };
  const mini = new Objective(ir, problem.theta, 'meanSquaredError', split);
  const prober = await makeProber(problem, settings, theta0, mini);
  // The cold reference and the warm-start-only control run on their own evaluator.
  const refObj = new Objective(ir, problem.theta, 'meanSquaredError', split);
  const ref = new ExactHessian(new LocalEvaluator(refObj));
  const opt = makeOptimizer('gd', { ir });
  const theta = Float64Array.from(theta0);
  let warmV0: Float64Array | undefined;
  let warmWorst = 0;
  let unseen = 0;
  let seen = 0;
  let products = 0;
  let probes = 0;
  try {
    for (let step = 0; step <= 200; step++) {
      if (step % settings.probeEvery === 0) {
        const rec = await prober.probe({ theta, step, epoch: 0, lr: LR, optimizer: opt });
        refObj.setParameters(theta);
        const cold = await lanczos(ref, { k: 1, which: 'top', rng: new Rng(1000 + step), tol: 1e-9, maxIter: 4 * H + 1 });
        const truth = cold.eigenvalues[0];
        assert.ok(Math.abs(rec.lambdaMax! - truth) <= 1e-3 * truth, `step ${step}: probe ${rec.lambdaMax} vs cold Lanczos ${truth}`);
        // The overlap is that of the probe's eigenvector; check it against the cold one's.
        const g = refObj.gradient().grad;
        const coldOverlap = gradientOverlap(g, cold.eigenvectors).perVector[0];
        const inBiases = biasShare(cold.eigenvectors[0]) > 0.999;
        if (inBiases) {
          unseen++;
          assert.ok(coldOverlap < UNSEEN_OVERLAP, `step ${step}: a bias eigenvector has overlap ${coldOverlap}`);
          assert.equal(rec.lambdaMaxUnseen, true, `step ${step}: lambda_max lies in the biases, which the gradient cannot move, and is not flagged`);
        } else {
          seen++;
          assert.equal(rec.lambdaMaxUnseen, undefined, `step ${step}: flagged with overlap ${rec.lambdaMaxOverlap}`);
          assert.ok(Math.abs(rec.lambdaMaxOverlap! - coldOverlap) < 1e-3, `step ${step}: overlap ${rec.lambdaMaxOverlap} vs ${coldOverlap}`);
        }
        products += rec.lambdaMaxProducts!;
        probes++;
        // The control: Lanczos warm-started from the previous eigenvector alone (the old probe).
        const warm = await lanczos(ref, { k: 1, which: 'top', v0: warmV0, rng: new Rng(7), maxIter: 30, tol: 1e-4, stopOn: 'bound' });
        warmV0 = warm.eigenvectors[0];
        warmWorst = Math.max(warmWorst, (truth - warm.eigenvalues[0]) / truth);
      }
      const g = refObj.gradient(Float32Array.from(theta)).grad;
      for (let i = 0; i < theta.length; i++) theta[i] -= LR * g[i];
    }
    // The biases never moved: the symmetry held all along.
    for (let i = H; i < 2 * H; i++) assert.ok(Math.abs(theta[i]) < 1e-6, `b1[${i - H}] moved to ${theta[i]}`);
    // The case exercises both: probes with lambda_max in the biases, and in the weights.
    assert.ok(unseen >= 2 && seen >= 2, `probes in the biases ${unseen}, in the weights ${seen}`);
    // The warm start alone is trapped here (this is what the test guards against).
    assert.ok(warmWorst > 0.05, `the warm-start-only probe was never more than 5% low (worst ${warmWorst})`);
    t.diagnostic(`probes: ${unseen} with lambda_max in the biases, ${seen} in the weights; ${(products / probes).toFixed(1)} products per probe; warm start alone worst ${(100 * warmWorst).toFixed(1)}% low`);
    // Cheap: a handful of products per probe.
    assert.ok(products / probes <= 8, `${products / probes} products per probe`);
  } finally {
    prober.dispose();
    mini.dispose();
    refObj.dispose();
  }
  assert.equal(tf.memory().numTensors, tensorsBefore, 'tensors leaked');
});

test('a probe is asked by name: the step loss is the batch loss on minibatches; the final probe has per-layer sharpness', async () => {
  const tensorsBefore = tf.memory().numTensors;
  const { ir, theta, split } = symmetricProblem();
  const problem = problemFrom(ir, ir.params.map((p) => Float32Array.from(theta.subarray(p.offset, p.offset + p.size))), 'meanSquaredError', split);
  const mini = new Objective(ir, problem.theta, 'meanSquaredError', split);
  const opt = makeOptimizer('gd', { ir });
  const full = await makeProber(problem, { ...DEFAULT_SETTINGS, lr: LR, seed: 1 }, theta, mini);
  const batched = await makeProber(problem, { ...DEFAULT_SETTINGS, lr: LR, seed: 1, batchSize: 8 }, theta, mini);
  try {
    const plain = await full.probe({ theta, step: 3, epoch: 1, lr: LR, optimizer: opt, stepLoss: 0.5 });
    assert.equal(plain.step, 3);
    assert.equal(plain.epoch, 1);
    assert.equal(plain.lr, LR);
    // Full batch: the step's loss is the loss, not recorded again; layers only when due or final.
    assert.equal(plain.batchLoss, undefined);
    assert.equal(plain.layerSharpness, undefined);
    // gd's stability threshold 2 / lr, and the IGR term lr/4 |g|^2, at the lr given.
    assert.equal(plain.threshold, 2 / LR);
    assert.ok(Math.abs(plain.igrTerm! - (LR / 4) * plain.gradNorm! ** 2) <= 1e-12 * plain.igrTerm!);
    assert.ok(plain.lambdaMaxProducts! <= PROBE_BUDGETS.top.maxIter);
    const last = await full.probe({ theta, step: 4, epoch: 1, lr: LR, optimizer: opt, final: true });
    // One entry per layer with parameters (the IR's two dense layers).
    assert.deepEqual(Object.keys(last.layerSharpness ?? {}).sort(), [...new Set(ir.params.map((p) => p.layer))].sort());
    const b = await batched.probe({ theta, step: 3, epoch: 0, lr: LR, optimizer: opt, stepLoss: 0.5 });
    assert.equal(b.batchLoss, 0.5);
  } finally {
    full.dispose();
    batched.dispose();
    mini.dispose();
  }
  assert.equal(tf.memory().numTensors, tensorsBefore, 'tensors leaked');
});
