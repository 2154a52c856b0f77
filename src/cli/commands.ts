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
import { loadProblem, type Problem, type ProblemSpec } from '../engine/problem';
import { runDensity, runEigs, runInfo, runTrace, type JobContext } from '../engine/jobs';
import { runSlice, runSurface, type GridContext } from '../engine/surface/slice';
import { runInterpolate, runTrajectory } from '../engine/surface/checkpoints';
import { runFlatness, FLATNESS_MEASURES, type FlatnessOptions } from '../engine/flatness/job';
import { IGNORE_KINDS, NORM_KINDS } from '../engine/directions';
import type { HvpChoice } from '../engine/hvp/operators';
import { train } from '../engine/train/run';
import { compareRuns, defaultRunDir, describeDone, moduleSettings, probePrinter, refuseExistingRun, trainSettings } from './train';
import { openRunForResume } from '../engine/train/resume';
import type { CurvatureName, TrainSettings } from '../shared/results';
import { CURVATURE_NAMES } from '../shared/validate';
import { BasinError } from '../engine/errors';
import { makeDirs } from '../engine/files';
import { CancelledError } from '../engine/linalg/operator';
import type { JobResult, Progress } from '../shared/results';
import { choice, intOption, numOption, parseArgs, strOption, UsageError, type Parsed } from './args';
import { formatResult, gridCsv } from './format';
import { loadPanelAssets, renderReport, reportSnapshot, reportTitle } from './report';
import { ALL_OPTIONS, BOOLEAN_OPTIONS, COMMAND_OPTIONS, FLAGS } from './usage';

/** What a command prints, and whether stderr is a terminal (progress rewrites one line there). */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  readonly tty: boolean;
}

/** Flatness options, validated up front. */
function flatnessOptions(p: Parsed, seed: number): FlatnessOptions {
  const measures = (strOption(p, 'measures') ?? 'sam,asam,epsilon,pacbayes,radius').split(',');
  for (const m of measures) if (!(FLATNESS_MEASURES as readonly string[]).includes(m)) throw new UsageError(`--measures: unknown measure '${m}' (${FLATNESS_MEASURES.join(', ')})`);
  return {
    seed,
    measures: measures as FlatnessOptions['measures'],
    rho: numOption(p, 'rho'),
    asamRho: numOption(p, 'asam-rho'),
    eta: numOption(p, 'eta'),
    epsilon: numOption(p, 'epsilon'),
    target: numOption(p, 'target'),
    draws: intOption(p, 'draws'),
    delta: numOption(p, 'delta'),
    directions: intOption(p, 'directions'),
    criterion: choice(p, 'criterion', ['error', 'loss'] as const),
  };
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
  const done = await train(problem, settings, out, {
    signal,
    onProbe: (r) => (json ? io.out(`${JSON.stringify(r)}\n`) : table(r)),
  }, { resume: resume !== undefined });
  if (json) io.out(`${JSON.stringify(done)}\n`);
  else io.out(`${describeDone(done)}\n`);
  if (done.status === 'diverged') {
    io.err(`basin: ${done.reason}\n`);
    return 1;
  }
  return done.status === 'cancelled' ? 130 : 0;
}

type Job = (problem: Problem, ctx: JobContext & GridContext) => Promise<JobResult>;


/** Validates the command's options and returns the job to run; no slow work happens here. */
function buildJob(command: string, p: Parsed, common: { seed: number; hvp?: HvpChoice; layer?: string; curvature?: CurvatureName }): Job {
  const { seed, hvp, layer, curvature } = common;
  const dirOpts = () => ({ seed, norm: choice(p, 'norm', NORM_KINDS), ignore: choice(p, 'ignore', IGNORE_KINDS), test: p.options.has('test'), tol: numOption(p, 'tol') });
  switch (command) {
    case 'info':
      return async (problem) => runInfo(problem);
    case 'eigs': {
      const o = {
        seed, hvp, layer, curvature,
        k: intOption(p, 'k') ?? 1,
        which: choice(p, 'which', ['top', 'bottom'] as const),
        method: choice(p, 'method', ['lanczos', 'power'] as const),
        maxIter: intOption(p, 'max-iter'),
        tol: numOption(p, 'tol'),
        stopOn: choice(p, 'stop', ['bound', 'residual'] as const),
      };
      return (problem, ctx) => runEigs(problem, o, ctx);
    }
    case 'trace': {
      const o = { seed, hvp, layer, curvature, method: choice(p, 'method', ['hutchpp', 'hutchinson'] as const), matvecs: intOption(p, 'matvecs') };
      return (problem, ctx) => runTrace(problem, o, ctx);
    }
    case 'density': {
      const o = { seed, hvp, layer, curvature, steps: intOption(p, 'steps'), runs: intOption(p, 'runs'), gridPoints: intOption(p, 'grid', 2) };
      return (problem, ctx) => runDensity(problem, o, ctx);
    }
    case 'slice': {
      const o = { ...dirOpts(), dirs: (strOption(p, 'dir') ?? 'random').split(','), x: strOption(p, 'x') };
      return (problem, ctx) => runSlice(problem, o, ctx);
    }
    case 'surface': {
      const d = (strOption(p, 'dir') ?? 'random').split(',');
      if (d.length > 2) throw new UsageError('--dir takes one kind for both axes or two (x,y)');
      const o = { ...dirOpts(), dirs: [d[0], d[1] ?? d[0]] as [string, string], x: strOption(p, 'x'), y: strOption(p, 'y') };
      return (problem, ctx) => runSurface(problem, o, ctx);
    }
    case 'interpolate': {
      const other = p.positionals[1];
      if (!other || p.positionals.length !== 2) throw new UsageError('interpolate takes two model files: basin interpolate A/model.json B/model.json --data FILE');
      const o = { other, x: strOption(p, 'x'), test: p.options.has('test') };
      return (problem, ctx) => runInterpolate(problem, o, ctx);
    }
    case 'trajectory': {
      const o = { checkpoints: p.positionals.slice(), x: strOption(p, 'x'), y: strOption(p, 'y'), steps: intOption(p, 'steps', 2), test: p.options.has('test') };
      return (problem, ctx) => runTrajectory(problem, o, ctx);
    }
    case 'flatness': {
      const o = flatnessOptions(p, seed);
      return (problem, ctx) => runFlatness(problem, o, ctx);
    }
    default:
      throw new UsageError(`unknown command '${command}'`);
  }
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
  if (command === 'train') return trainCommand(p, io, signal);
  if (command === 'report') {
    const paths = p.positionals;
    const html = renderReport(reportSnapshot(paths), { title: reportTitle(paths), ...loadPanelAssets() });
    const single = paths.length === 1 && fs.existsSync(paths[0]) && fs.statSync(paths[0]).isDirectory();
    const file = strOption(p, 'out') ?? (single ? path.join(paths[0], 'report.html') : 'basin-report.html');
    writeOutput(file, html, 'report');
    io.out(`wrote ${file} (${(html.length / 1024).toFixed(0)} KB, self-contained: open it in any browser)\n`);
    return 0;
  }
  const seed = intOption(p, 'seed', 0) ?? 0;
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
  const job = buildJob(command, p, { seed, hvp: choice(p, 'hvp', ['auto', 'exact', 'fd'] as const), layer: strOption(p, 'layer'), curvature: choice(p, 'curvature', CURVATURE_NAMES) });

  await initBackend(backend);
  const printer = progressPrinter(io, p.options.has('quiet'));
  const ctx: JobContext & GridContext = { signal, onProgress: printer.onProgress };
  let result: JobResult;
  try {
    const problem = await loadProblem(spec);
    result = await job(problem, ctx);
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
  if ('x' in result) save(csv, () => gridCsv(result as Parameters<typeof gridCsv>[0]), 'CSV');
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
