/** Runs `basin` in-process (the job thread's entry, without the launcher): its exit code and what it printed. */
import { describeFailure, runCli } from '../../src/cli/commands';

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
