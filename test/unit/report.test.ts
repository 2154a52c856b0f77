// `basin report`: snapshots from run directories and result files, and the self-contained HTML
// page (src/cli/report.ts); plus the built panel script (dist/webview.js, built by `node esbuild.js`
// before the tests run) is CSP-clean.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vm from 'node:vm';
import { loadPanelAssets, renderReport, reportSnapshot, resultSnapshot, runSnapshot, scriptSafeJson } from '../../src/cli/report';
import { BasinError } from '../../src/engine/errors';
import { REPORT_GLOBAL, resultCardTitle, type PanelSnapshot } from '../../src/shared/protocol';
import { colorBarTitle, colorScaleNote, crowdedEnd, isLogScale, legendShown, lossSubtitle } from '../../webview/charts/labels';
import { DARK, contrastSafe, fallbackPalette, SERIES_KEYS } from '../../webview/theme';
import { contrastRatio, parseColor, type Rgb } from '../../webview/contrast';
import type { EigsResult, JobResult, ProbeRecord, RunManifest, SliceResult, SurfaceResult, TrainSettings } from '../../src/shared/results';

// The bundle runs from .test-dist/unit/.
const DIST = path.join(__dirname, '../../dist');

const SETTINGS: TrainSettings = {
  optimizer: 'gd',
  lr: 0.2,
  steps: 10,
  schedule: 'constant',
  seed: 0,
  probeEvery: 2,
  traceEvery: 0,
  noiseEvery: 0,
  layersEvery: 0,
  checkpointEvery: 0,
  divergeFactor: 10000,
};

function manifest(over: Partial<RunManifest> = {}): RunManifest {
  return {
    kind: 'basin-run',
    version: '0.1.0',
    created: '2025-01-01T00:00:00.000Z',
    model: 'tiny.basin.ts',
    params: 42,
    samples: 16,
    lossName: 'meanSquaredError',
    backend: 'cpu',
    backendDetail: 'cpu',
    settings: SETTINGS,
    problem: { experiment: 'tiny.basin.ts' },
    status: 'cancelled',
    stoppedAt: 3,
    reason: 'stopped by the user',
    checkpoints: [],
    ...over,
  };
}

const RECORDS: ProbeRecord[] = [
  { step: 0, epoch: 0, lr: 0.2, loss: 0.9, lambdaMax: 3.5, threshold: 10, igrTerm: 0.01, ms: 12 },
  { step: 1, epoch: 1, lr: 0.2, loss: 0.7, ms: 0 },
  { step: 2, epoch: 2, lr: 0.2, loss: 0.5, lambdaMax: 4.25, threshold: 10, trace: 20, traceStderr: 1.5, ms: 9 },
];

/** A run directory written by hand; the last metrics line is cut short, as a crash leaves it. */
function makeRun(root: string, name: string, m: RunManifest = manifest()): string {
  const dir = path.join(root, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(m, null, 2));
  fs.writeFileSync(
    path.join(dir, 'metrics.jsonl'),
    `${RECORDS.map((r) => JSON.stringify(r)).join('\n')}\n{"step":3,"epoch":3,"lr":0.2,"lo`,
  );
  return dir;
}

function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'basin-report-'));
}

const META = {
  backend: 'cpu',
  backendDetail: 'cpu',
  seed: 0,
  model: 'm.json on d.json',
  params: 42,
  samples: 16,
  lossName: 'meanSquaredError',
  lossValue: 0.5,
  ms: 10,
  complete: true,
  evaluations: 3,
  threads: 1,
};

const SLICE: SliceResult = {
  ...META,
  kind: 'slice',
  directions: [{ kind: 'random', norm: 'filter', length: 2 }],
  x: [-1, 0, 1],
  loss: [1.5, 0.5, null],
};

const SURFACE: SurfaceResult = {
  ...META,
  kind: 'surface',
  x: [-1, 0, 1],
  y: [-1, 1],
  loss: [
    [1, 2, 3],
    [4, null, 6],
  ],
  directions: [SLICE.directions[0], { kind: 'random', norm: 'filter', length: 2, cosineBeforeOrthogonalization: 0.1 }],
};

/** The JSON embedded in a report page, parsed back. */
function embedded(html: string): PanelSnapshot {
  const m = new RegExp(`<script>window\\.${REPORT_GLOBAL} = (.*?);</script>`, 's').exec(html);
  assert.ok(m, 'the report embeds the snapshot in its own <script>');
  return JSON.parse(m[1]) as PanelSnapshot;
}

function count(s: string, re: RegExp): number {
  return (s.match(re) ?? []).length;
}

test('runSnapshot reads a run directory and skips a metrics line cut by a crash', () => {
  const dir = makeRun(tmp(), 'eos');
  const snap = runSnapshot(dir);
  assert.equal(snap.runs.length, 1);
  assert.equal(snap.results.length, 0);
  const run = snap.runs[0];
  assert.equal(run.title, 'eos');
  assert.equal(run.dir, path.resolve(dir));
  assert.equal(snap.focus, run.id);
  assert.deepEqual(run.probes, RECORDS);
  assert.deepEqual(run.settings, SETTINGS);
  assert.deepEqual(run.done, { done: false, run: path.resolve(dir), status: 'cancelled', reason: 'stopped by the user', steps: 3 });
  assert.match(snap.status ?? '', /1 unreadable metrics line skipped/);
  assert.match(snap.status ?? '', /42 parameters/);
});

test('runSnapshot: a run still running has no end; a directory without a manifest is refused', () => {
  const root = tmp();
  const dir = makeRun(root, 'live', manifest({ status: 'running', stoppedAt: undefined, reason: undefined }));
  const run = runSnapshot(dir).runs[0];
  assert.equal(run.done, undefined);
  assert.equal(run.probes.length, 3);
  const empty = path.join(root, 'empty');
  fs.mkdirSync(empty);
  assert.throws(
    () => runSnapshot(empty),
    (e: unknown) => e instanceof BasinError && /no manifest\.json/.test(e.message),
  );
  fs.writeFileSync(path.join(empty, 'manifest.json'), '{"kind": "something-else"}');
  assert.throws(
    () => runSnapshot(empty),
    (e: unknown) => e instanceof BasinError && /not a Basin run manifest/.test(e.message),
  );
});

test('resultSnapshot makes one ResultView per result file and refuses other JSON', () => {
  const root = tmp();
  const a = path.join(root, 'slice.json');
  const b = path.join(root, 'surface.json');
  fs.writeFileSync(a, JSON.stringify(SLICE, null, 2));
  fs.writeFileSync(b, JSON.stringify(SURFACE));
  const snap = resultSnapshot([a, b]);
  assert.equal(snap.runs.length, 0);
  assert.deepEqual(
    snap.results.map((r) => [r.title, r.result.kind]),
    [
      ['1-D loss slices · m.json on d.json', 'slice'],
      ['2-D loss surface · m.json on d.json', 'surface'],
    ],
  );
  assert.equal(new Set(snap.results.map((r) => r.id)).size, 2);
  assert.deepEqual(snap.results[1].result, SURFACE);
  assert.equal(snap.focus, snap.results[0].id);
  const other = path.join(root, 'package.json');
  fs.writeFileSync(other, '{"name": "x"}');
  assert.throws(
    () => resultSnapshot([other]),
    (e: unknown) => e instanceof BasinError && /not a Basin result/.test(e.message),
  );
  fs.writeFileSync(other, '{"kind": ');
  assert.throws(
    () => resultSnapshot([other]),
    (e: unknown) => e instanceof BasinError && /not valid JSON/.test(e.message),
  );
  assert.throws(
    () => resultSnapshot([path.join(root, 'missing.json')]),
    (e: unknown) => e instanceof BasinError && /no such file/.test(e.message),
  );
});

test('reportSnapshot mixes run directories and result files', () => {
  const root = tmp();
  const a = makeRun(path.join(root, 'a'), 'run');
  const b = makeRun(path.join(root, 'b'), 'run');
  const f = path.join(root, 'slice.json');
  fs.writeFileSync(f, JSON.stringify(SLICE));
  const snap = reportSnapshot([a, f, b]);
  assert.equal(snap.runs.length, 2);
  assert.equal(snap.results.length, 1);
  assert.equal(snap.focus, snap.runs[0].id);
  assert.notEqual(snap.runs[0].title, snap.runs[1].title, 'runs named alike are told apart');
  assert.throws(() => reportSnapshot([]), BasinError);
});

test('renderReport: one self-contained page whose embedded data and script survive </script> and <!--', () => {
  const snap = runSnapshot(makeRun(tmp(), 'eos'));
  const evil = 'eos </script><script>alert(1)</script> <!-- <script> \u2028 & done';
  snap.runs[0].title = evil;
  snap.status = '</SCRIPT >';
  const js =
    'console.log("</script><!-- a comment opener"); var re = /<\\/script>/; console.log(re.test("</script>"));\n' +
    '//# sourceMappingURL=webview.js.map';
  const css = 'body { color: red; } /* </style><script>alert(2)</script> */';
  const html = renderReport(snap, { title: 'Basin <report> & "more"', webviewJs: js, css });

  assert.equal(count(html, /<!DOCTYPE html>/gi), 1);
  assert.equal(count(html, /<html[\s>]/gi), 1);
  // The stylesheet is raw text up to the first </style: it has exactly one, its own.
  assert.equal(count(html, /<\/style/gi), 1);
  const outsideStyle = html.replace(/<style>[\s\S]*?<\/style>/, '<style></style>');
  assert.equal(count(outsideStyle, /<script[\s>]/gi), 2, 'only the data and the panel script open a <script>');
  assert.equal(count(outsideStyle, /<\/script/gi), 2, 'no </script in the data or the script ends them early');
  assert.equal(count(outsideStyle, /<!--/g), 0);
  assert.ok(!/(src|href)\s*=\s*["']?https?:/i.test(html), 'no network resources');
  assert.ok(!/\ssrc\s*=/i.test(html), 'nothing loaded from anywhere');
  assert.match(html, /Content-Security-Policy" content="default-src 'none'/);
  assert.match(html, /<title>Basin &#60;report&#62; &#38; &#34;more&#34;<\/title>/);
  assert.ok(!html.includes('sourceMappingURL'));
  assert.ok(html.indexOf(`window.${REPORT_GLOBAL} =`) < html.indexOf('console.log'), 'the data comes before the panel script');

  // The data parses back to the same snapshot, as JSON and as the script a browser runs.
  const back = embedded(html);
  assert.deepEqual(back, snap);
  assert.equal(back.runs[0].title, evil);
  const dataScript = /<script>(window\..*?)<\/script>/s.exec(html)?.[1] ?? '';
  const win: Record<string, unknown> = {};
  vm.runInNewContext(dataScript, { window: win });
  // (compared as JSON: the object comes from another realm, with other prototypes)
  assert.equal(JSON.stringify(win[REPORT_GLOBAL]), JSON.stringify(snap));

  // The escaped script still means the same.
  const panelScript = /<script>\n([\s\S]*?)\n<\/script>/.exec(html)?.[1] ?? '';
  const logged: unknown[] = [];
  vm.runInNewContext(panelScript, { console: { log: (v: unknown) => logged.push(v) } });
  assert.equal(JSON.stringify(logged), JSON.stringify(['</script><!-- a comment opener', true]));
});

test('scriptSafeJson is JSON without <, >, & or line separators', () => {
  const v = { s: '</script><!--&\u2028\u2029>' };
  const j = scriptSafeJson(v);
  assert.ok(!/[<>&\u2028\u2029]/.test(j));
  assert.deepEqual(JSON.parse(j), v);
});

test('the built panel script exists, is CSP-clean, and loadPanelAssets finds it', () => {
  const js = path.join(DIST, 'webview.js');
  assert.ok(fs.existsSync(js), 'dist/webview.js is built by node esbuild.js');
  const text = fs.readFileSync(js, 'utf8');
  assert.ok(text.length > 10_000);
  assert.ok(!text.includes('eval('), 'no eval');
  assert.ok(!text.includes('new Function'), 'no new Function');
  assert.ok(fs.existsSync(path.join(DIST, 'panel.css')), 'dist/panel.css is copied beside it');
  const assets = loadPanelAssets(__dirname);
  assert.equal(assets.webviewJs, text);
  assert.match(assets.css, /--vscode-foreground/);
  assert.throws(() => loadPanelAssets(path.join(os.tmpdir(), 'nowhere', 'a', 'b')), BasinError);

  // A real report: the real bundle embedded without ending its <script> early.
  const html = renderReport({ runs: [], results: [] }, { title: 'r', ...assets });
  assert.equal(count(html, /<\/script/gi), 2);
  assert.equal(count(html, /<!--/g), 0);
});

test('report cards are titled by what they are and on which model, not by the file name', () => {
  const eigs = { ...META, kind: 'eigs', which: 'top', method: 'lanczos', eigenvalues: [5, 4, 3, 2, 1], errorBounds: [0, 0, 0, 0, 0], residuals: [0, 0, 0, 0, 0], hvps: 10, converged: true } as unknown as EigsResult;
  assert.equal(resultCardTitle(eigs), 'Top 5 Hessian eigenvalues · m.json on d.json');
  assert.equal(resultCardTitle({ ...eigs, which: 'bottom', eigenvalues: [1], layer: 'dense_1' } as EigsResult), 'Bottom Hessian eigenvalue of dense_1 · m.json on d.json');
  assert.equal(resultCardTitle({ ...SLICE, kind: 'interpolate' } as unknown as JobResult), 'Linear interpolation · m.json on d.json');
  const root = tmp();
  const f = path.join(root, 'eigs-top.json');
  fs.writeFileSync(f, JSON.stringify(eigs));
  const snap = resultSnapshot([f]);
  assert.equal(snap.results[0].title, 'Top 5 Hessian eigenvalues · m.json on d.json');
  assert.ok(!snap.results[0].title.includes('eigs-top.json'));
});

test('legends: shown for several series, and for one when the subtitle names the series', () => {
  assert.equal(legendShown([{}], false), false);
  assert.equal(legendShown([{}], true), true);
  assert.equal(legendShown([{}, {}], false), true);
  // Bands and table-only series are not drawn as lines: they do not count.
  assert.equal(legendShown([{}, { band: 'upper' }, { band: 'lower' }, { tableOnly: true }], false), false);
  assert.equal(legendShown([], true), false);
  // The loss chart names only the losses it draws.
  assert.equal(lossSubtitle(RECORDS), 'training loss');
  assert.equal(lossSubtitle([...RECORDS, { ...RECORDS[0], testLoss: 1 }]), 'training and test loss');
  assert.equal(lossSubtitle([{ ...RECORDS[0], testLoss: 1, batchLoss: 2 }]), 'training, test and minibatch loss');
});

test('heatmap colour bar: titled, and a note when its scale is logarithmic', () => {
  assert.equal(colorBarTitle(false), 'loss');
  assert.equal(colorBarTitle(true), 'loss (log scale)');
  assert.equal(isLogScale(0.1, 1.01), true);
  assert.equal(isLogScale(0.1, 1), false);
  assert.equal(isLogScale(0, 100), false, 'a zero loss cannot be on a log scale');
  // SURFACE spans 1..6: linear, no note.
  assert.equal(colorScaleNote(SURFACE.loss), undefined);
  assert.equal(
    colorScaleNote([
      [0.01, null, 2],
      [5, 0.5, Number.NaN],
    ]),
    'Colours and contours on a logarithmic scale: the loss spans a factor of 500 (0.01 to 5).',
  );
  assert.equal(colorScaleNote([[null, null]]), undefined);
});

test('a report follows prefers-color-scheme: a dark palette and stylesheet with contrast-safe series', () => {
  assert.equal(fallbackPalette(false).dark, false);
  assert.equal(fallbackPalette(true), DARK);
  const dark = contrastSafe(DARK);
  const bg = parseColor(dark.background) as Rgb;
  for (const k of SERIES_KEYS) {
    const ratio = contrastRatio(parseColor(dark[k]) as Rgb, bg);
    assert.ok(ratio >= 3, `${k} ${dark[k]} on ${dark.background}: ${ratio.toFixed(2)}:1`);
  }
  assert.ok(contrastRatio(parseColor(dark.foreground) as Rgb, bg) >= 7, 'text on the dark report background');
  // The report embeds the stylesheet, whose dark scheme keeps VS Code's variables first.
  const { css } = loadPanelAssets(__dirname);
  const m = /@media \(prefers-color-scheme: dark\) \{([\s\S]*?)\n\}/.exec(css);
  assert.ok(m, 'panel.css has a prefers-color-scheme: dark block');
  assert.match(m[1], /--basin-bg: var\(--vscode-editor-background, #0d1117\)/);
  assert.match(css, /color-scheme: light dark/);
});

test('run charts end at the last step: its tick is unlabelled when it crowds the one before', () => {
  const ticks = [0, 200, 400, 600, 800, 1000, 1200, 1400, 1500];
  assert.equal(crowdedEnd(ticks, 8), true, '1500 is 100 after 1400: no label');
  assert.equal(crowdedEnd(ticks, 7), false);
  assert.equal(crowdedEnd([0, 200, 400, 500], 3), true, 'half a spacing is too close');
  assert.equal(crowdedEnd([0, 200, 400, 550], 3), false, 'three quarters of a spacing is room enough');
  assert.equal(crowdedEnd([0, 200, 400, 600], 3), false);
  assert.equal(crowdedEnd([0, 1], 1), false);
});
