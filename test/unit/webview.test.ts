/**
 * Webview helpers: chart colours keep at least 3:1 contrast (WCAG 2, graphics) with the theme's
 * background in light, dark and high-contrast themes; runs are told apart in the run menu; the
 * panel's new messages (reveal, compare, run actions) are checked like the others.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { contrastRatio, hex, parseColor, withContrast, type Rgb } from '../../webview/contrast';
import { contrastSafe, SERIES_KEYS, type Palette } from '../../webview/theme';
import { runLabel, startTime } from '../../webview/runLabel';
import { checkFromWebview, checkToWebview } from '../../src/shared/validate';
import type { RunView } from '../../src/shared/protocol';

const rgb = (c: string): Rgb => parseColor(c) as Rgb;

test('contrast ratios follow WCAG 2', () => {
  assert.equal(contrastRatio([255, 255, 255], [0, 0, 0]), 21);
  assert.equal(contrastRatio([0, 0, 0], [0, 0, 0]), 1);
  // #767676 on white is the classic 4.54:1.
  assert.equal(contrastRatio(rgb('#767676'), rgb('#ffffff')).toFixed(2), '4.54');
  assert.deepEqual(parseColor('#abc'), [170, 187, 204]);
  assert.deepEqual(parseColor('rgba(1, 2, 3, 0.5)'), [1, 2, 3]);
  assert.equal(parseColor('currentColor'), undefined);
  assert.equal(hex([255, 0, 16]), '#ff0010');
});

/** The chart colours of VS Code's default themes (charts.*) on their editor backgrounds. */
const THEMES: Record<string, { background: string; colors: string[] }> = {
  'Dark Modern': { background: '#1f1f1f', colors: ['#3794ff', '#f14c4c', '#89d185', '#cca700', '#d18616', '#b180d7'] },
  'Light Modern': { background: '#ffffff', colors: ['#1a85ff', '#e51400', '#388a34', '#bf8803', '#d18616', '#652d90'] },
  'Dark High Contrast': { background: '#000000', colors: ['#3794ff', '#f14c4c', '#89d185', '#cca700', '#d18616', '#b180d7'] },
  'Light High Contrast': { background: '#ffffff', colors: ['#0f4a85', '#b5200d', '#007100', '#895503', '#8f4a00', '#652d90'] },
  // What the issue saw: a dark brown series on a dark background, a pale peach one on a light one.
  'dark with a brown series': { background: '#1e1e1e', colors: ['#3794ff', '#5c3a1e', '#89d185', '#cca700', '#d18616', '#b180d7'] },
  'light with a peach series': { background: '#ffffff', colors: ['#1a85ff', '#ffdab9', '#388a34', '#bf8803', '#d18616', '#652d90'] },
};

test('every series colour has at least 3:1 contrast with the background in light, dark and high-contrast themes', () => {
  for (const [name, t] of Object.entries(THEMES)) {
    const p = { background: t.background } as Palette;
    SERIES_KEYS.forEach((k, i) => (p[k] = t.colors[i]));
    const safe = contrastSafe(p);
    for (const k of SERIES_KEYS) {
      const ratio = contrastRatio(rgb(safe[k]), rgb(t.background));
      assert.ok(ratio >= 3, `${name}: ${k} ${safe[k]} has contrast ${ratio.toFixed(2)}:1 with ${t.background}`);
      // Colours that already contrast enough are left as the theme gives them.
      const before = contrastRatio(rgb(p[k]), rgb(t.background));
      if (before >= 3) assert.equal(safe[k], hex(rgb(p[k])), `${name}: ${k} was changed though it had ${before.toFixed(2)}:1`);
    }
  }
  // The brown is lightened on dark, the peach darkened on light.
  assert.ok(contrastRatio(rgb('#5c3a1e'), rgb('#1e1e1e')) < 3);
  const brown = withContrast(rgb('#5c3a1e'), rgb('#1e1e1e'));
  assert.ok(brown.every((v, i) => v > rgb('#5c3a1e')[i]));
  const peach = withContrast(rgb('#ffdab9'), rgb('#ffffff'));
  assert.ok(peach.every((v, i) => v < rgb('#ffdab9')[i]));
  assert.ok(contrastRatio(peach, rgb('#ffffff')) >= 3);
});

test('the run menu tells runs apart: title, start time, optimizer, lr, status', () => {
  const now = new Date(2025, 5, 3, 18, 0).getTime();
  const base: RunView = { id: 'a', title: 'edge-of-stability.basin.ts', probes: [], started: new Date(2025, 5, 3, 14, 5).getTime() };
  const settings = { optimizer: 'gd', lr: 0.2, steps: 100, schedule: 'constant', seed: 0, probeEvery: 10, traceEvery: 0, noiseEvery: 0, layersEvery: 0, checkpointEvery: 0, divergeFactor: 1e4 } as const;
  assert.equal(runLabel({ ...base, settings, done: { done: true, run: 'd', status: 'completed', steps: 100 } }, false, { now }), 'edge-of-stability.basin.ts · 14:05 · gd lr 0.2 · completed');
  assert.equal(runLabel({ ...base, settings: { ...settings, optimizer: 'sgd', lr: 0.05 } }, true, { now }), 'edge-of-stability.basin.ts · 14:05 · sgd lr 0.05 · running');
  assert.equal(runLabel({ ...base, settings }, false, { now, short: true }), 'edge-of-stability.basin.ts · 14:05 · gd lr 0.2');
  assert.equal(startTime(new Date(2025, 4, 30, 9, 7).getTime(), now), '2025-05-30 09:07');
  assert.equal(runLabel({ id: 'b', title: 'x', probes: [] }, false), 'x · loaded');
});

test('the panel protocol: run actions carry a run id; reveal and compare are checked', () => {
  assert.equal(checkFromWebview({ type: 'command', command: 'resume', runId: 'run-1' }), undefined);
  assert.equal(checkFromWebview({ type: 'command', command: 'trajectory', runId: 7 }), 'command: runId must be a string (got 7)');
  assert.equal(checkToWebview({ type: 'reveal', id: 'eigs-1' }), undefined);
  assert.equal(checkToWebview({ type: 'reveal' }), 'reveal: id must be a string (got nothing)');
  assert.equal(checkToWebview({ type: 'compare', runIds: ['a', 'b'] }), undefined);
  assert.equal(checkToWebview({ type: 'compare', runIds: ['a', 3] }), 'compare: runIds must be an array of strings (got an array of 2)');
});
