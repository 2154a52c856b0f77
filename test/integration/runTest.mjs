// Integration test in VS Code desktop (@vscode/test-electron): launches the VS Code named by
// VSCODE_EXECUTABLE with this repo as the extension under development, on a temp copy of
// examples/, and runs test/integration/suite/index.js inside its extension host.
//
//   VSCODE_EXECUTABLE=/path/to/code npm run test:integration
//
// VS Code desktop cannot be downloaded on the build machines, so without VSCODE_EXECUTABLE this
// prints a notice and exits 0 (the browser-based end-to-end test, npm run test:e2e, runs there).
import { runTests } from '@vscode/test-electron';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const exe = process.env.VSCODE_EXECUTABLE;

if (!exe) {
  console.log('skipped: no VS Code desktop (set VSCODE_EXECUTABLE)');
  process.exit(0);
}
if (!fs.existsSync(exe)) {
  console.error(`VSCODE_EXECUTABLE=${exe}: no such file`);
  process.exit(1);
}
if (!fs.existsSync(path.join(root, 'dist', 'extension.js'))) {
  console.error('no dist/extension.js: run npm run build first');
  process.exit(1);
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'basin-integration-'));
const workspace = path.join(tmp, 'workspace');
fs.cpSync(path.join(root, 'examples'), workspace, { recursive: true });
let code = 1;
try {
  code = await runTests({
    vscodeExecutablePath: exe,
    extensionDevelopmentPath: root,
    extensionTestsPath: path.join(here, 'suite', 'index.js'),
    extensionTestsEnv: { BASIN_TEST_WORKSPACE: workspace },
    launchArgs: [
      workspace,
      '--disable-extensions', // other extensions; the one under development stays enabled
      '--disable-workspace-trust', // experiment modules run only in trusted workspaces
      '--skip-welcome',
      '--skip-release-notes',
      '--disable-telemetry',
      '--user-data-dir', path.join(tmp, 'user-data'),
      '--extensions-dir', path.join(tmp, 'extensions'),
    ],
  });
} catch (e) {
  console.error(`integration tests failed: ${e instanceof Error ? e.message : String(e)}`);
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
process.exit(code);
