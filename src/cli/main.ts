#!/usr/bin/env node
/**
 * `basin`: Basin's engine from the command line, for scripts and CI.
 *
 * This launcher owns the terminal, the signals and the exit code; the command runs on a job thread
 * (src/cli/job.ts, src/cli/commands.ts). So a stop always reaches someone who can act: the first
 * Ctrl-C or SIGTERM asks the job to stop at its next check (keeping what it computed, a training
 * run's checkpoint included), the second quits at once even while an experiment module is stuck
 * in a loop; a job thread that runs out of memory or dies is reported, never a V8 abort; and a job
 * left waiting on a promise that can never settle ends with a message instead of a silent exit 0.
 */
import * as path from 'node:path';
import * as v8 from 'node:v8';
import { Worker } from 'node:worker_threads';
import { VERSION } from '../engine/version';
import { commandHelp, USAGE } from './usage';
import type { FromJobThread, JobThreadData, StopMessage } from './threadProtocol';

/** After a SIGTERM, how long the job may take to stop cleanly before the launcher quits anyway. */
const TERM_GRACE_MS = 30_000;
/** After the job's exit code, how long its thread may take to end before the process exits anyway. */
const JOB_END_WAIT_MS = 5_000;

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

/**
 * Quits at once, by the signal the user sent, as shells expect (Ctrl-C: status 130): the default
 * action ends the process without stopping its threads one by one, and stopping a thread inside an
 * ONNX Runtime call is what aborts the process. If the signal is ignored (a parent started us with
 * it ignored), exits 130.
 */
function quit(signal: NodeJS.Signals, text: string): void {
  process.stderr.write(text, () => {
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
    setTimeout(() => process.exit(130), 200);
  });
}

/** The experiment module named on the command line, if any (for messages about user code). */
function experimentOf(argv: string[]): string | undefined {
  const i = argv.indexOf('--experiment');
  if (i >= 0 && argv[i + 1]) return argv[i + 1];
  return argv.find((a) => !a.startsWith('--') && /\.(m?[jt]s|cjs)$/.test(a));
}

/** What to say when the job thread died of an uncaught error (not a rejected command). */
function threadCrash(e: Error & { code?: string }, experiment: string | undefined): { code: number; text: string } {
  if (e.code === 'ERR_WORKER_OUT_OF_MEMORY') {
    const mb = Math.round(v8.getHeapStatistics().heap_size_limit / 2 ** 20);
    return { code: 1, text: `basin: ran out of memory (the JavaScript heap is limited to ${mb} MB): the model or the data is too large for this machine; try a smaller --chunk-size or fewer samples\n` };
  }
  const stack = e.stack ?? '';
  if (experiment && (stack.includes(path.resolve(experiment)) || stack.includes(path.basename(experiment)))) {
    return { code: 1, text: `basin: ${experiment}: uncaught error in the experiment module: ${e.message}\n` };
  }
  return { code: 70, text: `basin: internal error: ${e.message}\n${process.env.BASIN_DEBUG ? `${stack}\n` : 'Set BASIN_DEBUG=1 for the stack trace, and please report it.\n'}` };
}

function main(argv: string[]): void {
  if (argv.includes('--version')) {
    process.stdout.write(`${VERSION}\n`);
    return exit(0);
  }
  const command = argv.find((a) => !a.startsWith('-'));
  if (argv.includes('--help') || argv.includes('-h') || !command) {
    // `basin eigs --help`: that command's options; otherwise the list of commands.
    process.stdout.write((command && commandHelp(command)) || USAGE);
    return exit(command || argv.includes('--help') || argv.includes('-h') ? 0 : 2);
  }
  const data: JobThreadData = { argv, tty: process.stderr.isTTY === true };
  const worker = new Worker(path.join(__dirname, 'cli-job.js'), {
    workerData: data,
    // The main thread's own heap limit: a job that passes it fails with a message, not an abort.
    resourceLimits: { maxOldGenerationSizeMb: Math.round(v8.getHeapStatistics().heap_size_limit / 2 ** 20) },
  });
  let finished = false;
  const finish = (code: number, text?: string): void => {
    if (finished) return;
    finished = true;
    if (text) process.stderr.write(text);
    exit(code);
  };
  // The job's exit code, once it has sent it: the process exits when the thread has ended by
  // itself (a thread stopped by process.exit inside an ONNX Runtime call would abort the process).
  let result: number | undefined;
  worker.on('message', (m: FromJobThread) => {
    if (m.type === 'out') process.stdout.write(m.text);
    else if (m.type === 'err') process.stderr.write(m.text);
    else {
      result = m.code;
      // A thread kept alive by user code (an experiment module's timer) is not waited for.
      setTimeout(() => finish(m.code), JOB_END_WAIT_MS).unref();
    }
  });
  worker.on('error', (e: Error) => {
    const f = threadCrash(e, experimentOf(argv));
    finish(f.code, f.text);
  });
  worker.on('exit', () => {
    if (result !== undefined) return finish(result);
    const exp = experimentOf(argv);
    finish(1, `basin: ${exp ? `${exp}: ` : ''}the job ended without a result: it waited on a promise that never settles${exp ? ' (do data() and model() resolve?)' : ''}\n`);
  });

  let stops = 0;
  const stop = (signal: NodeJS.Signals): void => {
    stops++;
    const key = signal === 'SIGINT' ? 'Ctrl-C' : signal;
    if (stops > 1) return quit(signal, `\nbasin: ${key} again: quit\n`);
    process.stderr.write(`\nbasin: stopping; what was computed is kept (${key} again to quit at once)\n`);
    worker.postMessage({ type: 'stop' } satisfies StopMessage);
    if (signal === 'SIGTERM') {
      setTimeout(() => quit(signal, `basin: the job did not stop within ${TERM_GRACE_MS / 1000} s; quit\n`), TERM_GRACE_MS).unref();
    }
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main(process.argv.slice(2));
