/**
 * The protocol between the extension host and the Basin panel (webview), and the data a report
 * embeds. One interface per message with a literal `type`; unions per direction. The webview is
 * stateless beyond its view settings: the host keeps the full history and replays it (`init`)
 * whenever a panel is created, restored or becomes visible again.
 */
import type { JobResult, ProbeRecord, TrainDone, TrainSettings } from './results';
import { resultKindTitle } from './jobs';

export { resultKindTitle };

/** A result card's title: what it is and on which model ("Hessian trace · m.json on d.json"). */
export function resultCardTitle(r: JobResult): string {
  const model = typeof r.model === 'string' && r.model ? r.model : '';
  return model ? `${resultKindTitle(r)} · ${model}` : resultKindTitle(r);
}

/** A training run as the panel shows it. */
export interface RunView {
  id: string;
  title: string;
  /** The run directory (none for a probe of a module's untrained model). */
  dir?: string;
  /** When it started (ms since 1970), to tell runs apart. */
  started?: number;
  settings?: TrainSettings;
  probes: ProbeRecord[];
  done?: TrainDone;
}

/** A one-off analysis (eigenvalues, density, slice, surface, trajectory, flatness). */
export interface ResultView {
  id: string;
  title: string;
  result: JobResult;
  /** True while a grid is still streaming. */
  partial?: boolean;
}

/** Everything the panel draws: sent on ready, on restore, and embedded in reports. */
export interface PanelSnapshot {
  runs: RunView[];
  results: ResultView[];
  /** The run or result shown first (brought into view), or 'compare'. */
  focus?: string;
  /** The runs overlaid in the comparison card (Basin: Compare Runs). */
  compare?: string[];
  status?: string;
}

export interface InitMessage {
  type: 'init';
  snapshot: PanelSnapshot;
}
export interface RunStartedMessage {
  type: 'runStarted';
  run: RunView;
}
/** New probe records for a run, batched (about every 200 ms). */
export interface ProbesMessage {
  type: 'probes';
  runId: string;
  records: ProbeRecord[];
  /** The run's settings, with the first batch (they are known once the worker has read the module). */
  settings?: TrainSettings;
}
export interface RunEndedMessage {
  type: 'runEnded';
  runId: string;
  done: TrainDone;
}
export interface ResultMessage {
  type: 'result';
  view: ResultView;
}
/**
 * Bring a card into view: a run's charts (`id` a run id), a result card (a result id) or the
 * comparison of runs ('compare'). A new result is revealed with it: the panel is a notebook.
 */
export interface RevealMessage {
  type: 'reveal';
  id: string;
}
/** Overlay these runs (loss and sharpness, each with its 2/eta line) in the comparison card, and reveal it. */
export interface CompareMessage {
  type: 'compare';
  runIds: string[];
}
export interface StatusMessage {
  type: 'status';
  text: string;
  busy: boolean;
}
/** Ask the panel for PNG images of its charts (answered with `exported`). */
export interface ExportRequest {
  type: 'exportPng';
  requestId: number;
  /** The images' background: the theme's (default) or white (the charts redrawn in light colours). */
  background?: 'theme' | 'white';
}
export type ToWebview = InitMessage | RunStartedMessage | ProbesMessage | RunEndedMessage | ResultMessage | StatusMessage | ExportRequest | RevealMessage | CompareMessage;

export interface ReadyMessage {
  type: 'ready';
}
export interface ExportedMessage {
  type: 'exported';
  requestId: number;
  /** chart name -> PNG data URL. */
  images: Record<string, string>;
}
/**
 * A button in the panel asked the host to run a command; `runId` is the run the panel shows (the
 * run menu's actions: probe it now, resume it, its trajectory plane).
 */
export interface CommandMessage {
  type: 'command';
  command: 'stop' | 'probe' | 'export' | 'compare' | 'resume' | 'trajectory';
  runId?: string;
}
export type FromWebview = ReadyMessage | ExportedMessage | CommandMessage;

/** The global a report page defines before loading the panel script. */
export const REPORT_GLOBAL = '__BASIN_REPORT__';
