// ONNX import (issue 12): models written by PyTorch's own torch.onnx.export
// (scripts/make-onnx-fixtures.py -> test/fixtures/onnx/) are imported into Basin's IR, and the
// numbers Basin computes on them are checked against PyTorch's float64 values written by the same
// script. Hostile files (truncated protobuf, huge declared tensors, unsupported ops, external
// data) are refused with clear messages; they are built from the fixtures in temporary folders.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { onnx } from 'onnx-proto';
import { initBackend } from '../../src/engine/backend';
import { loadDataFile, validateSplit } from '../../src/engine/data';
import { spawnSync } from 'node:child_process';
import * as zlib from 'node:zlib';
import { loadProblem } from '../../src/engine/problem';
import { lanczos } from '../../src/engine/linalg/lanczos';
import { BasinError, InputError } from '../../src/engine/errors';
import { LocalEvaluator } from '../../src/engine/evaluator';
import { Objective } from '../../src/engine/objective';
import { createOrtEvaluator } from '../../src/engine/ort/evaluator';
import { tf } from '../../src/engine/tf';
import { mlpIR, randomInputs, randomParams, refGradHvp, type RefProblem } from '../reference/float64';
import { loadOnnxModel } from '../../src/engine/model/onnx/import';
import { fromTorchOrder, toTorchOrder } from '../../src/engine/model/onnx/torch';

// The bundle runs from .test-dist/unit/.
const FIXTURES = path.join(__dirname, '../../test/fixtures/onnx');
const fixture = (name: string): string => path.join(FIXTURES, name);

interface Ref {
  names: string[];
  shapes: number[][];
  numParams: number;
  loss: number;
  grad: number[];
  v: number[];
  hv: number[];
  topEigenvalues: number[];
  bottomEigenvalue: number;
  logits: number[][];
}
const ref = (name: string): Ref => JSON.parse(fs.readFileSync(fixture(`${name}.ref.json`), 'utf8')) as Ref;

before(async () => {
  await initBackend('wasm');
});

function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'basin-onnx-'));
}

/** The fixture `name` decoded, changed by `edit`, and written to a fresh temp folder. */
function edited(name: string, edit: (m: { graph: onnx.GraphProto }) => void): string {
  const m = onnx.ModelProto.decode(fs.readFileSync(fixture(`${name}.onnx`)));
  edit(m as unknown as { graph: onnx.GraphProto });
  const dir = tmp();
  const file = path.join(dir, 'model', `${name}.onnx`);
  fs.mkdirSync(path.dirname(file));
  fs.writeFileSync(file, onnx.ModelProto.encode(m).finish());
  return file;
}

function refused(fn: () => unknown, message: string | RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof BasinError, `not a BasinError: ${String(e)}`);
    if (typeof message === 'string') assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  });
}

test('MLP: the ONNX nodes become Dense and activation layers with PyTorch parameter names and counts', () => {
  const m = loadOnnxModel(fixture('mlp.onnx'));
  const r = ref('mlp');
  assert.equal(m.ir.numParams, r.numParams);
  assert.deepEqual(
    m.ir.nodes.map((n) => `${n.name}:${n.op.kind}:${n.outShape.join('x')}`),
    ['input:input:4', '/fc1/Gemm:dense:12', '/Tanh:activation:12', '/fc2/Gemm:dense:3'],
  );
  assert.deepEqual(
    m.ir.params.map((p) => `${p.name}@${p.layer}:${p.role}:${p.shape.join('x')}`),
    ['fc1.weight@/fc1/Gemm:kernel:4x12', 'fc1.bias@/fc1/Gemm:bias:12', 'fc2.weight@/fc2/Gemm:kernel:12x3', 'fc2.bias@/fc2/Gemm:bias:3'],
  );
  assert.deepEqual(m.torch.map((t) => t.name), r.names);
  assert.deepEqual(m.torch.map((t) => t.shape), r.shapes);
  assert.equal(m.opset, 13);
  assert.equal(m.nchwInput, false);
});

test('convnet: Conv/BatchNorm/residual Add/MaxPool/Flatten, running statistics as constants, NHWC shapes', () => {
  const m = loadOnnxModel(fixture('convnet.onnx'));
  const r = ref('convnet');
  assert.equal(m.ir.numParams, r.numParams);
  assert.deepEqual(
    m.ir.nodes.map((n) => `${n.name}:${n.op.kind}:${n.outShape.join('x')}`),
    [
      'input:input:6x8x2',
      '/conv1/Conv:conv2d:6x8x4',
      '/bn1/BatchNormalization:batchNorm:6x8x4',
      '/Relu:activation:6x8x4',
      '/conv2/Conv:conv2d:6x8x4',
      '/Add:add:6x8x4',
      '/Relu_1:activation:6x8x4',
      '/pool/MaxPool:maxPool2d:3x4x4',
      '/Flatten:flatten:48',
      '/fc/Gemm:dense:3',
    ],
  );
  assert.deepEqual(m.torch.map((t) => t.name), r.names);
  assert.deepEqual(m.ir.constants.map((c) => c.name), ['bn1.running_mean', 'bn1.running_var']);
  assert.deepEqual(Array.from(m.ir.constants[0].values, (v) => Math.round(v * 100) / 100), [0.1, -0.2, 0.05, 0.3]);
  const conv1 = m.ir.nodes[1].op;
  assert.ok(conv1.kind === 'conv2d' && conv1.padding === 'same' && conv1.kernelSize.join() === '3,3');
  assert.deepEqual(m.ir.params[0].shape, [3, 3, 2, 4]);
  assert.equal(m.nchwInput, true);
});

test('LeakyRelu: a leakyRelu node with the slope PyTorch was given (0.2, and the default 0.01), not its float32 rounding', () => {
  const m = loadOnnxModel(fixture('leaky.onnx'));
  assert.deepEqual(
    m.ir.nodes.map((n) => `${n.name}:${n.op.kind}${n.op.kind === 'leakyRelu' ? `(${n.op.alpha})` : ''}:${n.outShape.join('x')}`),
    ['input:input:5', '/fc1/Gemm:dense:10', '/act1/LeakyRelu:leakyRelu(0.2):10', '/fc2/Gemm:dense:8', '/act2/LeakyRelu:leakyRelu(0.01):8', '/fc3/Gemm:dense:3'],
  );
  assert.equal(m.ir.numParams, ref('leaky').numParams);
  const nan = edited('leaky', (m) => {
    (m.graph.node[1].attribute as onnx.AttributeProto[])[0].f = NaN;
  });
  refused(() => loadOnnxModel(nan), `${nan}: node '/act1/LeakyRelu' (LeakyRelu): alpha NaN is not a finite number`);
});

test('toTorchOrder and fromTorchOrder are inverse permutations that read the weights back in PyTorch layout', () => {
  for (const name of ['mlp', 'convnet']) {
    const m = loadOnnxModel(fixture(`${name}.onnx`));
    const theta = new Float32Array(m.ir.numParams);
    m.values.forEach((v, i) => theta.set(v, m.ir.params[i].offset));
    const flat = toTorchOrder(m, theta, ref(name).names);
    // PyTorch's layout is the initializers' own: compare with the raw ONNX tensors.
    const model = onnx.ModelProto.decode(fs.readFileSync(fixture(`${name}.onnx`))) as unknown as { graph: onnx.GraphProto };
    let at = 0;
    for (const n of ref(name).names) {
      const t = model.graph.initializer.find((i) => i.name === n) as onnx.TensorProto;
      const raw = new Float32Array(Uint8Array.from(t.rawData).buffer);
      assert.deepEqual(Array.from(flat.subarray(at, at + raw.length)), Array.from(raw), n);
      at += raw.length;
    }
    assert.deepEqual(Array.from(fromTorchOrder(m, flat, ref(name).names)), Array.from(theta));
  }
});

test('hostile: a truncated protobuf is refused by name', () => {
  const dir = tmp();
  const file = path.join(dir, 'cut.onnx');
  const bytes = fs.readFileSync(fixture('convnet.onnx'));
  fs.writeFileSync(file, bytes.subarray(0, 1000));
  refused(() => loadOnnxModel(file), /^.*cut\.onnx: not a valid ONNX model: the protobuf cannot be decoded \(.*\); the file is truncated or not \.onnx$/);
  fs.writeFileSync(file, '');
  refused(() => loadOnnxModel(file), `${file}: not a valid ONNX model: it holds no graph nodes (the file is empty, truncated or not .onnx)`);
});

test('hostile: a huge declared tensor is refused before anything is allocated', () => {
  const file = edited('mlp', (m) => {
    m.graph.initializer[0].dims = [1e9, 1e9];
  });
  refused(
    () => loadOnnxModel(file),
    `${file}: the number of values initializer 'fc1.weight' declares (dimensions [1000000000, 1000000000]) is 1.00e+18, over the limit of 50,000,000`,
  );
  const short = edited('mlp', (m) => {
    m.graph.initializer[0].dims = [12, 5];
  });
  refused(() => loadOnnxModel(short), `${short}: initializer 'fc1.weight' (float32, dimensions [12, 5]) stores 192 bytes but needs 240: the file is truncated or damaged`);
});

test('hostile: an unsupported op is refused with the node name, op type and the supported list', () => {
  const file = edited('mlp', (m) => {
    m.graph.node[1].opType = 'Cos';
  });
  refused(() => loadOnnxModel(file), new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: node '/Tanh' \\(Cos\\): this op is not supported; supported: Gemm, MatMul \\(\\+ Add of a bias\\), Conv, .*Identity, Constant$`));
});

test('hostile: external data outside the model folder is refused without opening anything, the path named', () => {
  const outside = edited('mlp', (m) => {
    const t = m.graph.initializer[0];
    t.rawData = new Uint8Array();
    t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
    t.externalData = [{ key: 'location', value: '../../../etc/passwd' }];
  });
  const dir = path.dirname(outside);
  refused(() => loadOnnxModel(outside), `${outside}: initializer 'fc1.weight' refers to external data at '../../../etc/passwd', outside the model's folder (${dir}); refused, nothing was read`);
  const absolute = edited('mlp', (m) => {
    const t = m.graph.initializer[0];
    t.rawData = new Uint8Array();
    t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
    t.externalData = [{ key: 'location', value: '/dev/zero' }];
  });
  refused(() => loadOnnxModel(absolute), /initializer 'fc1.weight' refers to external data at '\/dev\/zero', outside the model's folder .*; refused, nothing was read$/);
  const missing = edited('mlp', (m) => {
    const t = m.graph.initializer[0];
    t.rawData = new Uint8Array();
    t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
    t.externalData = [{ key: 'location', value: 'weights.bin' }];
  });
  refused(() => loadOnnxModel(missing), `${missing}: initializer 'fc1.weight': its external data file 'weights.bin' is missing (expected at ${path.join(path.dirname(missing), 'weights.bin')})`);
});

test('hostile: not a regular file, missing file, shared weights', () => {
  const dir = tmp();
  const folder = path.join(dir, 'm.onnx');
  fs.mkdirSync(folder);
  refused(() => loadOnnxModel(folder), `${folder}: this is a directory, not a regular file`);
  refused(() => loadOnnxModel(path.join(dir, 'none.onnx')), `${path.join(dir, 'none.onnx')}: file not found`);
  const shared = edited('mlp', (m) => {
    (m.graph.node[2].input as string[])[1] = 'fc1.weight';
  });
  refused(() => loadOnnxModel(shared), `${shared}: node '/fc2/Gemm' (Gemm): the initializer 'fc1.weight' is used by several nodes (shared weights are not supported)`);
});

/** max |a - b| / max(max |b|, tiny). */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 1e-30;
  for (let i = 0; i < b.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / den;
}

test('crossEntropyFromLogits: integer labels, softmax taken on the raw outputs; TF.js and ONNX Runtime match the float64 oracle', async () => {
  // A softmax output layer: the loss must still treat the outputs (probabilities) as logits.
  const ir = mlpIR([3, 5, 4], ['tanh', 'softmax']);
  const params = randomParams(ir, 3);
  const { x, xShape } = randomInputs(ir, 10, 4);
  const labels = Float32Array.from({ length: 10 }, (_, i) => (i * 7) % 4);
  const split = validateSplit({ x: Float32Array.from(x), xShape, y: labels, yShape: [10, 1] }, ir, 'crossEntropyFromLogits', 'test');
  assert.deepEqual(split.yShape, [10, 4]);
  assert.deepEqual(Array.from(split.y.subarray(4, 8)), [0, 0, 0, 1]);
  const p: RefProblem = { ir, params, x, xShape, y: Float64Array.from(split.y), yShape: split.yShape, loss: 'crossEntropyFromLogits' };
  const v = Float64Array.from({ length: ir.numParams }, (_, i) => Math.sin(i + 1));
  const want = refGradHvp(p, v);
  const before = tf.memory().numTensors;
  const obj = new Objective(ir, Float32Array.from(params), 'crossEntropyFromLogits', split);
  const ev = new LocalEvaluator(obj);
  const got = await ev.gradient();
  assert.ok(Math.abs(got.loss - want.loss) / want.loss < 1e-6, `loss ${got.loss} vs ${want.loss}`);
  assert.ok(relErr(got.grad, want.grad) < 1e-5, `gradient ${relErr(got.grad, want.grad)}`);
  assert.ok(relErr(await ev.hvp(v), want.hvp) < 1e-4, 'H v');
  ev.dispose();
  assert.equal(tf.memory().numTensors, before);
  const ort = await createOrtEvaluator(ir, Float32Array.from(params), 'crossEntropyFromLogits', split);
  assert.ok(ort.evaluator, `ONNX Runtime refused: ${ort.reason}`);
  const og = await ort.evaluator.gradient();
  assert.ok(Math.abs(og.loss - want.loss) / want.loss < 1e-6, `ORT loss ${og.loss} vs ${want.loss}`);
  assert.ok(relErr(og.grad, want.grad) < 1e-5, 'ORT gradient');
  assert.ok(relErr(await ort.evaluator.hvp(v), want.hvp) < 1e-4, 'ORT H v');
  ort.evaluator.dispose();
  // Labels outside the classes are refused.
  assert.throws(
    () => validateSplit({ x: Float32Array.from(x), xShape, y: labels.map((c) => c + 1), yShape: [10, 1] }, ir, 'crossEntropyFromLogits', 'd.npz'),
    new InputError('label 1 is 4: class indices must be integers in 0..3 for 4 outputs', 'd.npz'),
  );
});

const CLI = path.join(__dirname, '../../dist/cli.js');

for (const name of ['mlp', 'convnet', 'leaky']) {
  test(`${name}: loss, gradient, H v and top eigenvalues equal PyTorch's float64 values`, async () => {
    const r = ref(name);
    const problem = await loadProblem({ model: fixture(`${name}.onnx`), data: fixture(`${name}.npz`), loss: 'crossEntropyFromLogits' });
    assert.equal(problem.ir.numParams, r.numParams);
    assert.equal(problem.lossName, 'crossEntropyFromLogits');
    const imported = loadOnnxModel(fixture(`${name}.onnx`));
    const v = fromTorchOrder(imported, r.v, r.names);
    // The float64 oracle on the imported IR: exact up to the float32 weights and data.
    const rp: RefProblem = {
      ir: problem.ir,
      params: Float64Array.from(problem.theta),
      x: Float64Array.from(problem.train.x),
      xShape: problem.train.xShape,
      y: Float64Array.from(problem.train.y),
      yShape: problem.train.yShape,
      loss: 'crossEntropyFromLogits',
    };
    const exact = refGradHvp(rp, v);
    assert.ok(Math.abs(exact.loss - r.loss) / r.loss < 1e-9, `oracle loss ${exact.loss} vs PyTorch ${r.loss}`);
    assert.ok(relErr(toTorchOrder(imported, exact.grad, r.names), r.grad) < 1e-9, 'oracle gradient');
    assert.ok(relErr(toTorchOrder(imported, exact.hvp, r.names), r.hv) < 1e-9, 'oracle H v');
    // Basin's engines (ONNX Runtime here, TF.js with BASIN_ENGINE=tfjs), float32.
    for (const engine of ['default', 'tfjs']) {
      const saved = process.env.BASIN_ENGINE;
      if (engine === 'tfjs') process.env.BASIN_ENGINE = 'tfjs';
      try {
        const ev = await problem.evaluator({ threads: 1 });
        const g = await ev.gradient();
        assert.ok(Math.abs(g.loss - r.loss) / r.loss < 1e-6, `${engine} loss ${g.loss} vs ${r.loss}`);
        assert.ok(relErr(toTorchOrder(imported, g.grad, r.names), r.grad) < 1e-5, `${engine} gradient ${relErr(toTorchOrder(imported, g.grad, r.names), r.grad)}`);
        const hv = await ev.hvp(v);
        assert.ok(relErr(toTorchOrder(imported, hv, r.names), r.hv) < 1e-4, `${engine} H v ${relErr(toTorchOrder(imported, hv, r.names), r.hv)}`);
        const eig = await lanczos({ dim: problem.ir.numParams, matvec: (w) => ev.hvp(w) }, { k: 3, which: 'top', tol: 1e-8, maxIter: problem.ir.numParams });
        for (let i = 0; i < 3; i++) {
          const rel = Math.abs(eig.eigenvalues[i] - r.topEigenvalues[i]) / Math.abs(r.topEigenvalues[0]);
          assert.ok(rel < 1e-4, `${engine} eigenvalue ${i}: ${eig.eigenvalues[i]} vs ${r.topEigenvalues[i]}`);
        }
        ev.dispose();
      } finally {
        if (saved === undefined) delete process.env.BASIN_ENGINE;
        else process.env.BASIN_ENGINE = saved;
      }
    }
  });
}

test('ONNX problems: the loss must be named; LogSoftmax outputs take crossEntropyFromLogits only; flat C,H,W data is accepted', async () => {
  const model = fixture('convnet.onnx');
  await assert.rejects(
    loadProblem({ model, data: fixture('convnet.npz') }),
    new InputError(
      'an ONNX model holds no loss: name one (crossEntropyFromLogits for a classifier that outputs logits, as nn.CrossEntropyLoss; or meanSquaredError, categoricalCrossentropy, binaryCrossentropy)',
      model,
    ),
  );
  // x saved flat per sample ([n, C*H*W], PyTorch's C,H,W order) gives the same loss.
  const data = loadDataFile(fixture('convnet.npz'));
  const dir = tmp();
  const flat = path.join(dir, 'flat.json');
  const n = data.train.xShape[0];
  const rows = (a: Float32Array, k: number): number[][] => Array.from({ length: n }, (_, i) => Array.from(a.subarray(i * k, (i + 1) * k)));
  fs.writeFileSync(flat, JSON.stringify({ x: rows(data.train.x, 96), y: Array.from(data.train.y) }));
  const p = await loadProblem({ model, data: flat, loss: 'crossEntropyFromLogits' });
  assert.ok(Math.abs(p.objective().lossAt() - ref('convnet').loss) < 1e-5);
  const logsm = edited('mlp', (m) => {
    m.graph.node[2].output = ['z'];
    m.graph.node.push({ name: '/LogSoftmax', opType: 'LogSoftmax', input: ['z'], output: ['logits'], attribute: [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 1 }] });
  });
  const q = await loadProblem({ model: logsm, data: fixture('mlp.npz'), loss: 'crossEntropyFromLogits' });
  assert.ok(Math.abs(q.objective().lossAt() - ref('mlp').loss) < 1e-6);
  await assert.rejects(
    loadProblem({ model: logsm, data: fixture('mlp.npz'), loss: 'meanSquaredError' }),
    new InputError(
      'the graph ends in LogSoftmax (log-probabilities, for nn.NLLLoss): use the loss crossEntropyFromLogits, which equals NLLLoss on them; meanSquaredError would read the logits before it',
      logsm,
    ),
  );
});

/** A zip archive of one deflated member that declares `declared` bytes (a zip bomb when it inflates to more). */
function zipOf(name: string, content: Buffer, declared = content.length): Buffer {
  const data = zlib.deflateRawSync(content);
  const nameBuf = Buffer.from(name);
  const local = Buffer.alloc(30);
  local.writeUInt32LE(0x04034b50, 0);
  local.writeUInt16LE(8, 8);
  local.writeUInt32LE(data.length, 18);
  local.writeUInt32LE(declared, 22);
  local.writeUInt16LE(nameBuf.length, 26);
  const cd = Buffer.alloc(46);
  cd.writeUInt32LE(0x02014b50, 0);
  cd.writeUInt16LE(8, 10);
  cd.writeUInt32LE(zlib.crc32 ? zlib.crc32(content) : 0, 16);
  cd.writeUInt32LE(data.length, 20);
  cd.writeUInt32LE(declared, 24);
  cd.writeUInt16LE(nameBuf.length, 28);
  cd.writeUInt32LE(0, 42);
  const cdOffset = local.length + nameBuf.length + data.length;
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(1, 8);
  eocd.writeUInt16LE(1, 10);
  eocd.writeUInt32LE(cd.length + nameBuf.length, 12);
  eocd.writeUInt32LE(cdOffset, 16);
  return Buffer.concat([local, nameBuf, data, cd, nameBuf, eocd]);
}

test('.npz: keys chosen by name, missing keys listed, zip bombs and truncation refused', () => {
  const d = loadDataFile(fixture('mlp.npz'));
  assert.deepEqual(d.train.xShape, [48, 4]);
  assert.deepEqual(d.train.yShape, [48, 1]);
  const file = fixture('convnet.npz');
  assert.throws(() => loadDataFile(file, { xKey: 'images' }), new InputError("the archive has no array 'images' (it holds 'x', 'y'; choose the arrays with xKey and yKey)", file));
  const swapped = loadDataFile(fixture('mlp.npz'), { xKey: 'y', yKey: 'x' });
  assert.deepEqual(swapped.train.xShape, [48]);
  const dir = tmp();
  const bomb = path.join(dir, 'bomb.npz');
  fs.writeFileSync(bomb, zipOf('x.npy', Buffer.alloc(10_000_000), 1000));
  assert.throws(() => loadDataFile(bomb, { yKey: 'x' }), new InputError("not a valid .npz (zip) archive: member 'x.npy' inflates to more than the 1000 bytes it declares (a zip bomb?); refused", bomb));
  const huge = path.join(dir, 'huge.npz');
  fs.writeFileSync(huge, zipOf('x.npy', Buffer.alloc(10), 0xfffffff0));
  assert.throws(() => loadDataFile(huge, { yKey: 'x' }), /the inflated size of the arrays read from the archive is 8\.6 GB, over the limit of 4\.0 GB/);
  const cut = path.join(dir, 'cut.npz');
  fs.writeFileSync(cut, fs.readFileSync(fixture('convnet.npz')).subarray(0, 5000));
  assert.throws(() => loadDataFile(cut), new InputError('not a valid .npz (zip) archive: no end of central directory record (the file is truncated or not a zip)', cut));
  assert.throws(() => loadDataFile(fixture('mlp.npz'), { labels: ['a'] }), new InputError('label columns are chosen only in CSV data: .npz labels are an array (y, or the y key)', fixture('mlp.npz')));
});

test('CLI: basin info on an .onnx model prints the ONNX node names and the loss; bad input exits 1', () => {
  const run = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 120_000 });
  const r = run('info', '--model', fixture('convnet.onnx'), '--data', fixture('convnet.npz'), '--loss', 'crossEntropyFromLogits');
  assert.equal(r.status, 0, r.stderr);
  for (const node of ['/conv1/Conv', '/bn1/BatchNormalization', '/Add', '/pool/MaxPool', '/Flatten', '/fc/Gemm']) assert.match(r.stdout, new RegExp(`^${node.replace(/\//g, '\\/')}\\s`, 'm'));
  assert.match(r.stdout, /: 379 trainable parameters/);
  assert.match(r.stdout, /crossEntropyFromLogits = 1\.1968/);
  const cut = path.join(tmp(), 'cut.onnx');
  fs.writeFileSync(cut, fs.readFileSync(fixture('convnet.onnx')).subarray(0, 500));
  const bad = run('info', '--model', cut, '--data', fixture('convnet.npz'), '--loss', 'crossEntropyFromLogits');
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /^basin: .*cut\.onnx: not a valid ONNX model/);
});
