/**
 * The CodeLens follows a live run (src/extension/lensRefresh.ts). The editor side is simulated as
 * VS Code's CodeLens contribution behaves: each onDidChangeCodeLenses restarts a debounce timer
 * (RunOnceScheduler.schedule), and only when it runs out are the lenses asked for; blurring the
 * editor cancels the timer. On a virtual clock, a run streams a probe every 100 ms.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LensRefresh } from '../../src/extension/lensRefresh';

/** A virtual clock with timers. */
class Clock {
  now = 0;
  private timers: { at: number; fn: () => void; id: number }[] = [];
  private ids = 0;
  set = (fn: () => void, ms: number): number => {
    const id = ++this.ids;
    this.timers.push({ at: this.now + ms, fn, id });
    return id;
  };
  clear = (id: unknown): void => {
    this.timers = this.timers.filter((t) => t.id !== id);
  };
  /** Runs every timer due up to `until`, in time order. */
  advance(until: number): void {
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at || a.id - b.id);
      const t = this.timers[0];
      if (!t || t.at > until) break;
      this.timers.shift();
      this.now = t.at;
      t.fn();
    }
    this.now = until;
  }
}

/** VS Code's CodeLens controller for one editor: a debounced re-query restarted by each event. */
class Editor {
  private timer: number | undefined;
  /** The step the lens shows, and when the editor last asked. */
  shown = -1;
  asked: number[] = [];
  constructor(
    private readonly clock: Clock,
    private readonly delayMs: number,
    private readonly provide: () => number,
  ) {}
  onDidChange(): void {
    if (this.timer !== undefined) this.clock.clear(this.timer);
    this.timer = this.clock.set(() => {
      this.timer = undefined;
      this.asked.push(this.clock.now);
      this.shown = this.provide();
    }, this.delayMs);
  }
  blur(): void {
    if (this.timer !== undefined) this.clock.clear(this.timer);
    this.timer = undefined;
  }
}

/** A run streaming a probe (step += 25) every 100 ms for `ms`; the lens lag sampled every 50 ms once it shows a step. */
function simulate(gated: boolean, delayMs: number, ms: number, blurAt?: number): { lags: number[]; after: (t: number) => number[]; asked: number; final: number; step: number } {
  const clock = new Clock();
  let step = 0;
  const editor = new Editor(clock, delayMs, () => {
    if (gated) gate.provided('doc');
    return step;
  });
  const gate = new LensRefresh(() => editor.onDidChange(), () => ['doc'], { setTimer: clock.set, clearTimer: clock.clear, now: () => clock.now, firstWaitMs: 400 });
  const changed = (): void => (gated ? gate.changed() : editor.onDidChange());
  const lags: number[] = [];
  const at: number[] = [];
  for (let t = 100; t <= ms; t += 50) {
    clock.advance(t);
    if (t % 100 === 0) {
      step += 25;
      changed();
    }
    if (blurAt !== undefined && t === blurAt) editor.blur();
    if (editor.shown >= 0) {
      lags.push(step - editor.shown);
      at.push(t);
    }
  }
  clock.advance(ms + 10 * delayMs + 60_000);
  return { lags, after: (t0) => lags.filter((_, i) => at[i] > t0), asked: editor.asked.length, final: editor.shown, step };
}

test('firing on every probe starves the editor\'s debounce: the lens lags until the run ends (the bug)', () => {
  const r = simulate(false, 250, 10_000);
  assert.equal(r.asked, 1, 'the editor asks once, after the stream stops');
  assert.deepEqual(r.lags, [], 'the lens showed nothing during the whole run');
  assert.equal(r.final, r.step);
});

test('gated, the lens follows within the editor\'s debounce and one probe', () => {
  for (const delay of [250, 600]) {
    const r = simulate(true, delay, 10_000);
    // Shown steps lag by at most the debounce plus one probe interval (100 ms = 25 steps) plus the 50 ms sampling.
    const bound = 25 * Math.ceil((delay + 150) / 100);
    assert.ok(Math.max(...r.lags) <= bound, `debounce ${delay} ms: the lens lagged up to ${Math.max(...r.lags)} steps (bound ${bound})`);
    assert.ok(r.asked >= 10_000 / (delay + 100) - 2, `debounce ${delay} ms: the editor asked ${r.asked} times`);
    assert.equal(r.final, r.step, 'the lens ends at the last step');
  }
});

test('an editor that lost the focus (its re-query cancelled) is asked again, with a longer wait', () => {
  const r = simulate(true, 250, 6_000, 2_000);
  // After the blur cancels the pending re-query, the gate re-fires after its wait (400 ms, then 800).
  const late = r.after(2_000 + 1_300);
  assert.ok(late.length > 40);
  assert.ok(Math.max(...late) <= 25 * 5, `after the blur the lens lagged up to ${Math.max(...late)} steps`);
  assert.equal(r.final, r.step);
});

test('an editor whose debounce is longer than the first wait is still reached (the wait doubles)', () => {
  const r = simulate(true, 2_000, 20_000);
  assert.ok(r.asked >= 4, `the editor asked ${r.asked} times in 20 s`);
  assert.equal(r.final, r.step);
});

test('nothing visible: each change fires at once; the editor\'s later answer is ignored', () => {
  let fired = 0;
  const gate = new LensRefresh(() => fired++, () => []);
  gate.changed();
  gate.changed();
  assert.equal(fired, 2);
  assert.equal(gate.pending, false);
  gate.provided('other');
  gate.dispose();
});
