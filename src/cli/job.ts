/**
 * The `basin` job thread: runs one command line (src/cli/commands.ts) off the launcher's thread, so
 * that a stop request still reaches the launcher while user code (an experiment module stuck in a
 * loop) holds this thread. Output goes back as ordered messages; the port is unref'd so that a job
 * waiting on a promise that can never settle lets this thread end, which the launcher reports. After
 * its exit message the thread ends by itself (its shard threads closed first); the launcher waits
 * for that before the process exits.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { closeShardThreads } from '../engine/shard/parallel';
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
  runCli(data.argv, io, stop.signal)
    .then(
      (code) => code,
      (e: unknown) => {
        const f = describeFailure(e);
        io.err(f.text);
        return f.code;
      },
    )
    // Shard threads end before this one does (a thread ended inside an ONNX Runtime call aborts the process).
    .then(async (code) => {
      await closeShardThreads();
      send({ type: 'exit', code });
    });
}
