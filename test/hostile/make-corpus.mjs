#!/usr/bin/env node
// Writes Basin's corpus of hostile and broken inputs (test/hostile/cases.tsv names what each must
// produce) into a folder: `node test/hostile/make-corpus.mjs DIR` (default: test/hostile/corpus).
// Everything derives from examples/spiral, so the corpus is small and deterministic. Special files
// that git cannot hold (FIFOs, links to devices, unreadable files) are made only with --special,
// which the test passes when it regenerates the corpus in a temporary folder.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const args = process.argv.slice(2);
const special = args.includes('--special');
const out = path.resolve(args.find((a) => !a.startsWith('--')) ?? path.join(here, 'corpus'));

const spiral = path.join(root, 'examples', 'spiral');
const baseModel = JSON.parse(fs.readFileSync(path.join(spiral, 'model.json'), 'utf8'));
const baseWeights = fs.readFileSync(path.join(spiral, 'weights.bin'));
const baseData = JSON.parse(fs.readFileSync(path.join(spiral, 'data.json'), 'utf8'));

fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(out, { recursive: true });
const write = (rel, content) => {
  const f = path.join(out, rel);
  fs.mkdirSync(path.dirname(f), { recursive: true });
  fs.writeFileSync(f, content);
};
const clone = (o) => JSON.parse(JSON.stringify(o));
/** A model folder: model.json (edited by `edit`) and, unless `weights` is null, its shard. */
const model = (name, edit = () => {}, weights = baseWeights) => {
  const m = clone(baseModel);
  edit(m);
  write(`${name}/model.json`, typeof m === 'string' ? m : JSON.stringify(m));
  if (weights) write(`${name}/${m.weightsManifest?.[0]?.paths?.[0] ?? 'weights.bin'}`.replace(/\.\.\//g, ''), weights);
};
const shards = (m, paths) => (m.weightsManifest[0].paths = paths);
const layers = (m) => m.modelTopology.config.layers;

// ---- model files ---------------------------------------------------------------------------
model('ok'); // the base model, for data and option cases
write('outside.bin', baseWeights); // a file outside every model folder, the right size
model('traversal', (m) => shards(m, ['../outside.bin']), null);
model('absolute', (m) => shards(m, ['/etc/passwd']), null);
model('short-shard', () => {}, baseWeights.subarray(0, baseWeights.length - 1));
model('long-shard', () => {}, Buffer.concat([baseWeights, Buffer.from([0])]));
model('missing-shard', () => {}, null);
model('huge-manifest', (m) => (m.weightsManifest[0].weights[0].shape = [1000000000, 1000]));
model('negative-shape', (m) => (m.weightsManifest[0].weights[0].shape = [-2, 32]));
model('string-shape', (m) => (m.weightsManifest[0].weights[0].shape = ['2', 32]));
model('bad-dtype', (m) => (m.weightsManifest[0].weights[0].dtype = 'complex64'));
model('huge-dense', (m) => (layers(m)[1].config.units = 450000000));
model('unsupported-layer', (m) => (layers(m)[1].class_name = 'LSTM'));
model('no-topology', (m) => delete m.modelTopology);
model('no-manifest', (m) => delete m.weightsManifest);
model('manifest-object', (m) => (m.weightsManifest = { paths: 'weights.bin' }));
model('graph-model', (m) => ((m.format = 'graph-model'), (m.modelTopology = { node: [], versions: {} })));
model('nan-units', (m) => (layers(m)[1].config.units = 'NaN'));
write('not-json/model.json', '{"modelTopology": ');
write('array-json/model.json', '[1, 2, 3]');
write('empty/model.json', '');
write('binary/model.json', Buffer.from(Array.from({ length: 256 }, (_, i) => (i * 37) % 256)));
write('deep/model.json', `${'['.repeat(100000)}${']'.repeat(100000)}`);
// Weights of 1e38: the forward pass overflows float32 (float64 gives a finite loss).
{
  const w = new Float32Array(baseWeights.buffer.slice(baseWeights.byteOffset, baseWeights.byteOffset + baseWeights.byteLength));
  const big = Float32Array.from(w, (v) => (v === 0 ? 0 : Math.sign(v) * 1e38));
  model('overflow', () => {}, Buffer.from(big.buffer));
}

// ---- data files ----------------------------------------------------------------------------
write('data/ok.json', JSON.stringify(baseData));
write('data/bom.json', `\ufeff${JSON.stringify(baseData)}`);
write('data/deep.json', `{"x": ${'['.repeat(100000)}${']'.repeat(100000)}, "y": [[1]]}`);
write('data/mismatch.json', JSON.stringify({ x: baseData.x, y: baseData.y.slice(1) }));
write('data/null-label.json', JSON.stringify({ x: baseData.x.slice(0, 3), y: [[1, 0, 0], null, [0, 1, 0]] }));
write('data/empty-x.json', JSON.stringify({ x: [], y: [] }));
write('data/string-cell.json', JSON.stringify({ x: [[0, 'a']], y: [[1, 0, 0]] }));
write('data/ragged.json', JSON.stringify({ x: [[0, 1], [2]], y: [[1, 0, 0], [0, 1, 0]] }));
write('data/no-y.json', JSON.stringify({ x: baseData.x }));
const csvRows = baseData.x.map((r, i) => [...r, baseData.y[i].indexOf(1)]);
write('data/ok.csv', `a,b,label\n${csvRows.map((r) => r.join(',')).join('\n')}\n`);
write('data/bom.csv', `\ufeffa,b,c0,c1,c2\n${baseData.x.map((r, i) => [...r, ...baseData.y[i]].join(',')).join('\n')}\n`);
write('data/numeric-first-row.csv', `${csvRows.map((r) => r.join(',')).join('\n')}\n`);
write('data/hex.csv', `a,b,label\n0.1,0x1A,1\n0.2,0.3,0\n`);
write('data/empty-cell.csv', `a,b,label\n0.1,,1\n0.2,0.3,0\n`);
write('data/ragged.csv', `a,b,label\n0.1,0.2,1\n0.2,0.3\n`);
write('data/infinity.csv', `a,b,label\n0.1,Infinity,1\n0.2,0.3,0\n`);
write('data/no-label-column.csv', `a,b,label\n0.1,0.2,1\n`);
/** A .npy file: magic, version 1.0, header dict, data. */
const npy = (descr, shape, data, order = 'False') => {
  let header = `{'descr': '${descr}', 'fortran_order': ${order}, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const pad = 64 - ((10 + header.length + 1) % 64);
  header = `${header}${' '.repeat(pad % 64)}\n`;
  const pre = Buffer.alloc(10);
  Buffer.from('\x93NUMPY', 'latin1').copy(pre);
  pre[6] = 1;
  pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  return Buffer.concat([pre, Buffer.from(header, 'latin1'), data]);
};
const f32 = (a) => Buffer.from(Float32Array.from(a).buffer);
write('data/y.npy', npy('<f4', [2, 3], f32([1, 0, 0, 0, 1, 0])));
write('data/x.npy', npy('<f4', [2, 2], f32([0.1, 0.2, 0.3, 0.4])));
write('data/negative-shape.npy', npy('<f4', [-2, 2], f32([0.1, 0.2, 0.3, 0.4])));
write('data/huge-shape.npy', npy('<f4', [1000000000, 1000], f32([0.1, 0.2, 0.3, 0.4])));
write('data/truncated.npy', npy('<f4', [2, 2], f32([0.1, 0.2, 0.3])));
write('data/bad-magic.npy', Buffer.concat([Buffer.from('NOTNUMPY!!'), f32([1, 2])]));
write('data/bad-header.npy', npy('<f4', [2, 2], f32([0.1, 0.2, 0.3, 0.4])).fill(0x28, 20, 30));
write('data/object.npy', npy('|O', [2, 2], Buffer.alloc(32)));

// ---- experiment modules --------------------------------------------------------------------
const MODEL = `model(tf) { return tf.sequential({ layers: [tf.layers.dense({ inputShape: [2], units: 3, activation: 'softmax' })] }); }`;
const DATA = `data(tf) { return { x: [[0, 1], [1, 0], [1, 1]], y: [[1, 0, 0], [0, 1, 0], [0, 0, 1]] }; }`;
const mod = (name, body) => write(`modules/${name}.basin.ts`, `// ${name}: a broken experiment module (test/hostile/cases.tsv)\n${body}\n`);
mod('ok', `export default {\n  ${MODEL},\n  ${DATA},\n  loss: 'categoricalCrossentropy',\n};`);
mod('syntax', `export default {\n  ${MODEL},\n  data(tf) { return { x: [[0, 1]], y: [[1, 0, 0]] ; },\n};`);
mod('throws-at-load', `const table: number[] = [];\nthrow new Error('the lookup table is empty');\nexport default { ${MODEL}, ${DATA} };`);
mod('model-throws', `export default {\n  model(tf) {\n    throw new Error('no GPU for this model');\n  },\n  ${DATA},\n};`);
mod('model-nothing', `export default {\n  model(tf) {},\n  ${DATA},\n};`);
mod('model-number', `export default {\n  model(tf) { return 42; },\n  ${DATA},\n};`);
mod('data-throws', `export default {\n  ${MODEL},\n  data(tf) {\n    throw new Error('dataset not downloaded');\n  },\n};`);
mod('data-rejects', `export default {\n  ${MODEL},\n  async data(tf) {\n    throw new Error('dataset not downloaded');\n  },\n};`);
mod('data-never', `export default {\n  ${MODEL},\n  data(tf) { return new Promise(() => {}); },\n};`);
mod('data-ragged', `export default {\n  ${MODEL},\n  data(tf) { return { x: [[0, 1], [1]], y: [[1, 0, 0], [0, 1, 0]] }; },\n};`);
mod('data-disposed', `export default {\n  ${MODEL},\n  data(tf) {\n    const x = tf.tensor2d([[0, 1], [1, 0]]);\n    x.dispose();\n    return { x, y: [[1, 0, 0], [0, 1, 0]] };\n  },\n};`);
mod('data-mismatch', `export default {\n  ${MODEL},\n  data(tf) { return { x: [[0, 1], [1, 0]], y: [[1, 0, 0]] }; },\n};`);
mod('loss-throws', `export default {\n  ${MODEL},\n  ${DATA},\n  loss(yTrue, yPred) {\n    throw new Error('my loss is not ready');\n  },\n};`);
mod('loss-nonscalar', `export default {\n  ${MODEL},\n  ${DATA},\n  loss(yTrue, yPred) {\n    return yTrue.sub(yPred).square();\n  },\n};`);
mod('loss-number', `export default {\n  ${MODEL},\n  ${DATA},\n  loss(yTrue, yPred) {\n    return 0.5;\n  },\n};`);
mod('loss-nan', `export default {\n  ${MODEL},\n  ${DATA},\n  loss(yTrue, yPred) {\n    return yTrue.sub(yPred).square().mean().mul(NaN);\n  },\n};`);
mod('loss-unknown-name', `export default {\n  ${MODEL},\n  ${DATA},\n  loss: 'hingeLoss',\n};`);
mod('uncaught-later', `export default {\n  model(tf) {\n    setTimeout(() => { throw new Error('late failure in a timer'); }, 5);\n    return tf.sequential({ layers: [tf.layers.dense({ inputShape: [2], units: 3, activation: 'softmax' })] });\n  },\n  data(tf) { return new Promise((r) => setTimeout(() => r({ x: [[0, 1]], y: [[1, 0, 0]] }), 500)); },\n};`);
mod('no-exports', `export const nothing = 1;`);

// ---- run directories -----------------------------------------------------------------------
write('runs/not-a-run/readme.txt', 'not a run\n');
write('runs/corrupt-manifest/manifest.json', '{"kind": "basin-run", "settings": ');
write('runs/corrupt-manifest/metrics.jsonl', '');

if (special) {
  // A FIFO with no writer (opening it blocks), a link to an endless device, a link out of the folder.
  const { execFileSync } = await import('node:child_process');
  model('fifo', (m) => shards(m, ['weights.fifo']), null);
  execFileSync('mkfifo', [path.join(out, 'fifo', 'weights.fifo')]);
  model('device', (m) => shards(m, ['/dev/zero']), null);
  model('device-link', (m) => shards(m, ['zero.bin']), null);
  fs.symlinkSync('/dev/zero', path.join(out, 'device-link', 'zero.bin'));
  model('link-out', (m) => shards(m, ['weights.bin']), null);
  fs.symlinkSync(path.join(out, 'outside.bin'), path.join(out, 'link-out', 'weights.bin'));
  model('link-in', (m) => shards(m, ['alias.bin']), null);
  write('link-in/weights.bin', baseWeights);
  fs.symlinkSync('weights.bin', path.join(out, 'link-in', 'alias.bin'));
  execFileSync('mkfifo', [path.join(out, 'data', 'data.fifo')]);
  fs.mkdirSync(path.join(out, 'fifo-model'));
  execFileSync('mkfifo', [path.join(out, 'fifo-model', 'model.json')]);
}
console.log(`hostile corpus written to ${path.relative(process.cwd(), out) || '.'}${special ? ' (with special files)' : ''}`);
