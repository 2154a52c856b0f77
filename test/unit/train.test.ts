/**
 * The training loop's contract: deterministic for a seed, checkpoints that round-trip, a run that
 * is cancelled resumes to the same parameters as one that was not, divergence stops cleanly with
 * the last good parameters kept, bad settings are refused, and no tensors leak.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { tf } from '../../src/engine/tf';
import { initBackend } from '../../src/engine/backend';
import { loadProblem, type Problem } from '../../src/engine/problem';
import { DEFAULT_SETTINGS, epochBatches, train } from '../../src/engine/train/run';
import { loadCheckpoint } from '../../src/engine/directions/checkpoints';
import type { ProbeRecord, RunManifest, TrainSettings } from '../../src/shared/results';

const EXAMPLE = path.join(__dirname, '../../examples/spiral');
const CLI = path.join(__dirname, '../../dist/cli.js');
let problem: Problem;

before(async () => {
  await initBackend('wasm');
  problem = await loadProblem({ model: path.join(EXAMPLE, 'model.json'), data: path.join(EXAMPLE, 'data.json') });
});

const tmp = (): string => path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'basin-train-')), 'run');
const settings = (s: Partial<TrainSettings>): TrainSettings => ({ ...DEFAULT_SETTINGS, ...s });
const strip = (r: ProbeRecord): Omit<ProbeRecord, 'ms'> => {
  const { ms: _ms, ...rest } = r;
  return rest;
};

test('epochs are seeded shuffles without replacement', () => {
  const b = epochBatches(10, 4, 3, 0);
  assert.deepEqual(b.map((x) => x.length), [4, 4, 2]);
  assert.deepEqual([...b.flatMap((x) => [...x])].sort((p, q) => p - q), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual(epochBatches(10, 4, 3, 0), b);
  assert.notDeepEqual(epochBatches(10, 4, 3, 1), b);
});

test('the same seed gives the same run; checkpoints round-trip; no tensors leak', async () => {
  const before = tf.memory().numTensors;
  const s = settings({ optimizer: 'sgd', batchSize: 32, lr: 0.3, steps: 30, probeEvery: 10, noiseEvery: 10, seed: 4 });
  const a: ProbeRecord[] = [];
  const b: ProbeRecord[] = [];
  const outA = tmp();
  await train(problem, s, outA, { onProbe: (r) => a.push(r) });
  await train(problem, s, tmp(), { onProbe: (r) => b.push(r) });
  assert.deepEqual(a.map(strip), b.map(strip));
  assert.equal(tf.memory().numTensors, before);
  // The final checkpoint reloads to the same loss as the final probe.
  const m = JSON.parse(fs.readFileSync(path.join(outA, 'manifest.json'), 'utf8')) as RunManifest;
  assert.equal(m.status, 'completed');
  assert.equal(m.settings.seed, 4);
  const last = m.checkpoints[m.checkpoints.length - 1];
  assert.equal(last.step, 30);
  const again = await loadProblem({ model: path.join(outA, last.dir, 'model.json'), data: path.join(EXAMPLE, 'data.json') });
  const obj = again.objective();
  assert.ok(Math.abs(obj.lossAt() - a[a.length - 1].loss) < 1e-6);
  obj.dispose();
  // metrics.jsonl holds exactly the streamed records.
  const lines = fs.readFileSync(path.join(outA, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as ProbeRecord);
  assert.deepEqual(lines.map(strip), a.map(strip));
  assert.ok(a[a.length - 1].sgdTerm !== undefined && a[a.length - 1].noiseScale !== undefined);
});

test('a cancelled run reports where it stopped and resumes to the same parameters', async () => {
  const s = settings({ optimizer: 'momentum', momentum: 0.9, batchSize: 50, lr: 0.05, steps: 40, probeEvery: 10, checkpointEvery: 10, seed: 1 });
  const whole = tmp();
  await train(problem, s, whole);
  const cut = tmp();
  const controller = new AbortController();
  const done = await train(problem, s, cut, { signal: controller.signal, onProbe: (r) => r.step >= 20 && controller.abort() });
  assert.equal(done.status, 'cancelled');
  assert.match(done.reason ?? '', /cancelled at step 20/);
  const m = JSON.parse(fs.readFileSync(path.join(cut, 'manifest.json'), 'utf8')) as RunManifest;
  assert.equal(m.status, 'cancelled');
  assert.equal(m.stoppedAt, 20);
  const resumed = await train(problem, s, cut, {}, { resume: true });
  assert.equal(resumed.status, 'completed');
  const a = await loadCheckpoint(path.join(whole, 'checkpoints', 'step-000040', 'model.json'));
  const b = await loadCheckpoint(path.join(cut, 'checkpoints', 'step-000040', 'model.json'));
  assert.deepEqual(Array.from(b.theta), Array.from(a.theta));
  const steps = fs.readFileSync(path.join(cut, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as ProbeRecord).step);
  assert.deepEqual(steps, [0, 10, 20, 30, 40], 'each probe once, none duplicated by the resume');
});

test('divergence stops the run with a clear reason and keeps the last good parameters', async () => {
  const out = tmp();
  const done = await train(problem, settings({ optimizer: 'gd', lr: 400, steps: 50, probeEvery: 10 }), out);
  assert.equal(done.status, 'diverged');
  assert.match(done.reason ?? '', /diverged at step \d+/);
  const good = await loadCheckpoint(path.join(out, 'checkpoints', 'last-good', 'model.json'));
  assert.ok(good.theta.every(Number.isFinite));
  const m = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8')) as RunManifest;
  assert.equal(m.status, 'diverged');
  assert.ok(fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().length > 0, 'metrics so far are kept');
});

test('bad settings are refused before any work', async () => {
  await assert.rejects(train(problem, settings({ batchSize: 1000 }), tmp()), /exceeds the 300 training samples/);
  await assert.rejects(train(problem, settings({ batchSize: 32, igr: 0.1 }), tmp()), /full-batch/);
  await assert.rejects(train(problem, settings({ lr: -1 }), tmp()), /learning rate/);
  await assert.rejects(train(problem, settings({ schedule: 'wobbly' }), tmp()), /schedule/);
});

test('basin train streams JSON probe lines ending in {"done": true, "run": DIR}; basin compare tabulates runs', () => {
  const out = tmp();
  const r = spawnSync(process.execPath, [CLI, 'train', '--model', path.join(EXAMPLE, 'model.json'), '--data', path.join(EXAMPLE, 'data.json'), '--steps', '20', '--probe-every', '10', '--lr', '0.3', '--out', out, '--json'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const last = lines[lines.length - 1];
  assert.deepEqual({ done: last.done, run: last.run }, { done: true, run: out });
  const probes = lines.filter((l) => l.lambdaMax !== undefined);
  assert.deepEqual(probes.map((p) => p.step), [0, 10, 20]);
  for (const p of probes) for (const k of ['step', 'loss', 'lambdaMax', 'threshold', 'igrTerm']) assert.ok(k in p, `${k} in probe lines`);
  assert.equal(probes[0].threshold, 2 / 0.3);
  const c = spawnSync(process.execPath, [CLI, 'compare', out, out], { encoding: 'utf8' });
  assert.equal(c.status, 0, c.stderr);
  assert.match(c.stdout, /final lambda_max/);
  const bad = spawnSync(process.execPath, [CLI, 'compare', '/nope'], { encoding: 'utf8' });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /\/nope: no manifest.json/);
});
