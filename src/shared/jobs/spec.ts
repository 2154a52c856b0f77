/**
 * What a job is, defined once (`defineJob`): its options (wire name, type, CLI flag, help line,
 * default), its result type and kind, the text the CLI prints for a result and the title of the
 * panel's card. The CLI, the compute worker's validation, the extension and the webview read the
 * specs in src/shared/jobs/index.ts (`JOBS`); the parts bound to a layer (the run functions in
 * src/engine/registry.ts, the panel cards in webview/charts/results.ts) are tables keyed by
 * `JobKind`, so a job missing from one is a compile error.
 *
 * Plain TypeScript: imports only src/shared (the webview bundles it).
 */
import type { FieldSpec } from '../fields';
import type { CurvatureName, JobResult, RunMeta, TrainDone } from '../results';
import { fmt } from '../format';

/** One option of a job: its type on the wire and, when the command line sets it, its flag and help. */
export interface OptionEntry {
  spec: FieldSpec;
  /** The job cannot run without it. */
  required?: boolean;
  /** The CLI flag (without --) that sets it; absent when the command line sets it otherwise (positionals) or not at all. */
  flag?: string;
  /** The value's name in the help ('N', 'T', 'start:stop:steps'); a choice shows its values. */
  arg?: string;
  /** The help line: what it does, and its default in parentheses. */
  help?: string;
  /** CLI: the message for a list longer than the spec allows. */
  tooMany?: string;
}

/** A flag a command takes that is not one of its job's options (output files, training settings). */
export interface CliFlag {
  flag: string;
  arg?: string;
  help: string;
  /** Takes no value. */
  boolean?: boolean;
}

/** Every option of O, in the order the help and the validators list them. */
export type OptionTable<O> = { readonly [F in keyof Required<O>]: OptionEntry };

/** What defineJob is given. */
export interface JobDefinition<O extends object, R extends JobResult | TrainDone> {
  /** One line for `basin --help`'s command list. */
  summary: string;
  /** The arguments after the command name in its help ('A.json B.json'); default '[experiment.ts|.js]'. */
  usage?: string;
  options: OptionTable<O>;
  /** Defaults applied before the job runs, and shown in the help (the one place they are written). */
  defaults: Partial<O>;
  /** The command line's model files (positionals) as options, or a usage error. */
  positionals?: (files: readonly string[]) => Partial<O> | string;
  /** Flags the command takes besides the options (its CSV output, training settings). */
  cliFlags?: readonly CliFlag[];
  /** The `kind` of its result, or null for a training summary (`TrainDone`, which has `done`). */
  resultKind: (R extends { kind: infer K } ? K : never) | null;
  /** The text the CLI prints for a result. */
  format(r: R): string;
  /** What a result is, as its card's title says it ("Top 5 Hessian eigenvalues"). */
  title(r: R): string;
}

/** A job's spec: its definition, and type-erased accessors for code that holds any result. */
export interface JobSpec<O extends object, R extends JobResult | TrainDone> extends JobDefinition<O, R> {
  /** Type-level only (never set): the options and result types. */
  readonly types?: { options: O; result: R };
  /** Whether a reply is this job's result (its kind, or a training summary). */
  isResult(r: JobResult | TrainDone): r is R;
  /** format() for a result of this job, else undefined. */
  text(r: JobResult | TrainDone): string | undefined;
  /** title() for a result of this job, else undefined. */
  cardTitle(r: JobResult | TrainDone): string | undefined;
}

export function defineJob<O extends object, R extends JobResult | TrainDone>(def: JobDefinition<O, R>): JobSpec<O, R> {
  const isResult = (r: JobResult | TrainDone): r is R =>
    def.resultKind === null ? 'done' in r && typeof r.done === 'boolean' : 'kind' in r && r.kind === def.resultKind;
  return {
    ...def,
    isResult,
    text: (r) => (isResult(r) ? def.format(r) : undefined),
    cardTitle: (r) => (isResult(r) ? def.title(r) : undefined),
  };
}

// ---------------------------------------------------------------------------------------------
// Shared by the specs: option entries and text helpers.

/** A text table: the first column left-aligned, the others right-aligned. */
export function textTable(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ')).join('\n');
}

const CURVATURE_TITLES: Record<CurvatureName, string> = {
  hessian: 'Hessian',
  ggn: 'generalized Gauss-Newton',
  fisher: 'Fisher',
  'empirical-fisher': 'empirical Fisher',
};

/** What a result analysed: the Hessian unless it says otherwise (results written before --curvature). */
export function curvatureTitle(c: CurvatureName | undefined): string {
  return CURVATURE_TITLES[c ?? 'hessian'] ?? String(c);
}

/** The last lines of a result's text: model, data, loss, backend, seed, time, products. */
export function footer(r: RunMeta & { hvpMethod?: string; hvpReason?: string }): string {
  const lines = [
    `model    ${r.model}: ${r.params.toLocaleString()} parameters, ${r.samples} samples, ${r.lossName} = ${fmt(r.lossValue, 6)}`,
    `backend  ${r.backendDetail}   seed ${r.seed}   ${(r.ms / 1000).toFixed(2)} s`,
  ];
  if (r.hvpMethod) lines.push(`H·v      ${r.hvpMethod === 'exact' ? 'exact (double backprop)' : 'finite differences'}: ${r.hvpReason}`);
  return lines.join('\n');
}
