/**
 * The extension host's history (src/extension/history.ts, which needs no running VS Code): what the
 * panel is told as a run streams, and what comes back after a restart from workspace state and the
 * run directories on disk.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { History } from '../../src/extension/history';
import type { ToWebview } from '../../src/shared/protocol';
import type { ProbeRecord, RunManifest, TrainDone } from '../../src/shared/results';
import { initBackend } from '../../src/engine/backend';
import { loadProblem } from '../../src/engine/problem';
import { DEFAULT_SETTINGS, train } from '../../src/engine/train/run';

class Memento {
  private readonly store = new Map<string, unknown>();
  get<T>(key: string): T | undefined {
    return this.store.get(key) as T | undefined;
  }
  async update(key: string, value: unknown): Promise<void> {
    this.store.set(key, JSON.parse(JSON.stringify(value)));
  }
  keys(): readonly string[] {
    return [...this.store.keys()];
  }
}

const EXAMPLE = path.join(__dirname, '../../examples/spiral');
let runDir: string;
let streamed: ProbeRecord[];
let done: TrainDone;

before(async () => {
  await initBackend('wasm');
  const problem = await loadProblem({ model: path.join(EXAMPLE, 'model.json'), data: path.join(EXAMPLE, 'data.json') });
  runDir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'basin-history-')), 'run');
  streamed = [];
  done = await train(problem, { ...DEFAULT_SETTINGS, steps: 20, probeEvery: 10, lr: 0.3 }, runDir, { onProbe: (r) => streamed.push(r) });
});

test('a streamed run reaches the panel as runStarted, probes and runEnded, in order', () => {
  const history = new History(new Memento() as never);
  const sent: ToWebview[] = [];
  history.onMessage((m) => sent.push(m));
  history.startRun('r1', 'spiral', runDir, '/src/spiral.basin.ts');
  history.addProbes('r1', streamed.slice(0, 5), DEFAULT_SETTINGS);
  history.addProbes('r1', streamed.slice(5));
  history.endRun('r1', done);
  assert.deepEqual(sent.map((m) => m.type), ['runStarted', 'probes', 'probes', 'runEnded']);
  assert.deepEqual(sent[1].type === 'probes' && sent[1].settings, DEFAULT_SETTINGS);
  assert.equal(history.snapshot().runs[0].probes.length, streamed.length);
  const latest = history.latestFor('/src/spiral.basin.ts');
  assert.equal(latest?.last?.step, 20);
  assert.equal(latest?.last?.lambdaMax, streamed[streamed.length - 1].lambdaMax);
  assert.equal(history.latestFor('/elsewhere.basin.ts'), undefined);
});

test('after a restart, runs come back from their directories and results from workspace state', () => {
  const memento = new Memento();
  const first = new History(memento as never);
  first.startRun('r1', 'spiral', runDir, '/src/spiral.basin.ts');
  first.endRun('r1', done);
  first.putResult({ id: 'res1', title: 'eigs', result: { kind: 'info' } as never });
  first.putResult({ id: 'res2', title: 'streaming', result: { kind: 'info' } as never, partial: true });
  const second = new History(memento as never);
  second.restore();
  const snap = second.snapshot();
  assert.equal(snap.runs.length, 1);
  assert.equal(snap.runs[0].probes.length, streamed.length, 'the probes are re-read from metrics.jsonl');
  assert.equal(snap.runs[0].done?.status, 'completed');
  assert.deepEqual(snap.results.map((r) => r.id), ['res1'], 'partial results are not persisted');
  assert.equal(second.latestFor('/src/spiral.basin.ts')?.last?.step, 20);
});

test('a run cut off by a closing VS Code is restored as failed, with what it wrote', () => {
  const dir = path.join(path.dirname(runDir), 'cut');
  fs.cpSync(runDir, dir, { recursive: true });
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as RunManifest;
  fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify({ ...manifest, status: 'running' }));
  fs.appendFileSync(path.join(dir, 'metrics.jsonl'), '{"step": 21, "lo');
  const memento = new Memento();
  const first = new History(memento as never);
  first.startRun('cut', 'cut', dir, '/src/cut.basin.ts');
  const second = new History(memento as never);
  second.restore();
  const run = second.snapshot().runs[0];
  assert.equal(run.done?.status, 'failed');
  assert.match(run.done?.reason ?? '', /closed while it was running/);
  assert.equal(run.probes.length, streamed.length, 'the cut line is skipped');
});
