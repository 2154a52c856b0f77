/**
 * The panel's training charts (webview/charts/runCharts.ts) for what a run's probes carry: the
 * Gauss-Newton sharpness beside the Hessian's when the run probes it, and the gradient's overlap
 * with the top eigenvector. The records come from real runs of the spiral example (one with
 * `curvature: 'ggn'`, one without), so the charts are checked against what the engine writes.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runChartData } from '../../webview/charts/runCharts';
import type { ProbeRecord, TrainSettings } from '../../src/shared/results';
import { initBackend } from '../../src/engine/backend';
import { loadProblem } from '../../src/engine/problem';
import { DEFAULT_SETTINGS, train } from '../../src/engine/train/run';

const EXAMPLE = path.join(__dirname, '../../examples/spiral');
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'basin-runcharts-'));

let ggn: { records: ProbeRecord[]; settings: TrainSettings };
let plain: { records: ProbeRecord[]; settings: TrainSettings };

async function run(name: string, settings: TrainSettings): Promise<{ records: ProbeRecord[]; settings: TrainSettings }> {
  const problem = await loadProblem({ model: path.join(EXAMPLE, 'model.json'), data: path.join(EXAMPLE, 'data.json') });
  const records: ProbeRecord[] = [];
  await train(problem, settings, path.join(TMP, name), { onProbe: (r) => records.push(r) });
  return { records, settings };
}

before(async () => {
  await initBackend('wasm');
  const base: TrainSettings = { ...DEFAULT_SETTINGS, steps: 20, probeEvery: 10, lr: 0.3, checkpointSeconds: 0 };
  ggn = await run('ggn', { ...base, curvature: 'ggn' });
  plain = await run('plain', base);
});

/** The points of a chart's series, by label. */
function series(data: ReturnType<typeof runChartData>, key: string): Map<string, { x: number; y: number }[]> {
  const chart = data.find((c) => c.key === key);
  assert.ok(chart, `no ${key} chart among ${data.map((c) => c.key).join(', ')}`);
  return new Map(chart.series.map((s) => [s.label, s.points]));
}

test('the sharpness chart draws the Gauss-Newton λmax beside the Hessian\'s when the probes carry it', () => {
  const probes = ggn.records.filter((r) => r.lambdaMax !== undefined);
  assert.deepEqual(probes.map((r) => r.step), [0, 10, 20]);
  for (const r of probes) assert.ok(Number.isFinite(r.curvatureMax), `step ${r.step} has no curvatureMax`);
  const data = runChartData(ggn.records, ggn.settings);
  const sharp = series(data, 'sharpness');
  assert.deepEqual([...sharp.keys()], ['λmax', 'Gauss-Newton λmax', 'threshold 2/η']);
  assert.deepEqual(sharp.get('λmax'), probes.map((r) => ({ x: r.step, y: r.lambdaMax })));
  assert.deepEqual(sharp.get('Gauss-Newton λmax'), probes.map((r) => ({ x: r.step, y: r.curvatureMax })));
  assert.equal(data.find((c) => c.key === 'sharpness')?.subtitle, 'λmax of the Hessian and of the Gauss-Newton matrix against the stability threshold 2/η');
  // Before the run's settings arrive the curvature has no name yet.
  assert.ok(series(runChartData(ggn.records), 'sharpness').has('other curvature λmax'));
});

test('without another curvature the sharpness chart is λmax and 2/η only', () => {
  const data = runChartData(plain.records, plain.settings);
  assert.deepEqual([...series(data, 'sharpness').keys()], ['λmax', 'threshold 2/η']);
  assert.equal(data.find((c) => c.key === 'sharpness')?.subtitle, 'λmax against the stability threshold 2/η');
  assert.ok(plain.records.every((r) => r.curvatureMax === undefined));
});

test('the gradient overlap chart: cos² between the gradient and the top eigenvector at each probe', () => {
  const probes = plain.records.filter((r) => r.lambdaMax !== undefined);
  const overlap = series(runChartData(plain.records, plain.settings), 'overlap').get('cos²(∇L, v₁)');
  assert.deepEqual(overlap, probes.map((r) => ({ x: r.step, y: r.lambdaMaxOverlap })));
  for (const p of overlap ?? []) assert.ok(p.y >= 0 && p.y <= 1, `cos² ${p.y} at step ${p.x}`);
  // Records without the field (runs written before it existed) draw no overlap chart.
  const old = plain.records.map(({ lambdaMaxOverlap: _o, ...r }) => r);
  assert.ok(!runChartData(old, plain.settings).some((c) => c.key === 'overlap'));
});
