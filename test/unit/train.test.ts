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
import { DEFAULT_SETTINGS, epochBatches, KEEP_TIME_CHECKPOINTS, train, validateSettings } from '../../src/engine/train/run';
import { openRunForResume } from '../../src/engine/train/resume';
import { decodeState } from '../../src/engine/train/state';
import { loadCheckpoint } from '../../src/engine/directions/checkpoints';
import { BasinError } from '../../src/engine/errors';
import { checkManifest } from '../../src/shared/runDir';
import type { ProbeRecord, RunManifest, TrainSettings } from '../../src/shared/results';

const EXAMPLE = path.join(__dirname, '../../examples/spiral');
const EDGE = path.join(__dirname, '../../examples/edge-of-stability.basin.ts');
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
  assert.equal(done.reason, 'cancelled at step 20; the run can be resumed from checkpoints/step-000020');
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

const readManifest = (dir: string): RunManifest => JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as RunManifest;
const readMetrics = (dir: string): ProbeRecord[] => fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as ProbeRecord);
const weights = (dir: string, label: string): Buffer => fs.readFileSync(path.join(dir, 'checkpoints', label, 'weights.bin'));

test('last-good holds the last parameters whose loss passed the divergence test, with their optimizer state', async () => {
  // The case: lr 1.2 on the edge-of-stability model diverges at step 8 with loss 23731.9;
  // last-good used to hold the parameters of that loss.
  const edge = await loadProblem({ experiment: EDGE });
  const out = tmp();
  const s = settings({ optimizer: 'gd', lr: 1.2, steps: 60, probeEvery: 20, checkpointEvery: 4 });
  const done = await train(edge, s, out);
  assert.equal(done.status, 'diverged');
  assert.equal(done.steps, 8);
  const m = readManifest(out);
  const entry = m.checkpoints.find((c) => c.by === 'last-good');
  assert.ok(entry && entry.loss !== undefined, 'the manifest lists last-good with its loss');
  assert.equal(entry.dir, path.join('checkpoints', 'last-good'));
  assert.equal(entry.step, 7);
  const recorded = readMetrics(out).find((r) => r.step === 7);
  assert.ok(recorded);
  assert.equal(entry.loss, recorded.loss, 'the loss recorded for step 7');
  const threshold = s.divergeFactor * (m.initialLoss as number);
  assert.ok(Number.isFinite(entry.loss) && entry.loss < threshold, `${entry.loss} under ${threshold}`);
  assert.equal(done.reason, `diverged at step 8: loss 23731.890625 (initial 0.6348); the last good parameters (step 7, loss ${entry.loss.toPrecision(4)}) are in checkpoints/last-good`);
  // The saved parameters give back the loss recorded for their step.
  const saved = decodeState(JSON.parse(fs.readFileSync(path.join(out, entry.dir, 'optimizer.json'), 'utf8'))) as { theta: Float64Array; optimizer: { step: number } };
  assert.equal(saved.optimizer.step, 7, 'the optimizer state of step 7');
  const obj = edge.objective();
  const loss = obj.lossAt(Float32Array.from(saved.theta));
  obj.dispose();
  assert.ok(Math.abs(loss - recorded.loss) <= 1e-6 * recorded.loss, `${loss} vs ${recorded.loss}`);
  // Resuming the diverged run continues from last-good (not from step 8's checkpoint, whose loss
  // failed) with its optimizer state, and diverges at the same step with the same loss.
  assert.deepEqual(m.checkpoints.map((c) => [c.step, c.by]), [[4, 'steps'], [8, 'steps'], [7, 'last-good']]);
  assert.deepEqual(openRunForResume(out).notes, [
    'the run diverged at step 8: resuming from its last good parameters',
    'resuming at step 7 from checkpoints/last-good; 1 step after it is redone',
  ]);
  const again = await train(edge, s, out, {}, { resume: true });
  assert.equal(again.reason, done.reason);
});

test('last-good reloads with Basin\'s loader to the loss recorded for its step', async () => {
  const out = tmp();
  const done = await train(problem, settings({ optimizer: 'gd', lr: 200, steps: 20, probeEvery: 10 }), out);
  assert.match(done.reason ?? '', /^diverged at step 3: loss [\d.]+ \(initial 0\.2554\); the last good parameters \(step 2, loss [\d.]+\) are in checkpoints\/last-good$/);
  const recorded = readMetrics(out).find((r) => r.step === 2);
  assert.ok(recorded && recorded.loss < DEFAULT_SETTINGS.divergeFactor * (readManifest(out).initialLoss as number));
  const good = await loadProblem({ model: path.join(out, 'checkpoints', 'last-good', 'model.json'), data: path.join(EXAMPLE, 'data.json') });
  const obj = good.objective();
  const loss = obj.lossAt();
  obj.dispose();
  assert.ok(Number.isFinite(loss) && Math.abs(loss - recorded.loss) <= 1e-6 * recorded.loss, `${loss} vs ${recorded.loss}`);
});

test('time-cadence checkpoints: the newest few are kept, step-cadence and final ones all', async () => {
  const out = tmp();
  // A cadence shorter than any step: a time checkpoint after every step.
  const s = settings({ optimizer: 'adam', lr: 0.01, steps: 24, probeEvery: 10, checkpointEvery: 10, checkpointSeconds: 1e-9 });
  await train(problem, s, out);
  const m = readManifest(out);
  const by = (k: string): number[] => m.checkpoints.filter((c) => c.by === k).map((c) => c.step);
  assert.deepEqual(by('steps'), [10, 20]);
  assert.deepEqual(by('time'), [21, 22, 23]);
  assert.equal(KEEP_TIME_CHECKPOINTS, 3);
  assert.deepEqual(by('final'), [24]);
  assert.deepEqual(fs.readdirSync(path.join(out, 'checkpoints')).sort(), m.checkpoints.map((c) => path.basename(c.dir)).sort(), 'pruned directories are removed');
  // 0 turns the time cadence off; settings are checked.
  const off = tmp();
  await train(problem, settings({ steps: 5, probeEvery: 5, checkpointSeconds: 0 }), off);
  assert.deepEqual(readManifest(off).checkpoints.map((c) => c.step), [5]);
  assert.throws(() => validateSettings(settings({ checkpointSeconds: -1 }), 300), /the checkpoint cadence in seconds must be a number >= 0 \(got -1\)/);
  assert.throws(() => validateSettings(settings({ checkpointEvery: 1.5 }), 300), /the checkpoint cadence in steps must be a whole number >= 0 \(got 1.5\)/);
  assert.equal(validateSettings({ ...settings({}), checkpointSeconds: undefined }, 300).checkpointSeconds, 30, 'undefined: the default');
});

test('a run directory is never overwritten by a new run', async () => {
  const out = tmp();
  await train(problem, settings({ steps: 3, probeEvery: 5 }), out);
  await assert.rejects(train(problem, settings({ steps: 3 }), out), (e: Error) => {
    assert.ok(e instanceof BasinError);
    assert.equal(e.message, `${out}: already holds a run (completed at step 3); resume it, or choose another run directory`);
    return true;
  });
});

/** A run of 40 full-batch momentum steps with checkpoints every 10, and a copy cut as a kill at step 33 leaves it. */
async function killedRun(): Promise<{ whole: string; cut: string; s: TrainSettings }> {
  const s = settings({ optimizer: 'momentum', lr: 0.1, steps: 40, probeEvery: 10, checkpointEvery: 10, checkpointSeconds: 0 });
  const whole = tmp();
  await train(problem, s, whole);
  const cut = tmp();
  fs.cpSync(whole, cut, { recursive: true });
  const m = readManifest(cut);
  const { stoppedAt: _s, reason: _r, ...running } = { ...m, status: 'running' as const, checkpoints: m.checkpoints.filter((c) => c.step <= 30) };
  fs.writeFileSync(path.join(cut, 'manifest.json'), JSON.stringify(running));
  fs.rmSync(path.join(cut, 'checkpoints', 'step-000040'), { recursive: true });
  const lines = fs.readFileSync(path.join(cut, 'metrics.jsonl'), 'utf8').split('\n');
  // Steps 0..32 whole, step 33's line cut in the middle.
  fs.writeFileSync(path.join(cut, 'metrics.jsonl'), `${lines.slice(0, 33).join('\n')}\n${lines[33].slice(0, 20)}`);
  return { whole, cut, s };
}

test('resume repairs a cut metrics line and falls back from a damaged checkpoint, to the same weights', async () => {
  const { whole, cut, s } = await killedRun();
  const cut2 = `${cut}2`;
  fs.cpSync(cut, cut2, { recursive: true });
  const opened = openRunForResume(cut);
  assert.deepEqual(opened.notes, [
    'metrics.jsonl: dropped its last line, cut short when the run stopped (20 bytes)',
    'resuming at step 30 from checkpoints/step-000030; 3 steps after it are redone',
  ]);
  assert.deepEqual(opened.problem, { model: path.join(EXAMPLE, 'model.json'), data: path.join(EXAMPLE, 'data.json') });
  assert.deepEqual(opened.settings, s);
  assert.equal(fs.readFileSync(path.join(cut, 'metrics.jsonl'), 'utf8'), fs.readFileSync(path.join(cut2, 'metrics.jsonl'), 'utf8'), 'openRunForResume writes nothing');
  const done = await train(problem, s, cut, {}, { resume: true });
  assert.equal(done.status, 'completed');
  assert.deepEqual(weights(cut, 'step-000040'), weights(whole, 'step-000040'));
  assert.deepEqual(readMetrics(cut).map((r) => [r.step, r.loss]), readMetrics(whole).map((r) => [r.step, r.loss]), 'each step once, the same losses');
  assert.equal(readManifest(cut).resumedFrom, 30);

  // The newest checkpoint's optimizer.json cut short: back to step 20.
  const opt = path.join(cut2, 'checkpoints', 'step-000030', 'optimizer.json');
  fs.writeFileSync(opt, fs.readFileSync(opt, 'utf8').slice(0, 100));
  const notes = openRunForResume(cut2).notes;
  assert.equal(notes.length, 4);
  assert.match(notes[1], /^checkpoints\/step-000030\/optimizer.json is not valid JSON \(.+\): checkpoints\/step-000030 is damaged; removing it$/);
  assert.deepEqual(notes.slice(2), ['falling back to the previous checkpoint, checkpoints/step-000020', 'resuming at step 20 from checkpoints/step-000020; 13 steps after it are redone']);
  // A truncated weights.bin at step 20 as well: back to step 10.
  const bin = path.join(cut2, 'checkpoints', 'step-000020', 'weights.bin');
  fs.truncateSync(bin, 100);
  assert.match(openRunForResume(cut2).notes[2], /^checkpoints\/step-000020\/weights.bin is 100 bytes; model.json says \d+: checkpoints\/step-000020 is damaged; removing it$/);
  await train(problem, s, cut2, {}, { resume: true });
  assert.deepEqual(weights(cut2, 'step-000040'), weights(whole, 'step-000040'));
  assert.deepEqual(readManifest(cut2).checkpoints.map((c) => c.step), [10, 20, 30, 40], 'the damaged checkpoints were rewritten by the replay');
  assert.deepEqual(readMetrics(cut2).map((r) => r.step), readMetrics(whole).map((r) => r.step));
});

test('with no checkpoint the run restarts from step 0, checking it has the same initial parameters', async () => {
  const { whole, cut, s } = await killedRun();
  const m = readManifest(cut);
  fs.writeFileSync(path.join(cut, 'manifest.json'), JSON.stringify({ ...m, checkpoints: [] }));
  assert.equal(openRunForResume(cut).notes[1], 'resuming at step 0 from the initial parameters (no checkpoint was written); 33 steps after it are redone');
  const bad = `${cut}-other`;
  fs.cpSync(cut, bad, { recursive: true });
  fs.writeFileSync(path.join(bad, 'manifest.json'), JSON.stringify({ ...m, checkpoints: [], initHash: 'f'.repeat(64) }));
  await assert.rejects(train(problem, s, bad, {}, { resume: true }), {
    message: `${path.join(EXAMPLE, 'model.json')}: the run has no usable checkpoint, and these initial parameters are not the ones it started from (was the model changed?): start a new run`,
  });
  await train(problem, s, cut, {}, { resume: true });
  assert.deepEqual(weights(cut, 'step-000040'), weights(whole, 'step-000040'));
  await assert.rejects(train(problem, { ...s, steps: 30 }, whole, {}, { resume: true }), {
    message: `${whole}: the run is at step 40 (checkpoints/step-000040), past the 30 steps asked for: ask for 40 or more`,
  });
});

test('a damaged manifest is refused naming the file and the field', async () => {
  const { cut } = await killedRun();
  const mf = path.join(cut, 'manifest.json');
  const m = readManifest(cut);
  assert.equal(checkManifest({ ...m, settings: { ...m.settings, lr: 'fast' } }), 'is damaged: settings.lr must be a positive number (got "fast")');
  assert.equal(checkManifest({ ...m, checkpoints: [{ step: 3, dir: '../../etc' }] }), 'is damaged: checkpoints[0].dir must be a directory under checkpoints/ (got "../../etc")');
  assert.equal(checkManifest([]), 'is not a Basin run manifest (no "kind": "basin-run")');
  fs.writeFileSync(mf, JSON.stringify({ ...m, params: -1, status: 'sleeping' }));
  assert.throws(() => openRunForResume(cut), {
    message: `${mf}: is damaged: params must be a whole number >= 1 (got -1); status must be one of running, completed, diverged, cancelled, failed (got "sleeping"); the run cannot be resumed: start a new run`,
  });
  fs.writeFileSync(mf, '{"kind": "basin-run", "sett');
  assert.throws(() => openRunForResume(cut), (e: Error) => e instanceof BasinError && e.message.startsWith(`${mf}: is not valid JSON (`));
  assert.throws(() => openRunForResume(path.join(cut, 'nope')), { message: `${path.join(cut, 'nope')}: no such run directory` });
  await assert.rejects(train(problem, settings({}), cut, {}, { resume: true }), (e: Error) => e instanceof BasinError && e.message.startsWith(`${mf}: is not valid JSON (`));
});
