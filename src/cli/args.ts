/** A small, strict command-line parser: `--name value`, `--name=value`, `--flag`, positionals. */
export interface Parsed {
  command?: string;
  positionals: string[];
  options: Map<string, string | true>;
}

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export function parseArgs(argv: string[], flags: ReadonlySet<string>, known: ReadonlySet<string>): Parsed {
  const options = new Map<string, string | true>();
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq >= 0 ? a.slice(2, eq) : a.slice(2);
      if (!known.has(name) && !flags.has(name)) throw new UsageError(`unknown option --${name}`);
      if (flags.has(name)) {
        if (eq >= 0) throw new UsageError(`--${name} takes no value`);
        options.set(name, true);
      } else if (eq >= 0) options.set(name, a.slice(eq + 1));
      else {
        const v = argv[i + 1];
        if (v === undefined || (v.startsWith('--') && v.length > 2)) throw new UsageError(`--${name} needs a value`);
        options.set(name, v);
        i++;
      }
    } else if (a === '-h') options.set('help', true);
    else positionals.push(a);
  }
  return { command: positionals.shift(), positionals, options };
}

export function intOption(p: Parsed, name: string, min = 1): number | undefined {
  const v = p.options.get(name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v === true || !Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be an integer >= ${min} (got ${String(v)})`);
  return n;
}

export function numOption(p: Parsed, name: string): number | undefined {
  const v = p.options.get(name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v === true || !Number.isFinite(n) || n <= 0) throw new UsageError(`--${name} must be a positive number (got ${String(v)})`);
  return n;
}

export function choice<T extends string>(p: Parsed, name: string, values: readonly T[]): T | undefined {
  const v = p.options.get(name);
  if (v === undefined) return undefined;
  if (v === true || !(values as readonly string[]).includes(v)) throw new UsageError(`--${name} must be one of ${values.join(', ')} (got ${String(v)})`);
  return v as T;
}

export function strOption(p: Parsed, name: string): string | undefined {
  const v = p.options.get(name);
  if (v === true) throw new UsageError(`--${name} needs a value`);
  return v;
}
