/**
 * Names for Export (no `vscode` here, so the unit tests can check them): the folder
 * `basin-export-<run>-<time>/` and file names that say what each file is.
 */

/** Lower-case words joined by '-', safe in a file name on every platform ("Top 5 · m.json" -> "top-5-m-json"). */
export function slug(s: string, max = 60): string {
  const out = s
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/λ/g, 'lambda')
    .replace(/η/g, 'eta')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return (out.slice(0, max).replace(/-+$/, '') || 'basin');
}

/** 'YYYYMMDD-HHMMSS' in local time. */
export function stamp(d: Date): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

/** The export folder: `basin-export-<run>-<time>` (the run shown, its module's name; 'panel' when none). */
export function exportFolderName(run: string | undefined, at: Date): string {
  const name = run ? slug(run.replace(/\.basin\.(ts|js)$/, ''), 40) : 'panel';
  return `basin-export-${name}-${stamp(at)}`;
}

/** Hands out file names, each once: a second 'x.png' becomes 'x-2.png'. */
export class FileNames {
  private readonly used = new Set<string>();

  take(base: string, ext: string): string {
    let name = `${base}.${ext}`;
    for (let i = 2; this.used.has(name); i++) name = `${base}-${i}.${ext}`;
    this.used.add(name);
    return name;
  }
}

/** A run's metrics as CSV: `<run>-metrics.csv`. */
export function runCsvBase(runTitle: string): string {
  return `${slug(runTitle.replace(/\.basin\.(ts|js)$/, ''))}-metrics`;
}

/** An analysis as CSV: its card title ("2-D loss surface · spiral/model.json" -> "2-d-loss-surface-spiral-model-json"). */
export function resultCsvBase(title: string): string {
  return slug(title, 80);
}
