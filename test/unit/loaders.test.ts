// Loading models, data and experiment modules: every failure is a BasinError whose message names
// the file and says what is wrong, and what loads is right (CSV and .npy features and labels,
// class indices one-hot encoded, the example's loss equal to an independent float64 forward pass).
// Each test builds its inputs in a fresh temporary folder from examples/spiral.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend } from '../../src/engine/backend';
import { BasinError } from '../../src/engine/errors';
import { loadDataFile, readNpy } from '../../src/engine/data';
import { loadLayersModelFile, readModelArtifacts } from '../../src/engine/model/io';
import { loadExperiment } from '../../src/engine/model/experiment';
import { loadProblem, type Problem } from '../../src/engine/problem';

// The bundle runs from .test-dist/unit/.
const EXAMPLE = path.join(__dirname, '../../examples/spiral');

interface LayerJson {
  class_name: string;
  config: Record<string, unknown>;
}
interface WeightJson {
  name: string;
  shape: number[];
  dtype: string;
}
interface ModelJson {
  format?: string;
  modelTopology?: { class_name: string; config: { name: string; layers: LayerJson[] } };
  weightsManifest?: { paths: string[]; weights: WeightJson[] }[];
  [key: string]: unknown;
}
interface DataJson {
  x: unknown[];
  y: unknown[];
}

const exampleModel = (): ModelJson => JSON.parse(fs.readFileSync(path.join(EXAMPLE, 'model.json'), 'utf8')) as ModelJson;
const exampleData = (): { x: number[][]; y: number[][] } => JSON.parse(fs.readFileSync(path.join(EXAMPLE, 'data.json'), 'utf8')) as { x: number[][]; y: number[][] };

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'basin-loaders-'));
}

interface Fixture {
  dir: string;
  model: string;
  data: string;
  weights: string;
}

/**
 * A copy of the example in a fresh folder: model.json (edited by `edit`), weights.bin, data.json
 * (replaced by `data` when given).
 */
function fixture(opts: { edit?: (m: ModelJson) => void; data?: DataJson } = {}): Fixture {
  const dir = tmpDir();
  const m = exampleModel();
  opts.edit?.(m);
  const model = path.join(dir, 'model.json');
  const weights = path.join(dir, 'weights.bin');
  const data = path.join(dir, 'data.json');
  fs.writeFileSync(model, JSON.stringify(m));
  fs.copyFileSync(path.join(EXAMPLE, 'weights.bin'), weights);
  if (opts.data) fs.writeFileSync(data, JSON.stringify(opts.data));
  else fs.copyFileSync(path.join(EXAMPLE, 'data.json'), data);
  return { dir, model, data, weights };
}

/** Runs `action` and checks it fails with a BasinError naming `file` and matching every pattern. */
async function expectBasinError(action: () => unknown, file: string, ...patterns: RegExp[]): Promise<BasinError> {
  let caught: unknown;
  try {
    await action();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught !== undefined, 'expected an error, but none was thrown');
  assert.ok(caught instanceof BasinError, `expected a BasinError, got ${caught instanceof Error ? `${caught.name}: ${caught.message}` : String(caught)}`);
  assert.ok(caught.message.includes(file), `the message does not name ${file}: ${caught.message}`);
  for (const p of patterns) assert.match(caught.message, p);
  return caught;
}

/** Class index of each one-hot row. */
function classes(y: number[][]): number[] {
  return y.map((row) => row.indexOf(Math.max(...row)));
}

function lossOf(p: Problem): number {
  const obj = p.objective();
  try {
    return obj.lossAt();
  } finally {
    obj.dispose();
  }
}

/** A minimal .npy (format 1.0, C order) writer. */
function npy(descr: '<f4' | '<f8', shape: number[], values: ArrayLike<number>): Buffer {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  // magic (6) + version (2) + length (2) + header + '\n', padded to a multiple of 64.
  const pad = (64 - ((10 + header.length + 1) % 64)) % 64;
  header = `${header}${' '.repeat(pad)}\n`;
  const size = descr === '<f4' ? 4 : 8;
  const body = Buffer.alloc(values.length * size);
  for (let i = 0; i < values.length; i++) {
    if (size === 4) body.writeFloatLE(values[i], i * 4);
    else body.writeDoubleLE(values[i], i * 8);
  }
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  return Buffer.concat([head, Buffer.from(header, 'latin1'), body]);
}

before(async () => {
  await initBackend('wasm');
});

// ---------------------------------------------------------------------------------------------
// model.json and weight shards
// ---------------------------------------------------------------------------------------------

test('model.json missing', async () => {
  const file = path.join(tmpDir(), 'model.json');
  await expectBasinError(() => loadLayersModelFile(file), file, /file not found/);
  const f = fixture();
  await expectBasinError(() => loadProblem({ model: file, data: f.data }), file, /file not found/);
});

test('model.json that is not JSON, or not a JSON object', async () => {
  const dir = tmpDir();
  const file = path.join(dir, 'model.json');
  fs.writeFileSync(file, '{"modelTopology": {');
  await expectBasinError(() => readModelArtifacts(file), file, /not valid JSON/);
  fs.writeFileSync(file, '[1, 2, 3]');
  await expectBasinError(() => readModelArtifacts(file), file, /not valid JSON/, /not a JSON object/);
});

test('JSON without modelTopology', async () => {
  const f = fixture({ edit: (m) => delete m.modelTopology });
  await expectBasinError(() => loadLayersModelFile(f.model), f.model, /no 'modelTopology'/, /not a TF\.js layers model/);
});

test('a graph model is recognised as one', async () => {
  const dir = tmpDir();
  const file = path.join(dir, 'model.json');
  // What tensorflowjs_converter writes for a graph model: a GraphDef as the topology.
  const graph = {
    format: 'graph-model',
    generatedBy: '2.15.0',
    convertedBy: 'TensorFlow.js Converter v4.22.0',
    modelTopology: {
      node: [
        { name: 'x', op: 'Placeholder', attr: { dtype: { type: 'DT_FLOAT' } } },
        { name: 'Identity', op: 'Identity', input: ['x'] },
      ],
      library: {},
      versions: { producer: 1645 },
    },
    weightsManifest: [{ paths: ['group1-shard1of1.bin'], weights: [] }],
  };
  fs.writeFileSync(file, JSON.stringify(graph));
  await expectBasinError(() => loadLayersModelFile(file), file, /graph model/, /layers model/);
  // The same without a topology at all.
  fs.writeFileSync(file, JSON.stringify({ ...graph, modelTopology: undefined }));
  await expectBasinError(() => loadLayersModelFile(file), file, /graph model/);
});

test('weightsManifest missing', async () => {
  const f = fixture({ edit: (m) => delete m.weightsManifest });
  await expectBasinError(() => loadLayersModelFile(f.model), f.model, /no 'weightsManifest'/);
});

test('a weight shard missing: the message names the shard', async () => {
  const f = fixture();
  fs.unlinkSync(f.weights);
  await expectBasinError(() => loadLayersModelFile(f.model), f.model, /weight shard 'weights\.bin' is missing/);
  const g = fixture({ edit: (m) => (m.weightsManifest![0].paths = ['weights.bin', 'group1-shard2of2.bin']) });
  await expectBasinError(() => loadLayersModelFile(g.model), g.model, /weight shard 'group1-shard2of2\.bin' is missing/);
});

test('a truncated shard: the message gives the bytes held and needed', async () => {
  const f = fixture();
  fs.writeFileSync(f.weights, fs.readFileSync(f.weights).subarray(0, 1000));
  // 1251 float32 parameters.
  await expectBasinError(() => loadLayersModelFile(f.model), f.model, /'weights\.bin'/, /hold 1000 bytes but the manifest needs 5004/, /truncated/);
});

test('unsupported layer classes are named', async () => {
  // Classes TF.js knows but Basin does not: LSTM and SimpleRNN cannot even build on 2-D input.
  for (const cls of ['LSTM', 'SimpleRNN']) {
    const f = fixture({ edit: (m) => (m.modelTopology!.config.layers[1].class_name = cls) });
    await expectBasinError(() => loadLayersModelFile(f.model), f.model, new RegExp(`'dense_Dense2' \\(${cls}\\) is not supported`), /supported layers: Dense/);
  }
  // One that builds and is rejected by the lowering.
  const lrelu = fixture({
    edit: (m) => m.modelTopology!.config.layers.splice(1, 0, { class_name: 'LeakyReLU', config: { name: 'my_leaky', alpha: 0.2 } }),
  });
  await expectBasinError(() => loadProblem({ model: lrelu.model, data: lrelu.data }), lrelu.model, /layer 'my_leaky' \(LeakyReLU\) is not supported/);
  // One TF.js does not know at all.
  const custom = fixture({ edit: (m) => (m.modelTopology!.config.layers[1].class_name = 'MyAttention') });
  await expectBasinError(() => loadLayersModelFile(custom.model), custom.model, /layer 'dense_Dense2' \(MyAttention\) is not supported/);
});

test('unsupported activations are named', async () => {
  for (const [act, shown] of [['swish', 'swish'], ['hard_sigmoid', 'hardSigmoid'], ['gelu', 'gelu']]) {
    const f = fixture({ edit: (m) => (m.modelTopology!.config.layers[1].config.activation = act) });
    await expectBasinError(
      () => loadProblem({ model: f.model, data: f.data }),
      f.model,
      new RegExp(`layer 'dense_Dense2' \\(Dense\\) uses activation '${shown}', which is not supported`),
    );
  }
  const f = fixture({ edit: (m) => (m.modelTopology!.config.layers[0].config.activation = 'no_such_activation') });
  await expectBasinError(() => loadLayersModelFile(f.model), f.model, /unsupported activation 'noSuchActivation'/);
});

// ---------------------------------------------------------------------------------------------
// Data files
// ---------------------------------------------------------------------------------------------

test('data file missing', async () => {
  const f = fixture();
  const missing = path.join(f.dir, 'nope.json');
  await expectBasinError(() => loadDataFile(missing), missing, /data file not found/);
  await expectBasinError(() => loadProblem({ model: f.model, data: missing }), missing, /data file not found/);
  const npyMissing = path.join(f.dir, 'x.npy');
  await expectBasinError(() => loadDataFile(`${npyMissing},${path.join(f.dir, 'y.npy')}`), npyMissing, /not found/);
});

test('data that is not JSON, or JSON without y', async () => {
  const dir = tmpDir();
  const file = path.join(dir, 'data.json');
  fs.writeFileSync(file, '{"x": [[1, 2]');
  await expectBasinError(() => loadDataFile(file), file, /cannot read data/);
  fs.writeFileSync(file, JSON.stringify({ x: exampleData().x }));
  await expectBasinError(() => loadDataFile(file), file, /needs 'x' and 'y'/);
});

test('ragged x', async () => {
  const dir = tmpDir();
  const file = path.join(dir, 'data.json');
  fs.writeFileSync(file, JSON.stringify({ x: [[0, 1], [2, 3, 4], [5, 6]], y: [0, 1, 2] }));
  await expectBasinError(() => loadDataFile(file), file, /'x\[1\]' has length 3 but 2 was expected \(ragged array\)/);
  fs.writeFileSync(file, JSON.stringify({ x: [[0, 1], [2]], y: [0, 1] }));
  await expectBasinError(() => loadDataFile(file), file, /'x\[1\]' has length 1 but 2 was expected/);
});

test('a non-number in x', async () => {
  const dir = tmpDir();
  const file = path.join(dir, 'data.json');
  fs.writeFileSync(file, JSON.stringify({ x: [[0, 1], [2, 3], [4, 'a']], y: [0, 1, 2] }));
  await expectBasinError(() => loadDataFile(file), file, /'x\[2\]\[1\]' is "a", not a number/);
  fs.writeFileSync(file, JSON.stringify({ x: [[0, 1], [null, 3]], y: [0, 1] }));
  await expectBasinError(() => loadDataFile(file), file, /'x\[1\]\[0\]' is null, not a number/);
});

test('NaN and Infinity in the data', async () => {
  const f = fixture();
  // CSV: neither 'nan' nor 'Infinity' is a number (only plain decimals are).
  const csv = path.join(f.dir, 'data.csv');
  fs.writeFileSync(csv, 'x1,x2,label\n0.1,0.2,0\nnan,0.3,1\n');
  await expectBasinError(() => loadDataFile(csv), csv, /line 3, column 'x1': 'nan' is not a number/);
  fs.writeFileSync(csv, 'x1,x2,label\n0.1,0.2,0\n0.5,Infinity,1\n');
  await expectBasinError(() => loadProblem({ model: f.model, data: csv }), csv, /line 3, column 'x2': 'Infinity' is not a number/);
  // .npy holds NaN as such.
  const d = exampleData();
  const x = d.x.flat();
  x[2 * 7 + 1] = NaN;
  const g = fixture();
  const xFile = path.join(g.dir, 'x.npy');
  const yFile = path.join(g.dir, 'y.npy');
  fs.writeFileSync(xFile, npy('<f4', [300, 2], x));
  fs.writeFileSync(yFile, npy('<f8', [300], classes(d.y)));
  await expectBasinError(() => loadProblem({ model: g.model, data: `${xFile},${yFile}` }), xFile, /training inputs contain NaN \(sample 7\)/);
  const y = d.y.flat();
  y[3 * 11] = NaN;
  const h = fixture();
  fs.writeFileSync(xFile, npy('<f4', [300, 2], d.x.flat()));
  fs.writeFileSync(yFile, npy('<f8', [300, 3], y));
  await expectBasinError(() => loadProblem({ model: h.model, data: `${xFile},${yFile}` }), xFile, /training labels contain NaN \(sample 11\)/);
});

test('the wrong number of features', async () => {
  const d = exampleData();
  const f = fixture({ data: { x: d.x.map((r) => [...r, 0]), y: d.y } });
  await expectBasinError(() => loadProblem({ model: f.model, data: f.data }), f.data, /inputs have shape \[3\] per sample but the model takes \[2\]/);
});

test('as many labels as inputs', async () => {
  const d = exampleData();
  const f = fixture({ data: { x: d.x, y: d.y.slice(1) } });
  await expectBasinError(() => loadProblem({ model: f.model, data: f.data }), f.data, /300 inputs but 299 labels/);
});

test('labels with the wrong width', async () => {
  const d = exampleData();
  const f = fixture({ data: { x: d.x, y: d.y.map((r) => [...r, 0]) } });
  await expectBasinError(() => loadProblem({ model: f.model, data: f.data }), f.data, /labels have shape \[4\] per sample but the model outputs \[3\]/);
});

test('categorical labels outside [0, 1] or not summing to 1', async () => {
  const d = exampleData();
  const out = d.y.map((r) => r.slice());
  out[4] = [2, -1, 0];
  const f = fixture({ data: { x: d.x, y: out } });
  await expectBasinError(() => loadProblem({ model: f.model, data: f.data }), f.data, /label value 2 \(sample 4\) is outside \[0, 1\]/, /categoricalCrossentropy/);
  const sums = d.y.map((r) => r.slice());
  sums[5] = [0.5, 0.25, 0.125];
  const g = fixture({ data: { x: d.x, y: sums } });
  await expectBasinError(() => loadProblem({ model: g.model, data: g.data }), g.data, /labels of sample 5 sum to 0\.875, not 1/);
});

test('class indices in one column are one-hot encoded', async () => {
  const d = exampleData();
  const idx = classes(d.y);
  const oneHot = Float32Array.from(d.y.flat());
  for (const y of [idx, idx.map((c) => [c])]) {
    const f = fixture({ data: { x: d.x, y } });
    const p = await loadProblem({ model: f.model, data: f.data });
    assert.deepEqual(p.train.yShape, [300, 3]);
    assert.deepEqual(p.train.y, oneHot);
    assert.equal(p.lossName, 'categoricalCrossentropy');
  }
  // The loss is that of the one-hot data.
  const f = fixture({ data: { x: d.x, y: idx } });
  const g = fixture();
  const a = lossOf(await loadProblem({ model: f.model, data: f.data }));
  const b = lossOf(await loadProblem({ model: g.model, data: g.data }));
  assert.ok(Math.abs(a - b) <= 1e-6 * Math.abs(b), `${a} vs ${b}`);
});

test('class indices out of range, or not integers', async () => {
  const d = exampleData();
  const idx = classes(d.y);
  idx[7] = 3;
  const f = fixture({ data: { x: d.x, y: idx } });
  await expectBasinError(() => loadProblem({ model: f.model, data: f.data }), f.data, /label 7 is 3: class indices must be integers in 0\.\.2 for 3 outputs/);
  idx[7] = 1.5;
  const g = fixture({ data: { x: d.x, y: idx } });
  await expectBasinError(() => loadProblem({ model: g.model, data: g.data }), g.data, /label 7 is 1\.5/);
  idx[7] = -1;
  const h = fixture({ data: { x: d.x, y: idx } });
  await expectBasinError(() => loadProblem({ model: h.model, data: h.data }), h.data, /label 7 is -1/);
});

test('CSV: a --labels column that is not in the header', async () => {
  const dir = tmpDir();
  const csv = path.join(dir, 'data.csv');
  fs.writeFileSync(csv, 'x1,x2,label\n0.1,0.2,0\n0.3,0.4,1\n');
  await expectBasinError(() => loadDataFile(csv, { labels: ['cls'] }), csv, /label column 'cls' is not in the header \(x1, x2, label\)/);
  fs.writeFileSync(csv, 'x1,x2,label\n');
  await expectBasinError(() => loadDataFile(csv), csv, /header line and at least one row/);
  fs.writeFileSync(csv, 'x1,x2,label\n0.1,0.2\n');
  await expectBasinError(() => loadDataFile(csv), csv, /line 2 has 2 fields, the header has 3/);
});

test('CSV: features and labels', async () => {
  const dir = tmpDir();
  const csv = path.join(dir, 'data.csv');
  // Default: the last column is the label.
  fs.writeFileSync(csv, 'x1,x2,label\r\n0.5,-1.25,2\r\n3,4e-1,0\r\n\r\n');
  let ds = loadDataFile(csv);
  assert.deepEqual(ds.train.xShape, [2, 2]);
  assert.deepEqual(ds.train.x, Float32Array.from([0.5, -1.25, 3, 0.4]));
  assert.deepEqual(ds.train.yShape, [2, 1]);
  assert.deepEqual(ds.train.y, Float32Array.from([2, 0]));
  assert.equal(ds.source, csv);
  // Label columns by name, anywhere; quoted header cells.
  fs.writeFileSync(csv, '"c0",x1,c1,"x 2",c2\n1,0.1,0,0.2,0\n0,0.3,0,0.4,1\n');
  ds = loadDataFile(csv, { labels: ['c0', 'c1', 'c2'] });
  assert.deepEqual(ds.train.x, Float32Array.from([0.1, 0.2, 0.3, 0.4]));
  assert.deepEqual(ds.train.y, Float32Array.from([1, 0, 0, 0, 0, 1]));
  assert.deepEqual(ds.train.yShape, [2, 3]);
  // The whole example as CSV gives the example's loss.
  const d = exampleData();
  const f = fixture();
  const big = path.join(f.dir, 'spiral.csv');
  fs.writeFileSync(big, ['a,b,cls', ...d.x.map((r, i) => `${r[0]},${r[1]},${classes(d.y)[i]}`)].join('\n'));
  const p = await loadProblem({ model: f.model, data: big, labels: ['cls'] });
  assert.deepEqual(p.train.y, Float32Array.from(d.y.flat()));
  const g = fixture();
  const ref = lossOf(await loadProblem({ model: g.model, data: g.data }));
  assert.ok(Math.abs(lossOf(p) - ref) <= 1e-6 * ref);
});

test('.npy: float32 inputs, float64 1-D labels', async () => {
  const d = exampleData();
  const f = fixture();
  const xFile = path.join(f.dir, 'x.npy');
  const yFile = path.join(f.dir, 'y.npy');
  fs.writeFileSync(xFile, npy('<f4', [300, 2], d.x.flat()));
  fs.writeFileSync(yFile, npy('<f8', [300], classes(d.y)));
  const x = readNpy(xFile);
  assert.deepEqual(x.shape, [300, 2]);
  assert.deepEqual(x.values, Float32Array.from(d.x.flat()));
  const y = readNpy(yFile);
  assert.deepEqual(y.shape, [300]);
  assert.deepEqual(Array.from(y.values), classes(d.y));
  const ds = loadDataFile(`${xFile},${yFile}`);
  assert.deepEqual(ds.train.yShape, [300, 1]);
  // y.npy is found beside x.npy when only x.npy is given.
  assert.deepEqual(loadDataFile(xFile).train.y, ds.train.y);
  const p = await loadProblem({ model: f.model, data: `${xFile},${yFile}` });
  assert.deepEqual(p.train.y, Float32Array.from(d.y.flat()));
  const g = fixture();
  const ref = lossOf(await loadProblem({ model: g.model, data: g.data }));
  assert.ok(Math.abs(lossOf(p) - ref) <= 1e-6 * ref);
  // float64 2-D values survive (rounded to float32).
  const f8 = path.join(f.dir, 'z.npy');
  fs.writeFileSync(f8, npy('<f8', [2, 3], [0.1, -2, 3.5, 1e-3, 0, 7]));
  assert.deepEqual(readNpy(f8), { values: Float32Array.from([0.1, -2, 3.5, 1e-3, 0, 7]), shape: [2, 3] });
  // Broken files.
  fs.writeFileSync(f8, npy('<f8', [2, 3], [1, 2, 3, 4, 5, 6]).subarray(0, 128 + 20));
  await expectBasinError(() => readNpy(f8), f8, /truncated/);
  fs.writeFileSync(f8, 'not numpy at all');
  await expectBasinError(() => readNpy(f8), f8, /not a \.npy file/);
  const alone = path.join(tmpDir(), 'features.npy');
  fs.writeFileSync(alone, npy('<f4', [1, 2], [0, 0]));
  await expectBasinError(() => loadDataFile(alone), alone, /give the labels too/);
});

// ---------------------------------------------------------------------------------------------
// Experiment modules
// ---------------------------------------------------------------------------------------------

function writeModule(source: string, name = 'experiment.ts'): string {
  const file = path.join(tmpDir(), name);
  fs.writeFileSync(file, source);
  return file;
}

test('an experiment module loads into a Problem', async () => {
  // A TypeScript module (type annotations, a relative import); a linear model with known weights:
  // predictions x1 + x2 = 3, 7, 1 against 0, 1, 2, so the mean squared error is 46 / 3.
  const file = writeModule(`
import { rows } from './rows';
interface Layers { dense(c: object): unknown }
interface Tf { sequential(c: object): unknown; layers: Layers; tensor2d(v: number[][]): unknown }
const units: number = 1;
export function model(tf: Tf) {
  return tf.sequential({ layers: [tf.layers.dense({ name: 'exp_linear', units, inputShape: [2], kernelInitializer: 'ones', biasInitializer: 'zeros' })] });
}
export function data(tf: Tf) {
  return { x: tf.tensor2d(rows), y: [[0], [1], [2]] };
}
export const loss = 'meanSquaredError';
`);
  fs.writeFileSync(path.join(path.dirname(file), 'rows.ts'), 'export const rows: number[][] = [[1, 2], [3, 4], [0, 1]];\n');
  const mod = loadExperiment(file);
  assert.equal(mod.loss, 'meanSquaredError');
  const p = await loadProblem({ experiment: file });
  assert.equal(p.lossName, 'meanSquaredError');
  assert.equal(p.ir.numParams, 3);
  assert.deepEqual(p.train.xShape, [3, 2]);
  assert.deepEqual(p.train.yShape, [3, 1]);
  const l = lossOf(p);
  assert.ok(Math.abs(l - 46 / 3) <= 1e-6 * (46 / 3), `loss ${l}, expected ${46 / 3}`);
  // A default export and a loss given by the caller.
  const def = writeModule(`
export default {
  model: (tf) => tf.sequential({ layers: [tf.layers.dense({ name: 'exp_linear2', units: 1, inputShape: [2], kernelInitializer: 'ones', biasInitializer: 'zeros' })] }),
  data: () => ({ x: [[1, 2], [3, 4], [0, 1]], y: [0, 1, 2] }),
};
`, 'experiment.js');
  const q = await loadProblem({ experiment: def, loss: 'mean_squared_error' });
  assert.equal(q.lossName, 'meanSquaredError');
  assert.ok(Math.abs(lossOf(q) - 46 / 3) <= 1e-6 * (46 / 3));
});

test('experiment modules that fail', async () => {
  const missing = path.join(tmpDir(), 'nope.ts');
  await expectBasinError(() => loadExperiment(missing), missing, /experiment module not found/);

  const broken = writeModule('export function model(tf) {\n  return tf.sequential({ layers: [ };\n}\n');
  await expectBasinError(() => loadExperiment(broken), broken, /does not compile: .+ \(line 2\)/);
  await expectBasinError(() => loadProblem({ experiment: broken }), broken, /does not compile/);

  const noModel = writeModule("export function data() { return { x: [[0, 0]], y: [0] }; }\nexport const loss = 'meanSquaredError';\n");
  await expectBasinError(() => loadExperiment(noModel), noModel, /must export model\(tf\)/);

  const noData = writeModule("export function model(tf) { return tf.sequential(); }\n");
  await expectBasinError(() => loadExperiment(noData), noData, /must export data\(tf\)/);

  const throws = writeModule("export function model() { throw new Error('out of coffee'); }\nexport function data() { return { x: [[0, 0]], y: [0] }; }\n");
  await expectBasinError(() => loadProblem({ experiment: throws }), throws, /model\(tf\) threw: out of coffee/);

  const notModel = writeModule('export function model() { return 42; }\nexport function data() { return { x: [[0, 0]], y: [0] }; }\n');
  await expectBasinError(() => loadProblem({ experiment: notModel }), notModel, /did not return a tf\.LayersModel/);

  const badLoss = writeModule("export function model(tf) { return tf.sequential(); }\nexport function data() { return { x: [[0, 0]], y: [0] }; }\nexport const loss = 'hinge';\n");
  await expectBasinError(() => loadExperiment(badLoss), badLoss, /loss 'hinge' is not one of/);

  const crash = writeModule("throw new Error('at import');\nexport function model() {}\n");
  await expectBasinError(() => loadExperiment(crash), crash, /failed while loading: at import/);
});

// ---------------------------------------------------------------------------------------------
// The example's loss against an independent float64 forward pass
// ---------------------------------------------------------------------------------------------

test('the example loss equals a float64 forward pass of its weights', async () => {
  const f = fixture();
  const p = await loadProblem({ model: f.model, data: f.data });
  assert.equal(p.ir.numParams, 1251);
  assert.equal(p.lossName, 'categoricalCrossentropy');
  const got = lossOf(p);

  // Weights in manifest order, float32 little-endian.
  const m = exampleModel();
  const bytes = fs.readFileSync(path.join(EXAMPLE, 'weights.bin'));
  const w: Float64Array[] = [];
  let off = 0;
  for (const spec of m.weightsManifest![0].weights) {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    const arr = new Float64Array(n);
    for (let i = 0; i < n; i++) arr[i] = bytes.readFloatLE(off + 4 * i);
    w.push(arr);
    off += 4 * n;
  }
  assert.equal(off, bytes.length);
  const dense = (x: Float64Array, kernel: Float64Array, bias: Float64Array, units: number): Float64Array => {
    const out = Float64Array.from(bias);
    for (let i = 0; i < x.length; i++) for (let j = 0; j < units; j++) out[j] += x[i] * kernel[i * units + j];
    return out;
  };
  const d = exampleData();
  let total = 0;
  for (let s = 0; s < d.x.length; s++) {
    const h1 = dense(Float64Array.from(d.x[s]), w[0], w[1], 32).map(Math.tanh);
    const h2 = dense(h1, w[2], w[3], 32).map(Math.tanh);
    const z = dense(h2, w[4], w[5], 3);
    const zmax = Math.max(...z);
    const lse = zmax + Math.log(z.reduce((a, v) => a + Math.exp(v - zmax), 0));
    for (let j = 0; j < 3; j++) total -= d.y[s][j] * (z[j] - lse);
  }
  const want = total / d.x.length;
  assert.ok(Math.abs(got - want) <= 1e-5 * Math.abs(want), `loss ${got}, float64 reference ${want}`);
});

test('the same model.json loads twice in one process', async () => {
  // TF.js renames the variables of a second model with the same layer names ('dense/kernel_1').
  const f = fixture();
  const a = lossOf(await loadProblem({ model: f.model, data: f.data }));
  const b = lossOf(await loadProblem({ model: f.model, data: f.data }));
  assert.equal(a, b);
  const c = lossOf(await loadProblem({ model: path.join(EXAMPLE, 'model.json'), data: path.join(EXAMPLE, 'data.json') }));
  assert.equal(a, c);
});
