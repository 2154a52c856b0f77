/**
 * `basin report`: one self-contained HTML file with the panel's charts, readable offline and
 * attachable to an issue or a CI artifact. The page embeds the panel script (dist/webview.js),
 * its stylesheet and a PanelSnapshot (the global REPORT_GLOBAL) built from run directories and
 * result files; the script draws the snapshot exactly as the VS Code panel would, without a host.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPORT_GLOBAL, resultCardTitle, type PanelSnapshot, type ResultView, type RunView } from '../shared/protocol';
import type { JobResult, RunManifest } from '../shared/results';
import { BasinError } from '../engine/errors';
import { readRunDir, runViewOf } from '../shared/runDir';
import { RESULT_KINDS } from '../shared/jobs';

export interface ReportOptions {
  title: string;
  /** The panel script (dist/webview.js). */
  webviewJs: string;
  /** The panel stylesheet (dist/panel.css or media/panel.css). */
  css: string;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * JSON that is safe inside a <script> element: no '<' (so no '</script' or '<!--'), no '>' or
 * '&', and no U+2028/2029 line separators. It is still JSON and parses back to the same value.
 */
export function scriptSafeJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

/**
 * Script text that cannot end its <script> element early: '</script' and '<!--' become
 * '\x3C/script' and '\x3C!--', which mean the same inside JS strings, templates and regexes (the
 * only places a minified bundle has them). The source-map comment is dropped (no file to load).
 */
export function scriptSafeJs(js: string): string {
  return js.replace(/^\/\/# sourceMappingURL=.*$/gm, '').replace(/<(\/script|!--)/gi, '\\x3C$1');
}

function styleSafeCss(css: string): string {
  return css.replace(/^\/\*# sourceMappingURL=.*\*\/$/gm, '').replace(/<\/(style)/gi, '<\\/$1');
}

/** No network, no files: only the inline stylesheet and scripts, and images from data: URLs. */
const CSP = "default-src 'none'; img-src data: blob:; style-src 'unsafe-inline'; script-src 'unsafe-inline'";

/** The report page: stylesheet, snapshot and script inline; a CSP that allows no network access. */
export function renderReport(snapshot: PanelSnapshot, opts: ReportOptions): string {
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<meta http-equiv="Content-Security-Policy" content="${CSP}">`,
    '<meta name="generator" content="Basin">',
    `<title>${escapeHtml(opts.title)}</title>`,
    `<style>\n${styleSafeCss(opts.css)}\n</style>`,
    '</head>',
    '<body>',
    '<div id="basin"></div>',
    `<script>window.${REPORT_GLOBAL} = ${scriptSafeJson(snapshot)};</script>`,
    `<script>\n${scriptSafeJs(opts.webviewJs)}\n</script>`,
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

/** metrics.jsonl records; a line cut short by a crash (or any unreadable line) is skipped and counted. */

function readRunView(runDir: string): { run: RunView; manifest: RunManifest; skipped: number } {
  const dir = path.resolve(runDir);
  const read = readRunDir(dir);
  if ('problem' in read) throw new BasinError(read.problem, runDir);
  return { run: runViewOf(dir, read), manifest: read.manifest, skipped: read.skipped };
}

function runStatus(m: RunManifest, run: RunView, skipped: number): string {
  const bits = [
    m.model,
    `${m.params.toLocaleString('en-US')} parameters`,
    `${m.samples.toLocaleString('en-US')} samples`,
    m.lossName,
    m.backendDetail || m.backend,
    m.status === 'running' ? `no end recorded (last step ${run.probes[run.probes.length - 1]?.step ?? 0})` : '',
    skipped ? `${skipped} unreadable metrics line${skipped === 1 ? '' : 's'} skipped` : '',
  ];
  return bits.filter(Boolean).join(' · ');
}

/** A snapshot of one training run directory (manifest.json + metrics.jsonl). */
export function runSnapshot(runDir: string): PanelSnapshot {
  const { run, manifest, skipped } = readRunView(runDir);
  return { runs: [run], results: [], focus: run.id, status: runStatus(manifest, run, skipped) };
}

function readResult(file: string, index: number): ResultView {
  let value: unknown;
  try {
    value = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new BasinError('no such file', file);
    throw new BasinError(`not valid JSON (${(e as Error).message})`, file);
  }
  const kind = value && typeof value === 'object' ? (value as { kind?: unknown }).kind : undefined;
  if (typeof kind !== 'string' || !RESULT_KINDS.has(kind)) {
    throw new BasinError(
      `not a Basin result (written by \`basin <command> --out FILE\`)${typeof kind === 'string' ? `: kind '${kind}'` : ''}`,
      file,
    );
  }
  return { id: `result-${index + 1}-${path.basename(file)}`, title: resultCardTitle(value as JobResult), result: value as JobResult };
}

/** A snapshot of result files written by `basin <command> --out FILE`, one ResultView each. */
export function resultSnapshot(files: string[]): PanelSnapshot {
  const results = files.map(readResult);
  return { runs: [], results, focus: results[0]?.id };
}

/**
 * A snapshot of any mix of run directories and result files (what `basin report PATH...` takes):
 * directories are runs, files are results. The first one is shown first.
 */
export function reportSnapshot(paths: string[]): PanelSnapshot {
  if (!paths.length) throw new BasinError('report takes run directories and/or result JSON files');
  const snap: PanelSnapshot = { runs: [], results: [] };
  const status: string[] = [];
  paths.forEach((p, i) => {
    if (fs.existsSync(p) && fs.statSync(p).isDirectory()) {
      const { run, manifest, skipped } = readRunView(p);
      // Two runs named alike (a/run, b/run): tell them apart by their parent.
      if (snap.runs.some((r) => r.title === run.title)) run.title = path.join(path.basename(path.dirname(run.id)), run.title);
      snap.runs.push(run);
      if (paths.length === 1) status.push(runStatus(manifest, run, skipped));
    } else {
      snap.results.push(readResult(p, i));
    }
    snap.focus ??= snap.runs[0]?.id ?? snap.results[0]?.id;
  });
  snap.status = status.join('');
  return snap;
}

/** A report title from its inputs: 'Basin report: eos-run, surf.json'. */
export function reportTitle(paths: string[]): string {
  const names = paths.map((p) => path.basename(path.resolve(p)));
  return `Basin report: ${names.length > 3 ? `${names.slice(0, 3).join(', ')} and ${names.length - 3} more` : names.join(', ')}`;
}

/**
 * The panel script and stylesheet, found beside the CLI bundle (dist/cli.js -> dist/webview.js,
 * dist/panel.css, else media/panel.css). `dir` defaults to the bundle's folder; a test bundle in
 * .test-dist/unit finds the repository's dist/ two levels up.
 */
export function loadPanelAssets(dir: string = __dirname): { webviewJs: string; css: string } {
  const find = (names: string[]): string | undefined => {
    for (const base of [dir, path.join(dir, '..'), path.join(dir, '..', '..')]) {
      for (const n of names) {
        const f = path.join(base, n);
        if (fs.existsSync(f)) return f;
      }
    }
    return undefined;
  };
  const js = find(['webview.js', path.join('dist', 'webview.js')]);
  if (!js) throw new BasinError(`the panel script webview.js is missing beside ${dir}: build it with \`node esbuild.js\``);
  const css = find(['panel.css', path.join('dist', 'panel.css'), path.join('media', 'panel.css')]);
  if (!css) throw new BasinError(`the panel stylesheet panel.css is missing beside ${dir}: build it with \`node esbuild.js\``);
  return { webviewJs: fs.readFileSync(js, 'utf8'), css: fs.readFileSync(css, 'utf8') };
}
