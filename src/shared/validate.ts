/**
 * Validators for every message that crosses a process or page boundary: the compute worker's
 * requests (`ToWorker`) and replies (`FromWorker`), and the panel's messages both ways
 * (`FromWebview`, `ToWebview`). A message from the other side is `unknown` until one of these has
 * passed it: each returns undefined for a well-formed message, else one sentence that names the
 * field and what is wrong with it.
 *
 * Field lookups use own properties and `Map`s only, so a `__proto__` or `constructor` sent by the
 * other side never resolves to something inherited. Sizes (grid points, Krylov steps, memory) are
 * the engine's to refuse, since the CLI and the worker both call it (src/engine/limits.ts); here
 * only shapes, types and the ranges a type implies (whole numbers >= 1, finite numbers >= 0).
 *
 * Plain TypeScript that imports only src/shared (the job registry for the options each job takes):
 * the worker, the extension host and the webview use it.
 */
import type { CommandMessage } from './protocol';
import type { CurvatureName, TrainSettings } from './results';
import type { AnyRunRequest, JobOptions, ProblemInput, ToWorker } from './workerProtocol';
import * as fields from './fields';
import { bool, choice, int, num, str, strings, type FieldSpec } from './fields';
import { JOB_KINDS as KINDS, jobSpec, type JobKind } from './jobs';

export type { FieldSpec } from './fields';

export interface OptionRule {
  spec: FieldSpec;
  /** The job cannot run without it. */
  required?: boolean;
}

export const BACKEND_NAMES: readonly NonNullable<AnyRunRequest['backend']>[] = fields.BACKEND_NAMES;
export const FLATNESS_MEASURE_NAMES: readonly NonNullable<JobOptions['measures']>[number][] = fields.FLATNESS_MEASURE_NAMES;
export const CURVATURE_NAMES: readonly CurvatureName[] = fields.CURVATURE_NAMES;
export const OPTIMIZER_NAMES: readonly TrainSettings['optimizer'][] = fields.OPTIMIZER_NAMES;
/** The commands the panel may ask the host to run (its buttons). */
export const PANEL_COMMANDS: ReadonlySet<CommandMessage['command']> = new Set<CommandMessage['command']>(['stop', 'probe', 'export', 'compare', 'resume', 'trajectory']);

/**
 * The options each job accepts, with their types: each job's option table in the registry
 * (src/shared/jobs), which is what its run function reads. Anything else is refused, so a
 * misspelt or misplaced option is never silently ignored. `seed` is accepted by every job (the
 * extension sends its configured seed with each); `info` and `train` do not use it (training
 * takes its seed from `train.seed`). A `Map`: look kinds up with `get`/`has` only.
 */
export const JOB_OPTIONS: ReadonlyMap<JobKind, ReadonlyMap<keyof JobOptions, OptionRule>> = new Map(
  KINDS.map((kind) => [
    kind,
    new Map(
      Object.entries(jobSpec(kind).options).map(([field, e]): [keyof JobOptions, OptionRule] => [field as keyof JobOptions, e.required ? { spec: e.spec, required: true } : { spec: e.spec }]),
    ),
  ]),
);
export const JOB_KINDS: readonly JobKind[] = KINDS;

const PROBLEM_TABLE: Record<keyof ProblemInput, FieldSpec> = {
  model: str,
  data: str,
  labels: strings(1),
  noHeader: bool,
  xKey: str,
  yKey: str,
  loss: str,
  experiment: str,
  chunkSize: int(1),
  maxParams: int(1),
  threads: int(1),
};
/** The fields of a job's `problem`. */
export const PROBLEM_FIELDS: ReadonlyMap<keyof ProblemInput, FieldSpec> = new Map(Object.entries(PROBLEM_TABLE) as [keyof ProblemInput, FieldSpec][]);

const SETTINGS_TABLE: Record<keyof TrainSettings, FieldSpec> = {
  optimizer: choice(OPTIMIZER_NAMES),
  lr: num(0),
  steps: int(0),
  batchSize: int(1),
  momentum: num(0, true),
  rho: num(0, true),
  igr: num(0, true),
  weightDecay: num(0, true),
  schedule: str,
  seed: int(0),
  probeEvery: int(1),
  traceEvery: int(0),
  noiseEvery: int(0),
  layersEvery: int(0),
  checkpointEvery: int(0),
  checkpointSeconds: num(0, true),
  probeSubset: int(1),
  curvature: choice(CURVATURE_NAMES),
  divergeFactor: num(0),
};
/** The training settings a `train` job's `options.train` may override (their ranges: src/engine/train/run.ts). */
export const TRAIN_SETTING_FIELDS: ReadonlyMap<keyof TrainSettings, FieldSpec> = new Map(Object.entries(SETTINGS_TABLE) as [keyof TrainSettings, FieldSpec][]);

// ---------------------------------------------------------------------------------------------
// Building blocks.

type Obj = Record<string, unknown>;

export function isRecord(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** o[key] if it is o's own property, else undefined (never an inherited `__proto__`, `constructor`, ...). */
function own(o: Obj, key: string): unknown {
  return Object.prototype.hasOwnProperty.call(o, key) ? o[key] : undefined;
}

/** A short, safe rendering of a value for a message (strings cut at 40 characters). */
export function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v)}`;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (Array.isArray(v)) return `an array of ${v.length}`;
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

/** What a spec expects, in words: "a whole number >= 1", "one of top, bottom". */
export function describeSpec(spec: FieldSpec): string {
  switch (spec.type) {
    case 'int':
      return `a whole number >= ${spec.min}`;
    case 'number':
      return `a finite number ${spec.orEqual ? '>=' : '>'} ${spec.min}`;
    case 'string':
      return 'a non-empty string';
    case 'boolean':
      return 'true or false';
    case 'choice':
      return `one of ${spec.values.join(', ')}`;
    case 'strings':
      return `a list of ${spec.maxItems === undefined ? (spec.minItems === 1 ? 'one or more' : `at least ${spec.minItems}`) : spec.maxItems === spec.minItems ? spec.minItems : `${spec.minItems} to ${spec.maxItems}`} non-empty strings`;
    case 'choices':
      return `a list of ${spec.minItems === 1 ? 'one or more' : `at least ${spec.minItems}`} of ${spec.values.join(', ')}`;
    case 'settings':
      return 'an object of training settings';
  }
}

const isNonEmptyString = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
const isId = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Checks one value against its spec; `path` names it in the message ("options.k"). */
export function checkField(path: string, spec: FieldSpec, v: unknown): string | undefined {
  const bad = (): string => `${path} must be ${describeSpec(spec)} (got ${show(v)})`;
  switch (spec.type) {
    case 'int':
      return typeof v === 'number' && Number.isInteger(v) && v >= spec.min ? undefined : bad();
    case 'number':
      return typeof v === 'number' && Number.isFinite(v) && (v > spec.min || (spec.orEqual && v === spec.min)) ? undefined : bad();
    case 'string':
      return isNonEmptyString(v) ? undefined : bad();
    case 'boolean':
      return typeof v === 'boolean' ? undefined : bad();
    case 'choice':
      return typeof v === 'string' && spec.values.includes(v) ? undefined : bad();
    case 'strings':
    case 'choices': {
      if (!Array.isArray(v) || v.length < spec.minItems || (spec.type === 'strings' && spec.maxItems !== undefined && v.length > spec.maxItems)) return bad();
      for (let i = 0; i < v.length; i++) {
        const item: unknown = v[i];
        const ok = spec.type === 'strings' ? isNonEmptyString(item) : typeof item === 'string' && spec.values.includes(item);
        if (!ok) return `${path}[${i}] must be ${spec.type === 'strings' ? 'a non-empty string' : `one of ${spec.values.join(', ')}`} (got ${show(item)})`;
      }
      return undefined;
    }
    case 'settings':
      return isRecord(v) ? checkFields(path, v, TRAIN_SETTING_FIELDS, 'training setting') : bad();
  }
}

/** Lists names: "a", "a and b", "a, b and c". */
function listNames(names: readonly string[]): string {
  return names.length <= 1 ? names.join('') : `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
}

/** Refuses fields not in `fields` (all named), then checks each present one. Undefined values count as absent. */
function checkFields(path: string, o: Obj, fields: ReadonlyMap<string, FieldSpec>, noun: string): string | undefined {
  const unknown = Object.keys(o).filter((k) => !fields.has(k));
  if (unknown.length > 0) {
    return `${path} has unknown ${noun}${unknown.length > 1 ? 's' : ''} ${listNames(unknown.map((k) => `'${k}'`))} (known: ${[...fields.keys()].join(', ')})`;
  }
  for (const [key, spec] of fields) {
    const v = own(o, key);
    if (v === undefined) continue;
    const err = checkField(`${path}.${key}`, spec, v);
    if (err) return err;
  }
  return undefined;
}

/** Refuses fields of a message other than `allowed`. */
function extraFields(o: Obj, allowed: readonly string[]): string | undefined {
  const extra = Object.keys(o).filter((k) => !allowed.includes(k));
  return extra.length > 0 ? `unknown field${extra.length > 1 ? 's' : ''} ${listNames(extra.map((k) => `'${k}'`))}` : undefined;
}

// ---------------------------------------------------------------------------------------------
// The compute worker's requests.

/**
 * Checks a job's options: every field must apply to the job (`JOB_OPTIONS`) and have the right
 * type; required ones must be present.
 */
export function checkJobOptions(job: JobKind, options: unknown, path = 'options'): string | undefined {
  const table = JOB_OPTIONS.get(job);
  if (!table) return `job must be one of ${JOB_KINDS.join(', ')} (got ${show(job)})`;
  if (!isRecord(options)) return `${path} must be an object (got ${show(options)})`;
  const misplaced = Object.keys(options).filter((k) => !table.has(k as keyof JobOptions));
  if (misplaced.length > 0) {
    const names = listNames(misplaced.map((k) => `${path}.${k}`));
    return `${names} ${misplaced.length > 1 ? 'do' : 'does'} not apply to ${job} jobs (${job} takes ${[...table.keys()].join(', ')})`;
  }
  for (const [key, rule] of table) {
    const v = own(options, key);
    if (v === undefined) {
      if (rule.required) return `${path}.${key} is missing: ${job} jobs need it (${describeSpec(rule.spec)})`;
      continue;
    }
    const err = checkField(`${path}.${key}`, rule.spec, v);
    if (err) return err;
  }
  return undefined;
}

/** Checks a job's `problem`: known fields of the right types, and a model or an experiment module. */
export function checkProblemInput(problem: unknown, path = 'problem'): string | undefined {
  if (!isRecord(problem)) return `${path} must be an object (got ${show(problem)})`;
  const err = checkFields(path, problem, PROBLEM_FIELDS, 'field');
  if (err) return err;
  if (own(problem, 'model') === undefined && own(problem, 'experiment') === undefined) {
    return `${path} names neither a model (${path}.model) nor an experiment module (${path}.experiment)`;
  }
  return undefined;
}

export type CheckedToWorker = { ok: true; msg: ToWorker } | { ok: false; inReplyTo: number; error: string };

/**
 * Checks a message to the compute worker. A bad message is answered with an error: `inReplyTo`
 * is its id when it has a usable one (a whole number >= 0), else -1.
 */
export function checkToWorker(msg: unknown): CheckedToWorker {
  if (!isRecord(msg)) return { ok: false, inReplyTo: -1, error: `invalid message: expected an object with a type (got ${show(msg)})` };
  const type = own(msg, 'type');
  const id = own(msg, 'id');
  const fail = (error: string, replyTo = isId(id) ? id : -1): CheckedToWorker => ({ ok: false, inReplyTo: replyTo, error: `invalid ${String(type)} message: ${error}` });
  if (type === 'shutdown') {
    const extra = extraFields(msg, ['type']);
    return extra ? fail(extra, -1) : { ok: true, msg: { type: 'shutdown' } };
  }
  if (type === 'cancel') {
    if (!isId(id)) return fail(`id must be a whole number >= 0 (got ${show(id)})`, -1);
    const extra = extraFields(msg, ['type', 'id']);
    return extra ? fail(extra, -1) : { ok: true, msg: { type: 'cancel', id } };
  }
  if (type !== 'run') {
    return { ok: false, inReplyTo: -1, error: `invalid message: type must be one of run, cancel, shutdown (got ${show(type)})` };
  }
  if (!isId(id)) return fail(`id must be a whole number >= 0 (got ${show(id)})`, -1);
  const extra = extraFields(msg, ['type', 'id', 'job', 'problem', 'options', 'backend']);
  if (extra) return fail(extra);
  const job = own(msg, 'job');
  if (typeof job !== 'string' || !JOB_OPTIONS.has(job as JobKind)) return fail(`job must be one of ${JOB_KINDS.join(', ')} (got ${show(job)})`);
  const problemErr = checkProblemInput(own(msg, 'problem'));
  if (problemErr) return fail(problemErr);
  const given = own(msg, 'options');
  const options = given === undefined ? {} : given;
  const optionsErr = checkJobOptions(job as JobKind, options);
  if (optionsErr) return fail(optionsErr);
  const backend = own(msg, 'backend');
  if (backend !== undefined) {
    const err = checkField('backend', choice(BACKEND_NAMES), backend);
    if (err) return fail(err);
  }
  return {
    ok: true,
    // Checked above: the job's kind, its problem and its options against the job's table.
    msg: { type: 'run', id, job, problem: own(msg, 'problem') as ProblemInput, options, backend } as AnyRunRequest,
  };
}

// ---------------------------------------------------------------------------------------------
// The compute worker's replies.

const isFiniteNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isReplyId = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= -1;

/** Checks records (probe lines): objects with a numeric step. */
function checkRecords(path: string, records: unknown): string | undefined {
  if (!Array.isArray(records)) return `${path} must be an array (got ${show(records)})`;
  for (let i = 0; i < records.length; i++) {
    const r: unknown = records[i];
    if (!isRecord(r) || !isFiniteNumber(own(r, 'step'))) return `${path}[${i}] must be a probe record with a numeric step (got ${show(r)})`;
  }
  return undefined;
}

/** A job result (an object with a string `kind`) or a training summary (an object with a boolean `done`). */
function checkResult(path: string, r: unknown, trainDone: boolean): string | undefined {
  if (isRecord(r) && (typeof own(r, 'kind') === 'string' || (trainDone && typeof own(r, 'done') === 'boolean'))) return undefined;
  return `${path} must be ${trainDone ? 'a job result or a training summary' : 'a job result'} (got ${show(r)})`;
}

/** Checks a message from the compute worker; undefined when well formed. */
export function checkFromWorker(msg: unknown): string | undefined {
  if (!isRecord(msg)) return `expected an object with a type (got ${show(msg)})`;
  const type = own(msg, 'type');
  const inReplyTo = own(msg, 'inReplyTo');
  if (type === 'ready') return isFiniteNumber(own(msg, 'pid')) ? undefined : `ready: pid must be a number (got ${show(own(msg, 'pid'))})`;
  const known = ['progress', 'partial', 'result', 'probes', 'error'];
  if (typeof type !== 'string' || !known.includes(type)) return `type must be one of ready, ${known.join(', ')} (got ${show(type)})`;
  if (!isReplyId(inReplyTo) || (type !== 'error' && inReplyTo < 0)) return `${type}: inReplyTo must be a request id (got ${show(inReplyTo)})`;
  switch (type) {
    case 'progress': {
      const p = own(msg, 'progress');
      if (!isRecord(p) || !isFiniteNumber(own(p, 'done')) || !isFiniteNumber(own(p, 'total')) || typeof own(p, 'message') !== 'string') {
        return `progress: progress must be {done, total, message} (got ${show(p)})`;
      }
      return undefined;
    }
    case 'partial':
      return checkResult('partial: result', own(msg, 'result'), false);
    case 'result':
      return checkResult('result: result', own(msg, 'result'), true);
    case 'probes': {
      const settings = own(msg, 'settings');
      if (settings !== undefined && !isRecord(settings)) return `probes: settings must be an object (got ${show(settings)})`;
      return checkRecords('probes: records', own(msg, 'records'));
    }
    default: {
      const kind = own(msg, 'kind');
      if (typeof own(msg, 'message') !== 'string') return `error: message must be a string (got ${show(own(msg, 'message'))})`;
      if (kind !== 'user' && kind !== 'cancelled' && kind !== 'internal') return `error: kind must be one of user, cancelled, internal (got ${show(kind)})`;
      return undefined;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The panel.

/** Checks a message from the panel (webview) to the host; undefined when well formed. */
export function checkFromWebview(msg: unknown): string | undefined {
  if (!isRecord(msg)) return `expected an object with a type (got ${show(msg)})`;
  const type = own(msg, 'type');
  switch (type) {
    case 'ready':
      return undefined;
    case 'exported': {
      if (!isId(own(msg, 'requestId'))) return `exported: requestId must be a whole number >= 0 (got ${show(own(msg, 'requestId'))})`;
      const images = own(msg, 'images');
      if (!isRecord(images)) return `exported: images must be an object of data URLs (got ${show(images)})`;
      for (const [name, url] of Object.entries(images)) if (typeof url !== 'string') return `exported: images['${name}'] must be a string (got ${show(url)})`;
      return undefined;
    }
    case 'command': {
      const command = own(msg, 'command');
      if (typeof command !== 'string' || !(PANEL_COMMANDS as ReadonlySet<string>).has(command)) {
        return `command: command must be one of ${[...PANEL_COMMANDS].join(', ')} (got ${show(command)})`;
      }
      const runId = own(msg, 'runId');
      if (runId !== undefined && typeof runId !== 'string') return `command: runId must be a string (got ${show(runId)})`;
      return undefined;
    }
    default:
      return `type must be one of ready, exported, command (got ${show(type)})`;
  }
}

function checkRunView(path: string, run: unknown): string | undefined {
  if (!isRecord(run)) return `${path} must be a run (got ${show(run)})`;
  if (typeof own(run, 'id') !== 'string') return `${path}.id must be a string (got ${show(own(run, 'id'))})`;
  if (typeof own(run, 'title') !== 'string') return `${path}.title must be a string (got ${show(own(run, 'title'))})`;
  const dir = own(run, 'dir');
  if (dir !== undefined && typeof dir !== 'string') return `${path}.dir must be a string (got ${show(dir)})`;
  for (const key of ['settings', 'done']) {
    const v = own(run, key);
    if (v !== undefined && !isRecord(v)) return `${path}.${key} must be an object (got ${show(v)})`;
  }
  return checkRecords(`${path}.probes`, own(run, 'probes'));
}

function checkResultView(path: string, view: unknown): string | undefined {
  if (!isRecord(view)) return `${path} must be a result view (got ${show(view)})`;
  if (typeof own(view, 'id') !== 'string') return `${path}.id must be a string (got ${show(own(view, 'id'))})`;
  if (typeof own(view, 'title') !== 'string') return `${path}.title must be a string (got ${show(own(view, 'title'))})`;
  const partial = own(view, 'partial');
  if (partial !== undefined && typeof partial !== 'boolean') return `${path}.partial must be true or false (got ${show(partial)})`;
  return checkResult(`${path}.result`, own(view, 'result'), false);
}

/** Checks a message from the host to the panel; undefined when well formed. */
export function checkToWebview(msg: unknown): string | undefined {
  if (!isRecord(msg)) return `expected an object with a type (got ${show(msg)})`;
  const type = own(msg, 'type');
  const isString = (key: string): string | undefined => (typeof own(msg, key) === 'string' ? undefined : `${String(type)}: ${key} must be a string (got ${show(own(msg, key))})`);
  switch (type) {
    case 'init': {
      const s = own(msg, 'snapshot');
      if (!isRecord(s)) return `init: snapshot must be an object (got ${show(s)})`;
      const runs = own(s, 'runs');
      const results = own(s, 'results');
      if (!Array.isArray(runs)) return `init: snapshot.runs must be an array (got ${show(runs)})`;
      if (!Array.isArray(results)) return `init: snapshot.results must be an array (got ${show(results)})`;
      for (const key of ['focus', 'status']) {
        const v = own(s, key);
        if (v !== undefined && typeof v !== 'string') return `init: snapshot.${key} must be a string (got ${show(v)})`;
      }
      for (let i = 0; i < runs.length; i++) {
        const err = checkRunView(`init: snapshot.runs[${i}]`, runs[i]);
        if (err) return err;
      }
      for (let i = 0; i < results.length; i++) {
        const err = checkResultView(`init: snapshot.results[${i}]`, results[i]);
        if (err) return err;
      }
      return undefined;
    }
    case 'runStarted':
      return checkRunView('runStarted: run', own(msg, 'run'));
    case 'probes': {
      const settings = own(msg, 'settings');
      if (settings !== undefined && !isRecord(settings)) return `probes: settings must be an object (got ${show(settings)})`;
      return isString('runId') ?? checkRecords('probes: records', own(msg, 'records'));
    }
    case 'runEnded':
      return isString('runId') ?? (isRecord(own(msg, 'done')) ? undefined : `runEnded: done must be an object (got ${show(own(msg, 'done'))})`);
    case 'result':
      return checkResultView('result: view', own(msg, 'view'));
    case 'status':
      return isString('text') ?? (typeof own(msg, 'busy') === 'boolean' ? undefined : `status: busy must be true or false (got ${show(own(msg, 'busy'))})`);
    case 'exportPng':
      return isId(own(msg, 'requestId')) ? undefined : `exportPng: requestId must be a whole number >= 0 (got ${show(own(msg, 'requestId'))})`;
    case 'reveal':
      return isString('id');
    case 'compare': {
      const ids = own(msg, 'runIds');
      if (!Array.isArray(ids) || !ids.every((x) => typeof x === 'string')) return `compare: runIds must be an array of strings (got ${show(ids)})`;
      return undefined;
    }
    default:
      return `type must be one of init, runStarted, probes, runEnded, result, status, exportPng, reveal, compare (got ${show(type)})`;
  }
}
