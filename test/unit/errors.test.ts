// Whose an error is: user errors (InputError, UserCodeError) are BasinErrors, printed by the CLI
// as `basin: <message>` with exit 1; an InternalError is a bug (exit 70). Engine messages name no
// CLI flag (the extension shows them too). And a model or loss TF.js cannot differentiate twice,
// asked for exact Hessian-vector products, is the user's error (exit 1), not an internal one.
// The CLI cases run the built bundle (dist/cli.js, `node esbuild.js`) on models written to
// temporary folders here.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { EigsResult } from '../../src/shared/results';
import { describeFailure } from '../../src/cli/commands';
import { initBackend } from '../../src/engine/backend';
import { BasinError, InputError, InternalError, UserCodeError } from '../../src/engine/errors';
import { selectHessian } from '../../src/engine/hvp/operators';
import { tf, tfl } from '../../src/engine/tf';
import { basin as basinCli, CLI, type Run } from '../helpers/cli';

const SRC = path.join(__dirname, '../../src/engine');

/** The bundled CLI in its own process (test/helpers/cli.ts). */
const basin = (...args: string[]): Run => basinCli(args, 120_000);

/** The last line the CLI printed on stderr (progress lines come before it). */
const lastLine = (r: Run): string => r.stderr.trimEnd().split('\n').at(-1) ?? '';

const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 'basin-errors-'));

/** A small convnet whose max pooling overlaps (pool 3, stride 2): MaxPoolGrad has no gradient. */
async function overlappingPoolModel(): Promise<{ model: string; data: string }> {
  await initBackend('wasm');
  const L = tfl.layers;
  const m = tfl.sequential({
    layers: [
      L.conv2d({ inputShape: [6, 6, 1], filters: 2, kernelSize: 3, padding: 'same', activation: 'tanh', kernelInitializer: tfl.initializers.glorotNormal({ seed: 1 }) }),
      L.maxPooling2d({ poolSize: 3, strides: 2 }),
      L.flatten({}),
      L.dense({ units: 2, activation: 'softmax', kernelInitializer: tfl.initializers.glorotNormal({ seed: 2 }) }),
    ],
  });
  let saved: tf.io.ModelArtifacts | undefined;
  await m.save(
    tf.io.withSaveHandler(async (a) => {
      saved = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  m.dispose();
  assert.ok(saved?.weightData && saved.weightSpecs);
  const dir = tmp();
  const wd = saved.weightData;
  fs.writeFileSync(path.join(dir, 'w.bin'), Array.isArray(wd) ? Buffer.concat(wd.map((d) => Buffer.from(d))) : Buffer.from(wd));
  fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify({ modelTopology: saved.modelTopology, weightsManifest: [{ paths: ['w.bin'], weights: saved.weightSpecs }] }));
  const x = Array.from({ length: 4 }, (_, n) => Array.from({ length: 6 }, (_, i) => Array.from({ length: 6 }, (_, j) => [Math.sin(n + i * 6 + j)])));
  fs.writeFileSync(path.join(dir, 'data.json'), JSON.stringify({ x, y: [[1, 0], [0, 1], [1, 0], [0, 1]] }));
  return { model: path.join(dir, 'model.json'), data: path.join(dir, 'data.json') };
}

/**
 * An experiment module whose model is a plain dense layer (twice differentiable) but whose custom
 * loss runs an overlapping max pooling over the residuals: only the loss cannot be differentiated
 * twice, which no check of the model's layers can see before the first product.
 */
function poolingLossModule(): string {
  const file = path.join(tmp(), 'pool.basin.js');
  fs.writeFileSync(
    file,
    `let T;
module.exports = {
  model(tf) {
    T = tf;
    return tf.sequential({ layers: [tf.layers.dense({ inputShape: [2], units: 3, activation: 'softmax', kernelInitializer: tf.initializers.glorotNormal({ seed: 1 }) })] });
  },
  data(tf) {
    return { x: tf.tensor2d([[0, 1], [1, 0], [1, 1]]), y: tf.tensor2d([[1, 0, 0], [0, 1, 0], [0, 0, 1]]) };
  },
  loss(yTrue, yPred) {
    const r = T.reshape(T.sub(yPred, yTrue), [1, 3, 3, 1]);
    return T.mean(T.square(T.maxPool(r, 2, 1, 'same')));
  },
};
`,
  );
  return file;
}

const NOT_TWICE =
  'exact Hessian-vector products are not available for this model: TF.js cannot differentiate MaxPoolGrad (the gradient of an op in the model or its loss) a second time; choose finite differences or auto (hvp: fd or auto)';

before(() => {
  assert.ok(fs.existsSync(CLI), `${CLI} is missing: build it with 'node esbuild.js' first`);
});

test('InputError and UserCodeError are BasinErrors naming the file; InternalError is not one', () => {
  const input = new InputError('holds no samples', 'd.csv');
  assert.ok(input instanceof BasinError && input instanceof Error);
  assert.equal(input.message, 'd.csv: holds no samples');
  assert.equal(input.file, 'd.csv');
  assert.equal(input.name, 'InputError');
  const code = new UserCodeError('data(tf) threw: boom (line 3)', 'e.basin.ts');
  assert.ok(code instanceof BasinError);
  assert.equal(code.message, 'e.basin.ts: data(tf) threw: boom (line 3)');
  assert.equal(code.name, 'UserCodeError');
  assert.equal(new InputError('no file').message, 'no file');
  assert.equal(new InputError('no file').file, undefined);
  const bug = new InternalError('lanczos: basis slot 3 of 2');
  assert.ok(bug instanceof Error);
  assert.ok(!(bug instanceof BasinError));
  assert.equal(bug.name, 'InternalError');
  // The CLI's mapping: user errors exit 1 with the message alone, an internal error exits 70.
  assert.deepEqual(describeFailure(input), { code: 1, text: 'basin: d.csv: holds no samples\n' });
  assert.deepEqual(describeFailure(code), { code: 1, text: 'basin: e.basin.ts: data(tf) threw: boom (line 3)\n' });
  const internal = describeFailure(bug);
  assert.equal(internal.code, 70);
  assert.match(internal.text, /^basin: internal error: lanczos: basis slot 3 of 2\n/);
});

test('a loss TF.js cannot differentiate twice, with exact products or the GGN: exit 1 with the op named (was exit 70)', () => {
  const mod = poolingLossModule();
  const r = basin('eigs', mod, '--hvp', 'exact', '--backend', 'wasm');
  assert.equal(r.status, 1, r.stderr);
  assert.equal(lastLine(r), `basin: ${NOT_TWICE}`);
  assert.ok(!r.stderr.includes('internal error') && !r.stderr.includes('    at '), r.stderr);
  assert.equal(r.stdout, '');
  // The same for the trace (another command on the same products).
  const t = basin('trace', mod, '--hvp', 'exact', '--backend', 'wasm', '--matvecs', '4');
  assert.equal(t.status, 1, t.stderr);
  assert.equal(lastLine(t), `basin: ${NOT_TWICE}`);
  // The generalized Gauss-Newton needs the loss's own second derivative: the module's fault, named.
  const g = basin('eigs', mod, '--curvature', 'ggn', '--backend', 'wasm');
  assert.equal(g.status, 1, g.stderr);
  assert.equal(
    lastLine(g),
    `basin: ${mod}: loss(yTrue, yPred) cannot be differentiated twice with respect to yPred: TF.js cannot differentiate MaxPoolGrad (the gradient of an op it uses); this curvature needs the loss's second derivative (the empirical Fisher does not)`,
  );
  // auto falls back to finite differences and says why, in the words of the refusal.
  const a = basin('eigs', mod, '--hvp', 'auto', '--backend', 'wasm', '--json');
  assert.equal(a.status, 0, a.stderr);
  const res = JSON.parse(a.stdout) as EigsResult;
  assert.equal(res.hvpMethod, 'fd');
  assert.equal(res.hvpReason, 'exact products failed (TF.js cannot differentiate MaxPoolGrad (the gradient of an op in the model or its loss) a second time)');
});

test('exact products on overlapping max pooling: refused before any product, exit 1', async () => {
  const f = await overlappingPoolModel();
  const r = basin('eigs', '--hvp', 'exact', '--backend', 'wasm', '--model', f.model, '--data', f.data);
  assert.equal(r.status, 1, r.stderr);
  assert.equal(
    lastLine(r),
    "basin: exact Hessian-vector products are not available for this model: layer 'max_pooling2d_MaxPooling2D1' is an overlapping or padded max pooling (MaxPoolGrad has no gradient); choose finite differences or auto (hvp: fd or auto)",
  );
});

test('selectHessian refuses with an InputError, and a product that fails otherwise stays a bug', async () => {
  await initBackend('wasm');
  const failing = (message: string): Parameters<typeof selectHessian>[0] =>
    ({
      dim: 2,
      secondOrder: () => ({ ok: true }),
      hvp: () => Promise.reject(new Error(message)),
    }) as unknown as Parameters<typeof selectHessian>[0];
  const sel = await selectHessian(failing('Cannot compute gradient: gradient function not found for LRNGrad.'), 'exact');
  await assert.rejects(sel.op.matvec(new Float64Array([1, 0])), (e: unknown) => {
    assert.ok(e instanceof InputError);
    assert.equal(
      e.message,
      'exact Hessian-vector products are not available for this model: TF.js cannot differentiate LRNGrad (the gradient of an op in the model or its loss) a second time; choose finite differences or auto (hvp: fd or auto)',
    );
    return true;
  });
  // Any other failure is passed on unchanged (not dressed up as the user's error).
  const other = await selectHessian(failing('out of memory'), 'exact');
  await assert.rejects(other.op.matvec(new Float64Array([1, 0])), (e: unknown) => !(e instanceof BasinError) && (e as Error).message === 'out of memory');
});

test('a missing data file or labels: the messages name the option, not a CLI flag', () => {
  const dir = tmp();
  const r = basin('info', '--model', path.join(dir, 'model.json'));
  assert.equal(r.status, 1, r.stderr);
  assert.equal(r.stderr, `basin: ${path.join(dir, 'model.json')}: give the data the model is evaluated on (data: a .json, .csv, .npy or .npz file)\n`);
  const x = path.join(dir, 'x.npy');
  fs.writeFileSync(x, npy([2, 1], [1, 2]));
  const n = basin('info', '--model', path.join(dir, 'model.json'), '--data', x);
  assert.equal(n.status, 1, n.stderr);
  assert.equal(n.stderr, `basin: ${x}: give the labels too: name both files (data: x.npy,y.npy)\n`);
});

/** A little-endian float32 .npy file. */
function npy(shape: number[], values: number[]): Buffer {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')},), }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
  const pre = Buffer.alloc(10);
  Buffer.from('\x93NUMPY', 'latin1').copy(pre);
  pre[6] = 1;
  pre.writeUInt16LE(header.length, 8);
  return Buffer.concat([pre, Buffer.from(header, 'latin1'), Buffer.from(new Float32Array(values).buffer)]);
}

/** Every string in `text` (quotes and template literals, outside comments), roughly. */
function stringLiterals(text: string): string[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  return [...code.matchAll(/'(?:[^'\\\n]|\\.)*'|`(?:[^`\\]|\\.)*`/g)].map((m) => m[0]);
}

function engineFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? engineFiles(path.join(dir, d.name)) : d.name.endsWith('.ts') ? [path.join(dir, d.name)] : []));
}

test('no engine message names a CLI flag', () => {
  // Another tool's flag, not Basin's.
  const allowed = ['tensorflowjs_converter --output_format'];
  const found: string[] = [];
  for (const file of engineFiles(SRC)) {
    for (const s of stringLiterals(fs.readFileSync(file, 'utf8'))) {
      if (!/(^|[\s('"`])--[a-z]/.test(s)) continue;
      if (allowed.some((a) => s.includes(a))) continue;
      found.push(`${path.relative(SRC, file)}: ${s}`);
    }
  }
  assert.deepEqual(found, []);
});
