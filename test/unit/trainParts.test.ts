// The parts train() is made of (issue 10), each on its own: the manifest file, the checkpoint
// writer (cadence pruning, the reason a stop keeps, atomic directories) with a stand-in model
// writer, and the step loop on a quadratic whose gradient-descent iterates are known exactly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ProbeRecord, RunManifest, TrainSettings } from '../../src/shared/results';
import { ManifestFile } from '../../src/engine/train/manifest';
import { CheckpointWriter, KEEP_TIME_CHECKPOINTS, type ModelWriter } from '../../src/engine/train/checkpoint';
import { stepLoop, type LoopParts } from '../../src/engine/train/loop';
import { makeOptimizer } from '../../src/engine/train/optimizers';
import { decodeState } from '../../src/engine/train/state';
import { DEFAULT_SETTINGS } from '../../src/engine/train/run';

const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 'basin-trainparts-'));

function manifestIn(dir: string): ManifestFile {
  const m: RunManifest = {
    kind: 'basin-run',
    version: 'test',
    created: '2026-01-01T00:00:00.000Z',
    model: 'quadratic',
    params: 2,
    samples: 1,
    lossName: 'meanSquaredError',
    backend: 'none',
    backendDetail: 'none',
    settings: DEFAULT_SETTINGS,
    problem: {},
    status: 'running',
    checkpoints: [],
  };
  const f = new ManifestFile(dir, m);
  f.write();
  return f;
}

/** A model writer that writes the parameters as text, and records what it was given. */
function textWriter(log: string[]): ModelWriter {
  return {
    fileName: 'model.txt',
    write: (theta, dir, meta) => {
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, 'model.txt'), Array.from(theta).join(','));
      log.push(`${meta.run}@${meta.step}`);
    },
  };
}

const onDisk = (dir: string): RunManifest => JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as RunManifest;

test('manifest: finish records the end on disk and says where the run resumes from', () => {
  const dir = tmp();
  const m = manifestIn(dir);
  assert.equal(m.resumableFrom(), 'the run can be resumed from the start');
  m.update({ checkpoints: [{ step: 4, dir: path.join('checkpoints', 'step-000004') }, { step: 2, dir: path.join('checkpoints', 'step-000002') }] });
  assert.equal(m.resumableFrom(), 'the run can be resumed from checkpoints/step-000004');
  const done = m.finish('cancelled', 5, 'why');
  assert.deepEqual(done, { done: false, run: dir, status: 'cancelled', reason: 'why', steps: 5 });
  const saved = onDisk(dir);
  assert.deepEqual([saved.status, saved.stoppedAt, saved.reason], ['cancelled', 5, 'why']);
});

test('checkpoint writer: time checkpoints pruned to the newest few, a stop keeps the cadence reason, last-good has its own directory', () => {
  const dir = tmp();
  const m = manifestIn(dir);
  const log: string[] = [];
  const w = new CheckpointWriter(dir, m, textWriter(log));
  const opt = makeOptimizer('gd');
  const theta = Float64Array.from([0.1, 1 / 3]);
  for (let step = 1; step <= KEEP_TIME_CHECKPOINTS + 2; step++) w.save(step, theta, opt.getState(), 'time');
  w.save(10, theta, opt.getState(), 'steps');
  w.save(10, theta, opt.getState(), 'stop');
  assert.equal(w.save(3, theta, opt.getState(), 'last-good', 0.5), path.join('checkpoints', 'last-good'));
  const listed = onDisk(dir).checkpoints.map((c) => `${c.step}:${c.by}${c.loss === undefined ? '' : `:${c.loss}`}`);
  assert.deepEqual(listed, ['3:time', '4:time', '5:time', '10:steps', '3:last-good:0.5']);
  assert.deepEqual(fs.readdirSync(path.join(dir, 'checkpoints')).sort(), ['last-good', 'step-000003', 'step-000004', 'step-000005', 'step-000010']);
  assert.equal(log[0], `${path.basename(dir)}@1`);
  // optimizer.json holds the exact float64 parameters beside the model file.
  const state = decodeState(JSON.parse(fs.readFileSync(path.join(dir, 'checkpoints', 'step-000010', 'optimizer.json'), 'utf8'))) as { theta: Float64Array };
  assert.deepEqual(Array.from(state.theta), [0.1, 1 / 3]);
  assert.equal(fs.readFileSync(path.join(dir, 'checkpoints', 'step-000010', 'model.txt'), 'utf8'), `0.1,${1 / 3}`);
});

/** The loop on L(theta) = |theta|^2 / 2 (gradient theta): GD multiplies theta by (1 - lr) each step. */
function quadraticLoop(dir: string, s: Partial<TrainSettings>, records: ProbeRecord[]): LoopParts {
  const m = manifestIn(dir);
  const settings: TrainSettings = { ...DEFAULT_SETTINGS, checkpointSeconds: 0, probeEvery: 100, ...s };
  const loss = (th: Float64Array): number => th.reduce((a, x) => a + x * x, 0) / 2;
  return {
    s: settings,
    n: 1,
    opt: makeOptimizer('gd'),
    theta: Float64Array.from([1, -2]),
    start: 0,
    prober: { probe: async ({ theta, step, epoch, lr }) => ({ step, epoch, lr, loss: loss(theta), ms: 0 }) },
    fullGradient: async (th) => ({ loss: loss(th), grad: Float64Array.from(th) }),
    batchGradient: async () => {
      throw new Error('full batch only');
    },
    emit: (r) => records.push(r),
    checkpoints: new CheckpointWriter(dir, m, textWriter([])),
    manifest: m,
  };
}

test('step loop: GD on a quadratic gives (1 - lr)^k theta0, logs every step, checkpoints on the cadence', async () => {
  const dir = tmp();
  const records: ProbeRecord[] = [];
  const parts = quadraticLoop(dir, { lr: 0.25, steps: 4, checkpointEvery: 2 }, records);
  const done = await stepLoop(parts);
  assert.deepEqual(done, { done: true, run: dir, status: 'completed', reason: undefined, steps: 4 });
  assert.deepEqual(Array.from(parts.theta), [0.75 ** 4, -2 * 0.75 ** 4]);
  assert.deepEqual(records.map((r) => `${r.step}:${r.loss}`), [0, 1, 2, 3, 4].map((k) => `${k}:${2.5 * 0.75 ** (2 * k)}`));
  assert.deepEqual(onDisk(dir).checkpoints.map((c) => `${c.step}:${c.by}`), ['2:steps', '4:final']);
  assert.equal(onDisk(dir).initialLoss, 2.5);
});

test('step loop: divergence stops with the last good parameters saved; a cancellation saves where it stopped', async () => {
  const dir = tmp();
  // lr 3: theta is multiplied by -2 each step, the loss by 4; over 10 x the initial loss at step 2.
  const parts = quadraticLoop(dir, { lr: 3, steps: 10, divergeFactor: 10 }, []);
  const done = await stepLoop(parts);
  assert.equal(done.status, 'diverged');
  assert.equal(done.reason, 'diverged at step 2: loss 40 (initial 2.500); the last good parameters (step 1, loss 10.00) are in checkpoints/last-good');
  assert.equal(fs.readFileSync(path.join(dir, 'checkpoints', 'last-good', 'model.txt'), 'utf8'), '-2,4');
  const cut = tmp();
  const controller = new AbortController();
  const p = quadraticLoop(cut, { lr: 0.5, steps: 10 }, []);
  p.signal = controller.signal;
  const emit = p.emit;
  p.emit = (r) => {
    emit(r);
    if (r.step === 2) controller.abort();
  };
  const stopped = await stepLoop(p);
  assert.equal(stopped.reason, 'cancelled at step 3; the run can be resumed from checkpoints/step-000003');
  assert.equal(fs.readFileSync(path.join(cut, 'checkpoints', 'step-000003', 'model.txt'), 'utf8'), '0.125,-0.25');
  assert.equal(onDisk(cut).status, 'cancelled');
});
