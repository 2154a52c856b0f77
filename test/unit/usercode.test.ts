// Faults in user code are the user's: an experiment module that throws (while loading, in model,
// data or loss), returns the wrong thing, or does not compile ends in a BasinError (exit 1) that
// names the module, repeats the user's own message and gives the line in the user's source; never
// an internal error (exit 70), a stack trace, or leaked tensors. And a forward pass that overflows
// float32 is reported as such, not hidden behind a finite loss.
// Every module and model is written to a fresh temporary folder by the test itself.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend } from '../../src/engine/backend';
import { BasinError } from '../../src/engine/errors';
import { tf } from '../../src/engine/tf';
import { loadProblem } from '../../src/engine/problem';
import { runEigs } from '../../src/engine/jobs';
import { basin as basinCli, CLI, type Run } from '../helpers/cli';

const EXAMPLE = path.join(__dirname, '../../examples/spiral');

before(async () => {
  assert.ok(fs.existsSync(CLI), `${CLI} is missing: build it with 'node esbuild.js' first`);
  await initBackend('wasm');
});

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'basin-usercode-'));
}

/** Writes a module (lines joined by newlines) to a fresh folder; returns its path. */
function writeModule(name: string, lines: string[]): string {
  const file = path.join(tmpDir(), name);
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

/** The 1-based line of the only line marked `// FAULT`. */
function faultLine(file: string): number {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const at = lines.flatMap((l, i) => (l.includes('// FAULT') ? [i + 1] : []));
  assert.equal(at.length, 1, `${file} must mark one line // FAULT`);
  return at[0];
}

// The parts of a small, valid module: type-only lines first, so the compiled code's lines differ
// from the source's and a line number is only right when it went through the source map.
const HEAD = [
  '// An experiment module with one fault.',
  'interface Layers {',
  '  dense(c: object): unknown;',
  '}',
  'type Tf = { sequential(c: object): unknown; layers: Layers; tensor2d(v: number[] | number[][], s?: number[]): { dispose(): void } };',
];
const MODEL = "  model: (tf: Tf) => tf.sequential({ layers: [tf.layers.dense({ inputShape: [2], units: 3, activation: 'softmax' })] }),";
const DATA = '  data: () => ({ x: [[0, 1], [1, 0], [1, 1], [0.5, -1]], y: [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0]] }),';
const LOSS = "  loss: 'categoricalCrossentropy',";

/** The bundled CLI in its own process (test/helpers/cli.ts) with --quiet. */
const basin = (...args: string[]): Run => basinCli([...args, '--quiet']);

/**
 * `basin info` and `basin eigs` on the module both end with exit 1 and exactly
 * `basin: <file>: <message>` on stderr: no stack trace, no internal error.
 */
function cliFails(file: string, message: string, commands = ['info', 'eigs']): void {
  for (const cmd of commands) {
    const r = basin(cmd, file);
    assert.equal(r.stderr, `basin: ${file}: ${message}\n`, `basin ${cmd} ${path.basename(file)}`);
    assert.equal(r.status, 1, `basin ${cmd} ${path.basename(file)} exited ${r.status}`);
    assert.ok(!r.stderr.includes('    at '), 'a stack trace was printed');
    assert.ok(!r.stderr.includes('internal error'));
    assert.equal(r.stdout, '');
  }
}

// ---------------------------------------------------------------------------------------------
// Through the CLI: exit 1, the module's name, the user's message, the line in the user's source
// ---------------------------------------------------------------------------------------------

test('a loss that throws: its message and line', () => {
  const file = writeModule('throwing-loss.basin.ts', [
    ...HEAD,
    'export default {',
    MODEL,
    DATA,
    '  loss: (yTrue: unknown, yPred: unknown) => {',
    "    if (yTrue !== yPred) throw new RangeError('the custom loss exploded'); // FAULT",
    '    return yPred;',
    '  },',
    '};',
  ]);
  assert.equal(faultLine(file), 10);
  cliFails(file, 'loss(yTrue, yPred) threw: RangeError: the custom loss exploded (line 10)');
});

test('a loss that throws in a file the module imports names that file and its line', () => {
  const file = writeModule('imported-loss.basin.ts', [...HEAD, "import { myLoss } from './losses';", 'export default {', MODEL, DATA, '  loss: myLoss,', '};']);
  fs.writeFileSync(
    path.join(path.dirname(file), 'losses.ts'),
    ['// helpers', 'type T = { mean(): T };', 'export function myLoss(yTrue: T, yPred: T): T {', "  throw new Error('no loss here'); // FAULT", '}', ''].join('\n'),
  );
  cliFails(file, 'loss(yTrue, yPred) threw: no loss here (losses.ts line 4)', ['eigs']);
});

test('a loss that returns a non-scalar tensor, a plain number, a disposed tensor, int32, or NaN', () => {
  const cases: [string, string][] = [
    ['  loss: (yTrue: any, yPred: any) => yPred.sub(yTrue).square(),', 'loss(yTrue, yPred) returned a tensor of shape [4,3]; it must return a scalar (a mean over samples)'],
    [
      '  loss: () => 0.25,',
      'loss(yTrue, yPred) returned a number (0.25), not a tensor: compute it from yTrue and yPred with tf ops, e.g. tf.mean(tf.square(tf.sub(yPred, yTrue))), so it can be differentiated',
    ],
    [
      '  loss: (yTrue: any, yPred: any) => { const l = yPred.sub(yTrue).square().mean(); l.dispose(); return l; },',
      'loss(yTrue, yPred) returned a disposed tensor (return the value itself, not a tensor disposed or created inside a tf.tidy that did not return it)',
    ],
    ["  loss: (yTrue: any, yPred: any) => yPred.sub(yTrue).sum().cast('int32'),", 'loss(yTrue, yPred) returned a tensor of dtype int32; it must return a float32 scalar computed from yPred'],
    [
      '  loss: (yTrue: any, yPred: any) => yPred.sub(yTrue).square().mean().mul(NaN),',
      'loss(yTrue, yPred) returned NaN on finite model outputs (first call, at the starting parameters); it must return a finite mean over samples (clip probabilities before a log, or compute from logits)',
    ],
    ['  loss: (yTrue: any, yPred: any) => { yPred.sum(); },', 'loss(yTrue, yPred) returned undefined (is a return statement missing?); it must return a scalar tensor (a mean over samples)'],
  ];
  for (const [loss, message] of cases) cliFails(writeModule('bad-loss.basin.ts', [...HEAD, 'export default {', MODEL, DATA, loss, '};']), message);
});

test('a loss that cannot be differentiated: info works, curvature says why', () => {
  const file = writeModule('constant-loss.basin.ts', [
    ...HEAD,
    'let T: any;',
    'export default {',
    "  model: (tf: any) => { T = tf; return tf.sequential({ layers: [tf.layers.dense({ inputShape: [2], units: 3, activation: 'softmax' })] }); },",
    DATA,
    '  loss: (yTrue: any, yPred: any) => T.scalar(yPred.sub(yTrue).square().mean().dataSync()[0]),',
    '};',
  ]);
  assert.equal(basin('info', file).status, 0);
  cliFails(
    file,
    'loss(yTrue, yPred) cannot be differentiated with respect to yPred: it does not depend on yPred through TF.js ops (a value read back with dataSync/arraySync, or a constant, has no gradient)',
    ['eigs'],
  );
});

test('data(tf) that throws, rejects, calls TF.js wrongly, or returns a disposed tensor, ragged arrays or mismatched x and y', () => {
  const sync = writeModule('data-throws.basin.ts', [...HEAD, 'export default {', MODEL, '  data() {', "    throw new Error('no data today'); // FAULT", '  },', LOSS, '};']);
  cliFails(sync, `data(tf) threw: no data today (line ${faultLine(sync)})`);

  const rejects = writeModule('data-rejects.basin.ts', [
    ...HEAD,
    'export default {',
    MODEL,
    '  async data() {',
    '    await new Promise((resolve) => setTimeout(resolve, 1));',
    "    throw new Error('the network is down'); // FAULT",
    '  },',
    LOSS,
    '};',
  ]);
  cliFails(rejects, `data(tf) threw: the network is down (line ${faultLine(rejects)})`);

  // TF.js throws from deep inside its own code: the line is the user's call.
  const tfError = writeModule('data-tf-error.basin.ts', [
    ...HEAD,
    'export default {',
    MODEL,
    '  data(tf: Tf) {',
    '    const x = tf.tensor2d([0, 1, 1], [2, 2]); // FAULT',
    '    return { x, y: [[1, 0, 0], [0, 1, 0]] };',
    '  },',
    LOSS,
    '};',
  ]);
  cliFails(tfError, `data(tf) threw: Based on the provided shape, [2,2], the tensor should have 4 values but has 3 (line ${faultLine(tfError)})`);

  const disposed = writeModule('data-disposed.basin.ts', [
    ...HEAD,
    'export default {',
    MODEL,
    '  data(tf: Tf) {',
    '    const x = tf.tensor2d([[0, 1], [1, 0]]);',
    '    x.dispose();',
    '    return { x, y: [[1, 0, 0], [0, 1, 0]] };',
    '  },',
    LOSS,
    '};',
  ]);
  cliFails(disposed, 'data(tf).x is a disposed tensor: return tensors that are still alive (not disposed, nor made inside a tf.tidy that did not return them)');

  const ragged = writeModule('data-ragged.basin.ts', [...HEAD, 'export default {', MODEL, '  data: () => ({ x: [[0, 1], [1, 0, 2]], y: [[1, 0, 0], [0, 1, 0]] }),', LOSS, '};']);
  cliFails(ragged, "'data(tf).x[1]' has length 3 but 2 was expected (ragged array)");

  const mismatched = writeModule('data-mismatched.basin.ts', [...HEAD, 'export default {', MODEL, '  data: () => ({ x: [[0, 1], [1, 0], [1, 1]], y: [[1, 0, 0], [0, 1, 0]] }),', LOSS, '};']);
  cliFails(mismatched, 'training data has 3 inputs but 2 labels');

  const nothing = writeModule('data-nothing.basin.ts', [...HEAD, 'export default {', MODEL, '  data: () => ({ x: [[0, 1]] }),', LOSS, '};']);
  cliFails(nothing, 'data(tf) must return {x, y}; y is missing');
});

test('model(tf) that throws, returns nothing, or returns a layer instead of a model', () => {
  const throws = writeModule('model-throws.basin.ts', [...HEAD, 'export default {', '  model(tf: Tf) {', "    throw new Error('out of coffee'); // FAULT", '  },', DATA, LOSS, '};']);
  cliFails(throws, `model(tf) threw: out of coffee (line ${faultLine(throws)})`);

  const nothing = writeModule('model-nothing.basin.ts', [
    ...HEAD,
    'export default {',
    '  model(tf: Tf) {',
    "    tf.sequential({ layers: [tf.layers.dense({ inputShape: [2], units: 3, activation: 'softmax' })] });",
    '  },',
    DATA,
    LOSS,
    '};',
  ]);
  cliFails(nothing, 'model(tf) did not return a tf.LayersModel (it returned undefined: is a return statement missing?)');

  const layer = writeModule('model-layer.basin.ts', [...HEAD, 'export default {', "  model: (tf: Tf) => tf.layers.dense({ inputShape: [2], units: 3, activation: 'softmax' }),", DATA, LOSS, '};']);
  cliFails(layer, 'model(tf) did not return a tf.LayersModel (it returned a Dense layer: wrap layers in tf.sequential({ layers: [...] }))');
});

test('a module that throws while loading, or does not compile: the line', () => {
  const load = writeModule('load-throws.basin.ts', [...HEAD, 'const settings: { lr?: number } = {};', "if (settings.lr === undefined) throw new Error('no learning rate'); // FAULT", 'export default {', MODEL, DATA, LOSS, '};']);
  assert.equal(faultLine(load), 7);
  cliFails(load, 'failed while loading: no learning rate (line 7)');

  const syntax = writeModule('syntax.basin.ts', [...HEAD, 'export default {', MODEL, '  data: () => ({ x: [[0, 1]], y: [[1, 0, 0]] ),', LOSS, '};']);
  cliFails(syntax, 'does not compile: Expected "}" but found ")" (line 8)');

  const missing = writeModule('missing-import.basin.ts', [...HEAD, "import { helper } from 'a-package-that-is-not-installed'; // FAULT", 'export default {', MODEL, DATA, LOSS, 'helper,', '};']);
  const r = basin('info', missing);
  assert.equal(r.status, 1);
  assert.match(r.stderr, new RegExp(`^basin: ${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: failed while loading: Cannot find module 'a-package-that-is-not-installed'`));
  assert.ok(r.stderr.includes(`(line ${faultLine(missing)})\n`), r.stderr);
});

// ---------------------------------------------------------------------------------------------
// In the engine: the loss checks, and no tensor left behind when user code fails
// ---------------------------------------------------------------------------------------------

/** Runs `action`, which must throw a BasinError with exactly `message` (after the file name). */
async function basinError(action: () => unknown, file: string, message: string): Promise<void> {
  let caught: unknown;
  try {
    await action();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof BasinError, `expected a BasinError, got ${String(caught)}`);
  assert.equal(caught.message, `${file}: ${message}`);
}

test('loss checks in the Objective: every evaluation path, no tensor leaked', async () => {
  const cases: [string, string][] = [
    ['  loss: (yTrue: any, yPred: any) => yPred.sub(yTrue).square(),', 'loss(yTrue, yPred) returned a tensor of shape [4,3]; it must return a scalar (a mean over samples)'],
    ["  loss: (yTrue: any, yPred: any) => { yPred.square(); throw new Error('late'); }, // FAULT", 'loss(yTrue, yPred) threw: late (line 9)'],
    ["  loss: (yTrue: any, yPred: any) => yPred.sub(yTrue).sum().cast('bool'),", 'loss(yTrue, yPred) returned a tensor of dtype bool; it must return a float32 scalar computed from yPred'],
  ];
  for (const [loss, message] of cases) {
    const file = writeModule('engine-loss.basin.ts', [...HEAD, 'export default {', MODEL, DATA, loss, '};']);
    const p = await loadProblem({ experiment: file });
    const obj = p.objective();
    const before = tf.memory().numTensors;
    await basinError(() => obj.lossAt(), file, message);
    await basinError(() => obj.gradient(), file, message);
    await basinError(() => obj.batchGradient(Int32Array.from([0, 2])), file, message.replace('[4,3]', '[2,3]'));
    await basinError(() => obj.hvpExact(new Float64Array(obj.dim).fill(1)), file, message);
    await basinError(() => obj.planeLosses(p.theta, [new Float64Array(obj.dim).fill(0.1)], Float64Array.from([0, 1]), true), file, message);
    assert.equal(tf.memory().numTensors, before, 'tensors leaked');
    obj.dispose();
  }

  // A good user loss: the value is right (the mean squared error of a model with known weights).
  const good = writeModule('good-loss.basin.ts', [
    ...HEAD,
    'export default {',
    "  model: (tf: any) => tf.sequential({ layers: [tf.layers.dense({ inputShape: [2], units: 1, kernelInitializer: 'ones', biasInitializer: 'zeros' })] }),",
    '  data: () => ({ x: [[1, 2], [3, 4], [0, 1]], y: [0, 1, 2] }),',
    '  loss: (yTrue: any, yPred: any) => yPred.sub(yTrue).square().mean(),',
    '};',
  ]);
  const p = await loadProblem({ experiment: good });
  const obj = p.objective();
  assert.ok(Math.abs(obj.lossAt() - 46 / 3) <= 1e-6 * (46 / 3), `loss ${obj.lossAt()}`);
  const before = tf.memory().numTensors;
  obj.gradient();
  obj.hvpExact(new Float64Array(obj.dim).fill(1));
  assert.equal(tf.memory().numTensors, before);
  obj.dispose();
});

test('no tensor or variable left behind when model(tf) or data(tf) fails, or after a module loads', async () => {
  const cases: [string, string[], string][] = [
    [
      'model-late-throw.basin.ts',
      [
        'export default {',
        '  model(tf: any) {',
        "    const m = tf.sequential({ layers: [tf.layers.dense({ inputShape: [2], units: 8 }), tf.layers.dense({ units: 3, activation: 'softmax' })] });",
        "    tf.ones([100, 100]); if (m) throw new Error('changed my mind'); // FAULT",
        '  },',
        DATA,
        LOSS,
        '};',
      ],
      'model(tf) threw: changed my mind (line 9)',
    ],
    [
      'model-tensor.basin.ts',
      ['export default {', '  model: (tf: any) => tf.ones([2, 3]),', DATA, LOSS, '};'],
      'model(tf) did not return a tf.LayersModel (it returned a tensor of shape [2,3])',
    ],
    [
      'data-late-throw.basin.ts',
      ['export default {', MODEL, '  async data(tf: any) {', '    tf.ones([100, 100]);', '    await null;', "    tf.zeros([3]); throw new Error('half done'); // FAULT", '  },', LOSS, '};'],
      'data(tf) threw: half done (line 11)',
    ],
    [
      'data-ragged-tensors.basin.ts',
      ['export default {', MODEL, '  data: (tf: any) => ({ x: tf.ones([4, 2]), y: [[1, 0, 0], [0, 1]] }),', LOSS, '};'],
      "'data(tf).y[1]' has length 2 but 3 was expected (ragged array)",
    ],
  ];
  for (const [name, lines, message] of cases) {
    const file = writeModule(name, [...HEAD, ...lines]);
    const tensors = tf.memory().numTensors;
    const variables = Object.keys(tf.engine().registeredVariables).length;
    await basinError(() => loadProblem({ experiment: file }), file, message);
    assert.equal(tf.memory().numTensors, tensors, `${name}: tensors leaked`);
    assert.equal(Object.keys(tf.engine().registeredVariables).length, variables, `${name}: variables leaked`);
  }
  // A module that loads: its model and data tensors are released once read.
  const ok = writeModule('fine.basin.ts', [...HEAD, 'export default {', MODEL, '  data: (tf: any) => ({ x: tf.ones([4, 2]), y: tf.oneHot(tf.tensor1d([0, 1, 2, 0], "int32"), 3) }),', LOSS, '};']);
  const tensors = tf.memory().numTensors;
  const p = await loadProblem({ experiment: ok });
  assert.deepEqual(p.train.yShape, [4, 3]);
  assert.deepEqual(Array.from(p.train.y), [1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0]);
  assert.equal(tf.memory().numTensors, tensors);
});

// ---------------------------------------------------------------------------------------------
// Forward passes that overflow float32
// ---------------------------------------------------------------------------------------------

/** The spiral example in a fresh folder with every weight set to `w` (float32). */
function spiralWithWeights(w: number): { model: string; data: string } {
  const dir = tmpDir();
  for (const f of ['model.json', 'data.json']) fs.copyFileSync(path.join(EXAMPLE, f), path.join(dir, f));
  const n = fs.statSync(path.join(EXAMPLE, 'weights.bin')).size / 4;
  fs.writeFileSync(path.join(dir, 'weights.bin'), Buffer.from(new Float32Array(n).fill(w).buffer));
  return { model: path.join(dir, 'model.json'), data: path.join(dir, 'data.json') };
}

test('weights of 1e38 overflow the forward pass: the loss is NaN, never a finite value, and eigs says why', async () => {
  // Every weight 1e38: the last layer's logits are 32e38 + 1e38, beyond float32's 3.4e38.
  const f = spiralWithWeights(1e38);
  for (const loss of ['categoricalCrossentropy', 'binaryCrossentropy', 'meanSquaredError']) {
    // binaryCrossentropy on a softmax output clips probabilities: it gave 5.37 here before.
    const p = await loadProblem({ model: f.model, data: f.data, loss });
    const obj = p.objective();
    assert.ok(Number.isNaN(obj.lossAt()), `${loss}: loss ${obj.lossAt()}`);
    assert.ok(Number.isNaN(obj.gradient().loss), `${loss}: gradient's loss`);
    // A plane through the example's own weights: finite near them, NaN where the weights overflow.
    const ex = await loadProblem({ model: path.join(EXAMPLE, 'model.json'), data: f.data, loss });
    const exObj = ex.objective();
    const dir = Float64Array.from(p.theta, (v, i) => v - ex.theta[i]);
    const plane = exObj.planeLosses(ex.theta, [dir], Float64Array.from([0, 1]), false);
    assert.ok(Number.isFinite(plane.loss[0]) && Math.abs(plane.loss[0] - exObj.lossAt()) <= 1e-6 * exObj.lossAt(), `${loss}: ${plane.loss[0]}`);
    assert.ok(Number.isNaN(plane.loss[1]), `${loss}: far point ${plane.loss[1]}`);
    obj.dispose();
    exObj.dispose();
    const message =
      "the loss at these parameters is NaN: the model's outputs are not finite (NaN or Infinity: the forward pass overflows float32; the largest weight is 1.0e+38); nothing to analyse (check the weights and the data scale)";
    await assert.rejects(() => runEigs(p, {}), (e: unknown) => e instanceof BasinError && e.message.endsWith(message));
  }
  // Weights that are already NaN are named as such.
  const nan = spiralWithWeights(NaN);
  const q = await loadProblem({ model: nan.model, data: nan.data });
  const nanMessage = "the loss at these parameters is NaN: the weights contain NaN (layer 'dense_Dense1'); nothing to analyse (check the weights and the data scale)";
  await assert.rejects(() => runEigs(q, {}), (e: unknown) => e instanceof BasinError && e.message.endsWith(nanMessage));

  const r = basin('eigs', '--model', f.model, '--data', f.data);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /^basin: .+model\.json on .+data\.json: the loss at these parameters is NaN: the model's outputs are not finite \(NaN or Infinity: the forward pass overflows float32; the largest weight is 1\.0e\+38\)/);
  assert.ok(!r.stderr.includes('internal error'));
});

test('weights of 1e30: outputs are finite and the loss is log 3 as in float64, not 0', async () => {
  // Every weight 1e30: all three logits equal 33e30, so softmax is uniform and the cross-entropy
  // is ln 3 exactly. Computed as z - (m + log 3) it was 0 (m + log 3 rounds to m in float32).
  const f = spiralWithWeights(1e30);
  const p = await loadProblem({ model: f.model, data: f.data });
  const obj = p.objective();
  const l = obj.lossAt();
  assert.ok(Math.abs(l - Math.log(3)) <= 1e-6, `loss ${l}, expected ln 3 = ${Math.log(3)}`);
  assert.ok(Math.abs(obj.gradient().loss - Math.log(3)) <= 1e-6);
  obj.dispose();
});

test('a loss that overflows on finite outputs is told apart from outputs that do', async () => {
  // A linear model whose outputs are 1e20: finite, but their square overflows float32.
  const file = writeModule('big-outputs.basin.ts', [
    ...HEAD,
    'export default {',
    "  model: (tf: any) => tf.sequential({ layers: [tf.layers.dense({ inputShape: [2], units: 1, kernelInitializer: tf.initializers.constant({ value: 1e20 }) })] }),",
    '  data: () => ({ x: [[1, 0], [0, 1]], y: [0, 1] }),',
    "  loss: 'meanSquaredError',",
    '};',
  ]);
  cliFails(
    file,
    "the loss at these parameters is Infinity: the model's outputs are finite (up to 1.0e+20 in magnitude) but meanSquaredError is not on them (float32 overflow); nothing to analyse (check the weights and the data scale)",
    ['eigs'],
  );
});
