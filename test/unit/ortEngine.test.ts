/**
 * Choosing the engine: `--backend onnxruntime|tensorflow|wasm|cpu` in the CLI and `backend` in the
 * compute worker's run message. Unset is auto (ONNX Runtime when it loads and can run the
 * problem); `onnxruntime` requires it and refuses what it cannot run; a TF.js name runs on TF.js.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { checkToWorker } from '../../src/shared/validate';

const ROOT = path.join(__dirname, '../..');
const CLI = path.join(ROOT, 'dist/cli.js');
const SPIRAL = ['--model', path.join(ROOT, 'examples/spiral/model.json'), '--data', path.join(ROOT, 'examples/spiral/data.json')];

function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  return cliEnv({}, ...args);
}

function cliEnv(env: Record<string, string>, ...args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, BASIN_DEBUG: '', BASIN_ENGINE: '', BASIN_ORT_PROVIDERS: '', ...env } });
}

test('--backend onnxruntime runs on ONNX Runtime, a TF.js name on TF.js, no flag is auto (ONNX Runtime)', () => {
  const backendOf = (...extra: string[]): string => {
    const r = cli('eigs', ...SPIRAL, '--k', '1', '--json', ...extra);
    assert.equal(r.status, 0, r.stderr);
    return (JSON.parse(r.stdout) as { backend: string }).backend;
  };
  assert.equal(backendOf('--backend', 'onnxruntime'), 'onnxruntime');
  assert.equal(backendOf(), 'onnxruntime');
  assert.equal(backendOf('--backend', 'cpu'), 'cpu');
  const bad = cli('info', ...SPIRAL, '--backend', 'gpu');
  assert.equal(bad.status, 2);
  assert.equal(bad.stderr.trim().split('\n')[0], 'basin: --backend must be one of onnxruntime, tensorflow, wasm, cpu (got gpu)');
});

test('info names the engine that jobs use, with its loss and accuracy from that engine', () => {
  const infoOf = (...extra: string[]): { backend: string; provider?: string; lossValue: number; accuracy: number; hvpMethods: string } => {
    const r = cli('info', ...SPIRAL, '--json', ...extra);
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout);
  };
  const ort = infoOf();
  const wasm = infoOf('--backend', 'wasm');
  assert.equal(ort.backend, 'onnxruntime');
  assert.equal(ort.provider, 'cpu');
  assert.equal(wasm.backend, 'wasm');
  assert.equal(wasm.provider, undefined);
  assert.ok(Math.abs(ort.lossValue - wasm.lossValue) < 1e-6 * wasm.lossValue, `${ort.lossValue} vs ${wasm.lossValue}`);
  assert.equal(ort.accuracy, wasm.accuracy);
  assert.match(ort.hvpMethods, /^exact .* and finite differences$/);
});

test('--backend onnxruntime refuses a function loss (exit 1, naming the module); auto moves it to TF.js', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'basin-engine-'));
  const file = path.join(dir, 'fnloss.basin.ts');
  fs.writeFileSync(
    file,
    [
      'export default {',
      "  model: (tf: any) => tf.sequential({ layers: [tf.layers.dense({ inputShape: [2], units: 1 })] }),",
      '  data: () => ({ x: [[0, 1], [1, 0], [1, 1]], y: [[1], [0], [2]] }),',
      '  loss: (yTrue: any, yPred: any) => yTrue.sub(yPred).square().mean(),',
      '};',
    ].join('\n'),
  );
  const refused = cli('eigs', file, '--k', '1', '--backend', 'onnxruntime');
  assert.equal(refused.status, 1, refused.stderr);
  assert.equal(
    refused.stderr.trim(),
    `basin: ${file}: the onnxruntime engine was asked for, but it runs the named losses only (this loss is a function): use a TF.js backend (tensorflow, wasm or cpu)`,
  );
  const auto = cli('eigs', file, '--k', '1', '--json');
  assert.equal(auto.status, 0, auto.stderr);
  assert.notEqual((JSON.parse(auto.stdout) as { backend: string }).backend, 'onnxruntime');
});

test('the compute worker takes backend onnxruntime and refuses unknown names', () => {
  const msg = (backend: unknown): unknown => ({ type: 'run', id: 1, job: 'info', problem: { model: 'm.json', data: 'd.json' }, options: {}, backend });
  for (const b of ['onnxruntime', 'tensorflow', 'wasm', 'cpu']) {
    const r = checkToWorker(msg(b));
    assert.ok(r.ok && r.msg.type === 'run' && r.msg.backend === b, `${b}: ${JSON.stringify(r)}`);
  }
  assert.deepEqual(checkToWorker(msg('cuda')), { ok: false, inReplyTo: 1, error: 'invalid run message: backend must be one of onnxruntime, tensorflow, wasm, cpu (got the string "cuda")' });
});

test('results name the execution provider: cpu by default; BASIN_ORT_PROVIDERS=cuda,cpu without CUDA runs on the CPU and says why; an unknown name is refused', () => {
  const eigs = (env: Record<string, string>): { provider?: string; backend: string; backendDetail: string; eigenvalues: number[] } => {
    const r = cliEnv(env, 'eigs', ...SPIRAL, '--k', '1', '--json');
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /onnxruntime:|Failed to load/, 'no log lines of ONNX Runtime on stderr');
    return JSON.parse(r.stdout) as ReturnType<typeof eigs>;
  };
  const plain = eigs({});
  assert.equal(plain.provider, 'cpu');
  assert.match(plain.backendDetail, /^onnxruntime \d+\.\d+\.\d+ \(CPU\)/);
  assert.equal(eigs({ BASIN_ORT_PROVIDERS: 'cpu' }).provider, 'cpu');
  // This machine has no CUDA provider binaries (onnxruntime-node installed with its download skipped).
  const cuda = eigs({ BASIN_ORT_PROVIDERS: 'cuda,cpu' });
  assert.equal(cuda.backend, 'onnxruntime');
  assert.equal(cuda.provider, 'cpu');
  assert.match(cuda.backendDetail, /^onnxruntime \d+\.\d+\.\d+ \(CPU; cuda did not start: .+\)/);
  assert.equal(cuda.eigenvalues[0], plain.eigenvalues[0]);
  const onTfjs = cliEnv({}, 'eigs', ...SPIRAL, '--k', '1', '--json', '--backend', 'wasm');
  assert.equal((JSON.parse(onTfjs.stdout) as { provider?: string }).provider, undefined, 'no provider on TF.js');
  const bad = cliEnv({ BASIN_ORT_PROVIDERS: 'cuda,gpu' }, 'eigs', ...SPIRAL, '--k', '1');
  assert.equal(bad.status, 1);
  assert.equal(bad.stderr.trim(), "basin: BASIN_ORT_PROVIDERS names an unknown ONNX Runtime execution provider 'gpu' (known: cpu, cuda, tensorrt, dml, coreml, webgpu; e.g. BASIN_ORT_PROVIDERS=cuda,cpu)");
});
