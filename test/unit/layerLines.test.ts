/**
 * The per-layer values beside the code (src/extension/layerLines.ts): each layer of the model, by
 * the name the model IR gives it, goes to the line of the call that made it, whatever other layers
 * sit between; a layer that cannot be placed gets no line. The layer names are the real ones: each
 * module is written to a temp dir and loaded as the engine loads it (TF.js names unnamed layers
 * 'dense_Dense<uid>' with a process-wide uid, so the names depend on what was loaded before).
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { autoNamedClass, layerCalls, matchLayerLines } from '../../src/extension/layerLines';
import { initBackend } from '../../src/engine/backend';
import { loadProblem } from '../../src/engine/problem';

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'basin-layerlines-'));

/** The module's parameterized layers, in model order, as a training run's layerSharpness names them. */
async function layerNames(source: string, file: string): Promise<string[]> {
  const p = path.join(TMP, file);
  fs.writeFileSync(p, source);
  const problem = await loadProblem({ experiment: p });
  return [...new Set(problem.ir.params.map((q) => q.layer))];
}

/** The line numbers (1-based, as an editor shows them) of each layer, as [name, line]. */
function lines(text: string, layers: string[]): [string, number][] {
  const m = matchLayerLines(text, layers);
  return layers.filter((l) => m.has(l)).map((l) => [l, (m.get(l) as number) + 1]);
}

const DATA_IMAGES = `
  data(tf: any) {
    const n = 4;
    const x = tf.tensor4d(Array.from({ length: n * 8 * 8 }, (_, i) => Math.sin(i)), [n, 8, 8, 1]);
    const y = tf.oneHot(tf.tensor1d([0, 1, 2, 0], 'int32'), 3).toFloat();
    return { x, y };
  },
  loss: 'categoricalCrossentropy' as const,
};
`;

// A CNN: conv2d (unnamed, multi-line), batchNormalization, maxPooling2d, flatten and dropout between
// dense layers, one dense named over several lines, the rest unnamed; a comment and a string that
// mention layers are not calls.
const CNN = `export default {
  model(tf: any) {
    // tf.layers.dense({ units: 99 }) in a comment is not a layer
    const note = 'tf.layers.conv2d( in a string is not one either';
    void note;
    return tf.sequential({
      layers: [
        tf.layers.conv2d({
          inputShape: [8, 8, 1],
          filters: 2,
          kernelSize: 3,
          activation: 'relu',
        }),
        tf.layers.batchNormalization(),
        tf.layers.maxPooling2d({ poolSize: 2 }),
        tf.layers.flatten(),
        tf.layers.dropout({ rate: 0.1 }),
        tf.layers.dense({
          units: 6,
          activation: 'relu',
          name: 'hidden',
        }),
        tf.layers.dropout({ rate: 0.1 }),
        tf.layers.dense({ units: 5, activation: 'relu' }),
        tf.layers.dense({ units: 3, activation: 'softmax' }),
      ],
    });
  },${DATA_IMAGES}`;

let cnnNames: string[];
let cnnAgain: string[];

before(async () => {
  await initBackend('wasm');
  cnnNames = await layerNames(CNN, 'cnn.basin.ts');
  // Loaded a second time, TF.js numbers the unnamed layers on from the first load.
  cnnAgain = await layerNames(CNN, 'cnn2.basin.ts');
});

test('TF.js names unnamed layers with a process-wide count: the names are not positions', () => {
  assert.equal(cnnNames.length, 5);
  assert.equal(cnnNames[2], 'hidden');
  assert.deepEqual(cnnNames.map(autoNamedClass), ['Conv2D', 'BatchNormalization', undefined, 'Dense', 'Dense']);
  assert.notDeepEqual(cnnAgain, cnnNames, 'a second load gives other names');
  assert.deepEqual(cnnAgain.map(autoNamedClass), cnnNames.map(autoNamedClass));
});

test('each layer goes to the line of its call: named by name, unnamed as the n-th call of its kind', () => {
  const expected = (names: string[]): [string, number][] => [
    [names[0], 8], // tf.layers.conv2d({   (the call's first line)
    [names[1], 14], // batchNormalization
    [names[2], 18], // dense named 'hidden' on line 21
    [names[3], 24], // the first unnamed dense
    [names[4], 25], // the second
  ];
  assert.deepEqual(lines(CNN, cnnNames), expected(cnnNames));
  assert.deepEqual(lines(CNN, cnnAgain), expected(cnnAgain));
});

test('the calls in source order, with their names; comments and strings are not calls', () => {
  assert.deepEqual(
    layerCalls(CNN).map((c) => [c.factory, c.line + 1, c.name ?? '']),
    [
      ['conv2d', 8, ''],
      ['batchNormalization', 14, ''],
      ['maxPooling2d', 15, ''],
      ['flatten', 16, ''],
      ['dropout', 17, ''],
      ['dense', 18, 'hidden'],
      ['dropout', 23, ''],
      ['dense', 24, ''],
      ['dense', 25, ''],
    ],
  );
});

test('a name in a nested object or another call is not the layer\'s; double quotes and templates are', () => {
  const text = [
    'const { layers } = tf;',
    'layers.dense({ units: 2, kernelInitializer: tf.initializers.glorotUniform({ name: "inner" }) });',
    'layers.dense({ units: 2, config: { name: "nested" } });',
    'layers.conv2d({ filters: 1, kernelSize: 1, name: "c1" });',
    'layers.conv2d({ filters: 1, kernelSize: 1, name: `c2` });',
    'layers.dense({ units: 2, layerName: "not-the-key" });',
  ].join('\n');
  assert.deepEqual(
    layerCalls(text).map((c) => [c.factory, c.line + 1, c.name ?? (c.dynamicName ? '?' : '')]),
    [
      ['dense', 2, ''],
      ['dense', 3, ''],
      ['conv2d', 4, 'c1'],
      ['conv2d', 5, 'c2'],
      ['dense', 6, ''],
    ],
  );
  assert.deepEqual(lines(text, ['dense_Dense7', 'dense_Dense8', 'c1', 'c2', 'dense_Dense9']), [
    ['dense_Dense7', 2],
    ['dense_Dense8', 3],
    ['c1', 4],
    ['c2', 5],
    ['dense_Dense9', 6],
  ]);
});

test('what cannot be placed gets no line rather than a wrong one', () => {
  // A layer made in a loop: two dense layers, one call.
  const loop = [
    'const ls = [];',
    'for (let i = 0; i < 2; i++) ls.push(tf.layers.dense({ units: 4 }));',
    'ls.push(tf.layers.conv2d({ filters: 1, kernelSize: 1 }));',
  ].join('\n');
  assert.deepEqual(lines(loop, ['dense_Dense1', 'dense_Dense2', 'conv2d_Conv2D1']), [['conv2d_Conv2D1', 3]]);
  // A computed name: that factory's unnamed layers are uncertain (the name may be undefined when it runs).
  const computed = [
    "tf.layers.dense({ units: 4, name: prefix + 'a' });",
    'tf.layers.dense({ units: 4 });',
    "tf.layers.dense({ units: 2, name: 'out' });",
    'tf.layers.batchNormalization();',
  ].join('\n');
  assert.deepEqual(lines(computed, ['pa', 'dense_Dense3', 'out', 'batch_normalization_BatchNormalization2']), [
    ['out', 3],
    ['batch_normalization_BatchNormalization2', 4],
  ]);
  // A name the code does not contain, a name given twice, a layer kind the code never calls.
  const twice = ["tf.layers.dense({ units: 4, name: 'h' });", "tf.layers.dense({ units: 4, name: 'h' });"].join('\n');
  assert.deepEqual(lines(twice, ['h', 'elsewhere', 'conv2d_Conv2D1']), []);
  // A user's name that looks like TF.js's but is in the code is matched by name.
  const looks = ["tf.layers.dense({ units: 4 });", "tf.layers.dense({ units: 4, name: 'dense_Dense1' });"].join('\n');
  assert.deepEqual(lines(looks, ['dense_Dense5', 'dense_Dense1']), [
    ['dense_Dense5', 1],
    ['dense_Dense1', 2],
  ]);
});

test('auto names: the class from TF.js\'s snake-case prefix, user names are not', () => {
  assert.equal(autoNamedClass('max_pooling2d_MaxPooling2D12'), 'MaxPooling2D');
  assert.equal(autoNamedClass('batch_normalization_BatchNormalization3'), 'BatchNormalization');
  assert.equal(autoNamedClass('conv2d_Conv2D1'), 'Conv2D');
  assert.equal(autoNamedClass('hidden'), undefined);
  assert.equal(autoNamedClass('my_Dense1'), undefined);
  assert.equal(autoNamedClass('dense_1'), undefined);
});
