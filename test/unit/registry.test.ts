/**
 * The job registry (src/shared/jobs): every job kind has every part (options, command-line
 * entries, run function, result kind, text formatter, card and card title); every command refuses
 * an option it does not take (exit 2, naming it); the compute worker refuses an option outside the
 * job's table; defaults are written once (the spec) and reach the run, the help and the CLI alike.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isResultOf, JOB_KINDS, JOBS, jobSpec, RESULT_KINDS, surfaceAxes, formatResult, resultKindTitle, type JobKind } from '../../src/shared/jobs';
import { fmt } from '../../src/shared/format';
import { checkToWorker, JOB_OPTIONS } from '../../src/shared/validate';
import type { DensityResult, EigsResult, FlatnessResult, InfoResult, JobResult, RunMeta, SliceResult, SurfaceResult, TraceResult, TrainDone } from '../../src/shared/results';
import { RUNNERS, withDefaults } from '../../src/engine/registry';
import { jobOptions } from '../../src/cli/commands';
import { basinInProcess } from '../helpers/cli';
import { parseArgs, UsageError } from '../../src/cli/args';
import { ALL_OPTIONS, BOOLEAN_OPTIONS, commandHelp, COMMAND_OPTIONS, FLAGS, USAGE } from '../../src/cli/usage';
import { CARD_KINDS } from '../../webview/charts/results';

const KINDS = ['info', 'eigs', 'trace', 'density', 'slice', 'surface', 'interpolate', 'trajectory', 'flatness', 'train'];
const PROBLEM = ['model', 'data', 'labels', 'no-header', 'x-key', 'y-key', 'loss', 'experiment', 'backend', 'chunk-size', 'out'];
const CURVATURE = [...PROBLEM, 'seed', 'hvp', 'layer', 'curvature'];
const DIRECTIONS = ['seed', 'norm', 'ignore', 'test', 'csv'];
const TRAIN = ['seed', 'optimizer', 'lr', 'steps', 'batch-size', 'momentum', 'rho', 'igr', 'weight-decay', 'schedule', 'probe-every', 'trace-every', 'noise-every', 'layers-every', 'checkpoint-every', 'checkpoint-seconds', 'probe-subset', 'resume', 'curvature'];
/** Each command's options as the command line took them before the registry (the reference the derived sets must equal). */
const REFERENCE_OPTIONS: Record<string, string[]> = {
  info: PROBLEM,
  eigs: [...CURVATURE, 'k', 'which', 'method', 'max-iter', 'tol', 'stop'],
  trace: [...CURVATURE, 'method', 'matvecs'],
  density: [...CURVATURE, 'steps', 'runs', 'grid'],
  slice: [...PROBLEM, ...DIRECTIONS, 'dir', 'x', 'tol'],
  surface: [...PROBLEM, ...DIRECTIONS, 'dir', 'x', 'y', 'tol'],
  interpolate: [...PROBLEM, 'x', 'test', 'csv'],
  trajectory: [...PROBLEM, 'x', 'y', 'steps', 'test', 'csv'],
  flatness: [...PROBLEM, 'seed', 'measures', 'rho', 'asam-rho', 'eta', 'epsilon', 'target', 'draws', 'delta', 'directions', 'criterion'],
  train: [...PROBLEM, ...TRAIN],
  compare: [],
  report: ['out'],
};
/** Options set otherwise than by a flag: the model files (positionals), and what only the extension sends. */
const NOT_FLAGS: Record<string, string[]> = {
  info: ['seed'],
  interpolate: ['seed', 'other'],
  trajectory: ['seed', 'checkpoints'],
  train: ['seed', 'train', 'runDir', 'resume', 'keepCheckpoints', 'layerProbes'],
};

const META: RunMeta = { backend: 'wasm', backendDetail: 'wasm (SIMD)', seed: 3, model: 'm/model.json', params: 125, samples: 300, lossName: 'meanSquaredError', lossValue: 0.5, ms: 1500 };
const HVP = { hvpMethod: 'exact' as const, hvpReason: 'checked against finite differences', hvpCheckProducts: 2 };
const GRID = { ...META, complete: true, evaluations: 3, threads: 1, directions: [{ kind: 'random', norm: 'filter', length: 2 }] };
/** One small result of every kind, with its card title and the first line of its text. */
const SAMPLES: { [K in JobKind]: { result: JobResult | TrainDone; title: string; head: string } } = {
  info: {
    result: { kind: 'info', model: 'm/model.json', name: 'm', backend: 'wasm', backendDetail: 'wasm', params: 12, layers: [{ name: 'd', kind: 'Dense', outShape: [3], params: 12, detail: 'relu' }], hvpMethods: 'exact' } satisfies InfoResult,
    title: 'Model',
    head: 'm/model.json: 12 trainable parameters',
  },
  eigs: {
    result: { ...META, ...HVP, kind: 'eigs', which: 'top', method: 'lanczos', eigenvalues: [12.5, 3], errorBounds: [1e-6, 2e-6], residuals: [1e-4, 1e-4], hvps: 40, converged: true } satisfies EigsResult,
    title: 'Top 2 Hessian eigenvalues',
    head: 'Top 2 Hessian eigenvalues (lanczos, 40 products)',
  },
  trace: {
    result: { ...META, ...HVP, kind: 'trace', method: 'hutchpp', trace: 123.456789, stderr: 0.5, hvps: 60 } satisfies TraceResult,
    title: 'Hessian trace',
    head: 'Hessian trace (Hutch++, 60 products)',
  },
  density: {
    result: { ...META, ...HVP, kind: 'density', steps: 2, runs: 1, grid: [0, 1], density: [0.5, 0.5], nodes: [[0, 1]], weights: [[0.5, 0.5]], hvps: 2, sigma2: 0.01 } satisfies DensityResult,
    title: 'Hessian spectral density',
    head: 'Spectral density (SLQ: 1 run x 2 steps, 2 products, sigma^2 0.01)',
  },
  slice: { result: { ...GRID, kind: 'slice', x: [-1, 0, 1], loss: [2, 1, 2] } satisfies SliceResult, title: '1-D loss slices', head: 'Loss along 1 direction, x in [-1, 1] (3 points)' },
  surface: { result: { ...GRID, kind: 'surface', x: [0, 1], y: [0, 1], loss: [[1, 2], [3, null]] } satisfies SurfaceResult, title: '2-D loss surface', head: 'Loss surface 2 x 2, x in [0, 1], y in [0, 1]' },
  interpolate: {
    result: { ...GRID, kind: 'interpolate', x: [0, 1], loss: [1, 2], endpoints: [{ file: 'a', loss: 1 }, { file: 'b', loss: 2 }] } satisfies SliceResult,
    title: 'Linear interpolation',
    head: 'Loss along 1 direction, x in [0, 1] (2 points)',
  },
  trajectory: {
    result: { ...GRID, kind: 'trajectory', x: [0, 1], y: [0, 1], loss: [[1, 2], [3, 4]], path: [{ file: 'c', x: 0, y: 0, loss: 1 }] } satisfies SurfaceResult,
    title: 'Training trajectory on the loss surface',
    head: 'Loss surface 2 x 2, x in [0, 1], y in [0, 1]',
  },
  flatness: {
    result: { ...META, kind: 'flatness', measures: [{ name: 'sam', value: 0.25, params: { rho: 0.05 }, detail: {}, evaluations: 4 }] } satisfies FlatnessResult,
    title: 'Flatness measures',
    head: 'Flatness measures',
  },
  train: { result: { done: false, run: 'runs/a', status: 'cancelled', reason: 'stopped', steps: 7 } satisfies TrainDone, title: 'Training run', head: 'run cancelled: stopped' },
};

test('the registry lists every job kind, in order, and nothing else', () => {
  assert.deepEqual(JOB_KINDS, KINDS);
  assert.deepEqual(Object.keys(JOBS), KINDS);
  assert.deepEqual([...JOB_OPTIONS.keys()], KINDS, 'the worker validates every kind');
  assert.deepEqual(Object.keys(RUNNERS), KINDS, 'every kind has a run function');
  assert.deepEqual([...CARD_KINDS].sort(), KINDS.filter((k) => k !== 'train').sort(), 'every kind but train has a card (train is drawn as a run)');
  assert.deepEqual([...RESULT_KINDS], KINDS.filter((k) => k !== 'train'));
});

test('every job kind has every part: options, command-line entries, run, result kind, formatter, card title', () => {
  for (const kind of JOB_KINDS) {
    const spec = jobSpec(kind);
    const fields = Object.keys(spec.options);
    assert.ok(fields.length > 0, `${kind}: options`);
    assert.equal(typeof RUNNERS[kind], 'function', `${kind}: run`);
    assert.ok(spec.summary.length > 0, `${kind}: summary`);
    // Command-line entries: every option has a flag unless it is set otherwise, and the command takes those flags.
    const withoutFlag = fields.filter((f) => spec.options[f].flag === undefined);
    assert.deepEqual(withoutFlag, NOT_FLAGS[kind] ?? [], `${kind}: options without a flag`);
    const flags = Object.values(spec.options).flatMap((e) => (e.flag ? [e.flag] : []));
    for (const f of [...flags, ...(spec.cliFlags ?? []).map((c) => c.flag)]) assert.ok(COMMAND_OPTIONS.get(kind)?.has(f), `${kind}: --${f} is not a command-line option`);
    for (const f of fields) assert.ok(spec.options[f].flag === undefined || spec.options[f].help, `${kind}: --${spec.options[f].flag} has no help`);
    // The result: its kind, the guard, the text and the card title.
    const sample = SAMPLES[kind];
    assert.equal(spec.resultKind, kind === 'train' ? null : kind, `${kind}: result kind`);
    assert.ok(isResultOf(kind, sample.result), `${kind}: isResultOf`);
    for (const other of JOB_KINDS) if (other !== kind) assert.equal(isResultOf(other, sample.result), false, `${kind} result taken for ${other}`);
    assert.equal(spec.cardTitle(sample.result), sample.title, `${kind}: card title`);
    const text = spec.text(sample.result);
    assert.equal(text?.split('\n')[0], sample.head, `${kind}: text`);
    assert.equal(formatResult(sample.result), text, `${kind}: formatResult`);
    if ('kind' in sample.result) assert.equal(resultKindTitle(sample.result), sample.title);
  }
});

test('the text of a result: exact, numbers by the one fmt', () => {
  assert.equal(
    formatResult(SAMPLES.trace.result),
    [
      'Hessian trace (Hutch++, 60 products)',
      'trace  123.45679  ± 0.5 (standard error)',
      '',
      'model    m/model.json: 125 parameters, 300 samples, meanSquaredError = 0.5',
      'backend  wasm (SIMD)   seed 3   1.50 s',
      'H·v      exact (double backprop): checked against finite differences',
    ].join('\n'),
  );
  assert.equal(formatResult(SAMPLES.train.result), 'run cancelled: stopped\nwhat was computed is in runs/a\ncontinue it with: basin train --resume runs/a');
  const cases: [number | null | undefined, number, string][] = [
    [0.000123456, 4, '1.235e-4'],
    [123456, 4, '1.235e5'],
    [200000, 6, '2e5'],
    [1.5, 4, '1.5'],
    [12.3456789, 8, '12.345679'],
    [-0.25, 2, '-0.25'],
    [98765.4, 3, '98765'],
    [0, 4, '0'],
    [null, 4, '–'],
    [undefined, 4, '–'],
    [Number.NaN, 4, 'NaN'],
    [Infinity, 4, '∞'],
    [-Infinity, 4, '−∞'],
  ];
  for (const [v, digits, want] of cases) assert.equal(fmt(v, digits), want, `fmt(${v}, ${digits})`);
});

test('the command line takes exactly the options it took before the registry', () => {
  assert.deepEqual([...COMMAND_OPTIONS.keys()], Object.keys(REFERENCE_OPTIONS));
  for (const [command, options] of Object.entries(REFERENCE_OPTIONS)) assert.deepEqual([...(COMMAND_OPTIONS.get(command) ?? [])].sort(), [...new Set(options)].sort(), command);
  assert.deepEqual([...BOOLEAN_OPTIONS].sort(), ['no-header', 'test']);
  assert.deepEqual([...ALL_OPTIONS].sort(), [...new Set(Object.values(REFERENCE_OPTIONS).flat())].sort());
});

const cli = (...args: string[]): ReturnType<typeof basinInProcess> => basinInProcess(args);

test('for every command, an unknown option and an option of other commands exit 2 naming the option', async () => {
  const inputs = ['--model', 'nowhere/model.json', '--data', 'nowhere/data.json'];
  for (const command of COMMAND_OPTIONS.keys()) {
    const unknown = await cli(command, ...inputs, '--frobnicate', '3');
    assert.equal(unknown.code, 2, `${command}: ${unknown.err}`);
    assert.equal(unknown.err, "basin: unknown option --frobnicate\nRun 'basin --help' for usage.\n", command);
    assert.equal(unknown.out, '');
    const allowed = COMMAND_OPTIONS.get(command) ?? new Set<string>();
    const foreign = [...ALL_OPTIONS].filter((o) => !allowed.has(o) && !BOOLEAN_OPTIONS.has(o));
    assert.ok(foreign.length > 0, command);
    for (const option of foreign) {
      const takers = Object.entries(REFERENCE_OPTIONS).filter(([, opts]) => opts.includes(option)).map(([c]) => c);
      const r = await cli(command, '--json', `--${option}`, '1');
      assert.equal(r.code, 2, `${command} --${option}: ${r.err}`);
      assert.equal(r.err, `basin: --${option} does not apply to '${command}' (it is an option of ${takers.join(', ')})\nRun 'basin --help' for usage.\n`);
    }
  }
});

test('the command line parses each option by its type in the job table; usage errors name the flag', () => {
  const parse = (...argv: string[]) => parseArgs(argv, new Set([...FLAGS, ...BOOLEAN_OPTIONS]), ALL_OPTIONS);
  assert.deepEqual(jobOptions('eigs', parse('eigs', '--k', '3', '--max-iter', '20', '--stop', 'residual', '--hvp', 'fd', '--tol', '1e-4')), { hvp: 'fd', k: 3, maxIter: 20, tol: 1e-4, stopOn: 'residual' });
  assert.deepEqual(jobOptions('density', parse('density', '--grid', '50', '--seed', '0')), { seed: 0, gridPoints: 50 });
  assert.deepEqual(jobOptions('slice', parse('slice', '--dir', 'eigen,random', '--test')), { dirs: ['eigen', 'random'], test: true });
  assert.deepEqual(jobOptions('flatness', parse('flatness', '--measures', 'sam,radius', '--asam-rho', '0.3')), { measures: ['sam', 'radius'], asamRho: 0.3 });
  assert.deepEqual(jobOptions('interpolate', parse('interpolate', 'a/model.json', 'b/model.json')), { other: 'b/model.json' });
  assert.deepEqual(jobOptions('trajectory', parse('trajectory', 'a', 'b', 'c', '--steps', '5')), { steps: 5, checkpoints: ['a', 'b', 'c'] });
  const usage = (kind: JobKind, ...argv: string[]): string => {
    try {
      jobOptions(kind, parse(kind, ...argv));
    } catch (e) {
      assert.ok(e instanceof UsageError, String(e));
      return e.message;
    }
    return 'accepted';
  };
  assert.equal(usage('surface', '--dir', 'a,b,c'), '--dir takes one kind for both axes or two (x,y)');
  assert.equal(usage('flatness', '--measures', 'sam,vibes'), "--measures: unknown measure 'vibes' (sam, asam, epsilon, pacbayes, radius)");
  assert.equal(usage('density', '--grid', '1'), '--grid must be an integer >= 2 (got 1)');
  assert.equal(usage('flatness', '--rho', '0'), '--rho must be a positive number (got 0)');
  assert.equal(usage('trace', '--method', 'power'), '--method must be one of hutchpp, hutchinson (got power)');
  assert.equal(usage('interpolate', 'a/model.json'), 'interpolate takes two model files: basin interpolate A/model.json B/model.json --data FILE');
});

test('the compute worker refuses, for every job, an option that is not in its table', () => {
  const problem = { model: 'm/model.json', data: 'm/data.json' };
  const every = new Set(JOB_KINDS.flatMap((k) => Object.keys(jobSpec(k).options)));
  for (const kind of JOB_KINDS) {
    const table = Object.keys(jobSpec(kind).options);
    const foreign = [...every].filter((f) => !table.includes(f));
    assert.ok(foreign.length > 0, kind);
    for (const field of [...foreign, 'bogus']) {
      const r = checkToWorker({ type: 'run', id: 5, job: kind, problem, options: { [field]: 1 } });
      assert.deepEqual(r, { ok: false, inReplyTo: 5, error: `invalid run message: options.${field} does not apply to ${kind} jobs (${kind} takes ${table.join(', ')})` });
    }
  }
});

test('defaults are written once, in the spec: the run, the help and the command line read them there', () => {
  // The run: an option left out takes the spec's default; one given keeps its value.
  for (const kind of JOB_KINDS) {
    const { defaults } = jobSpec(kind);
    assert.deepEqual(withDefaults(kind, {} as never), defaults, kind);
  }
  assert.deepEqual(JOBS.surface.defaults, { dirs: ['random'] });
  assert.deepEqual(withDefaults('surface', { x: '-1:1:5', dirs: undefined }), { dirs: ['random'], x: '-1:1:5' });
  assert.deepEqual(withDefaults('surface', { dirs: ['eigen1', 'eigen2'] }), { dirs: ['eigen1', 'eigen2'] });
  assert.deepEqual(surfaceAxes(undefined), ['random', 'random']);
  assert.deepEqual(surfaceAxes(['eigen']), ['eigen', 'eigen']);
  assert.deepEqual(withDefaults('eigs', {}), { k: 1 });
  assert.deepEqual(withDefaults('slice', {}), { dirs: ['random'] });
  assert.deepEqual(withDefaults('flatness', {}).measures, ['sam', 'asam', 'epsilon', 'pacbayes', 'radius']);
  // The command line sets only what was given, so the run's defaults are the spec's.
  const parse = (...argv: string[]) => parseArgs(argv, new Set([...FLAGS, ...BOOLEAN_OPTIONS]), ALL_OPTIONS);
  for (const kind of JOB_KINDS) {
    if (kind === 'train') continue;
    const given = jobOptions(kind, parse(kind, ...(kind === 'interpolate' ? ['a', 'b'] : [])));
    for (const field of Object.keys(jobSpec(kind).defaults)) assert.ok(!(field in given), `${kind}: the command line set ${field} itself`);
  }
  // The help shows each default, read from the spec, on its flag's line.
  for (const kind of JOB_KINDS) {
    const spec = jobSpec(kind);
    const help = commandHelp(kind) ?? '';
    for (const [field, value] of Object.entries(spec.defaults)) {
      const flag = spec.options[field].flag;
      const shown = Array.isArray(value) ? value.join(',') : String(value);
      assert.match(help, new RegExp(`--${flag} [^\\n]*(\\n {24}[^\\n]*)*\\(${shown.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\)`), `${kind}: --${flag} default`);
    }
  }
});

test('basin <command> --help lists that command\'s options; basin --help lists every command', () => {
  for (const command of COMMAND_OPTIONS.keys()) {
    const help = commandHelp(command) ?? '';
    assert.match(help, new RegExp(`^basin ${command}: `), command);
    const own = [...(COMMAND_OPTIONS.get(command) ?? [])].filter((o) => !['model', 'data', 'labels', 'no-header', 'x-key', 'y-key', 'loss', 'experiment', 'backend', 'chunk-size', 'out'].includes(o));
    for (const o of own) assert.match(help, new RegExp(`^  --${o}\\b`, 'm'), `${command}: --${o}`);
    assert.match(USAGE, new RegExp(`^  ${command} +\\S`, 'm'), command);
  }
  assert.match(commandHelp('eigs') ?? '', /^ {2}--k N {17}how many eigenvalues \(1\)$/m);
  assert.equal(commandHelp('frobnicate'), undefined);
});
