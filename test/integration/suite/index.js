// Runs inside VS Code's extension host (loaded by @vscode/test-electron as extensionTestsPath):
// a few mocha-style tests of the installed commands on a copy of examples/ (the workspace
// folder). Self-contained: a tiny sequential runner, node:assert, no test framework to install.
'use strict';
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const vscode = require('vscode');

const EXTENSION_ID = 'basin-dev.basin';
const tests = [];
const test = (name, fn) => tests.push({ name, fn });

function workspaceFile(...parts) {
  const root = process.env.BASIN_TEST_WORKSPACE ?? vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  assert.ok(root, 'no workspace folder');
  return vscode.Uri.file(path.join(root, ...parts));
}

test('the extension is installed and activates', async () => {
  const ext = vscode.extensions.getExtension(EXTENSION_ID);
  assert.ok(ext, `${EXTENSION_ID} is not installed`);
  await ext.activate();
  assert.equal(ext.isActive, true);
});

test('every contributed command is registered', async () => {
  const ext = vscode.extensions.getExtension(EXTENSION_ID);
  const contributed = (ext.packageJSON.contributes?.commands ?? []).map((c) => c.command);
  assert.ok(contributed.includes('basin.inspectModel'), 'basin.inspectModel is not contributed');
  const registered = new Set(await vscode.commands.getCommands(true));
  assert.deepEqual(contributed.filter((c) => !registered.has(c)), [], 'contributed but not registered');
});

test('basin.inspectModel on an experiment module completes', async () => {
  // An experiment module needs no data dialog (a model.json asks for its data file).
  await vscode.commands.executeCommand('basin.inspectModel', workspaceFile('spiral.basin.ts'));
});

test('basin.trainAndProbe writes a completed run with the CLI’s probe cadence', async () => {
  const module = workspaceFile('edge-of-stability.basin.ts');
  await vscode.window.showTextDocument(module);
  await vscode.commands.executeCommand('basin.trainAndProbe', module);
  const runs = path.join(path.dirname(module.fsPath), '.basin', 'runs');
  const dirs = fs.existsSync(runs) ? fs.readdirSync(runs).filter((d) => d.startsWith('edge-of-stability')) : [];
  assert.equal(dirs.length, 1, `expected one run in ${runs}`);
  const manifest = JSON.parse(fs.readFileSync(path.join(runs, dirs[0], 'manifest.json'), 'utf8'));
  assert.equal(manifest.status, 'completed');
  const probes = fs.readFileSync(path.join(runs, dirs[0], 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((r) => r.lambdaMax !== undefined);
  assert.equal(probes.length, 61, '1500 steps probed every 25, and step 0');
  assert.ok(Math.abs(probes[probes.length - 1].lambdaMax / probes[probes.length - 1].threshold - 1) < 0.15, 'at the edge of stability');

  const lenses = await vscode.commands.executeCommand('vscode.executeCodeLensProvider', module, 10);
  const titles = (lenses ?? []).map((l) => l.command?.title ?? '');
  assert.ok(titles.some((t) => t.includes('lambda_max')), `no lambda_max CodeLens: ${JSON.stringify(titles)}`);
});

exports.run = async function run() {
  let failed = 0;
  for (const { name, fn } of tests) {
    const start = Date.now();
    try {
      await fn();
      console.log(`  ✔ ${name} (${Date.now() - start} ms)`);
    } catch (e) {
      failed++;
      console.error(`  ✖ ${name}\n${String((e && e.stack) || e).replace(/^/gm, '      ')}`);
    }
  }
  console.log(`tests ${tests.length}, pass ${tests.length - failed}, fail ${failed}`);
  if (failed) throw new Error(`${failed} of ${tests.length} integration tests failed`);
};
