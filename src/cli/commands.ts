/**
 * `basin`'s commands, run on the job thread (src/cli/job.ts): parses and validates the command
 * line, loads the problem, runs the job and writes what it prints through `CliIo`, so that the
 * launcher (src/cli/main.ts) keeps the terminal, the signals and the exit code even while user
 * code is stuck in a loop.
 *
 *   basin info    describe a model (layers, parameters, loss, backend)
 *   basin eigs    top or bottom Hessian eigenvalues (Lanczos or power iteration)
 *   basin trace   Hessian trace (Hutch++ or Hutchinson) with its standard error
 *   basin density spectral density (stochastic Lanczos quadrature)
 *   ... and slice, surface, interpolate, trajectory, flatness, train, compare, report (USAGE).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initBackend, BACKENDS } from '../engine/backend';
import { loadProblem, type ProblemSpec } from '../engine/problem';
import { runJob, type RunContext } from '../engine/registry';
import { compareRuns, defaultRunDir, describeDone, moduleSettings, probePrinter, refuseExistingRun, trainSettings } from './train';
import { openRunForResume } from '../engine/train/resume';
import type { TrainSettings } from '../shared/results';
import { BasinError } from '../engine/errors';
import { makeDirs } from '../engine/files';
import { CancelledError } from '../engine/linalg/operator';
import type { Progress } from '../shared/results';
import { formatResult, isJobKind, jobSpec, type JobKind, type OptionEntry, type OptionsOf } from '../shared/jobs';
import { gridCsv } from '../shared/csv';
import { choice, intOption, numOption, parseArgs, strOption, UsageError, type Parsed } from './args';
import { loadPanelAssets, renderReport, reportSnapshot, reportTitle } from './report';
import { ALL_OPTIONS, BOOLEAN_OPTIONS, COMMAND_OPTIONS, FLAGS } from './usage';

/** What a command prints, and whether stderr is a terminal (progress rewrites one line there). */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  readonly tty: boolean;
}

/** One job option from its flag, parsed by its type (numbers on the command line are > 0). */
function flagValue(p: Parsed, flag: string, e: OptionEntry): unknown {
  const spec = e.spec;
  switch (spec.type) {
    case 'int':
      return intOption(p, flag, spec.min);
    case 'number':
      return numOption(p, flag);
    case 'string':
      return strOption(p, flag);
    case 'boolean':
      return p.options.has(flag) || undefined;
    case 'choice':
      return choice(p, flag, spec.values);
    case 'strings': {
      const list = strOption(p, flag)?.split(',');
      if (list && spec.maxItems !== undefined && list.length > spec.maxItems) throw new UsageError(e.tooMany ?? `--${flag} takes at most ${spec.maxItems} values`);
      return list;
    }
    case 'choices': {
      const list = strOption(p, flag)?.split(',');
      for (const v of list ?? []) if (!spec.values.includes(v)) throw new UsageError(`--${flag}: unknown ${flag.replace(/s$/, '')} '${v}' (${spec.values.join(', ')})`);
      return list;
    }
    case 'settings':
      throw new Error(`--${flag}: training settings are not a command-line option`);
  }
}

/**
 * A job's options from the command line, by its option table (src/shared/jobs): each option with
 * a flag, parsed by its type, and the model files given as positionals. Only options given are
 * set: the job's defaults fill in the rest when it runs. Validates; no slow work happens here.
 */
export function jobOptions<K extends JobKind>(kind: K, p: Parsed): OptionsOf<K> {
  const spec = jobSpec(kind);
  const out: Record<string, unknown> = {};
  for (const [field, e] of Object.entries(spec.options)) {
    if (e.flag === undefined) continue;
    const v = flagValue(p, e.flag, e);
    if (v !== undefined) out[field] = v;
  }
  if (spec.positionals) {
    const got = spec.positionals(p.positionals);
    if (typeof got === 'string') throw new UsageError(got);
    Object.assign(out, got);
  }
  // Built field by field from the job's own table, each value parsed by its type.
  return out as OptionsOf<K>;
}

function problemSpec(p: Parsed, modelFilesAsPositionals = false): ProblemSpec {
  const experiment = strOption(p, 'experiment') ?? p.positionals.find((a) => /\.(m?[jt]s|cjs)$/.test(a));
  const extra = modelFilesAsPositionals ? [] : p.positionals.filter((a) => a !== experiment);
  if (extra.length) throw new UsageError(`unexpected argument '${extra[0]}'`);
  return {
    experiment,
    model: strOption(p, 'model'),
    data: strOption(p, 'data'),
    labels: strOption(p, 'labels')?.split(','),
    loss: strOption(p, 'loss'),
    chunkSize: intOption(p, 'chunk-size'),
    noHeader: p.options.has('no-header') || undefined,
    xKey: strOption(p, 'x-key'),
    yKey: strOption(p, 'y-key'),
  };
}

/** Progress on stderr: one rewritten line on a terminal, a line every few seconds otherwise. */
function progressPrinter(io: CliIo, quiet: boolean): { onProgress: (p: Progress) => void; done: () => void } {
  let last = 0;
  let shown = false;
  return {
    onProgress: (p) => {
      if (quiet) return;
      const now = Date.now();
      if (!io.tty && now - last < 3000) return;
      last = now;
      const line = `basin: ${p.message}`;
      if (io.tty) {
        io.err(`\r\x1b[K${line}`);
        shown = true;
      } else io.err(`${line}\n`);
    },
    done: () => {
      if (io.tty && shown) io.err('\r\x1b[K');
      shown = false;
    },
  };
}

/** Writes `text` to `file` (creating its folder); a failure is a BasinError naming the path. */
function writeOutput(file: string, text: string, what: string): void {
  makeDirs(path.dirname(path.resolve(file)), file);
  try {
    fs.writeFileSync(file, text);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new BasinError(`cannot write the ${what} (${code ?? (e as Error).message})`, file);
  }
}

/** `basin train`: streams probes, prints where the run was saved; exit 1 on divergence, 130 on a stop. */
async function trainCommand(p: Parsed, io: CliIo, signal: AbortSignal): Promise<number> {
  const json = p.options.has('json');
  const resume = strOption(p, 'resume');
  let spec = problemSpec(p);
  let fromRun: Partial<TrainSettings> = {};
  if (resume) {
    // Checks the run directory (manifest field by field, the newest whole checkpoint) before anything loads.
    const opened = openRunForResume(resume);
    for (const note of opened.notes) io.err(`basin: ${note}\n`);
    if (!spec.model && !spec.experiment) spec = { ...spec, ...opened.problem, chunkSize: spec.chunkSize };
    fromRun = opened.settings;
  } else {
    const outOpt = strOption(p, 'out');
    if (outOpt !== undefined) refuseExistingRun(outOpt);
  }
  const seedOpt = intOption(p, 'seed', 0);
  trainSettings(p, seedOpt); // validate the options before loading anything
  await initBackend(choice(p, 'backend', BACKENDS));
  const problem = await loadProblem(spec);
  const settings = trainSettings(p, seedOpt, { ...moduleSettings(problem.experiment?.train, spec.experiment ?? ''), ...fromRun });
  const out = resume ?? strOption(p, 'out') ?? defaultRunDir(problem.description);
  const table = probePrinter((s) => io.out(s));
  if (!json) io.out(`training ${problem.description}: ${settings.optimizer}, lr ${settings.lr}, ${settings.steps} steps${settings.batchSize ? `, batch ${settings.batchSize}` : ''} -> ${out}\n`);
  const done = await runJob('train', problem, { train: settings, runDir: out, resume: resume !== undefined }, {
    signal,
    onProbe: (r) => (json ? io.out(`${JSON.stringify(r)}\n`) : table(r)),
  });
  if (json) io.out(`${JSON.stringify(done)}\n`);
  else io.out(`${describeDone(done)}\n`);
  if (done.status === 'diverged') {
    io.err(`basin: ${done.reason}\n`);
    return 1;
  }
  return done.status === 'cancelled' ? 130 : 0;
}

/** Refuses options that the command does not take (they would be silently ignored otherwise). */
function checkApplicable(command: string, p: Parsed): void {
  const allowed = COMMAND_OPTIONS.get(command);
  if (!allowed) throw new UsageError(`unknown command '${command}'`);
  for (const name of p.options.keys()) {
    if (FLAGS.has(name) || allowed.has(name)) continue;
    const takers = [...COMMAND_OPTIONS].filter(([, s]) => s.has(name)).map(([c]) => c);
    throw new UsageError(`--${name} does not apply to '${command}'${takers.length ? ` (it is an option of ${takers.join(', ')})` : ''}`);
  }
}

/**
 * Runs one `basin` command line and returns its exit code. `signal` is the user's stop (Ctrl-C or
 * SIGTERM): jobs end at their next check and keep what they computed.
 */
export async function runCli(argv: string[], io: CliIo, signal: AbortSignal): Promise<number> {
  const p = parseArgs(argv, new Set([...FLAGS, ...BOOLEAN_OPTIONS]), ALL_OPTIONS);
  const command = p.command ?? '';
  checkApplicable(command, p);
  if (command === 'compare') {
    io.out(`${compareRuns(p.positionals, p.options.has('json'))}\n`);
    return 0;
  }
  if (command === 'report') {
    const paths = p.positionals;
    const html = renderReport(reportSnapshot(paths), { title: reportTitle(paths), ...loadPanelAssets() });
    const single = paths.length === 1 && fs.existsSync(paths[0]) && fs.statSync(paths[0]).isDirectory();
    const file = strOption(p, 'out') ?? (single ? path.join(paths[0], 'report.html') : 'basin-report.html');
    writeOutput(file, html, 'report');
    io.out(`wrote ${file} (${(html.length / 1024).toFixed(0)} KB, self-contained: open it in any browser)\n`);
    return 0;
  }
  if (!isJobKind(command)) throw new UsageError(`unknown command '${command}'`);
  if (command === 'train') return trainCommand(p, io, signal);
  const backend = choice(p, 'backend', BACKENDS);
  const json = p.options.has('json');
  const out = strOption(p, 'out');
  const csv = strOption(p, 'csv');
  // Model files given as positionals: interpolate A B (A is the model), trajectory C1..Cn (Cn is).
  const checkpoints = command === 'interpolate' || command === 'trajectory';
  if (checkpoints && !p.options.has('model')) {
    const files = p.positionals;
    if (files.length > 0) p.options.set('model', command === 'interpolate' ? files[0] : files[files.length - 1]);
  }
  const spec = problemSpec(p, checkpoints);
  // Validate every option before any slow work.
  const options = jobOptions(command, p);

  await initBackend(backend);
  const printer = progressPrinter(io, p.options.has('quiet'));
  const ctx: RunContext = { signal, onProgress: printer.onProgress };
  let result;
  try {
    const problem = await loadProblem(spec);
    result = await runJob(command, problem, options, ctx);
  } finally {
    printer.done();
  }
  // The result is printed first, whatever happens to the files: nothing computed is lost.
  const wrote: string[] = [];
  const failed: BasinError[] = [];
  const save = (file: string | undefined, text: () => string, what: string): void => {
    if (!file) return;
    try {
      writeOutput(file, text(), what);
      wrote.push(`wrote ${file}`);
    } catch (e) {
      if (!(e instanceof BasinError)) throw e;
      failed.push(e);
    }
  };
  save(out, () => `${JSON.stringify(result, null, 2)}\n`, 'result');
  if ('x' in result) {
    const grid = result;
    save(csv, () => gridCsv(grid), 'CSV');
  }
  io.out(json ? `${JSON.stringify(result)}\n` : `${formatResult(result)}\n${wrote.length ? `\n${wrote.join('\n')}\n` : ''}`);
  for (const e of failed) io.err(`basin: ${e.message}\n`);
  // A cancelled grid keeps what it computed; it is printed above and the exit code says so.
  if ('complete' in result && !result.complete) {
    io.err('basin: cancelled; partial result kept\n');
    return 130;
  }
  return failed.length ? 1 : 0;
}

/** The exit code and message for an error that ended a command. */
export function describeFailure(e: unknown): { code: number; text: string } {
  if (e instanceof UsageError) return { code: 2, text: `basin: ${e.message}\nRun 'basin --help' for usage.\n` };
  if (e instanceof CancelledError) return { code: 130, text: 'basin: cancelled\n' };
  if (e instanceof BasinError) return { code: 1, text: `basin: ${e.message}\n` };
  const err = e instanceof Error ? e : new Error(String(e));
  return {
    code: 70,
    text: `basin: internal error: ${err.message}\n${process.env.BASIN_DEBUG ? `${err.stack}\n` : 'Set BASIN_DEBUG=1 for the stack trace, and please report it.\n'}`,
  };
}
