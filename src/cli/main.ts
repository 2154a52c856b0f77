#!/usr/bin/env node
/**
 * `basin`: Basin's engine from the command line, for scripts and CI.
 *
 *   basin info    describe a model (layers, parameters, loss, backend)
 *   basin eigs    top or bottom Hessian eigenvalues (Lanczos or power iteration)
 *   basin trace   Hessian trace (Hutch++ or Hutchinson) with its standard error
 *   basin density spectral density (stochastic Lanczos quadrature)
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initBackend, BACKENDS } from '../engine/backend';
import { VERSION } from '../engine/version';
import { loadProblem, type Problem, type ProblemSpec } from '../engine/problem';
import { runDensity, runEigs, runInfo, runTrace, type JobContext } from '../engine/jobs';
import { runSlice, runSurface, type GridContext } from '../engine/surface/slice';
import { runInterpolate, runTrajectory } from '../engine/surface/checkpoints';
import { runFlatness, FLATNESS_MEASURES, type FlatnessOptions } from '../engine/flatness/job';
import { IGNORE_KINDS, NORM_KINDS } from '../engine/directions';
import type { HvpChoice } from '../engine/hvp/operators';
import { train } from '../engine/train/run';
import { compareRuns, defaultRunDir, describeDone, moduleSettings, probePrinter, trainSettings, TRAIN_OPTIONS } from './train';
import type { RunManifest, TrainSettings } from '../shared/results';
import { BasinError } from '../engine/errors';
import { CancelledError } from '../engine/linalg/operator';
import type { JobResult, Progress } from '../shared/results';
import { choice, intOption, numOption, parseArgs, strOption, UsageError, type Parsed } from './args';
import { formatResult, gridCsv } from './format';
import { loadPanelAssets, renderReport, reportSnapshot, reportTitle } from './report';


const COMMON = ['model', 'data', 'labels', 'loss', 'experiment', 'seed', 'backend', 'hvp', 'layer', 'chunk-size', 'out'];
const KNOWN = new Set([
  ...COMMON,
  ...['k', 'which', 'method', 'max-iter', 'tol', 'stop', 'matvecs', 'steps', 'runs', 'grid'],
  ...['x', 'y', 'dir', 'norm', 'ignore', 'csv'],
  ...TRAIN_OPTIONS,
  ...['measures', 'rho', 'asam-rho', 'eta', 'epsilon', 'target', 'draws', 'delta', 'directions', 'criterion'],
]);
const FLAGS = new Set(['json', 'help', 'version', 'quiet', 'test']);

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

const USAGE = `basin ${VERSION}: loss-landscape curvature from the command line

Usage:
  basin <command> [experiment.ts|.js] [options]
  basin <command> --model model.json --data data.json [options]

Commands:
  info      describe the model: layers, parameters, loss and accuracy on the data
  eigs      Hessian eigenvalues       --k N (1)  --which top|bottom  --method lanczos|power
                                      --max-iter N  --tol T (1e-6)  --stop bound|residual
                                      (tol bounds the relative eigenvalue error estimate, or
                                      with --stop residual the rigorous Ritz residual)
  trace     Hessian trace             --method hutchpp|hutchinson  --matvecs M (60)
  density   spectral density (SLQ)    --steps S (90)  --runs R (1)  --grid G (10000)
  slice     1-D loss slices           --dir KIND[,KIND...] (random; also gradient, eigen,
                                      eigenK, bottom, bottomK)
                                      --x start:stop:steps (-1:1:51)
  surface   2-D loss surface          --dir KIND[,KIND] (random)  --x (-1:1:51)  --y (as x)
  interpolate A.json B.json           loss on (1-a) A + a B    --x (-0.5:1.5:401)
  trajectory C1.json ... Cn.json      loss on the plane of the checkpoints' two principal
                                      components, path projected  --x --y  --steps (31)
  train     train and probe           --optimizer gd|sgd|momentum|nesterov|adam|sam|asam|flow
                                      --lr --steps --batch-size --momentum --rho --igr MU
                                      --weight-decay --schedule constant|step:N:G|cosine:T[:MIN]
                                      --probe-every K (10) --trace-every --noise-every
                                      --layers-every --checkpoint-every --probe-subset N
                                      --out DIR (runs/NAME-TIME)  --resume DIR
  compare   RUN... side by side
  report    RUN|RESULT.json...        one self-contained HTML file drawing runs and results with
                                      the panel's charts (--out FILE.html; default RUN/report.html)
  flatness  flatness measures         --measures sam,asam,epsilon,pacbayes,radius
                                      --rho (SAM) --asam-rho --eta --epsilon --target --draws
                                      --delta --directions
                                      --criterion error|loss

Slice options:
  --norm filter|layer|none  --ignore biasbn|none  (Li et al. 2018; random directions default to
  filter normalization with biases zeroed)   --test  also on the test data   --csv FILE

Inputs:
  --model FILE      TF.js layers model.json (weight shards beside it)
  --data FILE       .json {"x","y"}, .csv (header; --labels COL[,COL], default last column),
                    or x.npy,y.npy
  --loss NAME       meanSquaredError | categoricalCrossentropy | binaryCrossentropy
                    (default: from the output activation)
  EXPERIMENT        a .ts/.js module exporting model(tf), data(tf), loss (see README)

Options:
  --seed N          random seed (0)          --backend tensorflow|wasm|cpu (best available)
  --hvp auto|exact|fd  Hessian-vector products (auto: checked, fastest correct)
  --layer NAME      analyse the Hessian block of one layer's parameters
  --chunk-size N    samples per evaluation chunk (bounded memory)
  --json            print one JSON object      --out FILE   also write the JSON to FILE
  --quiet           no progress on stderr      --help, --version
`;

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
  };
}

/** Progress on stderr: one rewritten line on a terminal, a line every few seconds otherwise. */
function progressPrinter(quiet: boolean): { onProgress: (p: Progress) => void; done: () => void } {
  const tty = process.stderr.isTTY;
  let last = 0;
  let shown = false;
  return {
    onProgress: (p) => {
      if (quiet) return;
      const now = Date.now();
      if (!tty && now - last < 3000) return;
      last = now;
      const line = `basin: ${p.message}`;
      if (tty) {
        process.stderr.write(`\r\x1b[K${line}`);
        shown = true;
      } else process.stderr.write(`${line}\n`);
    },
    done: () => {
      if (tty && shown) process.stderr.write('\r\x1b[K');
    },
  };
}

/** Ctrl-C aborts the job (it stops at its next check and keeps what it computed); twice quits at once. */
function onCtrlC(what: string): { controller: AbortController; dispose: () => void } {
  const controller = new AbortController();
  let interrupts = 0;
  const handler = (): void => {
    interrupts++;
    if (interrupts > 1) process.exit(130);
    process.stderr.write(`\nbasin: ${what} (Ctrl-C again to quit at once)\n`);
    controller.abort();
  };
  process.on('SIGINT', handler);
  return { controller, dispose: () => process.off('SIGINT', handler) };
}

/** `basin train`: streams probes, prints where the run was saved; exit 1 on divergence, 130 on Ctrl-C. */
async function trainCommand(p: Parsed): Promise<number> {
  const json = p.options.has('json');
  const resume = strOption(p, 'resume');
  let spec = problemSpec(p);
  let fromRun: Partial<TrainSettings> = {};
  if (resume) {
    const mf = path.join(resume, 'manifest.json');
    if (!fs.existsSync(mf)) throw new BasinError('no manifest.json: not a Basin run directory', resume);
    const m = JSON.parse(fs.readFileSync(mf, 'utf8')) as RunManifest;
    if (!spec.model && !spec.experiment) spec = { ...spec, ...m.problem, chunkSize: spec.chunkSize };
    fromRun = m.settings;
  }
  const seedOpt = intOption(p, 'seed', 0);
  trainSettings(p, seedOpt); // validate the options before loading anything
  await initBackend(choice(p, 'backend', BACKENDS));
  const problem = await loadProblem(spec);
  const settings = trainSettings(p, seedOpt, { ...moduleSettings(problem.experiment?.train, spec.experiment ?? ''), ...fromRun });
  const out = resume ?? strOption(p, 'out') ?? defaultRunDir(problem.description);
  const interrupt = onCtrlC('stopping after this step');
  const controller = interrupt.controller;
  const table = probePrinter((s) => process.stdout.write(s));
  try {
    if (!json) process.stdout.write(`training ${problem.description}: ${settings.optimizer}, lr ${settings.lr}, ${settings.steps} steps${settings.batchSize ? `, batch ${settings.batchSize}` : ''} -> ${out}\n`);
    const done = await train(problem, settings, out, {
      signal: controller.signal,
      onProbe: (r) => (json ? process.stdout.write(`${JSON.stringify(r)}\n`) : table(r)),
    }, { resume: resume !== undefined });
    if (json) process.stdout.write(`${JSON.stringify(done)}\n`);
    else process.stdout.write(`${describeDone(done)}\n`);
    if (done.status === 'diverged') {
      process.stderr.write(`basin: ${done.reason}\n`);
      return 1;
    }
    return done.status === 'cancelled' ? 130 : 0;
  } finally {
    interrupt.dispose();
  }
}

type Job = (problem: Problem, ctx: JobContext & GridContext) => Promise<JobResult>;

const COMMANDS = ['info', 'eigs', 'trace', 'density', 'slice', 'surface', 'interpolate', 'trajectory', 'flatness'];

/** Validates the command's options and returns the job to run; no slow work happens here. */
function buildJob(command: string, p: Parsed, common: { seed: number; hvp?: HvpChoice; layer?: string }): Job {
  const { seed, hvp, layer } = common;
  const dirOpts = () => ({ seed, norm: choice(p, 'norm', NORM_KINDS), ignore: choice(p, 'ignore', IGNORE_KINDS), test: p.options.has('test') });
  switch (command) {
    case 'info':
      return async (problem) => runInfo(problem);
    case 'eigs': {
      const o = {
        seed, hvp, layer,
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
      const o = { seed, hvp, layer, method: choice(p, 'method', ['hutchpp', 'hutchinson'] as const), matvecs: intOption(p, 'matvecs') };
      return (problem, ctx) => runTrace(problem, o, ctx);
    }
    case 'density': {
      const o = { seed, hvp, layer, steps: intOption(p, 'steps'), runs: intOption(p, 'runs'), gridPoints: intOption(p, 'grid', 2) };
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

async function run(argv: string[]): Promise<number> {
  const p = parseArgs(argv, FLAGS, KNOWN);
  if (p.options.has('version')) {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  if (p.options.has('help') || !p.command) {
    process.stdout.write(USAGE);
    return p.command || p.options.has('help') ? 0 : 2;
  }
  const command = p.command;
  if (command === 'compare') {
    process.stdout.write(`${compareRuns(p.positionals, p.options.has('json'))}\n`);
    return 0;
  }
  if (command === 'train') return trainCommand(p);
  if (command === 'report') {
    const paths = p.positionals;
    const html = renderReport(reportSnapshot(paths), { title: reportTitle(paths), ...loadPanelAssets() });
    const single = paths.length === 1 && fs.existsSync(paths[0]) && fs.statSync(paths[0]).isDirectory();
    const file = strOption(p, 'out') ?? (single ? path.join(paths[0], 'report.html') : 'basin-report.html');
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    fs.writeFileSync(file, html);
    process.stdout.write(`wrote ${file} (${(html.length / 1024).toFixed(0)} KB, self-contained: open it in any browser)\n`);
    return 0;
  }
  if (!COMMANDS.includes(command)) throw new UsageError(`unknown command '${command}'`);
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
  const job = buildJob(command, p, { seed, hvp: choice(p, 'hvp', ['auto', 'exact', 'fd'] as const), layer: strOption(p, 'layer') });
  if (csv && !['slice', 'surface', 'interpolate', 'trajectory'].includes(command)) throw new UsageError('--csv applies to slice, surface, interpolate and trajectory');

  await initBackend(backend);
  const interrupt = onCtrlC('stopping');
  const controller = interrupt.controller;
  const printer = progressPrinter(p.options.has('quiet'));
  const ctx: JobContext & GridContext = { signal: controller.signal, onProgress: printer.onProgress };
  try {
    const problem = await loadProblem(spec);
    const result = await job(problem, ctx);
    printer.done();
    const text = JSON.stringify(result);
    if (out) {
      fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
      fs.writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
    }
    if (csv && 'x' in result) {
      fs.mkdirSync(path.dirname(path.resolve(csv)), { recursive: true });
      fs.writeFileSync(csv, gridCsv(result));
    }
    const wrote = [out, csv].filter(Boolean).map((f) => `wrote ${f}`).join('\n');
    process.stdout.write(json ? `${text}\n` : `${formatResult(result)}\n${wrote ? `\n${wrote}\n` : ''}`);
    // A cancelled grid keeps what it computed; it is printed above and the exit code says so.
    if ('complete' in result && !result.complete) {
      process.stderr.write('basin: cancelled; partial result kept\n');
      return 130;
    }
    return 0;
  } finally {
    printer.done();
    interrupt.dispose();
  }
}

/**
 * Exits once stdout and stderr have been flushed: a pipe takes 64 KiB at a time, and an immediate
 * process.exit drops the rest of a large --json result.
 */
function exit(code: number): void {
  let pending = 2;
  const done = (): void => {
    if (--pending === 0) process.exit(code);
  };
  process.stdout.write('', done);
  process.stderr.write('', done);
}

run(process.argv.slice(2)).then(
  (code) => exit(code),
  (e: unknown) => {
    if (e instanceof UsageError) {
      process.stderr.write(`basin: ${e.message}\nRun 'basin --help' for usage.\n`);
      return exit(2);
    }
    if (e instanceof CancelledError) {
      process.stderr.write('basin: cancelled\n');
      return exit(130);
    }
    if (e instanceof BasinError) {
      process.stderr.write(`basin: ${e.message}\n`);
      return exit(1);
    }
    const err = e as Error;
    process.stderr.write(`basin: internal error: ${err.message}\n${process.env.BASIN_DEBUG ? `${err.stack}\n` : 'Set BASIN_DEBUG=1 for the stack trace, and please report it.\n'}`);
    exit(70);
  },
);
