/**
 * The `basin` job thread: runs one command line (src/cli/commands.ts) off the launcher's thread, so
 * that a stop request still reaches the launcher while user code (an experiment module stuck in a
 * loop) holds this thread. Output goes back as ordered messages; the port is unref'd so that a job
 * waiting on a promise that can never settle lets this thread end, which the launcher reports.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { describeFailure, runCli, type CliIo } from './commands';
import type { FromJobThread, JobThreadData, StopMessage } from './threadProtocol';

const port = parentPort;
if (port) {
  const data = workerData as JobThreadData;
  const send = (m: FromJobThread): void => port.postMessage(m);
  const io: CliIo = { out: (text) => send({ type: 'out', text }), err: (text) => send({ type: 'err', text }), tty: data.tty };
  const stop = new AbortController();
  port.on('message', (m: StopMessage) => {
    if (m?.type === 'stop') stop.abort();
  });
  port.unref();
  runCli(data.argv, io, stop.signal).then(
    (code) => send({ type: 'exit', code }),
    (e: unknown) => {
      const f = describeFailure(e);
      io.err(f.text);
      send({ type: 'exit', code: f.code });
    },
  );
}
