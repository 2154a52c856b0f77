/**
 * The `basin` command line's vocabulary, derived from the job registry (src/shared/jobs): per
 * command, the options it takes (each job's option flags, its extra flags, and the problem's
 * inputs) and its help (`basin <command> --help`). `compare` and `report` run no job: their
 * entries are written here in the same shape. An option that does not apply to a command is an
 * error, never silently ignored. This module is loaded by the launcher (main thread) and the job
 * thread alike, so it imports nothing heavy.
 */
import { VERSION } from '../engine/version';
import { describeSpec } from '../shared/validate';
import { JOB_KINDS, jobSpec, type CliFlag, type OptionEntry } from '../shared/jobs';

/** Flags (no value) every command accepts. */
export const FLAGS: ReadonlySet<string> = new Set(['json', 'help', 'version', 'quiet']);

/** Where the model and data come from: every command that loads a problem takes these (described in INPUTS and COMMON). */
const PROBLEM = ['model', 'data', 'labels', 'no-header', 'x-key', 'y-key', 'loss', 'experiment', 'backend', 'chunk-size', 'out'];
const PROBLEM_BOOLEANS = ['no-header'];

const EXPERIMENT = '[experiment.ts|.js]';

/** A command as the command line sees it. */
export interface CommandSpec {
  summary: string;
  /** The arguments after the command name. */
  usage: string;
  /** Its own options, in help order (flag, value name, help line). */
  flags: readonly CliFlag[];
  /** Whether it loads a model and data (and so takes the problem's inputs). */
  problem: boolean;
}

/** A job option as a command-line flag: its value's name from its type, its default from the job's defaults. */
function optionFlag(e: OptionEntry & { flag: string }, fallback: unknown): CliFlag {
  const spec = e.spec;
  const arg = e.arg ?? (spec.type === 'choice' ? spec.values.join('|') : spec.type === 'boolean' ? undefined : describeSpec(spec));
  const shown = Array.isArray(fallback) ? fallback.join(',') : fallback;
  const help = `${e.help ?? ''}${shown !== undefined ? ` (${String(shown)})` : ''}`;
  return { flag: e.flag, arg, help, boolean: spec.type === 'boolean' || undefined };
}

function jobCommand(kind: (typeof JOB_KINDS)[number]): CommandSpec {
  const spec = jobSpec(kind);
  const defaults = spec.defaults as Record<string, unknown>;
  const flags: CliFlag[] = [];
  for (const [field, e] of Object.entries(spec.options)) {
    if (e.flag !== undefined) flags.push(optionFlag({ ...e, flag: e.flag }, Object.prototype.hasOwnProperty.call(defaults, field) ? defaults[field] : undefined));
  }
  flags.push(...(spec.cliFlags ?? []));
  return { summary: spec.summary, usage: spec.usage ?? EXPERIMENT, flags, problem: true };
}

/** Every command: the jobs of the registry, in its order, then compare and report. */
export const COMMANDS: ReadonlyMap<string, CommandSpec> = new Map<string, CommandSpec>([
  ...JOB_KINDS.map((k): [string, CommandSpec] => [k, jobCommand(k)]),
  ['compare', { summary: 'training runs side by side: settings and final metrics', usage: 'RUN...', flags: [], problem: false }],
  [
    'report',
    {
      summary: 'one self-contained HTML file drawing runs and results with the panel\'s charts',
      usage: 'RUN|RESULT.json...',
      flags: [{ flag: 'out', arg: 'FILE.html', help: 'where to write it (RUN/report.html for one run, else basin-report.html)' }],
      problem: false,
    },
  ],
]);

/** The options (without the leading --) of each command; flags of FLAGS are accepted everywhere. */
export const COMMAND_OPTIONS: ReadonlyMap<string, ReadonlySet<string>> = new Map(
  [...COMMANDS].map(([name, c]) => [name, new Set([...(c.problem ? PROBLEM : []), ...c.flags.map((f) => f.flag)])]),
);

/** Options that take no value (besides FLAGS). */
export const BOOLEAN_OPTIONS: ReadonlySet<string> = new Set([...PROBLEM_BOOLEANS, ...[...COMMANDS.values()].flatMap((c) => c.flags.filter((f) => f.boolean).map((f) => f.flag))]);

/** Every option some command takes: the parser's vocabulary (a word outside it is unknown). */
export const ALL_OPTIONS: ReadonlySet<string> = new Set([...COMMAND_OPTIONS.values()].flatMap((s) => [...s]));

const INPUTS = `Inputs:
  --model FILE      TF.js layers model.json (weight shards beside it), or model.onnx
                    (exported by torch.onnx.export or tf2onnx; give --loss, e.g.
                    crossEntropyFromLogits for a PyTorch classifier)
  --data FILE       .json {"x","y"}, .csv (header; --labels COL[,COL], default last column;
                    --no-header: every row is data, labels by 0-based column index),
                    x.npy,y.npy, or .npz (arrays x and y, or --x-key NAME --y-key NAME;
                    images NCHW for a model from .onnx; integer class labels)
  --loss NAME       meanSquaredError | categoricalCrossentropy | binaryCrossentropy | crossEntropyFromLogits
                    (default: from the output activation)
  EXPERIMENT        a .ts/.js module exporting model(tf), data(tf), loss (see README)
`;

const COMMON = `Options of every command:
  --backend onnxruntime|tensorflow|wasm|cpu  engine (default: ONNX Runtime when it loads and
                    can run the model, else the best TF.js backend; a TF.js name runs on TF.js)
  --chunk-size N    samples per evaluation chunk (bounded memory)
  --json            print one JSON object      --out FILE   also write the JSON to FILE
  --quiet           no progress on stderr      --help, --version
`;

/** Words filled into lines of at most `width` characters, each line after the first indented by `indent`. */
function wrap(text: string, width: number, indent: number): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > width - indent) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  lines.push(line);
  return lines.join(`\n${''.padEnd(indent)}`);
}

/** Help lines: the flag and its value's name, then the help, aligned (long flags get their own line). */
function flagLines(flags: readonly CliFlag[]): string {
  const width = 24;
  return flags
    .map((f) => {
      const head = `  --${f.flag}${f.arg ? ` ${f.arg}` : ''}`;
      const help = wrap(f.help, 100, width);
      return head.length <= width - 2 ? `${head.padEnd(width)}${help}` : `${head}\n${''.padEnd(width)}${help}`;
    })
    .join('\n');
}

export const USAGE = `basin ${VERSION}: loss-landscape curvature from the command line

Usage:
  basin <command> [experiment.ts|.js] [options]
  basin <command> --model model.json --data data.json [options]
  basin <command> --help      the command's options

Commands:
${[...COMMANDS].map(([name, c]) => `  ${name.padEnd(12)}${c.summary}`).join('\n')}

${INPUTS}
${COMMON}`;

/** `basin <command> --help`: what it does, its arguments and every option it takes. */
export function commandHelp(name: string): string | undefined {
  const c = COMMANDS.get(name);
  if (!c) return undefined;
  const usage = !c.problem
    ? [`  basin ${name} ${c.usage}${c.flags.length ? ' [options]' : ''}`]
    : c.usage === EXPERIMENT
      ? [`  basin ${name} ${c.usage} [options]`, `  basin ${name} --model model.json --data data.json [options]`]
      : [`  basin ${name} ${c.usage} --data data.json [options]`];
  const lines = [`basin ${name}: ${c.summary}`, '', 'Usage:', ...usage, ''];
  if (c.flags.length) lines.push('Options:', flagLines(c.flags), '');
  if (c.problem) lines.push(INPUTS, COMMON);
  return `${lines.join('\n').replace(/\n+$/, '')}\n`;
}
