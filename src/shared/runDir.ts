/**
 * Reading a run directory (manifest.json + metrics.jsonl), for the CLI (compare, report) and the
 * extension (restoring runs after a restart). Node only (the webview never imports it). A crash can
 * cut the last metrics line: unreadable lines are skipped and counted, never fatal.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RunView } from './protocol';
import type { ProbeRecord, RunManifest, TrainDone } from './results';

export interface RunDirContents {
  manifest: RunManifest;
  probes: ProbeRecord[];
  /** Metrics lines that could not be read (a line cut by a crash). */
  skipped: number;
  /** How the run ended, undefined while the manifest says it is running. */
  done?: TrainDone;
}

/** Reads a run directory; `problem` says what is wrong (for the caller's own error type). */
export function readRunDir(dir: string): RunDirContents | { problem: string } {
  const mf = path.join(dir, 'manifest.json');
  if (!fs.existsSync(mf)) return { problem: 'no manifest.json: not a Basin run directory' };
  let manifest: RunManifest;
  try {
    manifest = JSON.parse(fs.readFileSync(mf, 'utf8')) as RunManifest;
  } catch (e) {
    return { problem: `manifest.json is not valid JSON (${(e as Error).message})` };
  }
  if (!manifest || manifest.kind !== 'basin-run') return { problem: 'manifest.json is not a Basin run manifest' };
  const probes: ProbeRecord[] = [];
  let skipped = 0;
  const metrics = path.join(dir, 'metrics.jsonl');
  const text = fs.existsSync(metrics) ? fs.readFileSync(metrics, 'utf8') : '';
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const r = JSON.parse(line) as ProbeRecord;
      if (r && typeof r === 'object' && typeof r.step === 'number') probes.push(r);
      else skipped++;
    } catch {
      skipped++;
    }
  }
  const lastStep = probes.length ? probes[probes.length - 1].step : 0;
  const done: TrainDone | undefined =
    manifest.status === 'running'
      ? undefined
      : { done: manifest.status === 'completed', run: dir, status: manifest.status, reason: manifest.reason, steps: manifest.stoppedAt ?? lastStep };
  return { manifest, probes, skipped, done };
}

/** A run directory as the panel shows it. */
export function runViewOf(dir: string, contents: RunDirContents, id = dir, title = path.basename(dir)): RunView {
  return { id, title, dir, settings: contents.manifest.settings, probes: contents.probes, done: contents.done };
}
