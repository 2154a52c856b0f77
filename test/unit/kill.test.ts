/**
 * Runs survive kills: the real CLI (dist/cli.js, built by `node esbuild.js`) is killed at seeded
 * random moments with SIGKILL and SIGTERM, then resumed to completion, and the final weights must
 * equal an uninterrupted run's byte for byte; damaged run directories are repaired or refused with
 * a message naming the file, never an internal error.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import type { ProbeRecord, RunManifest } from '../../src/shared/results';

const CLI = path.join(__dirname, '../../dist/cli.js');
const EDGE = path.join(__dirname, '../../examples/edge-of-stability.basin.ts');
const STEPS = 200;
/** Full-batch gradient descent on the edge-of-stability model: about 15 ms a step, 3 s a run. */
const TRAIN = ['train', EDGE, '--steps', String(STEPS), '--probe-every', '40', '--backend', 'wasm'];
const FINAL = `step-${String(STEPS).padStart(6, '0')}`;

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the CLI. With `kill`, sends the signal `afterMs` after `lines` lines on stdout (1 by
 * default: with --json the first is a step's; so the run is training whatever the load on the
 * machine), unless it has exited by then.
 */
function cli(args: string[], kill?: { signal: NodeJS.Signals; afterMs: number; lines?: number }): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, BASIN_DEBUG: '' } });
    let stdout = '';
    let stderr = '';
    let timer: NodeJS.Timeout | undefined;
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (kill && !timer && stdout.split('\n').length > (kill.lines ?? 1)) timer = setTimeout(() => child.kill(kill.signal), kill.afterMs);
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Seeded moments (mulberry32), so a failure can be replayed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'basin-kill-'));
let n = 0;
const fresh = (): string => path.join(root, `run${n++}`);
const manifestOf = (dir: string): RunManifest => JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as RunManifest;
const metricsOf = (dir: string): [number, number][] =>
  fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as ProbeRecord).map((r) => [r.step, r.loss]);
const finalWeights = (dir: string): Buffer => fs.readFileSync(path.join(dir, 'checkpoints', FINAL, 'weights.bin'));
const ok = (r: Exit): void => assert.equal(r.code, 0, `exit ${r.code} ${r.signal ?? ''}\n${r.stderr}`);

/** The uninterrupted run, checkpoints every 30 steps and none by time. */
let reference: string;

before(async () => {
  reference = fresh();
  ok(await cli([...TRAIN, '--checkpoint-every', '30', '--checkpoint-seconds', '0', '--out', reference, '--json']));
  assert.deepEqual(manifestOf(reference).checkpoints.map((c) => c.step), [30, 60, 90, 120, 150, 180, STEPS]);
});

/** The run directory is whole: every listed checkpoint exists, nothing half-written is left. */
function assertWhole(dir: string): void {
  const m = manifestOf(dir);
  assert.equal(m.status, 'completed');
  assert.equal(m.stoppedAt, STEPS);
  for (const c of m.checkpoints) assert.ok(fs.existsSync(path.join(dir, c.dir, 'optimizer.json')), c.dir);
  assert.deepEqual(fs.readdirSync(path.join(dir, 'checkpoints')).filter((d) => d.includes('.tmp')), []);
  assert.deepEqual(metricsOf(dir), metricsOf(reference), 'each step once, with the uninterrupted run\'s loss');
  assert.deepEqual(finalWeights(dir), finalWeights(reference), 'weights.bin byte for byte');
}

test('SIGKILL at random moments, then resume: the same final weights as an uninterrupted run', async () => {
  const dir = fresh();
  const next = rng(8);
  // A checkpoint by time every 0.15 s (by step never), so kills land before, between and after them.
  // Within 0.6 s of the first step: mid-run (a run takes about 3 s), however fast the machine.
  let r = await cli([...TRAIN, '--checkpoint-seconds', '0.15', '--out', dir, '--json'], { signal: 'SIGKILL', afterMs: Math.floor(next() * 600) });
  const kills = [r];
  for (let i = 0; i < 2; i++) {
    r = await cli(['train', '--resume', dir, '--backend', 'wasm', '--json'], { signal: 'SIGKILL', afterMs: Math.floor(next() * 600) });
    kills.push(r);
  }
  // A kill after the run completed is no kill; most of these land mid-run.
  assert.ok(kills.filter((k) => k.signal === 'SIGKILL').length >= 2, kills.map((k) => `${k.code} ${k.signal}`).join(', '));
  r = await cli(['train', '--resume', dir, '--backend', 'wasm', '--json']);
  ok(r);
  assert.match(r.stderr, /^basin: resuming at step \d+ from (checkpoints\/step-\d{6}|the initial parameters \(no checkpoint was written\)); (no steps are|1 step after it is|\d+ steps after it are) redone$/m);
  assertWhole(dir);
  assert.ok(manifestOf(dir).checkpoints.filter((c) => c.by === 'time').length <= 3, 'time checkpoints are pruned to the newest 3');
});

test('SIGTERM stops like Ctrl-C (exit 130, status cancelled), and the run resumes to the same weights', async () => {
  const dir = fresh();
  const next = rng(130);
  // Three lines: "training ...", the table's header and step 0's row.
  const r = await cli([...TRAIN, '--checkpoint-seconds', '0', '--out', dir], { signal: 'SIGTERM', afterMs: Math.floor(next() * 500), lines: 3 });
  // These depend on the CLI treating SIGTERM like Ctrl-C (the first aborts the run's signal).
  assert.equal(r.signal, null, 'the CLI handles SIGTERM instead of dying of it');
  assert.equal(r.code, 130, r.stderr);
  const m = manifestOf(dir);
  assert.equal(m.status, 'cancelled');
  const at = m.stoppedAt as number;
  const label = `step-${String(at).padStart(6, '0')}`;
  assert.ok(at > 0 && at < STEPS, `stopped at ${at}`);
  assert.equal(m.reason, `cancelled at step ${at}; the run can be resumed from checkpoints/${label}`);
  assert.ok(r.stdout.includes(`run cancelled: ${m.reason}\nwhat was computed is in ${dir}\ncontinue it with: basin train --resume ${dir}\n`), r.stdout);
  assert.deepEqual(manifestOf(dir).checkpoints.map((c) => [c.step, c.by]), [[at, 'stop']]);
  const resumed = await cli(['train', '--resume', dir, '--backend', 'wasm', '--json']);
  ok(resumed);
  assert.ok(resumed.stderr.includes(`basin: resuming at step ${at} from checkpoints/${label}; no steps are redone\n`), resumed.stderr);
  assertWhole(dir);
});

test('a second Ctrl-C during an ONNX Runtime surface quits at once, by SIGINT as shells expect (status 130), never an abort', async () => {
  const SPIRAL = path.join(__dirname, '../../examples/spiral');
  const next = rng(2);
  for (let i = 0; i < 6; i++) {
    // A surface of 22,801 points takes seconds; both signals land within 20 ms of its first progress line.
    const r = await new Promise<Exit>((resolve, reject) => {
      const child = spawn(process.execPath, [CLI, 'surface', '--model', path.join(SPIRAL, 'model.json'), '--data', path.join(SPIRAL, 'data.json'), '--x', '-1:1:151', '--y', '-1:1:151', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => {
        if (!stderr) {
          child.kill('SIGINT');
          setTimeout(() => child.kill('SIGINT'), Math.floor(next() * 20));
        }
        stderr += d.toString();
      });
      child.on('error', reject);
      child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    });
    assert.doesNotMatch(r.stderr, /terminate called|Aborted|internal error/, r.stderr);
    // Ended by the second Ctrl-C, or (the first one already stopped the job) exit 130 with its partial result.
    if (r.signal === null) assert.equal(r.code, 130, r.stderr);
    else {
      assert.equal(r.signal, 'SIGINT', r.stderr);
      assert.match(r.stderr, /Ctrl-C again: quit\n$/);
    }
  }
});

/** A copy of the reference run as a SIGKILL at step 100 leaves it: checkpoints 30, 60, 90, step 100's metrics line cut. */
function killedAt100(): { dir: string; cutBytes: number } {
  const dir = fresh();
  fs.cpSync(reference, dir, { recursive: true });
  const m = manifestOf(dir);
  const { stoppedAt: _s, reason: _r, ...running } = { ...m, status: 'running', checkpoints: m.checkpoints.filter((c) => c.step < 100) };
  fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(running, null, 2));
  for (const c of m.checkpoints.filter((k) => k.step >= 100)) fs.rmSync(path.join(dir, c.dir), { recursive: true });
  const lines = fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').split('\n');
  const cut = lines[100].slice(0, 30);
  fs.writeFileSync(path.join(dir, 'metrics.jsonl'), `${lines.slice(0, 100).join('\n')}\n${cut}`);
  return { dir, cutBytes: cut.length };
}

test('damaged run directories: a cut metrics line is dropped, a damaged checkpoint skipped, a damaged manifest refused', async () => {
  // The cut last metrics line (steps 0..99 whole): dropped, and the 10 steps after step 90 redone.
  const cut = killedAt100();
  let r = await cli(['train', '--resume', cut.dir, '--backend', 'wasm', '--json']);
  ok(r);
  // The notes depend on the CLI printing openRunForResume's notes.
  assert.ok(r.stderr.includes(`basin: metrics.jsonl: dropped its last line, cut short when the run stopped (${cut.cutBytes} bytes)\nbasin: resuming at step 90 from checkpoints/step-000090; 10 steps after it are redone\n`), r.stderr);
  assertWhole(cut.dir);

  // The newest checkpoint's optimizer.json cut short: back to step 60.
  const opt = killedAt100();
  const file = path.join(opt.dir, 'checkpoints', 'step-000090', 'optimizer.json');
  fs.writeFileSync(file, fs.readFileSync(file, 'utf8').slice(0, 200));
  r = await cli(['train', '--resume', opt.dir, '--backend', 'wasm', '--json']);
  ok(r);
  assert.match(r.stderr, /^basin: checkpoints\/step-000090\/optimizer.json is not valid JSON \(.+\): checkpoints\/step-000090 is damaged; removing it$/m);
  assert.ok(r.stderr.includes('basin: falling back to the previous checkpoint, checkpoints/step-000060\nbasin: resuming at step 60 from checkpoints/step-000060; 40 steps after it are redone\n'), r.stderr);
  assertWhole(opt.dir);

  // A manifest cut short, or with a field of the wrong type: exit 1 naming manifest.json (was exit 70).
  const bad = killedAt100();
  const mf = path.join(bad.dir, 'manifest.json');
  const text = fs.readFileSync(mf, 'utf8');
  fs.writeFileSync(mf, text.slice(0, 120));
  r = await cli(['train', '--resume', bad.dir, '--backend', 'wasm']);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`^basin: ${mf.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: is not valid JSON \\(.+\\); the run's settings are unknown, so it cannot be resumed: start a new run\n$`));
  fs.writeFileSync(mf, text.replace('"lr": 0.2', '"lr": "0.2"'));
  r = await cli(['train', '--resume', bad.dir, '--backend', 'wasm']);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stderr, `basin: ${mf}: is damaged: settings.lr must be a positive number (got "0.2"); the run cannot be resumed: start a new run\n`);
});

test('a new run in a directory that holds one is refused, saying how to resume it', async () => {
  const r = await cli([...TRAIN, '--out', reference]);
  assert.equal(r.code, 1, r.stderr);
  // The CLI's wording (refuseExistingRun, before loading anything); the engine's says "resume it".
  assert.equal(r.stderr, `basin: ${reference}: already holds a run; continue it with --resume ${reference}, or choose another --out\n`);
});
