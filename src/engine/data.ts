/**
 * Training data for a bare model.json: JSON `{"x": [[...]], "y": [[...]]}` (optional `xTest`,
 * `yTest`), CSV with a header (label columns chosen by name; the last column by default) or
 * without one (`noHeader`: label columns chosen by 0-based index), and `.npy` pairs
 * (`x.npy,y.npy`). Data is checked against the model and the loss before any work: shapes,
 * NaN/Infinity, labels the loss cannot take.
 *
 * Data files are untrusted: anything broken or hostile ends in a `BasinError` that names the file
 * (and the line, column or element) and says what is wrong. Only regular files are opened; sizes
 * (file bytes, declared shapes, values) are checked against `limits.ts` before anything is
 * allocated; JSON nesting is bounded; CSV cells must be plain decimal numbers.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BasinError, InputError } from './errors';
import {
  MAX_CSV_BYTES,
  MAX_CSV_LINE_BYTES,
  MAX_DATA_DIMS,
  MAX_DATA_JSON_BYTES,
  MAX_DATA_VALUES,
  MAX_NPY_HEADER_BYTES,
  MAX_NPZ_BYTES,
  refuseOver,
} from './limits';
import { readNpzMembers } from './npz';
import type { LossName, ModelIR } from './model/ir';

export interface Split {
  x: Float32Array;
  /** Including the batch dimension first. */
  xShape: number[];
  y: Float32Array;
  yShape: number[];
}

export interface Dataset {
  train: Split;
  test?: Split;
  source: string;
}

const TOO_MUCH_DATA = 'data is held in memory as float32: use a subset of the samples';

/** A value for an error message: short, and never a walk of a deep structure. */
function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === 'object') return 'an object';
  return String(v);
}

/** Text from a file (a CSV cell, a .npy header) for an error message, quoted and cut short. */
const showCell = (s: string, max = 40): string => `'${s.length > max ? `${s.slice(0, max)}…` : s}'`;

/** True when a finite double does not fit float32 (it would become ±Infinity). */
const overflowsFloat32 = (v: number): boolean => Number.isFinite(v) && !Number.isFinite(Math.fround(v));

/**
 * Stats a data file and refuses anything but a regular file, before it is opened (opening a FIFO
 * blocks; a device never ends).
 */
function statRegular(file: string): fs.Stats {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new InputError('data file not found', file);
    throw new InputError(`cannot read (${code ?? (e as Error).message})`, file);
  }
  if (st.isDirectory()) throw new InputError('is a folder, not a data file', file);
  if (!st.isFile()) {
    const kind = st.isFIFO() ? 'a FIFO (named pipe)' : st.isSocket() ? 'a socket' : st.isCharacterDevice() || st.isBlockDevice() ? 'a device' : 'not a plain file';
    throw new InputError(`is ${kind}, not a regular file: data is read only from regular files`, file);
  }
  return st;
}

/** Reads a whole regular file of at most `limit` bytes. */
function readRegular(file: string, limit: number, what: string, hint: string): Buffer {
  const st = statRegular(file);
  refuseOver(`the size of this ${what}`, st.size, limit, { file, unit: 'bytes', hint });
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw new InputError(`cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, file);
  }
}

const hasUtf8Bom = (buf: Buffer): boolean => buf.length >= 3 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf;

/** Refuses UTF-16 text (what some spreadsheets call "Unicode text"), which would read as garbage. */
function refuseUtf16(buf: Buffer, file: string): void {
  if (buf.length >= 2 && ((buf[0] === 0xff && buf[1] === 0xfe) || (buf[0] === 0xfe && buf[1] === 0xff))) {
    throw new InputError('is UTF-16 text; save it as UTF-8', file);
  }
}

/** A float32 array the size limits allowed; a failed allocation is a clear error too. */
function allocFloat32(n: number, file: string): Float32Array {
  try {
    return new Float32Array(n);
  } catch {
    throw new InputError(`not enough memory for ${n.toLocaleString('en-US')} float32 values`, file);
  }
}

// ---------------------------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------------------------

/**
 * Flattens a nested numeric array, returning values and shape. Rejects ragged arrays, empty
 * arrays, leaves that are not numbers or do not fit float32, and nesting deeper than
 * `MAX_DATA_DIMS` (the walk's recursion is bounded by it). Checks everything before allocating.
 */
export function flattenNested(value: unknown, what: string, file: string): { values: Float32Array; shape: number[] } {
  if (!Array.isArray(value)) throw new InputError(`'${what}' must be an array, not ${describe(value)}`, file);
  const shape: number[] = [];
  let probe: unknown = value;
  while (Array.isArray(probe)) {
    const at = `${what}${'[0]'.repeat(shape.length)}`;
    if (shape.length === MAX_DATA_DIMS) throw new InputError(`'${what}' nests arrays more than ${MAX_DATA_DIMS} deep: data arrays have at most ${MAX_DATA_DIMS} dimensions`, file);
    if (probe.length === 0) throw new InputError(`'${at}' is an empty array${shape.length === 0 ? ': the data needs at least one sample' : ''}`, file);
    shape.push(probe.length);
    probe = probe[0];
  }
  const idx: number[] = [];
  const where = (depth: number): string => `${what}${idx.slice(0, depth).map((i) => `[${i}]`).join('')}`;
  let total = 0;
  const check = (v: unknown, depth: number): void => {
    if (depth === shape.length) {
      if (typeof v !== 'number') throw new InputError(`'${where(depth)}' is ${describe(v)}, not a number${Array.isArray(v) ? ' (ragged array)' : ''}`, file);
      if (!Number.isFinite(v)) throw new InputError(`'${where(depth)}' is ${v}, not a finite number`, file);
      if (overflowsFloat32(v)) throw new InputError(`'${where(depth)}' is ${v}, outside the float32 range (about ±3.4e38)`, file);
      total++;
      return;
    }
    if (!Array.isArray(v)) throw new InputError(`'${where(depth)}' is ${describe(v)}, but an array of ${shape[depth]} was expected (ragged array)`, file);
    if (v.length !== shape[depth]) throw new InputError(`'${where(depth)}' has length ${v.length} but ${shape[depth]} was expected (ragged array)`, file);
    for (let i = 0; i < v.length; i++) {
      idx[depth] = i;
      check(v[i], depth + 1);
    }
  };
  check(value, 0);
  refuseOver(`the number of values in '${what}'`, total, MAX_DATA_VALUES, { file, hint: TOO_MUCH_DATA });
  const values = allocFloat32(total, file);
  let k = 0;
  const fill = (v: unknown, depth: number): void => {
    if (depth === shape.length) values[k++] = v as number;
    else for (const e of v as unknown[]) fill(e, depth + 1);
  };
  fill(value, 0);
  return { values, shape };
}

/** " (line L, column C)" for a JSON.parse message that gives only "at position N". */
function jsonPosition(message: string, text: string): string {
  const m = /at position (\d+)/.exec(message);
  if (!m || /line \d+/.test(message)) return '';
  const pos = Math.min(Number(m[1]), text.length);
  let line = 1;
  let lineStart = 0;
  for (let i = text.indexOf('\n'); i >= 0 && i < pos; i = text.indexOf('\n', i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return ` (line ${line}, column ${pos - lineStart + 1})`;
}

function fromJson(file: string): Dataset {
  const buf = readRegular(file, MAX_DATA_JSON_BYTES, 'JSON data file', 'JSON is parsed in memory at 10 to 30 times its size: save large data sets as x.npy,y.npy');
  refuseUtf16(buf, file);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(buf);
  } catch {
    throw new InputError('cannot read data: the file is not UTF-8 text', file);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    if (e instanceof RangeError) throw new InputError(`cannot read data: the JSON nests too deep (${e.message}); data arrays have at most ${MAX_DATA_DIMS} dimensions`, file);
    const message = (e as Error).message;
    throw new InputError(`cannot read data: the JSON is malformed (${message}${jsonPosition(message, text)})`, file);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new InputError(`data JSON needs 'x' and 'y' arrays in an object {"x": [...], "y": [...]}; this file holds ${describe(parsed)}`, file);
  }
  const obj = parsed as Record<string, unknown>;
  const has = (k: string): boolean => Object.prototype.hasOwnProperty.call(obj, k);
  const keys = Object.keys(obj);
  if (!has('x') || !has('y')) {
    const found = keys.length ? `it has ${keys.slice(0, 10).map((k) => `'${k.slice(0, 40)}'`).join(', ')}${keys.length > 10 ? ', …' : ''}` : 'it is empty';
    throw new InputError(`data JSON needs 'x' and 'y' arrays (${found})`, file);
  }
  // Test data under another spelling would be silently ignored.
  const lookalike = keys.find((k) => k !== 'xTest' && k !== 'yTest' && /^(?:[xy][ _-]?test|test[ _-]?[xy])$/i.test(k));
  if (lookalike) throw new InputError(`key '${lookalike}' looks like test data, but test data is read only from 'xTest' and 'yTest'`, file);
  if (has('xTest') !== has('yTest')) throw new InputError(`'${has('xTest') ? 'xTest' : 'yTest'}' is given without '${has('xTest') ? 'yTest' : 'xTest'}': test data needs both`, file);
  const split = (xk: string, yk: string): Split => {
    const x = flattenNested(obj[xk], xk, file);
    const y = flattenNested(obj[yk], yk, file);
    if (x.shape[0] !== y.shape[0]) throw new InputError(`'${xk}' and '${yk}' disagree: ${x.shape[0]} inputs but ${y.shape[0]} labels`, file);
    return { x: x.values, xShape: x.shape, y: y.values, yShape: y.shape.length === 1 ? [y.shape[0], 1] : y.shape };
  };
  return { train: split('x', 'y'), test: has('xTest') ? split('xTest', 'yTest') : undefined, source: file };
}

// ---------------------------------------------------------------------------------------------
// CSV
// ---------------------------------------------------------------------------------------------

/** A plain decimal number: optional sign, digits with an optional fraction, optional exponent. */
const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/** Bytes of text decoded at a time (ends on a line break, so no character is split). */
const CSV_CHUNK_BYTES = 16 * 1024 * 1024;

/** Lines of a UTF-8 buffer (after a BOM), with 1-based line numbers, without their line breaks. */
function* textLines(buf: Buffer, file: string): Generator<[number, string]> {
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  let pos = hasUtf8Bom(buf) ? 3 : 0;
  let lineNo = 1;
  while (pos < buf.length) {
    let end = Math.min(buf.length, pos + CSV_CHUNK_BYTES);
    if (end < buf.length) {
      const nl = buf.lastIndexOf(10, end - 1);
      if (nl >= pos) end = nl + 1;
      else {
        const next = buf.indexOf(10, end);
        end = next < 0 ? buf.length : next + 1;
        refuseOver(`the length of line ${lineNo}`, end - pos, MAX_CSV_LINE_BYTES, { file, unit: 'bytes' });
      }
    }
    let text: string;
    try {
      text = decoder.decode(buf.subarray(pos, end));
    } catch {
      throw new InputError(`the file is not UTF-8 text (an invalid byte on line ${lineNo} or in the ${CSV_CHUNK_BYTES / 1024 / 1024} MB after it)`, file);
    }
    for (let i = 0; i < text.length; ) {
      const nl = text.indexOf('\n', i);
      const stop = nl < 0 ? text.length : nl;
      const line = text.charCodeAt(stop - 1) === 13 && stop > i ? text.slice(i, stop - 1) : text.slice(i, stop);
      yield [lineNo++, line];
      i = stop + 1;
    }
    pos = end;
  }
}

/** Blank: only spaces, tabs and carriage returns (the same test as `countDataLines`). */
function isBlank(line: string): boolean {
  for (let i = 0; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if (c !== 32 && c !== 9 && c !== 13) return false;
  }
  return true;
}

/** Lines that are not blank, counted on the bytes (to size the arrays before parsing). */
function countDataLines(buf: Buffer): number {
  let count = 0;
  for (let pos = hasUtf8Bom(buf) ? 3 : 0; pos < buf.length; ) {
    let nl = buf.indexOf(10, pos);
    if (nl < 0) nl = buf.length;
    for (let k = pos; k < nl; k++) {
      const b = buf[k];
      if (b !== 32 && b !== 9 && b !== 13) {
        count++;
        break;
      }
    }
    pos = nl + 1;
  }
  return count;
}

/** Splits one CSV line into trimmed cells; a quoted cell may hold commas and doubled quotes. */
function parseCsvLine(line: string, lineNo: number, file: string): string[] {
  const out: string[] = [];
  const n = line.length;
  let i = 0;
  for (;;) {
    let j = i;
    while (j < n && (line[j] === ' ' || line[j] === '\t')) j++;
    if (line[j] === '"') {
      let cell = '';
      let k = j + 1;
      for (;;) {
        const q = line.indexOf('"', k);
        if (q < 0) throw new InputError(`line ${lineNo}: a quoted cell is not closed (a cell cannot span lines)`, file);
        cell += line.slice(k, q);
        if (line[q + 1] === '"') {
          cell += '"';
          k = q + 2;
        } else {
          k = q + 1;
          break;
        }
      }
      while (k < n && (line[k] === ' ' || line[k] === '\t')) k++;
      if (k < n && line[k] !== ',') throw new InputError(`line ${lineNo}: text after the closing quote of cell ${out.length + 1}`, file);
      out.push(cell.trim());
      if (k >= n) return out;
      i = k + 1;
    } else {
      const c = line.indexOf(',', i);
      out.push(line.slice(i, c < 0 ? n : c).trim());
      if (c < 0) return out;
      i = c + 1;
    }
  }
}

function fromCsv(file: string, labels: string[] | undefined, noHeader: boolean): Dataset {
  const buf = readRegular(file, MAX_CSV_BYTES, 'CSV file', 'save large data sets as x.npy,y.npy');
  refuseUtf16(buf, file);
  const dataLines = countDataLines(buf);
  const lines = textLines(buf, file);
  // The first line that is not blank: the header, or the first row of a headerless file.
  // (Not a for-of loop: breaking out of one would close the generator.)
  let first: [number, string] | undefined;
  for (let l = lines.next(); !l.done; l = lines.next()) {
    if (!isBlank(l.value[1])) {
      first = l.value;
      break;
    }
  }
  if (!first) throw new InputError(noHeader ? 'the CSV file has no rows' : 'CSV needs a header line and at least one row', file);
  const [firstNo, firstLine] = first;
  const firstCells = parseCsvLine(firstLine, firstNo, file);
  const ncols = firstCells.length;
  const separator = ncols === 1 ? /[;\t|]/.exec(firstLine)?.[0] : undefined;
  const separatorHint = separator ? ` (is it separated by '${separator === '\t' ? '\\t' : separator}'? Basin reads comma-separated values)` : '';

  let header: string[] | undefined;
  if (!noHeader) {
    header = firstCells;
    if (header.every((c) => DECIMAL.test(c))) {
      throw new InputError(
        `the first row (line ${firstNo}: ${showCell(firstLine)}) looks like data, not a header: name the columns in a header row, or mark the file as headerless (noHeader), and every row is read as data`,
        file,
      );
    }
    const seen = new Map<string, number>();
    header.forEach((name, i) => {
      if (name === '') throw new InputError(`the header's column ${i + 1} of ${ncols} has no name${i === 0 ? ' (a pandas index column? save with index=False)' : ''}`, file);
      const prev = seen.get(name);
      if (prev !== undefined) throw new InputError(`the header names column ${showCell(name)} twice (columns ${prev + 1} and ${i + 1} of ${ncols})`, file);
      seen.set(name, i);
    });
    if (dataLines < 2) throw new InputError('CSV needs a header line and at least one row', file);
  }
  const colName = (c: number): string => (header ? `column ${showCell(header[c])}` : `column ${c} (counting from 0)`);

  let labelCols: number[];
  if (labels && labels.length) {
    labelCols = labels.map((name) => {
      let i: number;
      if (header) {
        i = header.indexOf(name);
        if (i < 0) {
          const names = header.slice(0, 20).map((h) => (h.length > 40 ? `${h.slice(0, 40)}…` : h));
          const list = header.length > 20 ? `${names.join(', ')}, … ${header.length - 20} more` : names.join(', ');
          throw new InputError(`label column '${name}' is not in the header (${list})`, file);
        }
      } else {
        i = /^\d{1,9}$/.test(name) ? Number(name) : -1;
        if (i < 0 || i >= ncols) {
          throw new InputError(`label column '${name}' is not a column index 0..${ncols - 1}: the file has no header, so label columns are chosen by number, counting from 0`, file);
        }
      }
      return i;
    });
    const twice = labelCols.find((c, k) => labelCols.indexOf(c) !== k);
    if (twice !== undefined) throw new InputError(`label ${colName(twice)} is chosen twice`, file);
  } else labelCols = [ncols - 1];
  const featureCols = firstCells.map((_, i) => i).filter((i) => !labelCols.includes(i));
  if (featureCols.length === 0) {
    throw new InputError(
      ncols === 1
        ? `the file has a single column, which is taken as the labels: the inputs need at least one more column${separatorHint}`
        : `every column is a label column: the inputs need at least one column`,
      file,
    );
  }

  const n = noHeader ? dataLines : dataLines - 1;
  refuseOver('the number of values in the file', n * ncols, MAX_DATA_VALUES, { file, hint: TOO_MUCH_DATA });
  const x = allocFloat32(n * featureCols.length, file);
  const y = allocFloat32(n * labelCols.length, file);
  // Where each column goes: into x (features) or y (labels), at which position in the row.
  const nf = featureCols.length;
  const nl = labelCols.length;
  const toY = new Array<boolean>(ncols).fill(false);
  const pos = new Array<number>(ncols);
  featureCols.forEach((c, j) => (pos[c] = j));
  labelCols.forEach((c, j) => {
    toY[c] = true;
    pos[c] = j;
  });
  const cellError = (lineNo: number, c: number, s: string): InputError => {
    if (s === '') return new InputError(`line ${lineNo}, ${colName(c)} is empty`, file);
    if (DECIMAL.test(s)) return new InputError(`line ${lineNo}, ${colName(c)}: ${showCell(s)} is outside the float32 range (about ±3.4e38)`, file);
    const headerHint = !header && lineNo === firstNo ? '; the first row looks like a header, so do not mark the file as headerless' : '';
    return new InputError(`line ${lineNo}, ${colName(c)}: ${showCell(s)} is not a number (data cells hold plain decimals such as -1.5 or 2e-3)${headerHint}`, file);
  };
  let r = 0;
  const readRow = (lineNo: number, cells: string[]): void => {
    if (cells.length !== ncols) throw new InputError(`line ${lineNo} has ${cells.length} fields, ${header ? 'the header has' : `line ${firstNo} has`} ${ncols}`, file);
    for (let c = 0; c < ncols; c++) {
      const s = cells[c];
      const v = DECIMAL.test(s) ? Number(s) : NaN;
      if (!Number.isFinite(Math.fround(v))) throw cellError(lineNo, c, s);
      if (toY[c]) y[r * nl + pos[c]] = v;
      else x[r * nf + pos[c]] = v;
    }
    r++;
  };
  if (noHeader) readRow(firstNo, firstCells);
  for (const [lineNo, line] of lines) if (!isBlank(line)) readRow(lineNo, parseCsvLine(line, lineNo, file));
  if (r !== n) throw new InputError(`the file changed while it was read (${n} rows counted, ${r} read)`, file);
  return { train: { x, xShape: [n, nf], y, yShape: [n, nl] }, source: file };
}

// ---------------------------------------------------------------------------------------------
// .npy
// ---------------------------------------------------------------------------------------------

interface NpyHeader {
  file: string;
  shape: number[];
  /** Values the shape declares. */
  count: number;
  descr: string;
  itemSize: number;
  read: (dv: DataView, offset: number) => number;
  fortran: boolean;
  dataOffset: number;
  /** The bytes of an .npz member (else the data is read from `file`). */
  mem?: Buffer;
}

const shapeText = (shape: number[]): string => `(${shape.join(', ')}${shape.length === 1 ? ',' : ''})`;

/** Element readers by dtype kind and size; `le` is the byte order. */
function npyReader(kind: string, size: number, le: boolean): ((dv: DataView, o: number) => number) | undefined {
  const table: Record<string, (dv: DataView, o: number) => number> = {
    f4: (dv, o) => dv.getFloat32(o, le),
    f8: (dv, o) => dv.getFloat64(o, le),
    i1: (dv, o) => dv.getInt8(o),
    i2: (dv, o) => dv.getInt16(o, le),
    i4: (dv, o) => dv.getInt32(o, le),
    // 64-bit integers as two halves: exact below 2^53, correctly rounded to a double above.
    i8: (dv, o) => dv.getInt32(o + (le ? 4 : 0), le) * 4294967296 + dv.getUint32(o + (le ? 0 : 4), le),
    u1: (dv, o) => dv.getUint8(o),
    u2: (dv, o) => dv.getUint16(o, le),
    u4: (dv, o) => dv.getUint32(o, le),
    u8: (dv, o) => dv.getUint32(o + (le ? 4 : 0), le) * 4294967296 + dv.getUint32(o + (le ? 0 : 4), le),
    b1: (dv, o) => (dv.getUint8(o) !== 0 ? 1 : 0),
  };
  return table[`${kind}${size}`];
}

/** Reads exactly `length` bytes at `position` (fewer only when the file ends). */
function readAt(fd: number, target: Buffer, length: number, position: number): number {
  let got = 0;
  while (got < length) {
    const k = fs.readSync(fd, target, got, length - got, position + got);
    if (k === 0) break;
    got += k;
  }
  return got;
}

function withFd<T>(file: string, body: (fd: number) => T): T {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    throw new InputError(`cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, file);
  }
  try {
    return body(fd);
  } catch (e) {
    if (e instanceof BasinError) throw e;
    throw new InputError(`cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, file);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Runs `body` with a reader of the .npy bytes: the file (opened once), or `mem` (an .npz member
 * already inflated), returning at most `length` bytes at `position` (fewer only at the end).
 */
function withSource<T>(file: string, mem: Buffer | undefined, body: (read: (target: Buffer, length: number, position: number) => number) => T): T {
  if (mem) return body((target, length, position) => mem.copy(target, 0, Math.min(position, mem.length), Math.min(position + length, mem.length)));
  return withFd(file, (fd) => body((target, length, position) => readAt(fd, target, length, position)));
}

/** Reads and checks a .npy header: format version, dtype, order, shape, and the data's length. */
function readNpyHeader(file: string, mem?: Buffer): NpyHeader {
  const size = mem ? mem.length : statRegular(file).size;
  return withSource(file, mem, (readFrom) => {
    const pre = Buffer.alloc(12);
    const got = readFrom(pre, 12, 0);
    if (got < 10 || pre.toString('latin1', 0, 6) !== '\x93NUMPY') throw new InputError('not a .npy file (bad magic)', file);
    const [major, minor] = [pre[6], pre[7]];
    if (major < 1 || major > 3) throw new InputError(`.npy format version ${major}.${minor} is not supported (versions 1.0 to 3.0 are)`, file);
    const start = major === 1 ? 10 : 12;
    if (got < start) throw new InputError('truncated: the file ends inside the .npy header', file);
    const headerLen = major === 1 ? pre.readUInt16LE(8) : pre.readUInt32LE(8);
    refuseOver('the .npy header length', headerLen, MAX_NPY_HEADER_BYTES, { file, unit: 'bytes', hint: 'numpy writes a few dozen bytes: the file is damaged' });
    if (start + headerLen > size) throw new InputError(`truncated: the .npy header is ${headerLen} bytes but the file ends after ${size - start}`, file);
    const hb = Buffer.alloc(headerLen);
    readFrom(hb, headerLen, start);
    const header = hb.toString(major === 3 ? 'utf8' : 'latin1').trim();
    const malformed = (what: string): InputError => new InputError(`malformed .npy header: ${what} (the header is ${showCell(header, 200)})`, file);
    if (!header.startsWith('{') || !header.endsWith('}')) throw malformed('not a {...} dictionary');
    const descr = /['"]descr['"]\s*:\s*['"]([^'"]*)['"]/.exec(header)?.[1];
    if (descr === undefined) {
      if (/['"]descr['"]\s*:\s*\[/.test(header)) throw new InputError('structured (record) arrays are not supported: save each field as a plain numeric array', file);
      throw malformed("no 'descr' (dtype)");
    }
    const order = /['"]fortran_order['"]\s*:\s*(True|False)\b/.exec(header)?.[1];
    if (order === undefined) throw malformed("no 'fortran_order' True or False");
    const dims = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
    if (dims === undefined) throw malformed("no 'shape' tuple");
    const dimTexts = dims.trim() === '' ? [] : dims.trim().replace(/,$/, '').split(',').map((s) => s.trim());
    if (dimTexts.length > MAX_DATA_DIMS) throw new InputError(`the shape has ${dimTexts.length} dimensions; data arrays have at most ${MAX_DATA_DIMS}`, file);
    const shape = dimTexts.map((s) => {
      if (/^-\d+L?$/.test(s)) throw new InputError(`the shape (${dims.trim()}) has a negative dimension ${s}`, file);
      const m = /^(\d{1,16})L?$/.exec(s);
      const d = m ? Number(m[1]) : NaN;
      if (!Number.isSafeInteger(d)) throw new InputError(`the shape (${dims.trim()}) has a dimension '${s.slice(0, 40)}' that is not a non-negative integer`, file);
      return d;
    });
    // As a double: exact up to the limit, and at worst Infinity (refused) above it.
    const count = shape.includes(0) ? 0 : shape.reduce((a, b) => a * b, 1);
    refuseOver(`the number of values in shape ${shapeText(shape)}`, count, MAX_DATA_VALUES, { file, hint: TOO_MUCH_DATA });
    const m = /^([<>|=])([fiub])(\d+)$/.exec(descr);
    const order8 = m?.[1];
    const itemSize = m ? Number(m[3]) : 0;
    const le = order8 === '=' ? os.endianness() === 'LE' : order8 !== '>';
    const read = m && (order8 !== '|' || itemSize === 1) ? npyReader(m[2], itemSize, le) : undefined;
    if (!read) throw new InputError(`dtype '${descr}' is not supported (float32, float64, int8 to int64, uint8 to uint64 and bool are, in either byte order)`, file);
    const dataOffset = start + headerLen;
    const need = count * itemSize;
    const have = size - dataOffset;
    if (have < need) throw new InputError(`truncated: ${have} bytes of data, but shape ${shapeText(shape)} of '${descr}' needs ${need}`, file);
    if (have > need) throw new InputError(`${have} bytes of data, but shape ${shapeText(shape)} of '${descr}' needs ${need}: the file is damaged or holds more than one array`, file);
    return { file, shape, count, descr, itemSize, read, fortran: order === 'True', dataOffset, mem };
  });
}

/** Index of the k-th C-order element as "[i, j, ...]". */
function multiIndex(k: number, shape: number[]): string {
  const out: number[] = [];
  for (let d = shape.length - 1; d >= 0; d--) {
    out.unshift(k % shape[d]);
    k = Math.floor(k / shape[d]);
  }
  return `[${out.join(', ')}]`;
}

/**
 * Where each element of a Fortran-ordered (column-major) array goes in C order: an odometer over
 * the indices, first dimension fastest.
 */
function fortranPlacer(shape: number[]): () => number {
  const d = shape.length;
  const stride = new Array<number>(d);
  for (let j = d - 1, s = 1; j >= 0; j--) {
    stride[j] = s;
    s *= shape[j];
  }
  const idx = new Array<number>(d).fill(0);
  let off = 0;
  return () => {
    const cur = off;
    for (let j = 0; j < d; j++) {
      idx[j]++;
      off += stride[j];
      if (idx[j] < shape[j]) break;
      off -= shape[j] * stride[j];
      idx[j] = 0;
    }
    return cur;
  };
}

/** Reads the data a checked header describes into float32, a chunk at a time, in C order. */
function readNpyData(h: NpyHeader): Float32Array {
  const values = allocFloat32(h.count, h.file);
  const place = h.fortran && h.shape.length > 1 ? fortranPlacer(h.shape) : undefined;
  const perChunk = Math.max(1, Math.floor((8 * 1024 * 1024) / h.itemSize));
  const chunk = Buffer.alloc(Math.min(h.count, perChunk) * h.itemSize);
  const dv = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  withSource(h.file, h.mem, (readFrom) => {
    for (let k0 = 0; k0 < h.count; k0 += perChunk) {
      const m = Math.min(perChunk, h.count - k0);
      if (readFrom(chunk, m * h.itemSize, h.dataOffset + k0 * h.itemSize) < m * h.itemSize) throw new InputError('truncated while it was read (the file changed)', h.file);
      for (let i = 0; i < m; i++) {
        const v = h.read(dv, i * h.itemSize);
        const at = place ? place() : k0 + i;
        values[at] = v;
        if (overflowsFloat32(v)) throw new InputError(`element ${multiIndex(at, h.shape)} is ${v}, outside the float32 range (about ±3.4e38)`, h.file);
      }
    }
  });
  return values;
}

/**
 * .npy reader: format 1.0 to 3.0; float32/64, int8..64, uint8..64 and bool in either byte order;
 * C or Fortran order (returned in C order). Checks the header, the declared size and the data's
 * length before allocating.
 */
export function readNpy(file: string): { values: Float32Array; shape: number[] } {
  const h = readNpyHeader(file);
  return { values: readNpyData(h), shape: h.shape };
}

function fromNpy(files: string[]): Dataset {
  const [xFile] = files;
  let yFile = files[1];
  if (files.length > 2) throw new InputError(`give two .npy files, inputs and labels (x.npy,y.npy), not ${files.length}`, xFile);
  if (!yFile) {
    const base = path.basename(xFile);
    const guess = path.join(path.dirname(xFile), base.replace(/^x/, 'y').replace(/^X/, 'Y'));
    if (guess === xFile || !fs.existsSync(guess)) throw new InputError('give the labels too: name both files (data: x.npy,y.npy)', xFile);
    yFile = guess;
  }
  const hx = readNpyHeader(xFile);
  const hy = readNpyHeader(yFile);
  for (const h of [hx, hy]) {
    if (h.shape.length === 0) throw new InputError('holds a single number (shape ()), not an array of samples', h.file);
    if (h.shape[0] === 0) throw new InputError(`holds no samples (shape ${shapeText(h.shape)})`, h.file);
    if (h.count === 0) throw new InputError(`holds no values (shape ${shapeText(h.shape)})`, h.file);
  }
  if (hx.shape[0] !== hy.shape[0]) {
    throw new InputError(`${hx.shape[0]} inputs but ${hy.shape[0]} labels: the first dimension counts samples (shape ${shapeText(hx.shape)} here, ${shapeText(hy.shape)} in ${yFile})`, xFile);
  }
  refuseOver('the number of values in x and y together', hx.count + hy.count, MAX_DATA_VALUES, { file: xFile, hint: TOO_MUCH_DATA });
  const x = readNpyData(hx);
  const y = readNpyData(hy);
  return { train: { x, xShape: hx.shape, y, yShape: hy.shape.length === 1 ? [hy.shape[0], 1] : hy.shape }, source: `${xFile},${yFile}` };
}

/** Checks an x/y pair of headers: samples first, the same number of them, values within the limit. */
function checkPair(hx: NpyHeader, hy: NpyHeader, xFile: string, yWhere: string): void {
  for (const h of [hx, hy]) {
    if (h.shape.length === 0) throw new InputError('holds a single number (shape ()), not an array of samples', h.file);
    if (h.shape[0] === 0) throw new InputError(`holds no samples (shape ${shapeText(h.shape)})`, h.file);
    if (h.count === 0) throw new InputError(`holds no values (shape ${shapeText(h.shape)})`, h.file);
  }
  if (hx.shape[0] !== hy.shape[0]) {
    throw new InputError(`${hx.shape[0]} inputs but ${hy.shape[0]} labels: the first dimension counts samples (shape ${shapeText(hx.shape)} here, ${shapeText(hy.shape)} in ${yWhere})`, xFile);
  }
  refuseOver('the number of values in x and y together', hx.count + hy.count, MAX_DATA_VALUES, { file: xFile, hint: TOO_MUCH_DATA });
}

/**
 * numpy's .npz archive (savez or savez_compressed): inputs and labels are the arrays `x` and `y`,
 * or those named by `xKey`/`yKey`. Image inputs stay as stored (NCHW for PyTorch); the problem
 * transposes them for a model imported from ONNX (`nchwToNhwc`).
 */
function fromNpz(file: string, xKey = 'x', yKey = 'y'): Dataset {
  const buf = readRegular(file, MAX_NPZ_BYTES, '.npz archive', 'save a subset of the samples');
  const hint = 'choose the arrays with xKey and yKey';
  const arrays = readNpzMembers(buf, [xKey, yKey], file, hint);
  const member = (k: string): string => `${file} array '${k}'`;
  const hx = readNpyHeader(member(xKey), arrays.get(xKey));
  const hy = readNpyHeader(member(yKey), arrays.get(yKey));
  checkPair(hx, hy, member(xKey), `'${yKey}'`);
  const train: Split = { x: readNpyData(hx), xShape: hx.shape, y: readNpyData(hy), yShape: hy.shape.length === 1 ? [hy.shape[0], 1] : hy.shape };
  return { train, source: file };
}

/**
 * An NCHW image split ([n, C, H, W], PyTorch's layout) as NHWC ([n, H, W, C], Basin's), when
 * `chw` ([C, H, W]) is its per-sample shape; any other split is returned unchanged.
 */
export function nchwToNhwc(split: Split, chw: number[]): Split {
  if (split.xShape.length !== 4 || split.xShape.slice(1).join(',') !== chw.join(',')) return split;
  const [n, c, h, w] = split.xShape;
  const x = new Float32Array(split.x.length);
  for (let i = 0; i < n; i++) {
    const base = i * c * h * w;
    for (let ch = 0; ch < c; ch++) for (let r = 0; r < h; r++) for (let q = 0; q < w; q++) x[base + (r * w + q) * c + ch] = split.x[base + (ch * h + r) * w + q];
  }
  return { ...split, x, xShape: [n, h, w, c] };
}

// ---------------------------------------------------------------------------------------------

export interface DataOptions {
  /** CSV label columns: names from the header, or 0-based indices when `noHeader`. */
  labels?: string[];
  /** CSV: the first row is data, not a header (a numeric first row is refused without it). */
  noHeader?: boolean;
  /** .npz: the names of the input and label arrays (default `x` and `y`). */
  xKey?: string;
  yKey?: string;
}

/**
 * Loads a data file: `.json`, `.csv`, or `.npy` given as `x.npy,y.npy` (or `x.npy` with `y.npy`
 * beside it). A path that exists as given is one file even when it holds a comma.
 */
export function loadDataFile(spec: string, opts: DataOptions = {}): Dataset {
  const files = fs.existsSync(spec) ? [spec] : spec.split(',');
  const first = files[0];
  statRegular(first);
  const ext = path.extname(first).toLowerCase();
  if (ext !== '.json' && ext !== '.csv' && ext !== '.npy' && ext !== '.npz') {
    throw new InputError(`unknown data format '${ext}' (use .json, .csv, .npy or .npz)`, first);
  }
  if ((opts.xKey !== undefined || opts.yKey !== undefined) && ext !== '.npz') {
    throw new InputError('arrays are chosen by name (x and y keys) only in .npz data', first);
  }
  if (ext === '.npz') {
    if (files.length > 1) throw new InputError('an .npz archive holds inputs and labels both: give one file', first);
    if (opts.labels?.length) throw new InputError('label columns are chosen only in CSV data: .npz labels are an array (y, or the y key)', first);
    if (opts.noHeader) throw new InputError('only CSV data has a header row to leave out: this is an .npz archive', first);
    return fromNpz(first, opts.xKey, opts.yKey);
  }
  if (ext === '.npy') {
    if (opts.labels?.length) throw new InputError('label columns are chosen only in CSV data: .npy labels are the second file (x.npy,y.npy)', first);
    if (opts.noHeader) throw new InputError('only CSV data has a header row to leave out: this is a .npy file', first);
    return fromNpy(files);
  }
  if (files.length > 1) throw new InputError(`a ${ext} file holds inputs and labels both: only .npy data comes as a pair of files`, first);
  if (ext === '.json') {
    if (opts.labels?.length) throw new InputError("label columns are chosen only in CSV data: JSON data gives the labels as 'y'", first);
    if (opts.noHeader) throw new InputError('only CSV data has a header row to leave out: this is a JSON file', first);
    return fromJson(first);
  }
  return fromCsv(first, opts.labels, opts.noHeader === true);
}

/** Builds a split from in-memory arrays (experiment modules). */
export function splitFromArrays(x: { values: Float32Array; shape: number[] }, y: { values: Float32Array; shape: number[] }): Split {
  return { x: x.values, xShape: x.shape, y: y.values, yShape: y.shape.length === 1 ? [y.shape[0], 1] : y.shape };
}

/**
 * Checks data against the model and loss. Categorical labels given as one class index per row
 * are one-hot encoded when the model has several outputs.
 */
export function validateSplit(split: Split, ir: ModelIR, loss: LossName | 'custom', source: string, which = 'training'): Split {
  const inShape = ir.nodes[ir.input].outShape;
  const outShape = ir.nodes[ir.output].outShape;
  const n = split.xShape[0];
  if (n === 0) throw new InputError(`${which} data has no samples`, source);
  const xs = split.xShape.slice(1);
  const flatIn = inShape.reduce((a, b) => a * b, 1);
  if (xs.join(',') !== inShape.join(',')) {
    if (xs.reduce((a, b) => a * b, 1) === flatIn) split = { ...split, xShape: [n, ...inShape] };
    else throw new InputError(`${which} inputs have shape [${xs.join(', ')}] per sample but the model takes [${inShape.join(', ')}]`, source);
  }
  if (split.yShape[0] !== n) throw new InputError(`${which} data has ${n} inputs but ${split.yShape[0]} labels`, source);
  const outSize = outShape.reduce((a, b) => a * b, 1);
  let ys = split.yShape.slice(1);
  const categorical = loss === 'categoricalCrossentropy' || loss === 'crossEntropyFromLogits';
  if (ys.reduce((a, b) => a * b, 1) === 1 && outSize > 1 && categorical) {
    const y = new Float32Array(n * outSize);
    for (let i = 0; i < n; i++) {
      const c = split.y[i];
      if (!Number.isInteger(c) || c < 0 || c >= outSize) {
        throw new InputError(`label ${i} is ${c}: class indices must be integers in 0..${outSize - 1} for ${outSize} outputs`, source);
      }
      y[i * outSize + c] = 1;
    }
    split = { ...split, y, yShape: [n, ...outShape] };
    ys = outShape;
  }
  if (ys.reduce((a, b) => a * b, 1) !== outSize) {
    throw new InputError(`${which} labels have shape [${ys.join(', ')}] per sample but the model outputs [${outShape.join(', ')}]`, source);
  }
  split = { ...split, yShape: [n, ...outShape] };
  const bad = (arr: Float32Array): number => arr.findIndex((v) => !Number.isFinite(v));
  const bx = bad(split.x);
  if (bx >= 0) throw new InputError(`${which} inputs contain ${split.x[bx]} (sample ${Math.floor(bx / flatIn)})`, source);
  const by = bad(split.y);
  if (by >= 0) throw new InputError(`${which} labels contain ${split.y[by]} (sample ${Math.floor(by / outSize)})`, source);
  if (categorical || loss === 'binaryCrossentropy') {
    const i = split.y.findIndex((v) => v < 0 || v > 1);
    if (i >= 0) throw new InputError(`label value ${split.y[i]} (sample ${Math.floor(i / outSize)}) is outside [0, 1], which ${loss} needs`, source);
  }
  if (categorical && outSize > 1) {
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < outSize; j++) s += split.y[i * outSize + j];
      if (Math.abs(s - 1) > 1e-3) throw new InputError(`labels of sample ${i} sum to ${s}, not 1 (${loss} needs class indices, one-hot or probability rows)`, source);
    }
  }
  return split;
}
