/**
 * The CodeLens follows a live run (src/extension/lensRefresh.ts). The editor side is simulated as
 * VS Code's CodeLens contribution behaves: each onDidChangeCodeLenses restarts a debounce timer
 * (RunOnceScheduler.schedule), and only when it runs out are the lenses asked for; each answer
 * restarts the resolve timer, and only a resolve changes the text; blurring the editor cancels the
 * re-query timer. On a virtual clock, a run streams a probe every 100 ms.
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

/**
 * VS Code's CodeLens controller for one editor: an event restarts the re-query timer; an answer
 * restarts the resolve timer; a resolve puts the text on screen (the newest records, read then).
 */
class Editor {
  private queryTimer: number | undefined;
  private resolveTimer: number | undefined;
  private applyTimer: number | undefined;
  /** The step the lens shows. */
  shown = -1;
  asked: number[] = [];
  constructor(
    private readonly clock: Clock,
    private readonly queryMs: number,
    private readonly resolveMs: number,
    private readonly hooks: { provide(): void; resolve(): number },
    /** The renderer applies a resolve this long after the provider answered it; a change event before then cancels it. */
    private readonly applyMs = 0,
  ) {}
  onDidChange(): void {
    if (this.applyTimer !== undefined) this.clock.clear(this.applyTimer);
    this.applyTimer = undefined;
    if (this.queryTimer !== undefined) this.clock.clear(this.queryTimer);
    this.queryTimer = this.clock.set(() => {
      this.queryTimer = undefined;
      this.asked.push(this.clock.now);
      this.hooks.provide();
      if (this.resolveTimer !== undefined) this.clock.clear(this.resolveTimer);
      this.resolveTimer = this.clock.set(() => {
        this.resolveTimer = undefined;
        const step = this.hooks.resolve();
        if (this.applyMs === 0) this.shown = step;
        else {
          this.applyTimer = this.clock.set(() => {
            this.applyTimer = undefined;
            this.shown = step;
          }, this.applyMs);
        }
      }, this.resolveMs);
    }, this.queryMs);
  }
  /** Blurs the editor; whether it cancelled a pending re-query. */
  blur(): boolean {
    if (this.queryTimer === undefined) return false;
    this.clock.clear(this.queryTimer);
    this.queryTimer = undefined;
    return true;
  }
}

/**
 * A run streaming a probe (step += 25) every 100 ms for `ms`; the lens lag sampled every 50 ms once
 * it shows a step. `mode`: the provider fires on every probe ('every'), or through the gate, told
 * the editor is done when it asks for lenses ('query') or when it resolves them ('resolve': what
 * lenses.ts does).
 */
function simulate(mode: 'every' | 'query' | 'resolve', queryMs: number, resolveMs: number, ms: number, blurAt?: number, opts: { applyMs?: number; settleMs?: number } = {}) {
  const clock = new Clock();
  let step = 0;
  const editor = new Editor(clock, queryMs, resolveMs, {
    provide: () => {
      if (mode === 'query') gate.provided('doc');
    },
    resolve: () => {
      if (mode === 'resolve') gate.provided('doc');
      return step;
    },
  }, opts.applyMs);
  const gate = new LensRefresh(() => editor.onDidChange(), () => ['doc'], { setTimer: clock.set, clearTimer: clock.clear, now: () => clock.now, firstWaitMs: 400, settleMs: opts.settleMs });
  const changed = (): void => (mode === 'every' ? editor.onDidChange() : gate.changed());
  const lags: number[] = [];
  const at: number[] = [];
  for (let t = 100; t <= ms; t += 50) {
    clock.advance(t);
    if (t % 100 === 0) {
      step += 25;
      changed();
    }
    // The focus leaves the editor while a re-query is pending (the first such moment after blurAt).
    if (blurAt !== undefined && t >= blurAt && editor.blur()) blurAt = undefined;
    if (editor.shown >= 0) {
      lags.push(step - editor.shown);
      at.push(t);
    }
  }
  clock.advance(ms + 10 * (queryMs + resolveMs) + 60_000);
  return { lags, after: (t0: number) => lags.filter((_, i) => at[i] > t0), asked: editor.asked.length, final: editor.shown, step };
}

test('firing on every probe starves the editor\'s debounce: the lens lags until the run ends (the bug)', () => {
  const r = simulate('every', 250, 250, 10_000);
  assert.equal(r.asked, 1, 'the editor asks once, after the stream stops');
  assert.deepEqual(r.lags, [], 'the lens showed nothing during the whole run');
  assert.equal(r.final, r.step);
});

test('waiting for the re-query alone is not enough: each answer restarts the resolve timer, and the text stays', () => {
  const r = simulate('query', 250, 600, 10_000, undefined, { settleMs: 0 });
  assert.ok(r.asked > 10, `the editor asked ${r.asked} times`);
  assert.deepEqual(r.lags, [], 'the lens text never changed during the run');
  assert.equal(r.final, r.step);
});

test('gated on the resolve, the lens follows within the editor\'s two debounces and one probe', () => {
  for (const [query, resolve] of [
    [250, 250],
    [600, 250],
    [250, 600],
  ]) {
    const r = simulate('resolve', query, resolve, 10_000);
    // A shown step is at most one cycle old (both debounces, plus the settling time after a
    // resolve, 500 ms, and one probe interval of 100 ms until the next change fires), plus the 50 ms sampling.
    const cycle = query + resolve + 500 + 100;
    const bound = 25 * Math.ceil((cycle + 50) / 100);
    assert.ok(Math.max(...r.lags) <= bound, `debounces ${query}/${resolve} ms: the lens lagged up to ${Math.max(...r.lags)} steps (bound ${bound})`);
    assert.ok(r.asked >= 10_000 / cycle - 2, `debounces ${query}/${resolve} ms: the editor asked ${r.asked} times`);
    assert.equal(r.final, r.step, 'the lens ends at the last step');
  }
});

test('an editor that lost the focus (its re-query cancelled) is asked again, with a longer wait', () => {
  const r = simulate('resolve', 250, 250, 6_000, 2_000);
  // After the blur cancels the pending re-query, the gate re-fires after its wait (400 ms, then 800).
  assert.ok(Math.max(...r.after(2_000)) > 25 * 6, 'the blur held the lens back (else this test tests nothing)');
  const late = r.after(2_000 + 2_000);
  assert.ok(late.length > 30);
  // Within one cycle again: both debounces, the settling time and a probe interval, plus sampling.
  assert.ok(Math.max(...late) <= 25 * Math.ceil((250 + 250 + 500 + 100 + 50) / 100), `after the blur the lens lagged up to ${Math.max(...late)} steps`);
  assert.equal(r.final, r.step);
});

test('an editor whose debounce is longer than the first wait is still reached (the wait doubles)', () => {
  const r = simulate('resolve', 2_000, 250, 20_000);
  assert.ok(r.asked >= 4, `the editor asked ${r.asked} times in 20 s`);
  assert.equal(r.final, r.step);
});

test('nothing visible: the first change fires at once, later ones at most once a wait (an unlisted editor is not starved); a stray answer is ignored', () => {
  const clock = new Clock();
  const fired: number[] = [];
  const gate = new LensRefresh(() => fired.push(clock.now), () => [], { setTimer: clock.set, clearTimer: clock.clear, now: () => clock.now, firstWaitMs: 400 });
  for (let t = 0; t <= 1_000; t += 100) {
    clock.advance(t);
    gate.changed();
  }
  assert.deepEqual(fired, [0, 400, 800]);
  assert.equal(gate.pending, false);
  gate.provided('other');
  clock.advance(2_000);
  assert.deepEqual(fired, [0, 400, 800, 1200], 'the last change is told once the wait is over');
  gate.dispose();
});

test('an editor that never answers is told again at doubling waits, capped (a stale lens never waits longer)', () => {
  const clock = new Clock();
  const fired: number[] = [];
  const gate = new LensRefresh(() => fired.push(clock.now), () => ['doc'], { setTimer: clock.set, clearTimer: clock.clear, now: () => clock.now, firstWaitMs: 400, maxWaitMs: 1000 });
  for (let t = 0; t <= 6_000; t += 100) {
    clock.advance(t);
    gate.changed();
  }
  assert.deepEqual(fired, [0, 400, 1200, 2200, 3200, 4200, 5200]);
  gate.dispose();
});

test('a resolved lens reaches the screen a moment later, and an event before that cancels it: the gate lets it settle', () => {
  // The renderer applies a resolve 300 ms after the provider answered it; probes every 100 ms.
  const hurried = simulate('resolve', 250, 250, 10_000, undefined, { applyMs: 300, settleMs: 0 });
  assert.deepEqual(hurried.lags, [], 'firing on the next probe after the resolve cancels every update (the bug)');
  const settled = simulate('resolve', 250, 250, 10_000, undefined, { applyMs: 300 });
  const cycle = 250 + 250 + 500 + 100;
  assert.ok(settled.lags.length > 100, 'the lens shows steps during the run');
  assert.ok(Math.max(...settled.lags) <= 25 * Math.ceil((cycle + 300 + 50) / 100), `the lens lagged up to ${Math.max(...settled.lags)} steps`);
  assert.equal(settled.final, settled.step);
});
