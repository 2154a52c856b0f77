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
import { loadProblem, type ProblemSpec } from '../engine/problem';
import { runDensity, runEigs, runInfo, runTrace, type JobContext } from '../engine/jobs';
import { BasinError } from '../engine/errors';
import { CancelledError } from '../engine/linalg/operator';
import type { JobResult, Progress } from '../shared/results';
import { choice, intOption, numOption, parseArgs, strOption, UsageError, type Parsed } from './args';
import { formatResult } from './format';

const VERSION = '0.1.0';

const COMMON = ['model', 'data', 'labels', 'loss', 'experiment', 'seed', 'backend', 'hvp', 'layer', 'chunk-size', 'out'];
const KNOWN = new Set([...COMMON, 'k', 'which', 'method', 'max-iter', 'tol', 'stop', 'matvecs', 'steps', 'runs', 'grid']);
const FLAGS = new Set(['json', 'help', 'version', 'quiet']);

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

function problemSpec(p: Parsed): ProblemSpec {
  const experiment = strOption(p, 'experiment') ?? p.positionals.find((a) => /\.(m?[jt]s|cjs)$/.test(a));
  const extra = p.positionals.filter((a) => a !== experiment);
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
  if (!['info', 'eigs', 'trace', 'density'].includes(command)) throw new UsageError(`unknown command '${command}'`);
  const seed = intOption(p, 'seed', 0) ?? 0;
  const backend = choice(p, 'backend', BACKENDS);
  const hvp = choice(p, 'hvp', ['auto', 'exact', 'fd'] as const);
  const layer = strOption(p, 'layer');
  const json = p.options.has('json');
  const out = strOption(p, 'out');
  const spec = problemSpec(p);
  // Validate every option before any slow work.
  const eigsOpts = command === 'eigs' ? {
    seed, hvp, layer,
    k: intOption(p, 'k') ?? 1,
    which: choice(p, 'which', ['top', 'bottom'] as const),
    method: choice(p, 'method', ['lanczos', 'power'] as const),
    maxIter: intOption(p, 'max-iter'),
    tol: numOption(p, 'tol'),
    stopOn: choice(p, 'stop', ['bound', 'residual'] as const),
  } : undefined;
  const traceOpts = command === 'trace' ? { seed, hvp, layer, method: choice(p, 'method', ['hutchpp', 'hutchinson'] as const), matvecs: intOption(p, 'matvecs') } : undefined;
  const densityOpts = command === 'density' ? { seed, hvp, layer, steps: intOption(p, 'steps'), runs: intOption(p, 'runs'), gridPoints: intOption(p, 'grid', 2) } : undefined;

  await initBackend(backend);
  const controller = new AbortController();
  let interrupts = 0;
  const onSigint = (): void => {
    interrupts++;
    if (interrupts > 1) process.exit(130);
    process.stderr.write('\nbasin: stopping (Ctrl-C again to quit at once)\n');
    controller.abort();
  };
  process.on('SIGINT', onSigint);
  const printer = progressPrinter(p.options.has('quiet'));
  const ctx: JobContext = { signal: controller.signal, onProgress: printer.onProgress };
  try {
    const problem = await loadProblem(spec);
    let result: JobResult;
    if (eigsOpts) result = await runEigs(problem, eigsOpts, ctx);
    else if (traceOpts) result = await runTrace(problem, traceOpts, ctx);
    else if (densityOpts) result = await runDensity(problem, densityOpts, ctx);
    else result = runInfo(problem);
    printer.done();
    const text = JSON.stringify(result);
    if (out) {
      fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
      fs.writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
    }
    process.stdout.write(json ? `${text}\n` : `${formatResult(result)}\n${out ? `\nwrote ${out}\n` : ''}`);
    return 0;
  } finally {
    printer.done();
    process.off('SIGINT', onSigint);
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
