// The built `basin` CLI (dist/cli.js, built by `node esbuild.js` before the tests run) as a user
// runs it: exit codes, usage errors, user errors without stack traces, and the JSON of every
// command on the example model.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { DensityResult, EigsResult, InfoResult, TraceResult } from '../../src/shared/results';
import { basin as basinCli, CLI, type Run } from '../helpers/cli';

const EXAMPLE = path.join(__dirname, '../../examples/spiral');
const MODEL = path.join(EXAMPLE, 'model.json');
const DATA = path.join(EXAMPLE, 'data.json');
const INPUTS = ['--model', MODEL, '--data', DATA];

/** The bundled CLI in its own process (test/helpers/cli.ts). */
const basin = (...args: string[]): Run => basinCli(args);

/** Runs a command that must succeed and print exactly one JSON object on stdout. */
function basinJson<T>(...args: string[]): T {
  const r = basin(...args);
  assert.equal(r.status, 0, `basin ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  const lines = r.stdout.split('\n').filter((l) => l.trim() !== '');
  assert.equal(lines.length, 1, `expected one line of JSON, got ${lines.length}`);
  return JSON.parse(lines[0]) as T;
}

function noStack(r: Run): void {
  assert.ok(!r.stderr.includes('    at '), `a stack trace was printed:\n${r.stderr}`);
  assert.ok(!/internal error/.test(r.stderr), `reported as an internal error:\n${r.stderr}`);
}

before(() => {
  assert.ok(fs.existsSync(CLI), `${CLI} is missing: build it with 'node esbuild.js' first`);
});

test('--help lists the commands; --version; no command', () => {
  const r = basin('--help');
  assert.equal(r.status, 0);
  for (const cmd of ['info', 'eigs', 'trace', 'density']) assert.match(r.stdout, new RegExp(`^  ${cmd} `, 'm'));
  assert.match(r.stdout, /Usage:/);
  assert.match(r.stdout, /--model FILE/);
  assert.equal(basin('eigs', '-h').status, 0);
  const v = basin('--version');
  assert.equal(v.status, 0);
  assert.match(v.stdout, /^\d+\.\d+\.\d+\n$/);
  const none = basin();
  assert.equal(none.status, 2);
  assert.match(none.stdout, /Usage:/);
});

test('usage errors exit 2 with a message', () => {
  const cases: [string[], RegExp][] = [
    [['eigs', '--bogus', ...INPUTS], /^basin: unknown option --bogus\n/],
    [['frobnicate', ...INPUTS], /^basin: unknown command 'frobnicate'\n/],
    [['eigs', '--k', '0', ...INPUTS], /^basin: --k must be an integer >= 1 \(got 0\)\n/],
    [['eigs', '--which', 'middle', ...INPUTS], /^basin: --which must be one of top, bottom \(got middle\)\n/],
    [['trace', '--matvecs', ...INPUTS], /^basin: --matvecs needs a value\n/],
    [['info', '--json=yes', ...INPUTS], /^basin: --json takes no value\n/],
    [['info', 'stray', ...INPUTS], /^basin: unexpected argument 'stray'\n/],
  ];
  for (const [args, message] of cases) {
    const r = basin(...args);
    assert.equal(r.status, 2, `basin ${args.join(' ')}: exit ${r.status}, ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.match(r.stderr, /Run 'basin --help' for usage\./);
    assert.equal(r.stdout, '');
    noStack(r);
  }
});

test('a missing model file exits 1 naming the file, without a stack trace', () => {
  const missing = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'basin-cli-')), 'model.json');
  const r = basin('eigs', '--json', '--model', missing, '--data', DATA);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`^basin: ${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: file not found\n`, 'm'));
  assert.equal(r.stdout, '');
  noStack(r);
  // A missing data file, an unknown loss, no --data: also user errors.
  const d = basin('info', '--model', MODEL, '--data', `${missing}.csv`);
  assert.equal(d.status, 1);
  assert.match(d.stderr, /data file not found/);
  noStack(d);
  const l = basin('info', ...INPUTS, '--loss', 'hinge');
  assert.equal(l.status, 1);
  assert.match(l.stderr, /unknown loss 'hinge'/);
  noStack(l);
  const n = basin('info', '--model', MODEL);
  assert.equal(n.status, 1);
  assert.match(n.stderr, /give the data the model is evaluated on \(data: a \.json, \.csv, \.npy or \.npz file\)/);
  noStack(n);
});

test('eigs --json --k 3', () => {
  const r = basinJson<EigsResult>('eigs', '--json', '--k', '3', '--backend', 'wasm', ...INPUTS);
  assert.equal(r.kind, 'eigs');
  assert.equal(r.eigenvalues.length, 3);
  for (let i = 1; i < 3; i++) assert.ok(r.eigenvalues[i - 1] >= r.eigenvalues[i], `not descending: ${r.eigenvalues.join(', ')}`);
  assert.ok(r.eigenvalues[0] > 0);
  assert.ok(r.hvps > 0);
  assert.ok(r.ms > 0);
  assert.equal(r.backend, 'wasm');
  assert.equal(r.hvpMethod, 'exact');
  assert.equal(r.params, 1251);
  assert.equal(r.samples, 300);
  assert.equal(r.lossName, 'categoricalCrossentropy');
  assert.equal(r.which, 'top');
  assert.equal(r.seed, 0);
  assert.equal(r.errorBounds.length, 3);
});

test('eigs without --json prints a table', () => {
  const r = basin('eigs', '--k', '2', '--quiet', ...INPUTS);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /Top 2 Hessian eigenvalues/);
  assert.match(r.stdout, /1,?251 parameters, 300 samples/);
  assert.equal(r.stderr, '');
});

test('trace --json --method hutchinson --matvecs 10', () => {
  const r = basinJson<TraceResult>('trace', '--json', '--method', 'hutchinson', '--matvecs', '10', ...INPUTS);
  assert.equal(r.kind, 'trace');
  assert.equal(r.method, 'hutchinson');
  assert.equal(r.hvps, 10);
  assert.ok(Number.isFinite(r.trace));
  assert.ok(Number.isFinite(r.stderr) && r.stderr >= 0);
});

test('density --json --steps 20', () => {
  // The default grid (10000 points) makes the JSON larger than a pipe's buffer.
  for (const runs of ['1', '2']) {
    const r = basinJson<DensityResult>('density', '--json', '--steps', '20', '--runs', runs, ...INPUTS);
    assert.equal(r.kind, 'density');
    assert.equal(r.steps, 20);
    assert.equal(r.runs, Number(runs));
    assert.ok(r.grid.length > 1);
    assert.equal(r.grid.length, r.density.length);
    assert.equal(r.nodes.length, r.runs);
    assert.equal(r.weights.length, r.runs);
    for (let k = 0; k < r.runs; k++) {
      assert.equal(r.nodes[k].length, r.weights[k].length);
      const sum = r.weights[k].reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(sum - 1) < 1e-6, `weights of run ${k} sum to ${sum}`);
      assert.ok(r.weights[k].every((w) => w >= 0));
    }
    assert.ok(r.density.every((v) => Number.isFinite(v) && v >= 0));
  }
});

test('info --json', () => {
  const r = basinJson<InfoResult>('info', '--json', ...INPUTS);
  assert.equal(r.kind, 'info');
  assert.equal(r.params, 1251);
  assert.equal(r.samples, 300);
  assert.deepEqual(r.layers.map((l) => l.params), [0, 96, 1056, 99]);
  assert.ok(r.accuracy !== undefined && r.accuracy > 0.5);
});

test('--out FILE writes the same JSON', () => {
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'basin-cli-')), 'sub', 'eigs.json');
  const printed = basinJson<EigsResult>('eigs', '--json', '--k', '2', '--out', out, ...INPUTS);
  assert.ok(fs.existsSync(out), `${out} was not written`);
  assert.deepEqual(JSON.parse(fs.readFileSync(out, 'utf8')) as EigsResult, printed);
  // Without --json the table is printed and the file is still written.
  const out2 = path.join(path.dirname(out), 'info.json');
  const r = basin('info', '--out', out2, ...INPUTS);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /wrote /);
  assert.equal((JSON.parse(fs.readFileSync(out2, 'utf8')) as InfoResult).params, 1251);
});

test('a result whose --out cannot be written is still printed; an unwritable report path is named', () => {
  const bad = '/proc/basin-no-such/eigs.json';
  const r = basin('eigs', '--json', '--k', '2', '--out', bad, ...INPUTS);
  assert.equal(r.status, 1, r.stderr);
  const printed = JSON.parse(r.stdout.trim()) as EigsResult;
  assert.equal(printed.eigenvalues.length, 2);
  assert.equal(r.stderr.trim().split('\n').pop(), `basin: ${bad}: cannot create the folder /proc/basin-no-such (ENOENT)`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'basin-cli-'));
  const result = path.join(dir, 'eigs.json');
  fs.writeFileSync(result, JSON.stringify(printed));
  const rep = basin('report', result, '--out', '/proc/basin-no-such/report.html');
  assert.equal(rep.status, 1, rep.stderr);
  assert.match(rep.stderr, /^basin: \/proc\/basin-no-such\/report\.html: cannot create the folder/);
  noStack(rep);
});

test('an option the command does not take is an error naming the commands that take it', () => {
  const r = basin('eigs', '--rho', '0.3', ...INPUTS);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /^basin: --rho does not apply to 'eigs' \(it is an option of flatness, train\)/);
  const s = basin('slice', '--k', '3', ...INPUTS);
  assert.equal(s.status, 2);
  assert.match(s.stderr, /--k does not apply to 'slice' \(it is an option of eigs\)/);
});

test('the same --seed gives the same eigenvalues', () => {
  const args = ['eigs', '--json', '--k', '2', '--seed', '17', '--max-iter', '30', ...INPUTS];
  const a = basinJson<EigsResult>(...args);
  const b = basinJson<EigsResult>(...args);
  assert.equal(a.seed, 17);
  assert.deepEqual(a.eigenvalues, b.eigenvalues);
  assert.equal(a.hvps, b.hvps);
});

test('Ctrl-C stops a long job cleanly: exit 130, a message, no stack trace', async () => {
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, [CLI, 'density', ...INPUTS, '--steps', '400', '--runs', '50', '--backend', 'wasm'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  // Wait until the job is under way (its first progress line), then interrupt.
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no progress within 30 s: ${stderr}`)), 30_000);
    child.stderr.on('data', () => {
      if (stderr.includes('basin:')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  child.kill('SIGINT');
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  assert.equal(code, 130);
  assert.match(stderr, /cancelled/);
  assert.doesNotMatch(stderr, /\n\s+at /);
});

test('slice and surface: JSON grids, CSV, directions named, bad ranges refused', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'basin-cli-grid-'));
  const csv = path.join(dir, 'slice.csv');
  const s = basinJson<import('../../src/shared/results').SliceResult>('slice', ...INPUTS, '--json', '--dir', 'eigen,random', '--x', '-0.5:0.5:5', '--csv', csv);
  assert.equal(s.kind, 'slice');
  assert.deepEqual(s.x, [-0.5, -0.25, 0, 0.25, 0.5]);
  assert.equal((s.loss as number[][]).length, 2);
  assert.deepEqual(s.directions.map((d) => d.kind), ['eigen1', 'random']);
  assert.equal(s.directions[1].norm, 'filter');
  // At x = 0 every curve is the model's own loss.
  for (const curve of s.loss as number[][]) assert.ok(Math.abs(curve[2] - s.lossValue) < 1e-6);
  const rows = fs.readFileSync(csv, 'utf8').trim().split('\n');
  assert.equal(rows[0], 'direction,x,loss,accuracy,test_loss,test_accuracy');
  assert.equal(rows.length, 1 + 2 * 5);
  const surf = basinJson<import('../../src/shared/results').SurfaceResult>('surface', ...INPUTS, '--json', '--x', '-1:1:5', '--y', '-0.5:0.5:3', '--seed', '3');
  assert.equal(surf.loss.length, 3);
  assert.equal(surf.loss[0].length, 5);
  assert.equal(surf.seed, 3);
  assert.ok(Math.abs((surf.loss[1][2] ?? NaN) - surf.lossValue) < 1e-6, 'the centre is the model itself');
  const bad = basin('surface', ...INPUTS, '--x', '1:-1:5');
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /inverted range/);
  noStack(bad);
});
