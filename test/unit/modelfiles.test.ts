// Model files are untrusted data: a model.json may name any path as a weight shard, declare any
// shape, or describe a layer graph TF.js would allocate without bound or loop on forever. These
// tests check that shard paths stay inside the model's folder (after symbolic links) and name
// regular files, that shard sizes match the manifest before anything is read, that the parameter
// count of both the manifest and the topology is bounded before TF.js builds anything, and that
// the topology estimate is exact for every supported layer. The dangerous cases run the built CLI
// (dist/cli.js) with a timeout and a 512 MB heap, so a hang or a runaway allocation fails the test
// instead of the test runner. Fixtures are copies of examples/spiral in fresh temporary folders.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import fsModule from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend } from '../../src/engine/backend';
import { BasinError } from '../../src/engine/errors';
import { MAX_PARAMS } from '../../src/engine/limits';
import { loadLayersModelFile, readModelArtifacts } from '../../src/engine/model/io';
import { checkTopology } from '../../src/engine/model/topology';
import { loadProblem } from '../../src/engine/problem';
import { tf, tfl } from '../../src/engine/tf';

// The bundle runs from .test-dist/unit/.
const CLI = path.join(__dirname, '../../dist/cli.js');
const EXAMPLE = path.join(__dirname, '../../examples/spiral');
const DATA = path.join(EXAMPLE, 'data.json');

interface ModelJson {
  modelTopology: { class_name: string; config: { name: string; layers: { class_name: string; config: Record<string, unknown> }[] } };
  weightsManifest: { paths: string[]; weights: { name: string; shape: unknown; dtype: string }[] }[];
}

const exampleModel = (): ModelJson => JSON.parse(fs.readFileSync(path.join(EXAMPLE, 'model.json'), 'utf8')) as ModelJson;
const exampleWeights = (): Buffer => fs.readFileSync(path.join(EXAMPLE, 'weights.bin'));

interface Fixture {
  /** A fresh folder holding model/ (the model's folder) and whatever a test puts beside it. */
  root: string;
  dir: string;
  model: string;
  weights: string;
}

/** root/model/model.json (edited by `edit`) and root/model/weights.bin, copies of the example. */
function fixture(edit?: (m: ModelJson) => void): Fixture {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'basin-modelfiles-'));
  const dir = path.join(root, 'model');
  fs.mkdirSync(dir);
  const m = exampleModel();
  edit?.(m);
  const model = path.join(dir, 'model.json');
  const weights = path.join(dir, 'weights.bin');
  fs.writeFileSync(model, JSON.stringify(m));
  fs.writeFileSync(weights, exampleWeights());
  return { root, dir, model, weights };
}

const setPaths = (...paths: string[]) => (m: ModelJson) => {
  m.weightsManifest[0].paths = paths;
};

function mkfifo(file: string): void {
  const r = spawnSync('mkfifo', [file]);
  assert.equal(r.status, 0, `mkfifo ${file}: ${r.stderr}`);
}

/** Runs `action` and checks it fails with a BasinError naming `file` and matching every pattern. */
async function expectBasinError(action: () => unknown, file: string, ...patterns: RegExp[]): Promise<string> {
  let caught: unknown;
  try {
    await action();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught !== undefined, 'expected an error, but none was thrown');
  assert.ok(caught instanceof BasinError, `expected a BasinError, got ${caught instanceof Error ? `${caught.name}: ${caught.message}` : String(caught)}`);
  assert.ok(caught.message.startsWith(`${file}: `), `the message does not start with ${file}: ${caught.message}`);
  for (const p of patterns) assert.match(caught.message, p);
  return caught.message;
}

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

// ---------------------------------------------------------------------------------------------
// The CLI, with a timeout, a 512 MB heap, and its own run time and peak memory
// ---------------------------------------------------------------------------------------------

let preload = '';

/**
 * What "refused fast" allows a CLI run, from its first line to its exit: about 0.5 s here, nearly
 * all of it loading the CLI and the data, with room for a loaded machine. A hang is caught apart
 * from this: the run is killed at 20 s and the test fails saying so.
 */
const FAST_MS = 5000;
/** Peak memory a refused run may reach: about 70 MB here; a model TF.js built would take GBs. */
const LOW_MB = 300;

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  /** Milliseconds from the first line of the process to its exit. */
  ms: number;
  /** Peak resident memory, MB. */
  rssMB: number;
}

function basin(...args: string[]): Run {
  const r = spawnSync(process.execPath, ['--max-old-space-size=512', '-r', preload, CLI, ...args], {
    encoding: 'utf8',
    timeout: 20_000,
    env: { ...process.env, BASIN_DEBUG: '' },
  });
  assert.ok(!r.error && r.signal === null, `basin ${args.join(' ')} did not finish by itself (${r.error?.message ?? r.signal}): a hang or a crash`);
  const usage = /\n\[usage\] ms=([\d.]+) rss_kb=(\d+)\n$/.exec(r.stderr);
  assert.ok(usage, `no usage line in:\n${r.stderr}`);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.slice(0, usage.index), ms: Number(usage[1]), rssMB: Number(usage[2]) / 1024 };
}

/** A refused model: exit 1, `basin: <model.json>: ...` matching every pattern, no stack, nothing on stdout. */
function expectRefused(r: Run, file: string, ...patterns: RegExp[]): void {
  assert.equal(r.status, 1, `exit ${r.status}: ${r.stderr}`);
  assert.ok(r.stderr.startsWith(`basin: ${file}: `), `the message does not name ${file}:\n${r.stderr}`);
  for (const p of patterns) assert.match(r.stderr, p);
  assert.ok(!r.stderr.includes('    at '), `a stack trace was printed:\n${r.stderr}`);
  assert.ok(!/internal error/.test(r.stderr), `reported as an internal error:\n${r.stderr}`);
  assert.equal(r.stdout, '');
}

const info = (model: string): Run => basin('info', '--model', model, '--data', DATA);

// ---------------------------------------------------------------------------------------------
// Which files a call touches
// ---------------------------------------------------------------------------------------------

/**
 * Runs `action` and returns every path under `target` that it passed to an fs call that stats,
 * opens or reads a file. Symbolic links are resolved with realpath, which opens nothing.
 */
async function touched(target: string, action: () => unknown): Promise<string[]> {
  const names = ['openSync', 'readFileSync', 'statSync', 'lstatSync', 'existsSync', 'accessSync', 'open', 'readFile', 'createReadStream'] as const;
  const mod = fsModule as unknown as Record<string, (...a: unknown[]) => unknown>;
  const saved = names.map((n) => mod[n]);
  const seen: string[] = [];
  names.forEach((n, i) => {
    mod[n] = (...a: unknown[]) => {
      if (typeof a[0] === 'string' && path.resolve(a[0]).startsWith(target)) seen.push(`${n}(${a[0]})`);
      return saved[i](...a);
    };
  });
  try {
    await action();
  } finally {
    names.forEach((n, i) => (mod[n] = saved[i]));
  }
  return seen;
}

before(async () => {
  assert.ok(fs.existsSync(CLI), `${CLI} is missing: build it with 'node esbuild.js' first`);
  preload = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'basin-modelfiles-')), 'usage.js');
  fs.writeFileSync(
    preload,
    // The launcher's main thread only (the job thread inherits the preload).
    "const t0 = process.hrtime.bigint();\nif (require('node:worker_threads').isMainThread)\n" +
      "process.on('exit', () => process.stderr.write(`\\n[usage] ms=${Number(process.hrtime.bigint() - t0) / 1e6} rss_kb=${process.resourceUsage().maxRSS}\\n`));\n",
  );
  await initBackend('wasm');
});

// ---------------------------------------------------------------------------------------------
// The example still loads, bit for bit
// ---------------------------------------------------------------------------------------------

test('the example model loads with identical parameter values', async () => {
  const f = fixture();
  const bytes = exampleWeights();
  const artifacts = readModelArtifacts(f.model);
  assert.deepEqual(Buffer.from(artifacts.weightData as ArrayBuffer), bytes);
  const p = await loadProblem({ model: f.model, data: DATA });
  assert.equal(p.ir.numParams, 1251);
  // The IR's parameters are the manifest's weights in order: theta is weights.bin as float32.
  const want = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  assert.deepEqual(p.theta, want);
  const r = info(f.model);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /1,251 trainable parameters/);
});

// ---------------------------------------------------------------------------------------------
// Shard paths stay inside the model's folder
// ---------------------------------------------------------------------------------------------

test('a ../ shard path is refused, naming the path, and the file is never opened', async () => {
  const f = fixture(setPaths('../outside.bin'));
  // The right size, and a distinctive value that would show in any result.
  const outside = path.join(f.root, 'outside.bin');
  fs.writeFileSync(outside, Buffer.from(new Float32Array(1251).fill(4242.5).buffer));
  const message = new RegExp(`weight shard path '\\.\\./outside\\.bin' leads outside the model's folder \\(${escape(f.dir)}\\)`);
  const seen = await touched(outside, () => expectBasinError(() => readModelArtifacts(f.model), f.model, message));
  assert.deepEqual(seen, []);
  await expectBasinError(() => loadProblem({ model: f.model, data: DATA }), f.model, message);
  const r = basin('info', '--json', '--model', f.model, '--data', DATA);
  expectRefused(r, f.model, message);
  assert.ok(!r.stderr.includes('4242'));
  // Deeper escapes, and escapes that re-enter through the parent, are refused the same way.
  for (const p of ['sub/../../outside.bin', '../model/../outside.bin', '../../../../../../etc/passwd']) {
    const g = fixture(setPaths(p));
    await expectBasinError(() => readModelArtifacts(g.model), g.model, new RegExp(`weight shard path '${escape(p)}' leads outside the model's folder`));
  }
  // A .. that stays inside is an ordinary relative path.
  const h = fixture(setPaths('sub/../weights.bin'));
  fs.mkdirSync(path.join(h.dir, 'sub'));
  assert.deepEqual(Buffer.from(readModelArtifacts(h.model).weightData as ArrayBuffer), exampleWeights());
});

test('a FIFO outside the folder is refused without blocking', () => {
  const f = fixture(setPaths('../pipe'));
  mkfifo(path.join(f.root, 'pipe'));
  // Opening a FIFO with no writer blocks forever: refused before any open.
  const r = info(f.model);
  expectRefused(r, f.model, /weight shard path '\.\.\/pipe' leads outside the model's folder/);
  assert.ok(r.ms < FAST_MS, `took ${r.ms} ms`);
  // The same FIFO through a symbolic link inside the folder.
  const g = fixture(setPaths('link.bin'));
  fs.symlinkSync(path.join(f.root, 'pipe'), path.join(g.dir, 'link.bin'));
  const s = info(g.model);
  expectRefused(s, g.model, new RegExp(`weight shard 'link\\.bin' is a symbolic link to ${escape(fs.realpathSync(path.join(f.root, 'pipe')))}, outside the model's folder`));
  assert.ok(s.ms < FAST_MS, `took ${s.ms} ms`);
});

test('an absolute shard path is refused, whatever it names', async () => {
  const f = fixture();
  for (const p of [f.weights, '/etc/passwd', '/dev/zero', 'C:\\Windows\\win.ini', '\\\\server\\share\\w.bin']) {
    const g = fixture(setPaths(p));
    await expectBasinError(() => readModelArtifacts(g.model), g.model, new RegExp(`weight shard path '${escape(p)}' is absolute; shard paths are relative to the model's folder`));
  }
  // /dev/zero would be read until memory runs out.
  const z = fixture(setPaths('/dev/zero'));
  const r = info(z.model);
  expectRefused(r, z.model, /weight shard path '\/dev\/zero' is absolute/);
  assert.ok(r.rssMB < LOW_MB, `peak memory ${r.rssMB} MB`);
});

test('a symbolic link out of the folder is refused; one inside it is followed', async () => {
  // Out: to the example's own weights (the right size) and to /dev/zero.
  const f = fixture(setPaths('weights-link.bin'));
  const target = path.join(f.root, 'elsewhere.bin');
  fs.writeFileSync(target, exampleWeights());
  fs.symlinkSync(target, path.join(f.dir, 'weights-link.bin'));
  const seen = await touched(target, () =>
    expectBasinError(() => readModelArtifacts(f.model), f.model, new RegExp(`weight shard 'weights-link\\.bin' is a symbolic link to ${escape(fs.realpathSync(target))}, outside the model's folder`)),
  );
  assert.deepEqual(seen, []);
  // A folder link inside the model's folder that points out of it.
  const d = fixture(setPaths('sub/weights.bin'));
  fs.symlinkSync(f.root, path.join(d.dir, 'sub'));
  fs.writeFileSync(path.join(f.root, 'weights.bin'), exampleWeights());
  await expectBasinError(() => readModelArtifacts(d.model), d.model, /weight shard 'sub\/weights\.bin' is a symbolic link to .*, outside the model's folder/);
  const z = fixture(setPaths('zero.bin'));
  fs.symlinkSync('/dev/zero', path.join(z.dir, 'zero.bin'));
  const r = info(z.model);
  expectRefused(r, z.model, /weight shard 'zero\.bin' is a symbolic link to \/dev\/zero, outside the model's folder/);
  assert.ok(r.rssMB < LOW_MB, `peak memory ${r.rssMB} MB`);

  // In: a relative link to a file in a subfolder, loaded with the same values.
  const i = fixture(setPaths('current.bin'));
  fs.mkdirSync(path.join(i.dir, 'store'));
  fs.renameSync(i.weights, path.join(i.dir, 'store', 'w.bin'));
  fs.symlinkSync(path.join('store', 'w.bin'), path.join(i.dir, 'current.bin'));
  const p = await loadProblem({ model: i.model, data: DATA });
  const q = await loadProblem({ model: fixture().model, data: DATA });
  assert.deepEqual(p.theta, q.theta);
  // The model's folder reached through a link: its shards are inside the folder it resolves to.
  const linkedDir = path.join(i.root, 'linked');
  fs.symlinkSync(i.dir, linkedDir);
  assert.deepEqual(Buffer.from(readModelArtifacts(path.join(linkedDir, 'model.json')).weightData as ArrayBuffer), exampleWeights());
});

// ---------------------------------------------------------------------------------------------
// Only regular files are opened
// ---------------------------------------------------------------------------------------------

test('a FIFO shard inside the folder is refused at once, not a hang', () => {
  const f = fixture();
  fs.unlinkSync(f.weights);
  mkfifo(f.weights);
  const r = info(f.model);
  expectRefused(r, f.model, /weight shard 'weights\.bin' is a FIFO \(named pipe\), not a regular file/);
  assert.ok(r.ms < FAST_MS, `took ${r.ms} ms`);
});

test('a directory as a shard, and a model.json that is a FIFO, a device or a directory', async () => {
  const f = fixture(setPaths('sub'));
  fs.mkdirSync(path.join(f.dir, 'sub'));
  await expectBasinError(() => readModelArtifacts(f.model), f.model, /weight shard 'sub' is a directory, not a regular file/);
  const g = fixture(setPaths('.'));
  await expectBasinError(() => readModelArtifacts(g.model), g.model, /weight shard '\.' is a directory, not a regular file/);

  const pipe = path.join(f.root, 'model-pipe.json');
  mkfifo(pipe);
  const r = info(pipe);
  expectRefused(r, pipe, /this is a FIFO \(named pipe\), not a regular file/);
  assert.ok(r.ms < FAST_MS, `took ${r.ms} ms`);
  const z = info('/dev/zero');
  expectRefused(z, '/dev/zero', /this is a character device, not a regular file/);
  assert.ok(z.rssMB < LOW_MB, `peak memory ${z.rssMB} MB`);
  await expectBasinError(() => readModelArtifacts(f.dir), f.dir, /this is a directory, not a regular file/);
});

test('a model.json over the size limit is refused before it is read', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'basin-modelfiles-'));
  const file = path.join(dir, 'model.json');
  // Sparse: 2 GiB on paper, nothing on disk.
  fs.writeFileSync(file, '');
  fs.truncateSync(file, 2 * 1024 ** 3);
  const seen = await touched(file, () => expectBasinError(() => readModelArtifacts(file), file, /the model\.json size is 2\.1 GB, over the limit of 67 MB/));
  assert.deepEqual(seen, [`statSync(${file})`]);
});

// ---------------------------------------------------------------------------------------------
// Shard sizes against the manifest
// ---------------------------------------------------------------------------------------------

test('a shard one byte short or one byte long is an error with both byte counts', async () => {
  const short = fixture();
  fs.writeFileSync(short.weights, exampleWeights().subarray(0, 5003));
  await expectBasinError(
    () => readModelArtifacts(short.model),
    short.model,
    /^.*: weight shard 'weights\.bin': the shard files hold 5003 bytes but the manifest needs 5004 \(1 missing: the shard is truncated or from another model\)$/,
  );
  const long = fixture();
  fs.writeFileSync(long.weights, Buffer.concat([exampleWeights(), Buffer.from([0])]));
  await expectBasinError(
    () => readModelArtifacts(long.model),
    long.model,
    /^.*: weight shard 'weights\.bin': the shard files hold 5005 bytes but the manifest needs 5004 \(1 extra: the shard has bytes the manifest does not describe, or is from another model\)$/,
  );
  // Two shards: the bytes split anywhere load; a long second shard names both.
  const two = fixture(setPaths('group1-shard1of2.bin', 'group1-shard2of2.bin'));
  fs.unlinkSync(two.weights);
  fs.writeFileSync(path.join(two.dir, 'group1-shard1of2.bin'), exampleWeights().subarray(0, 4001));
  fs.writeFileSync(path.join(two.dir, 'group1-shard2of2.bin'), exampleWeights().subarray(4001));
  assert.deepEqual(Buffer.from(readModelArtifacts(two.model).weightData as ArrayBuffer), exampleWeights());
  fs.appendFileSync(path.join(two.dir, 'group1-shard2of2.bin'), Buffer.from([1, 2]));
  await expectBasinError(
    () => readModelArtifacts(two.model),
    two.model,
    /weight shards 'group1-shard1of2\.bin', 'group1-shard2of2\.bin': the shard files hold 5006 bytes but the manifest needs 5004 \(2 extra/,
  );
  const r = info(long.model);
  expectRefused(r, long.model, /hold 5005 bytes but the manifest needs 5004/);
});

test('manifest shapes must be lists of non-negative integers, and dtypes known', async () => {
  const cases: [unknown, RegExp][] = [
    [[2, -32], /weight 'dense_Dense1\/kernel' has shape \[2,-32\]; a shape is a list of non-negative integers/],
    [[2, 1.5], /has shape \[2,1\.5\]/],
    [[2, '32'], /has shape \[2,"32"\]/],
    ['2x32', /has shape "2x32"/],
    [[2, 2 ** 60], /has shape \[2,1152921504606847000\]/],
  ];
  for (const [shape, message] of cases) {
    const f = fixture((m) => (m.weightsManifest[0].weights[0].shape = shape));
    await expectBasinError(() => readModelArtifacts(f.model), f.model, message);
  }
  const d = fixture((m) => (m.weightsManifest[0].weights[1].dtype = 'complex64'));
  await expectBasinError(() => readModelArtifacts(d.model), d.model, /weight 'dense_Dense1\/bias' has unsupported dtype 'complex64'/);
  const q = fixture((m) => Object.assign(m.weightsManifest[0].weights[1], { quantization: { dtype: 'int4', scale: 1, min: 0 } }));
  await expectBasinError(() => readModelArtifacts(q.model), q.model, /weight 'dense_Dense1\/bias' has unsupported quantization dtype 'int4'/);
  const n = fixture(setPaths('weights.bin\0.png'));
  await expectBasinError(() => readModelArtifacts(n.model), n.model, /contains a NUL character/);
});

// ---------------------------------------------------------------------------------------------
// Parameter counts before TF.js builds anything
// ---------------------------------------------------------------------------------------------

test('a huge shape in the manifest is refused fast, in little memory', () => {
  const f = fixture((m) => (m.weightsManifest[0].weights[0].shape = [1e9, 1000]));
  const r = info(f.model);
  // 1251 - 64 + 1e12 values.
  expectRefused(
    r,
    f.model,
    /the parameter count the weightsManifest declares is 1,000,000,001,187, over the limit of 50,000,000 \(4\.00 TB as float32, .*the model is too large for Basin\)/,
  );
  assert.ok(r.ms < FAST_MS, `took ${r.ms} ms`);
  assert.ok(r.rssMB < LOW_MB, `peak memory ${r.rssMB} MB`);
});

test('a huge layer in the topology is refused fast, in little memory', () => {
  // The issue's case: 450M parameters, which TF.js would allocate (1.8 GB) before any check.
  const f = fixture((m) => (m.modelTopology.config.layers[1].config.units = 13_600_000));
  const r = info(f.model);
  // dense1 2*32+32, dense2 32*13.6M + 13.6M, dense3 13.6M*3 + 3.
  const n = 96 + 33 * 13_600_000 + 3 * 13_600_000 + 3;
  assert.equal(n, 489_600_099);
  expectRefused(r, f.model, /the parameter count of the model topology is 489,600,099, over the limit of 50,000,000 \(2\.0 GB as float32, .*the model is too large for Basin\)/);
  assert.ok(r.ms < FAST_MS, `took ${r.ms} ms`);
  assert.ok(r.rssMB < LOW_MB, `peak memory ${r.rssMB} MB`);
  // Units 1e9: 35 billion.
  const g = fixture((m) => (m.modelTopology.config.layers[0].config.units = 1e9));
  const s = info(g.model);
  expectRefused(s, g.model, /the parameter count of the model topology is 35,000,000,131, over the limit of 50,000,000 \(140\.0 GB as float32/);
  assert.ok(s.rssMB < LOW_MB, `peak memory ${s.rssMB} MB`);
});

test('the limit is the caller\'s maxParams when given, and applies to both counts', async () => {
  const f = fixture();
  await expectBasinError(
    () => loadProblem({ model: f.model, data: DATA, maxParams: 1000 }),
    f.model,
    /the parameter count the weightsManifest declares is 1,251, over the limit of 1,000 \(5 KB as float32, and an analysis keeps several float64 copies of the parameters; the caller set this limit \(maxParams\)\)/,
  );
  assert.equal((await loadProblem({ model: f.model, data: DATA, maxParams: 1251 })).ir.numParams, 1251);
  // A topology over the limit with a manifest under it.
  const g = fixture((m) => (m.modelTopology.config.layers[0].config.units = 40));
  await expectBasinError(() => loadLayersModelFile(g.model, { maxParams: 1300 }), g.model, /the parameter count of the model topology is 1,531, over the limit of 1,300/);
  assert.equal(MAX_PARAMS, 50_000_000);
});

test('a topology that disagrees with the manifest is refused before TF.js builds it', async () => {
  // 64 units in the first layer: 2*64+64 + 64*32+32 + 32*3+3 = 2371 values; the manifest has 1251.
  const f = fixture((m) => (m.modelTopology.config.layers[0].config.units = 64));
  await expectBasinError(
    () => readModelArtifacts(f.model),
    f.model,
    /the model topology's layers hold 2,371 weight values but the weightsManifest declares 1,251: the weights do not belong to these layers/,
  );
  // One weight dropped from the manifest (the shard cut to match).
  const g = fixture((m) => m.weightsManifest[0].weights.pop());
  fs.writeFileSync(g.weights, exampleWeights().subarray(0, 5004 - 12));
  await expectBasinError(() => readModelArtifacts(g.model), g.model, /layers hold 1,251 weight values but the weightsManifest declares 1,248/);
});

test('an unsupported layer class is refused before building, even a huge one', () => {
  const f = fixture((m) => {
    const l = m.modelTopology.config.layers[1];
    l.class_name = 'LSTM';
    l.config.units = 1e9;
  });
  const r = info(f.model);
  expectRefused(
    r,
    f.model,
    /layer 'dense_Dense2' \(LSTM\) is not supported; supported layers: Dense, Conv2D, MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, Flatten, Dropout, BatchNormalization, Activation, ReLU, Add, Concatenate\n$/,
  );
  assert.ok(r.rssMB < LOW_MB, `peak memory ${r.rssMB} MB`);
  // Not a model at all.
  const g = fixture((m) => (m.modelTopology.class_name = 'Dense'));
  expectRefused(info(g.model), g.model, /the model topology is a 'Dense', not a Sequential or functional model/);
});

// ---------------------------------------------------------------------------------------------
// Functional graphs TF.js would loop on forever
// ---------------------------------------------------------------------------------------------

/** The example as a functional model.json (input -> three Dense layers), written with TF.js. */
async function functionalExample(edit: (layers: { name: string; class_name: string; inbound_nodes: unknown[][] }[]) => void): Promise<Fixture> {
  const input = tfl.input({ shape: [2], name: 'x' });
  let h = tfl.layers.dense({ units: 32, activation: 'tanh', name: 'dense_Dense1' }).apply(input) as ReturnType<typeof tfl.input>;
  h = tfl.layers.dense({ units: 32, activation: 'tanh', name: 'dense_Dense2' }).apply(h) as ReturnType<typeof tfl.input>;
  const out = tfl.layers.dense({ units: 3, activation: 'softmax', name: 'dense_Dense3' }).apply(h) as ReturnType<typeof tfl.input>;
  const model = tfl.model({ inputs: input, outputs: out });
  const topology = model.toJSON(null, false) as unknown as { config: { layers: { name: string; class_name: string; inbound_nodes: unknown[][] }[] } };
  model.dispose();
  edit(topology.config.layers);
  return fixture((m) => (m.modelTopology = topology as unknown as ModelJson['modelTopology']));
}

test('a functional model loads; inputs from missing layers, shared layers and cycles are refused', async () => {
  const ok = await functionalExample(() => undefined);
  const p = await loadProblem({ model: ok.model, data: DATA });
  const q = await loadProblem({ model: fixture().model, data: DATA });
  assert.deepEqual(p.theta, q.theta);

  const missing = await functionalExample((layers) => (layers[2].inbound_nodes = [[['nope', 0, 0, {}]]]));
  const r = info(missing.model);
  expectRefused(r, missing.model, /layer 'dense_Dense2' takes its input from 'nope', which is not in the model topology/);
  assert.ok(r.ms < FAST_MS, `took ${r.ms} ms`);

  // dense_Dense2 <- dense_Dense3 <- dense_Dense2.
  const cycle = await functionalExample((layers) => (layers[2].inbound_nodes = [[['dense_Dense3', 0, 0, {}]]]));
  const s = info(cycle.model);
  expectRefused(s, cycle.model, /layers 'dense_Dense2', 'dense_Dense3' wait on each other's outputs \(a cycle in the model topology\)/);
  assert.ok(s.ms < FAST_MS, `took ${s.ms} ms`);

  const node1 = await functionalExample((layers) => (layers[2].inbound_nodes = [[['dense_Dense1', 1, 0, {}]]]));
  await expectBasinError(() => readModelArtifacts(node1.model), node1.model, /layer 'dense_Dense2' \(Dense\) takes output 0 of call 1 of 'dense_Dense1'/);
  const shared = await functionalExample((layers) => layers[2].inbound_nodes.push([['dense_Dense2', 0, 0, {}]]));
  await expectBasinError(() => readModelArtifacts(shared.model), shared.model, /layer 'dense_Dense2' \(Dense\) is called 2 times; shared layers are not supported/);
  const uncalled = await functionalExample((layers) => {
    layers[1].inbound_nodes = [];
  });
  await expectBasinError(() => readModelArtifacts(uncalled.model), uncalled.model, /layer 'dense_Dense2' takes its input from 'dense_Dense1', which is never called/);
  const twice = await functionalExample((layers) => layers.push({ ...layers[1] }));
  await expectBasinError(() => readModelArtifacts(twice.model), twice.model, /two layers are named 'dense_Dense1'/);
});

// ---------------------------------------------------------------------------------------------
// The topology estimate is exact for every supported layer
// ---------------------------------------------------------------------------------------------

type Sym = ReturnType<typeof tfl.input>;

/** Models covering every supported layer and option that changes a shape or a weight count. */
function zoo(): tfl.LayersModel[] {
  const L = tfl.layers;
  const conv = tfl.sequential({
    layers: [
      L.conv2d({ inputShape: [12, 10, 3], filters: 4, kernelSize: 3, padding: 'same' }),
      L.batchNormalization({}),
      L.reLU({}),
      L.conv2d({ filters: 2, kernelSize: 2, dilationRate: 3 }),
      L.maxPooling2d({ poolSize: 2 }),
      L.conv2d({ filters: 5, kernelSize: [3, 2], strides: [2, 1], useBias: false }),
      L.averagePooling2d({ poolSize: [2, 2], strides: 1, padding: 'same' }),
      L.flatten({}),
      L.dropout({ rate: 0.5 }),
      L.dense({ units: 7 }),
      L.activation({ activation: 'softmax' }),
    ],
  });
  const gap = tfl.sequential({
    layers: [
      L.inputLayer({ inputShape: [7, 7, 2] }),
      L.conv2d({ filters: 3, kernelSize: 5, strides: 3, padding: 'valid' }),
      L.maxPooling2d({ poolSize: [3, 1], strides: [1, 2], padding: 'same' }),
      L.globalAveragePooling2d({}),
      L.dense({ units: 4, useBias: false }),
      L.batchNormalization({ center: false, scale: false }),
    ],
  });
  const first = tfl.sequential({
    layers: [
      L.conv2d({ inputShape: [3, 10, 6], filters: 4, kernelSize: 3, dataFormat: 'channelsFirst' }),
      L.maxPooling2d({ poolSize: 2, dataFormat: 'channelsFirst' }),
      L.globalAveragePooling2d({ dataFormat: 'channelsFirst' }),
      L.dense({ units: 2 }),
    ],
  });
  const x = tfl.input({ shape: [6, 6, 2] });
  const a = L.conv2d({ filters: 3, kernelSize: 3, padding: 'same' }).apply(x) as Sym;
  const b = L.conv2d({ filters: 3, kernelSize: 1 }).apply(a) as Sym;
  const sum = L.add({}).apply([a, b]) as Sym;
  const cat = L.concatenate({}).apply([sum, a, x]) as Sym;
  const bn = L.batchNormalization({ axis: 3, scale: false }).apply(cat) as Sym;
  const y = L.dense({ units: 4 }).apply(L.globalAveragePooling2d({}).apply(bn) as Sym) as Sym;
  const graph = tfl.model({ inputs: x, outputs: y });
  const v = tfl.input({ shape: [5] });
  const d1 = L.dense({ units: 6 }).apply(v) as Sym;
  const d2 = L.dense({ units: 6, activation: 'relu' }).apply(v) as Sym;
  const vec = tfl.model({ inputs: v, outputs: L.dense({ units: 1 }).apply(L.concatenate({ axis: 1 }).apply([L.add({}).apply([d1, d2]) as Sym, d1]) as Sym) as Sym });
  const seq3 = tfl.sequential({ layers: [L.dense({ inputShape: [4, 3], units: 5 }), L.flatten({}), L.dense({ units: 2 })] });
  const dim = tfl.sequential({ layers: [L.dense({ inputDim: 3, units: 5 }), L.dense({ units: 2 })] });
  return [conv, gap, first, graph, vec, seq3, dim];
}

test('the topology estimate equals the weights TF.js builds, and such models load', async () => {
  const before = tf.memory().numTensors;
  const models = zoo();
  for (const [i, model] of models.entries()) {
    const topology = model.toJSON(null, false);
    assert.equal(checkTopology(topology, 'zoo.json').weights, model.countParams(), `model ${i}`);
    // Through files, with the weights TF.js saves, as Keras writes them (model_config inside).
    let saved: tf.io.ModelArtifacts | undefined;
    await model.save(
      tf.io.withSaveHandler(async (artifacts) => {
        saved = artifacts;
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      }),
    );
    assert.ok(saved?.weightSpecs && saved.weightData);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'basin-modelfiles-'));
    const file = path.join(dir, 'model.json');
    const data = Array.isArray(saved.weightData) ? Buffer.concat(saved.weightData.map((d) => Buffer.from(d))) : Buffer.from(saved.weightData);
    fs.writeFileSync(path.join(dir, 'w.bin'), data);
    fs.writeFileSync(
      file,
      JSON.stringify({ modelTopology: { keras_version: '2.15.0', backend: 'tensorflow', model_config: saved.modelTopology }, weightsManifest: [{ paths: ['w.bin'], weights: saved.weightSpecs }] }),
    );
    const loaded = await loadLayersModelFile(file);
    assert.equal(loaded.countParams(), model.countParams());
    const got = loaded.getWeights().map((w) => Array.from(w.dataSync()));
    const want = model.getWeights().map((w) => Array.from(w.dataSync()));
    assert.deepEqual(got, want, `model ${i}`);
    loaded.dispose();
    model.dispose();
  }
  assert.equal(tf.memory().numTensors, before);
});

test('topology shapes that TF.js could not build are refused with the layer named', () => {
  const topo = (layers: unknown[]): unknown => ({ class_name: 'Sequential', config: { name: 's', layers } });
  const dense = (config: Record<string, unknown>): unknown => ({ class_name: 'Dense', config: { name: 'd', ...config } });
  const cases: [unknown, RegExp][] = [
    [topo([dense({ units: 3 })]), /layer 'd' \(Dense\) declares no input shape \(batch_input_shape\)/],
    [topo([dense({ units: 3, batch_input_shape: [null, null] })]), /the input shape \[-1\] has an unknown dimension/],
    [topo([dense({ units: 0, batch_input_shape: [null, 2] })]), /layer 'd' \(Dense\): 'units' must be a positive integer \(got 0\)/],
    [topo([dense({ units: 2.5, batch_input_shape: [null, 2] })]), /'units' must be a positive integer \(got 2\.5\)/],
    [topo([dense({ units: 3, batch_input_shape: [null, -2] })]), /input dimension -2 is not a non-negative integer/],
    [
      topo([{ class_name: 'Conv2D', config: { name: 'c', filters: 2, kernel_size: 5, batch_input_shape: [null, 3, 3, 1] } }]),
      /layer 'c' \(Conv2D\): a window of 5 \(dilation 1\) does not fit an input of 3 with padding 'valid'/,
    ],
    [
      topo([{ class_name: 'Conv2D', config: { name: 'c', filters: 2, kernel_size: 3, batch_input_shape: [null, 3, 3] } }]),
      /layer 'c' \(Conv2D\): expects inputs of 3 dimensions per sample, got \[3, 3\]/,
    ],
    [
      topo([{ class_name: 'Flatten', config: { name: 'f', batch_input_shape: [null, 2 ** 30, 2 ** 30, 2 ** 30] } }]),
      /layer 'f' \(Flatten\): output shape \[1\.2379400392853803e\+27\] is too large/,
    ],
    // Class names are read as TF.js reads them: snake_case joined up.
    [
      topo([{ class_name: 'Max_pooling2D', config: { name: 'p', batch_input_shape: [null, 4, 4, 1] } }, { class_name: 'L_S_T_M', config: { name: 'r', units: 2 } }]),
      /layer 'r' \(LSTM\) is not supported; supported layers: Dense, /,
    ],
  ];
  for (const [t, message] of cases) {
    let caught: unknown;
    try {
      checkTopology(t, 'm.json');
    } catch (e) {
      caught = e;
    }
    assert.ok(caught instanceof BasinError, `no BasinError for ${JSON.stringify(t)}`);
    assert.match(caught.message, message);
  }
});
