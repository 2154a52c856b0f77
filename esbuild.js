// Bundles Basin's entry points into dist/ (type checking is separate: `npm run typecheck`).
//   node esbuild.js            production bundles (extension, worker, CLI)
//   node esbuild.js --watch    rebuild on change
//   node esbuild.js --tests    also bundle test/unit/*.test.ts into .test-dist/unit for `node --test`
//   node esbuild.js --bench    also bundle test/bench/bench.ts into .test-dist/bench
//   node esbuild.js --scripts  also bundle scripts/*.ts into .test-dist/scripts
'use strict';
const esbuild = require('esbuild');
const fs = require('node:fs');
const path = require('node:path');

const watch = process.argv.includes('--watch');
const tests = process.argv.includes('--tests');
const bench = process.argv.includes('--bench');
const scripts = process.argv.includes('--scripts');
const root = __dirname;

/** Options every Node-side bundle shares. */
const nodeOptions = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: true,
  // One copy of TF.js: the ES module builds, so esbuild can tree-shake and the gradient
  // registrations (ES modules only) share the same module instances.
  mainFields: ['module', 'main'],
  // Native code, loaded at run time only when installed and loadable: the TF.js native backend
  // (an optional dependency) and ONNX Runtime (src/engine/ort; Basin falls back to TF.js without it).
  external: ['vscode', 'esbuild', '@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu', 'onnxruntime-node'],
  logLevel: 'warning',
  legalComments: 'none',
};

/** The wasm binaries the wasm backend loads at run time, copied beside each bundle. */
function copyWasm(outdir) {
  const src = path.join(root, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist');
  const dest = path.join(outdir, 'wasm');
  fs.mkdirSync(dest, { recursive: true });
  for (const f of fs.readdirSync(src)) if (f.endsWith('.wasm')) fs.copyFileSync(path.join(src, f), path.join(dest, f));
}

function testEntries() {
  const dir = path.join(root, 'test', 'unit');
  return fs.readdirSync(dir).filter((f) => f.endsWith('.test.ts')).map((f) => path.join(dir, f));
}

async function main() {
  const builds = [
    {
      ...nodeOptions,
      entryPoints: {
        extension: 'src/extension/extension.ts',
        worker: 'src/worker/main.ts',
        cli: 'src/cli/main.ts',
        'cli-job': 'src/cli/job.ts',
        shard: 'src/engine/shard/worker.ts',
      },
      outdir: 'dist',
      minify: !watch,
    },
    // The panel (webview/): browser code, one script the host page loads with a nonce.
    {
      entryPoints: { webview: 'webview/main.ts' },
      outdir: 'dist',
      bundle: true,
      platform: 'browser',
      format: 'iife',
      target: 'es2020',
      minify: !watch,
      sourcemap: watch,
      logLevel: 'warning',
      legalComments: 'none',
    },
  ];
  // The panel's stylesheet beside its script (reports inline both).
  fs.mkdirSync(path.join(root, 'dist'), { recursive: true });
  fs.copyFileSync(path.join(root, 'media', 'panel.css'), path.join(root, 'dist', 'panel.css'));
  const extra = [];
  if (tests) extra.push(['.test-dist/unit', testEntries()]);
  if (bench) extra.push(['.test-dist/bench', ['test/bench/bench.ts']]);
  if (scripts) extra.push(['.test-dist/scripts', fs.readdirSync(path.join(root, 'scripts')).filter((f) => f.endsWith('.ts')).map((f) => path.join('scripts', f))]);
  for (const [outdir, entryPoints] of extra) {
    fs.rmSync(path.join(root, outdir), { recursive: true, force: true });
    const shard = { in: 'src/engine/shard/worker.ts', out: 'shard' };
    builds.push({ ...nodeOptions, entryPoints: [shard, ...entryPoints], outdir, sourcemap: 'inline' });
    copyWasm(path.join(root, outdir));
  }
  copyWasm(path.join(root, 'dist'));
  if (watch) {
    for (const b of builds) await (await esbuild.context(b)).watch();
    console.log('esbuild: watching');
  } else {
    await Promise.all(builds.map((b) => esbuild.build(b)));
    const cli = path.join(root, 'dist', 'cli.js');
    if (fs.existsSync(cli)) fs.chmodSync(cli, 0o755);
  }
}

main().catch((e) => {
  console.error(e.message || e);
  process.exit(1);
});
