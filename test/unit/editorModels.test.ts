// The editor's model files (issue 12): .onnx files get the explorer actions model.json has (the
// package.json `when` clauses, evaluated here as VS Code does for these forms), the model pickers
// accept them, and a run's checkpoint model is its model.json or its one .onnx file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { checkpointModel, isModelFile, ONNX_LOSSES } from '../../src/extension/modelFiles';
import { LOSS_NAMES } from '../../src/engine/model/ir';

// The bundle runs from .test-dist/unit/.
const PKG = JSON.parse(fs.readFileSync(path.join(__dirname, '../../package.json'), 'utf8')) as {
  contributes: { menus: Record<string, { command: string; when?: string }[]> };
};

/**
 * A `when` clause of the forms package.json uses: terms joined by && and ||, && binding tighter;
 * a term is `resourceFilename =~ /re/`, `resourceExtname == .ext` or `listMultiSelection`.
 */
function when(clause: string, ctx: { file: string; multi: boolean }): boolean {
  return clause.split('||').some((alt) =>
    alt.split('&&').every((raw) => {
      const t = raw.trim();
      if (t === 'listMultiSelection') return ctx.multi;
      let m = /^resourceFilename =~ \/(.*)\/$/.exec(t);
      if (m) return new RegExp(m[1]).test(path.basename(ctx.file));
      m = /^resourceExtname == (\S+)$/.exec(t);
      if (m) return path.extname(ctx.file) === m[1];
      throw new Error(`unhandled when term: ${t}`);
    }),
  );
}

const explorer = (file: string, multi = false): string[] =>
  PKG.contributes.menus['explorer/context']
    .filter((i) => when(i.when ?? '', { file, multi }))
    .map((i) => i.command)
    .sort();

test('explorer menu: an .onnx file gets exactly the actions a model.json gets, single and multi-selected', () => {
  const model = explorer('/w/spiral/model.json');
  assert.deepEqual(model, ['basin.inspectModel', 'basin.spectrum', 'basin.surface']);
  assert.deepEqual(explorer('/w/torch/mlp.onnx'), model);
  assert.deepEqual(explorer('/w/torch/mlp.onnx', true), explorer('/w/spiral/model.json', true));
  assert.ok(explorer('/w/torch/mlp.onnx', true).includes('basin.interpolate'));
  assert.deepEqual(explorer('/w/notes.json'), []);
  assert.deepEqual(explorer('/w/exp.basin.ts'), ['basin.probeNow', 'basin.spectrum', 'basin.surface', 'basin.trainAndProbe']);
});

test('model pickers: model.json and .onnx files are models; a checkpoint model is its one .onnx, else model.json', () => {
  assert.deepEqual(
    ['a/model.json', 'a/my-model.json', 'a/net.onnx', 'a/NET.ONNX', 'a/data.json', 'a/remodel.json', 'a/x.onnx.txt'].map(isModelFile),
    [true, true, true, true, false, false, false],
  );
  const run = fs.mkdtempSync(path.join(os.tmpdir(), 'basin-modelfiles-'));
  const dir = (d: string, files: string[]): { dir: string } => {
    fs.mkdirSync(path.join(run, d), { recursive: true });
    for (const f of files) fs.writeFileSync(path.join(run, d, f), '');
    return { dir: d };
  };
  assert.equal(checkpointModel(run, dir('checkpoints/step-000002', ['model.json', 'weights.bin', 'optimizer.json'])), path.join(run, 'checkpoints/step-000002/model.json'));
  assert.equal(checkpointModel(run, dir('checkpoints/step-000004', ['mlp.onnx', 'optimizer.json'])), path.join(run, 'checkpoints/step-000004/mlp.onnx'));
  assert.equal(
    checkpointModel(run, dir('checkpoints/step-000005', ['model.json', 'weights.bin', 'mlp.onnx', 'optimizer.json'])),
    path.join(run, 'checkpoints/step-000005/mlp.onnx'),
    'the .onnx before its TF.js copy',
  );
  assert.equal(checkpointModel(run, dir('checkpoints/step-000006', ['optimizer.json'])), undefined);
  assert.equal(checkpointModel(run, dir('checkpoints/step-000008', ['a.onnx', 'b.onnx'])), undefined, 'ambiguous');
  assert.equal(checkpointModel(run, { dir: 'checkpoints/missing' }), undefined);
});

test("the editor's ONNX loss picker offers every named loss the engine has", () => {
  assert.deepEqual(ONNX_LOSSES.map((l) => l.label).sort(), [...LOSS_NAMES].sort());
  assert.equal(ONNX_LOSSES[0].label, 'crossEntropyFromLogits');
});
