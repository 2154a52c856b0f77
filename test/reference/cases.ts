/**
 * The problems every engine is checked on against the float64 oracle (test/reference/float64.ts):
 * an MLP per hidden activation, every loss with its output activation folded in (from logits) or
 * applied before it (probabilities), and convnets and DAGs covering each IR op and padding
 * geometry (same/valid, strided, tiled and overlapping max pooling, average pooling with border
 * weights, batch normalization, add, concatenate, dropout, leaky ReLU). Used by reference.test.ts (the oracle
 * against finite differences of itself), ort.test.ts (ONNX Runtime) and the TF.js tests.
 */
import type { Activation, LossName, ModelIR } from '../../src/engine/model/ir';
import { Rng } from '../../src/engine/rng';
import { IRBuilder, convIR, mlpIR, randomProblem, sequentialIR, type RefProblem } from './float64';

export interface OracleCase {
  name: string;
  problem: RefProblem;
}

export function oracleCases(): OracleCase[] {
  const out: OracleCase[] = [];
  const hidden: Activation[] = ['linear', 'relu', 'elu', 'selu', 'tanh', 'sigmoid', 'softplus', 'softmax'];
  hidden.forEach((act, i) => {
    out.push({ name: `mlp ${act}`, problem: randomProblem(mlpIR([4, 6, 3], [act, 'linear']), 'meanSquaredError', 7, 10 + i) });
  });
  const lossCases: [string, ModelIR, LossName, boolean][] = [
    ['mse tanh output', mlpIR([3, 5, 2], ['selu', 'tanh']), 'meanSquaredError', false],
    ['mse softmax output', mlpIR([3, 5, 3], ['tanh', 'softmax']), 'meanSquaredError', false],
    ['cce softmax (from logits)', mlpIR([3, 5, 4], ['elu', 'softmax']), 'categoricalCrossentropy', false],
    ['cce softmax soft labels', mlpIR([3, 5, 4], ['tanh', 'softmax']), 'categoricalCrossentropy', true],
    ['cce sigmoid output (probabilities)', mlpIR([3, 5, 4], ['tanh', 'sigmoid']), 'categoricalCrossentropy', true],
    [
      'cce softmax + dropout (probabilities)',
      sequentialIR([3], [{ kind: 'dense', units: 5, activation: 'softplus' }, { kind: 'dense', units: 3, activation: 'softmax' }, { kind: 'dropout' }]),
      'categoricalCrossentropy',
      false,
    ],
    ['bce sigmoid (from logits)', mlpIR([3, 5, 2], ['relu', 'sigmoid']), 'binaryCrossentropy', false],
    ['bce sigmoid soft targets', mlpIR([3, 5, 2], ['tanh', 'sigmoid']), 'binaryCrossentropy', true],
    ['bce softmax output (probabilities)', mlpIR([3, 5, 3], ['tanh', 'softmax']), 'binaryCrossentropy', false],
    [
      'bce sigmoid layer + dropout (probabilities)',
      sequentialIR([3], [{ kind: 'dense', units: 2 }, { kind: 'activation', activation: 'sigmoid' }, { kind: 'dropout' }]),
      'binaryCrossentropy',
      true,
    ],
  ];
  lossCases.forEach(([name, ir, loss, soft], i) => out.push({ name, problem: randomProblem(ir, loss, 6, 40 + i, { softTargets: soft }) }));
  out.push({
    name: 'conv A (same stride 2, batchnorm, overlapping maxpool, valid conv, flatten, softmax cce)',
    problem: randomProblem(
      convIR(
        [7, 7, 2],
        [
          { kind: 'conv2d', filters: 3, kernelSize: 3, strides: 2, padding: 'same', activation: 'elu' },
          { kind: 'batchNorm' },
          { kind: 'maxPool2d', poolSize: 2, strides: 1 },
          { kind: 'conv2d', filters: 2, kernelSize: 2, activation: 'tanh' },
          { kind: 'flatten' },
          { kind: 'dense', units: 3, activation: 'softmax' },
        ],
      ),
      'categoricalCrossentropy',
      5,
      70,
    ),
  });
  out.push({
    name: 'conv B (same relu, avgpool same stride 2, rect strided conv, maxpool same, gap, sigmoid bce)',
    problem: randomProblem(
      convIR(
        [5, 6, 1],
        [
          { kind: 'conv2d', filters: 2, kernelSize: 3, padding: 'same', activation: 'relu' },
          { kind: 'avgPool2d', poolSize: 3, strides: 2, padding: 'same' },
          { kind: 'conv2d', filters: 3, kernelSize: [2, 3], strides: [1, 2], padding: 'same', activation: 'softplus' },
          { kind: 'maxPool2d', poolSize: 2, padding: 'same' },
          { kind: 'globalAvgPool2d' },
          { kind: 'dense', units: 2, activation: 'sigmoid' },
        ],
      ),
      'binaryCrossentropy',
      5,
      71,
    ),
  });
  {
    const b = new IRBuilder('conv C');
    const x = b.input([4, 4, 2]);
    const c1 = b.conv2d(x, 3, 3, { padding: 'same', activation: 'selu' });
    const c2 = b.conv2d(x, 3, 1, { bias: false });
    const s = b.add([c1, c2]);
    const cat = b.concatenate([s, x]);
    const pool = b.avgPool2d(cat, 2);
    const bn = b.batchNorm(pool, { center: false });
    const dr = b.dropout(bn, 0.3);
    const f = b.flatten(dr);
    b.dense(f, 2);
    out.push({ name: 'conv C (add, concatenate, avgpool valid, batchnorm gamma only, dropout, mse)', problem: randomProblem(b.build(), 'meanSquaredError', 3, 72) });
  }
  {
    const b = new IRBuilder('mlp DAG');
    const x = b.input([3]);
    const h1 = b.dense(x, 4, { activation: 'tanh' });
    const h2 = b.dense(x, 4, { activation: 'selu' });
    const s = b.add([h1, h2, h1]);
    const cat = b.concatenate([x, s]);
    const bn = b.batchNorm(cat, { scale: false, epsilon: 0.01 });
    const z = b.dense(bn, 3, { bias: false });
    b.activation(z, 'softmax');
    out.push({ name: 'mlp DAG (add x3, concatenate, batchnorm beta only, softmax layer, cce)', problem: randomProblem(b.build(), 'categoricalCrossentropy', 6, 73) });
  }
  {
    const b = new IRBuilder('leaky');
    const x = b.input([5, 4, 2]);
    const c = b.conv2d(x, 3, 3, { padding: 'same' });
    const l1 = b.leakyRelu(c, 0.2);
    const p = b.maxPool2d(l1, 2);
    const f = b.flatten(p);
    const h = b.dense(f, 4);
    const l2 = b.leakyRelu(h, 0.01);
    b.dense(l2, 3, { activation: 'softmax' });
    out.push({ name: 'leaky (leaky ReLU on an image, slope 0.2, and on a vector, slope 0.01; cce)', problem: randomProblem(b.build(), 'categoricalCrossentropy', 6, 77) });
  }
  out.push({
    name: 'conv D (dense on an image, conv output, softmax over channels, mse on NHWC output)',
    problem: randomProblem(
      convIR(
        [4, 5, 2],
        [
          { kind: 'dense', units: 3, activation: 'sigmoid' },
          { kind: 'conv2d', filters: 3, kernelSize: [3, 2], strides: [2, 1], padding: 'valid', activation: 'softmax' },
        ],
      ),
      'meanSquaredError',
      4,
      74,
    ),
  });
  out.push({
    name: 'conv E (strided valid conv leaving a remainder, overlapping avgpool, stride-3 maxpool, bce on probabilities)',
    problem: randomProblem(
      convIR(
        [9, 8, 2],
        [
          { kind: 'conv2d', filters: 4, kernelSize: 2, strides: 3, activation: 'tanh' },
          { kind: 'conv2d', filters: 3, kernelSize: 1, padding: 'same', activation: 'relu' },
          { kind: 'avgPool2d', poolSize: 2, strides: 1, padding: 'same' },
          { kind: 'maxPool2d', poolSize: 2, strides: 3, padding: 'same' },
          { kind: 'flatten' },
          { kind: 'dense', units: 2, activation: 'softmax' },
        ],
      ),
      'binaryCrossentropy',
      5,
      75,
    ),
  });
  out.push({
    name: 'conv F (tiled max pooling: cropped odd sizes, rectangular windows, same padding that divides)',
    problem: randomProblem(
      convIR(
        [5, 7, 2],
        [
          { kind: 'conv2d', filters: 3, kernelSize: 1, activation: 'tanh' },
          { kind: 'maxPool2d', poolSize: [2, 3] },
          { kind: 'conv2d', filters: 2, kernelSize: 2, padding: 'same', activation: 'softplus' },
          { kind: 'maxPool2d', poolSize: 2, padding: 'same' },
          { kind: 'flatten' },
          { kind: 'dense', units: 2 },
        ],
      ),
      'meanSquaredError',
      6,
      76,
    ),
  });
  out.push({ name: 'conv G (tiled max pooling with exact ties: blank pixels under positive conv biases)', problem: tiedPooling() });
  return out;
}

/**
 * A convnet whose tiled max-pooling windows hold exactly equal maxima, as an image's blank regions
 * do under a positive bias: 60% of the pixels are 0 and the conv biases are positive, so every
 * blank pixel maps to the same value. The oracle's max routes the derivative to a window's first
 * maximum (row-major), as PyTorch and TensorFlow do; a mask of all tied maxima is wrong here.
 */
function tiedPooling(): RefProblem {
  const ir = convIR(
    [6, 6, 1],
    [
      { kind: 'conv2d', filters: 2, kernelSize: 1, activation: 'relu' },
      { kind: 'maxPool2d', poolSize: 2 },
      { kind: 'conv2d', filters: 2, kernelSize: 1, activation: 'tanh' },
      { kind: 'maxPool2d', poolSize: [1, 3] },
      { kind: 'flatten' },
      { kind: 'dense', units: 3, activation: 'softmax' },
    ],
  );
  const raw = randomProblem(ir, 'categoricalCrossentropy', 6, 77);
  const rng = new Rng(78);
  const x = raw.x.map((v) => (rng.uniform() < 0.6 ? 0 : v));
  const params = Float64Array.from(raw.params);
  for (const q of ir.params) {
    if (q.role !== 'bias' || ir.nodes.find((n) => n.name === q.layer)?.op.kind !== 'conv2d') continue;
    for (let i = q.offset; i < q.offset + q.size; i++) params[i] = 0.2 + Math.abs(params[i]);
  }
  return { ...raw, x, params };
}
