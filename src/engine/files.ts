/**
 * Creating folders for results safely. `fs.mkdirSync(dir, { recursive: true })` never returns on
 * some file systems (Node 20 loops forever under /proc, where mkdir answers ENOENT for a parent
 * that exists), so folders are made one level at a time from the deepest existing ancestor, and a
 * failure is a `BasinError` naming the folder.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputError } from './errors';

/** Makes `dir` and its missing parents; `forFile` names the file a failure is reported for. */
export function makeDirs(dir: string, forFile: string = dir): void {
  const missing: string[] = [];
  let at = path.resolve(dir);
  for (;;) {
    let stat: fs.Stats | undefined;
    try {
      stat = fs.statSync(at);
    } catch {
      stat = undefined;
    }
    if (stat) {
      if (!stat.isDirectory()) throw new InputError(`cannot create a folder here: ${at} is not a folder`, forFile);
      break;
    }
    missing.push(at);
    const up = path.dirname(at);
    if (up === at) break;
    at = up;
  }
  for (const d of missing.reverse()) {
    try {
      fs.mkdirSync(d);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') continue;
      throw new InputError(`cannot create the folder ${d} (${code ?? (e as Error).message})`, forFile);
    }
  }
}
