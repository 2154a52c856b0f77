/**
 * When the CodeLens provider may tell the editor its lenses changed, so that a lens follows a run.
 *
 * The editor (VS Code's CodeLens contribution) updates a lens in two debounced stages, each a
 * timer that every new event restarts (at least 250 ms, longer as the measured time of the stage
 * grows): onDidChangeCodeLenses restarts the re-query timer (provideCodeLenses), and each answer
 * restarts the resolve timer, and only a resolve (resolveCodeLens for lenses without a command)
 * changes the text on screen. Losing the editor's focus cancels the re-query timer. A provider
 * that fires whenever a run streams probes (several times a second) restarts these timers before
 * they run, and the lens stays at whatever step it showed when the stream last paused: the lag
 * seen in the editor ("step 100" while the panel was at step 467). Firing more often only makes
 * it worse.
 *
 * So the provider fires once, then waits until the editor has resolved the lenses of the documents
 * it was showing (the provider reads the newest records then: whatever arrived meanwhile is in that
 * answer), and fires again only if something changed after, and not before the editor has had a
 * moment (settleMs) to put the resolved text on screen: it does so in its renderer after the
 * resolve returns, and a change event in between cancels it (a busy machine then never showed a
 * new step: the lens stayed at step 400 while the panel went past 700). If the editor never gets there (the
 * document or its lens is not visible, or the focus left the editor and the re-query was
 * cancelled), it fires again after a wait that doubles each time (the editor's debounces may be
 * longer than the first wait: a fixed wait shorter than them would starve the lens again), up to
 * 4 s; once the editor has shown the lenses, the next wait is at least twice the time that took.
 * The cap bounds how long a lens can stay stale after the editor drops one event (a click
 * elsewhere, such as a notification's button, cancels its pending re-query): with 8 s the lens of
 * a resumed run once trailed the panel for over 10 s.
 *
 * Pure (no VS Code import): the clock and the event are passed in.
 */

export interface LensRefreshOptions {
  /** The first wait for the editor to ask, in ms, doubled each time it does not (then reset). */
  firstWaitMs?: number;
  /** The longest wait. */
  maxWaitMs?: number;
  /**
   * After the editor resolved the lenses, how long nothing is fired: it puts the resolved text on
   * screen a moment later (in its renderer), and an event before that cancels it.
   */
  settleMs?: number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (t: unknown) => void;
  /** The clock, in ms. */
  now?: () => number;
}

export class LensRefresh {
  /** Documents (keys) the editor was showing when the provider fired, not yet shown anew since. */
  private awaiting = new Set<string>();
  /** Something changed that the editor has not been told about. */
  private dirty = false;
  private timer: unknown;
  private wait: number;
  private readonly firstWait: number;
  private readonly maxWait: number;
  private readonly settle: number;
  private readonly setTimer: (fn: () => void, ms: number) => unknown;
  private readonly clearTimer: (t: unknown) => void;
  private readonly now: () => number;
  /** When the provider first fired since the editor last showed the lenses (re-fires after a wait count from it). */
  private firstFired: number | undefined;

  /**
   * @param fire tells the editor the lenses changed (onDidChangeCodeLenses)
   * @param shown the documents (keys) whose lenses the editor shows now
   */
  constructor(
    private readonly fire: () => void,
    private readonly shown: () => readonly string[],
    options: LensRefreshOptions = {},
  ) {
    this.firstWait = options.firstWaitMs ?? 2000;
    // Capped: while it waits the lens is stale (a blur costs one wait), so a wait never grows past this.
    this.maxWait = options.maxWaitMs ?? 4000;
    this.settle = options.settleMs ?? 500;
    this.wait = this.firstWait;
    this.setTimer = options.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
    this.clearTimer = options.clearTimer ?? ((t) => clearTimeout(t as NodeJS.Timeout));
    this.now = options.now ?? (() => performance.now());
  }

  /** Something the lenses show changed: tell the editor now, or once it has shown the last change (or the wait is over). */
  changed(): void {
    this.dirty = true;
    if (this.awaiting.size === 0 && this.timer === undefined) this.emit();
  }

  /** The editor shows the newest lenses of `doc` (resolved them, or asked for lenses that need no resolving). */
  provided(doc: string): void {
    if (!this.awaiting.delete(doc)) return;
    if (this.awaiting.size > 0) return;
    this.stopTimer();
    this.wait = Math.min(this.maxWait, Math.max(this.firstWait, 2 * (this.now() - (this.firstFired ?? this.now()))));
    this.firstFired = undefined;
    // Whatever changed before this answer is in it; a change after it fires again, once the
    // editor has had the time to show this answer (an event now would cancel that).
    this.dirty = false;
    if (this.settle > 0) {
      this.timer = this.setTimer(() => {
        this.timer = undefined;
        if (this.dirty) this.emit();
      }, this.settle);
    }
  }

  /** Whether the editor has yet to ask since the last event. */
  get pending(): boolean {
    return this.awaiting.size > 0;
  }

  private emit(): void {
    this.dirty = false;
    this.awaiting = new Set(this.shown());
    this.firstFired ??= this.now();
    this.fire();
    this.stopTimer();
    // Nothing more is fired until the editor has shown these lenses or the wait is over, even
    // when no document is known to show them (an editor the API does not list as visible still
    // restarts its timers on every event).
    this.timer = this.setTimer(() => {
      this.timer = undefined;
      // The editor did not ask in time: its re-query was cancelled, or its debounce is longer.
      if (this.awaiting.size > 0) this.wait = Math.min(2 * this.wait, this.maxWait);
      this.awaiting.clear();
      if (this.dirty) this.emit();
      else this.firstFired = undefined;
    }, this.wait);
  }

  private stopTimer(): void {
    if (this.timer !== undefined) this.clearTimer(this.timer);
    this.timer = undefined;
  }

  dispose(): void {
    this.stopTimer();
  }
}
