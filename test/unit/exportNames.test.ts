// Export (src/extension/exportNames.ts): the folder basin-export-<run>-<time>/ and file names that
// say what each file is, each used once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { exportFolderName, FileNames, resultCsvBase, runCsvBase, slug, stamp } from '../../src/extension/exportNames';

test('slug: lower-case words joined by -, Greek letters spelled, never empty', () => {
  assert.equal(slug('Top 5 Hessian eigenvalues · spiral/model.json'), 'top-5-hessian-eigenvalues-spiral-model-json');
  assert.equal(slug('λmax of η = 0.2'), 'lambdamax-of-eta-0-2');
  assert.equal(slug('Café  déjà'), 'cafe-deja');
  assert.equal(slug('···'), 'basin');
  assert.equal(slug('a'.repeat(30) + ' ' + 'b'.repeat(40), 40), 'a'.repeat(30) + '-' + 'b'.repeat(9));
  assert.equal(slug('abc def', 4), 'abc', 'no trailing dash after a cut');
});

test('the export folder names the run and the time', () => {
  const at = new Date(2026, 10, 30, 6, 5, 9);
  assert.equal(stamp(at), '20261130-060509');
  assert.equal(exportFolderName('edge-of-stability.basin.ts', at), 'basin-export-edge-of-stability-20261130-060509');
  assert.equal(exportFolderName('spiral.basin.js (its model, untrained)', at), 'basin-export-spiral-basin-js-its-model-untrained-20261130-060509');
  assert.equal(exportFolderName(undefined, at), 'basin-export-panel-20261130-060509');
});

test('file names say what each file is, and a second one of a name gets -2', () => {
  assert.equal(runCsvBase('edge-of-stability.basin.ts'), 'edge-of-stability-metrics');
  assert.equal(resultCsvBase('2-D loss surface · spiral/model.json'), '2-d-loss-surface-spiral-model-json');
  const names = new FileNames();
  assert.equal(names.take('edge-of-stability-metrics', 'csv'), 'edge-of-stability-metrics.csv');
  assert.equal(names.take('edge-of-stability-metrics', 'csv'), 'edge-of-stability-metrics-2.csv');
  assert.equal(names.take('edge-of-stability-metrics', 'csv'), 'edge-of-stability-metrics-3.csv');
  assert.equal(names.take('edge-of-stability-metrics', 'png'), 'edge-of-stability-metrics.png');
});
