/** Runs `basin` in-process (the job thread's entry, without the launcher), or as the bundled CLI in a process of its own. */
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { describeFailure, runCli } from '../../src/cli/commands';

/** The bundled CLI (the tests run from .test-dist/unit/). */
export const CLI = path.join(__dirname, '../../dist/cli.js');

export interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** `node dist/cli.js ...args` in its own process (BASIN_DEBUG off): exit status and output. */
export function basin(args: string[], timeoutMs = 60_000): Run {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, BASIN_DEBUG: '' } });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Its exit code and what it printed. */
export async function basinInProcess(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io = { out: (s: string) => void (out += s), err: (s: string) => void (err += s), tty: false };
  try {
    return { code: await runCli([...args, '--quiet'], io, new AbortController().signal), out, err };
  } catch (e) {
    const f = describeFailure(e);
    return { code: f.code, out, err: err + f.text };
  }
}
