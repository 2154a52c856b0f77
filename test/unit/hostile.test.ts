/**
 * The hostile-input corpus (test/hostile/cases.tsv, files from test/hostile/make-corpus.mjs) through
 * the `basin` CLI and the compute worker: each case ends with its exit code and a message holding
 * every listed part (the file or option and the problem); never exit 70, an "internal error", a
 * stack trace or a hang; size cases stay under a memory cap while they run.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { FromWorker, JobKind, JobOptions, ProblemInput } from '../../src/shared/workerProtocol';

const ROOT = path.join(__dirname, '../..');
const CLI = path.join(ROOT, 'dist/cli.js');
const WORKER = path.join(ROOT, 'dist/worker.js');
const HOSTILE = path.join(ROOT, 'test/hostile');
/** A case must end within this (a hang is a failure, not a wait). */
const CASE_TIMEOUT_MS = 60_000;
/** Resident memory a size case may reach (the refusal must come before the allocation). */
const SIZE_CASE_RSS_BYTES = 1.5 * 2 ** 30;

interface Case {
  id: string;
  where: 'cli' | 'both';
  argv: string;
  exit: number;
  parts: string[];
  size: boolean;
  line: number;
}

function readCases(): Case[] {
  const text = fs.readFileSync(path.join(HOSTILE, 'cases.tsv'), 'utf8');
  const cases: Case[] = [];
  text.split('\n').forEach((raw, i) => {
    if (raw.trim() === '' || raw.startsWith('#')) return;
    const [id, where, argv, exit, must, flag] = raw.split('\t');
    assert.ok(id && (where === 'cli' || where === 'both') && argv && /^\d+$/.test(exit) && must !== undefined, `cases.tsv line ${i + 1} is malformed: ${raw}`);
    cases.push({ id, where, argv, exit: Number(exit), parts: must.split(' & ').map((s) => s.trim()).filter(Boolean), size: flag === 'size', line: i + 1 });
  });
  return cases;
}

const cases = readCases();
let corpus = '';
let scratch = '';

before(() => {
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'basin-hostile-'));
  corpus = path.join(scratch, 'corpus');
  execFileSync(process.execPath, [path.join(HOSTILE, 'make-corpus.mjs'), corpus, '--special'], { stdio: 'pipe' });
});
after(() => fs.rmSync(scratch, { recursive: true, force: true }));

function expand(c: Case): string[] {
  const tmp = path.join(scratch, 'cases', c.id);
  fs.mkdirSync(tmp, { recursive: true });
  return c.argv.split(' ').map((a) => a.replaceAll('{c}', corpus).replaceAll('{ex}', path.join(ROOT, 'examples')).replaceAll('{tmp}', tmp));
}

/** The parts of the message, with corpus paths shortened as a message may show them. */
function checkMessage(c: Case, text: string, via: string): void {
  const lower = text.toLowerCase();
  for (const part of c.parts) assert.ok(lower.includes(part.toLowerCase()), `${c.id} (${via}, cases.tsv line ${c.line}): the message lacks '${part}':\n${text}`);
  assert.ok(!/internal error/i.test(text), `${c.id} (${via}): reported as an internal error:\n${text}`);
  assert.ok(!/\n\s+at .+:\d+:\d+\)?/.test(text), `${c.id} (${via}): a stack trace was printed:\n${text}`);
}

function peakRss(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

async function runCli(c: Case): Promise<{ code: number | null; out: string; err: string; ms: number; rss: number }> {
  const t0 = Date.now();
  const child = spawn(process.execPath, [CLI, ...expand(c)], { cwd: scratch, env: { ...process.env, BASIN_DEBUG: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let rss = 0;
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const poll = setInterval(() => (rss = Math.max(rss, peakRss(child.pid ?? 0))), 25);
  const killer = setTimeout(() => child.kill('SIGKILL'), CASE_TIMEOUT_MS);
  const code = await new Promise<number | null>((resolve) => child.on('close', (k) => resolve(k)));
  clearInterval(poll);
  clearTimeout(killer);
  return { code, out, err, ms: Date.now() - t0, rss };
}

/** The worker request for a case's command line (the options the worker takes). */
function request(c: Case): { job: JobKind; problem: ProblemInput; options: JobOptions } {
  const argv = expand(c);
  const job = argv[0] as JobKind;
  const problem: ProblemInput = {};
  const options: JobOptions = {};
  for (let i = 1; i < argv.length; i++) {
    const [a, v] = [argv[i], argv[i + 1]];
    if (!a.startsWith('--')) {
      problem.experiment = a;
      continue;
    }
    i++;
    if (a === '--model') problem.model = v;
    else if (a === '--data') problem.data = v;
    else if (a === '--loss') problem.loss = v;
    else if (a === '--labels') problem.labels = v.split(',');
    else if (a === '--k') options.k = Number(v);
    else if (a === '--grid') options.gridPoints = Number(v);
    else if (a === '--steps') options.steps = Number(v);
    else if (a === '--x') options.x = v;
    else if (a === '--y') options.y = v;
    else throw new Error(`${c.id}: no worker field for ${a}`);
  }
  if (job === 'slice' || job === 'surface') options.dirs = ['random'];
  return { job, problem, options };
}

test('the hostile corpus, case by case, through the CLI', async () => {
  const failures: string[] = [];
  const queue = [...cases];
  const worker = async (): Promise<void> => {
    for (let c = queue.shift(); c; c = queue.shift()) {
      const r = await runCli(c);
      try {
        const text = `${r.err}${r.out}`;
        assert.notEqual(r.code, null, `${c.id}: did not end within ${CASE_TIMEOUT_MS / 1000} s (killed)`);
        assert.notEqual(r.code, 70, `${c.id}: exit 70 (internal error):\n${text}`);
        assert.equal(r.code, c.exit, `${c.id} (cases.tsv line ${c.line}): exit ${r.code}, expected ${c.exit}:\n${text}`);
        checkMessage(c, text, 'cli');
        if (c.size) assert.ok(r.rss < SIZE_CASE_RSS_BYTES, `${c.id}: peak memory ${(r.rss / 2 ** 20).toFixed(0)} MB over the cap`);
      } catch (e) {
        failures.push((e as Error).message);
      }
    }
  };
  await Promise.all([worker(), worker()]);
  assert.deepEqual(failures, [], `${failures.length} of ${cases.length} cases failed:\n\n${failures.join('\n\n')}`);
});

test('the hostile corpus through the compute worker: an error message for each, and the worker stays alive', async () => {
  const child: ChildProcess = fork(WORKER, [], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], cwd: scratch });
  const replies = new Map<number, (m: FromWorker) => void>();
  child.on('message', (m: FromWorker) => {
    if ('inReplyTo' in m && (m.type === 'result' || m.type === 'error')) replies.get(m.inReplyTo)?.(m);
  });
  const failures: string[] = [];
  try {
    let id = 0;
    for (const c of cases.filter((k) => k.where === 'both')) {
      const req = { type: 'run' as const, id: ++id, ...request(c) };
      const reply = await new Promise<FromWorker | undefined>((resolve) => {
        const timer = setTimeout(() => resolve(undefined), CASE_TIMEOUT_MS);
        replies.set(req.id, (m) => (clearTimeout(timer), resolve(m)));
        child.send(req);
      });
      try {
        assert.ok(reply, `${c.id}: the worker did not answer within ${CASE_TIMEOUT_MS / 1000} s`);
        if (c.exit === 0) assert.equal(reply.type, 'result', `${c.id}: ${JSON.stringify(reply).slice(0, 300)}`);
        else {
          assert.ok(reply.type === 'error', `${c.id}: expected an error, got ${reply.type}`);
          assert.equal(reply.kind, 'user', `${c.id}: error of kind ${reply.kind}: ${reply.message.slice(0, 500)}`);
          checkMessage(c, reply.message, 'worker');
        }
      } catch (e) {
        failures.push((e as Error).message);
      }
    }
    assert.equal(child.exitCode, null, 'the worker died');
  } finally {
    child.kill();
  }
  assert.deepEqual(failures, [], `${failures.length} worker cases failed:\n\n${failures.join('\n\n')}`);
});

test('the committed corpus is what make-corpus.mjs writes (regenerate with: node test/hostile/make-corpus.mjs)', () => {
  const fresh = path.join(scratch, 'fresh');
  execFileSync(process.execPath, [path.join(HOSTILE, 'make-corpus.mjs'), fresh], { stdio: 'pipe' });
  const committed = path.join(HOSTILE, 'corpus');
  const list = (dir: string): string[] => (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => fs.statSync(path.join(dir, f)).isFile()).sort();
  assert.deepEqual(list(committed), list(fresh));
  for (const f of list(fresh)) assert.ok(fs.readFileSync(path.join(committed, f)).equals(fs.readFileSync(path.join(fresh, f))), `${f} differs: regenerate the corpus`);
});
