/**
 * Messages between the `basin` launcher (main thread, src/cli/main.ts) and the job thread
 * (src/cli/job.ts) that runs the command. The launcher owns the terminal and the signals; the
 * thread owns everything that can run user code.
 */
export interface JobThreadData {
  argv: string[];
  /** Whether the launcher's stderr is a terminal (progress then rewrites one line). */
  tty: boolean;
}

/** Launcher -> thread: the user asked to stop (first Ctrl-C or SIGTERM). */
export interface StopMessage {
  type: 'stop';
}

/** Thread -> launcher: text for stdout or stderr, in order, then the exit code. */
export type FromJobThread = { type: 'out'; text: string } | { type: 'err'; text: string } | { type: 'exit'; code: number };
