// Data files are untrusted: every broken or hostile .json, .csv and .npy file ends in a BasinError
// that names the file and says exactly what is wrong (line and column, element, key), never an
// internal error, a hang or an out-of-memory abort; and what loads is read exactly (BOMs,
// headerless CSV, every .npy dtype in either byte order, Fortran order). Every file is written
// to a fresh temporary folder; a few cases also run through the built CLI (dist/cli.js).
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BasinError } from '../../src/engine/errors';
import { loadDataFile, readNpy, type DataOptions } from '../../src/engine/data';
import { MAX_DATA_DIMS, MAX_DATA_JSON_BYTES } from '../../src/engine/limits';

// The bundle runs from .test-dist/unit/.
const CLI = path.join(__dirname, '../../dist/cli.js');
const MODEL = path.join(__dirname, '../../examples/spiral/model.json');

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'basin-datafiles-'));
}

/** Writes `content` to a new file `name` in a fresh folder and returns its path. */
function write(name: string, content: string | Buffer): string {
  const file = path.join(tmpDir(), name);
  fs.writeFileSync(file, content);
  return file;
}

/** The BasinError `action` throws; its message must be exactly `<file>: <message>`. */
function expectError(action: () => unknown, file: string, message: string): void {
  let caught: unknown;
  try {
    action();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught !== undefined, `expected '${message}', but nothing was thrown`);
  assert.ok(caught instanceof BasinError, `expected a BasinError, got ${caught instanceof Error ? `${caught.name}: ${caught.message}` : String(caught)}`);
  assert.equal(caught.message, `${file}: ${message}`);
}

/** Loads `content` written as `name` and expects the error `message`. */
function expectFileError(name: string, content: string | Buffer, message: string, opts?: DataOptions): void {
  const file = write(name, content);
  expectError(() => loadDataFile(file, opts), file, message);
}

/** `[[[...[inner]...]]]`, `depth` brackets deep, built without recursion. */
const nest = (depth: number, inner = '1'): string => `${'['.repeat(depth)}${inner}${']'.repeat(depth)}`;

// ---------------------------------------------------------------------------------------------
// .npy files, built byte by byte
// ---------------------------------------------------------------------------------------------

/** Encodes numbers as a numpy dtype ('<f8', '>i8', '|b1', ...). */
function encode(descr: string, values: number[]): Buffer {
  const le = descr[0] !== '>';
  const kind = descr.slice(1);
  const size = Number(kind.slice(1));
  const buf = Buffer.alloc(values.length * size);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  values.forEach((v, i) => {
    const o = i * size;
    switch (kind) {
      case 'f4': return dv.setFloat32(o, v, le);
      case 'f8': return dv.setFloat64(o, v, le);
      case 'i1': return dv.setInt8(o, v);
      case 'i2': return dv.setInt16(o, v, le);
      case 'i4': return dv.setInt32(o, v, le);
      case 'i8': return dv.setBigInt64(o, BigInt(v), le);
      case 'u1':
      case 'b1': return dv.setUint8(o, v);
      case 'u2': return dv.setUint16(o, v, le);
      case 'u4': return dv.setUint32(o, v, le);
      case 'u8': return dv.setBigUint64(o, BigInt(v), le);
      default: throw new Error(`no encoder for ${descr}`);
    }
  });
  return buf;
}

interface NpyOpts {
  descr: string;
  /** A shape, or the header's shape text as written ('(-1, 2)'). */
  shape: number[] | string;
  data: Buffer;
  fortran?: boolean;
  version?: 1 | 2 | 3;
  /** The whole header dictionary, instead of one built from the above. */
  header?: string;
}

/** A .npy file as numpy writes it: magic, version, header length, header padded to 64, data. */
function npyBytes(o: NpyOpts): Buffer {
  const version = o.version ?? 1;
  const shape = typeof o.shape === 'string' ? o.shape : o.shape.length === 1 ? `(${o.shape[0]},)` : `(${o.shape.join(', ')})`;
  let header = o.header ?? `{'descr': '${o.descr}', 'fortran_order': ${o.fortran ? 'True' : 'False'}, 'shape': ${shape}, }`;
  const pre = version === 1 ? 10 : 12;
  header += `${' '.repeat((64 - ((pre + header.length + 1) % 64)) % 64)}\n`;
  const head = Buffer.alloc(pre);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = version;
  head[7] = 0;
  if (version === 1) head.writeUInt16LE(header.length, 8);
  else head.writeUInt32LE(header.length, 8);
  return Buffer.concat([head, Buffer.from(header, version === 3 ? 'utf8' : 'latin1'), o.data]);
}

const npy = (descr: string, shape: number[], values: number[], fortran = false): Buffer => npyBytes({ descr, shape, data: encode(descr, values), fortran });

before(() => {
  assert.ok(fs.existsSync(CLI), `${CLI} is missing: build it with 'node esbuild.js' first`);
});

// ---------------------------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------------------------

test('JSON: nesting 100,000 deep is refused, not a stack overflow', () => {
  expectFileError('deep.json', `{"x": ${nest(100_000)}, "y": [1]}`, `'x' nests arrays more than ${MAX_DATA_DIMS} deep: data arrays have at most ${MAX_DATA_DIMS} dimensions`);
  // Deep nesting where a number should be: described, not printed.
  expectFileError('deep.json', `{"x": [[1, ${nest(100_000)}]], "y": [1]}`, "'x[0][1]' is an array, not a number (ragged array)");
  // Deep nesting in an object the loader does not read is harmless.
  const file = write('meta.json', `{"x": [[1, 2]], "y": [0], "meta": ${nest(100_000, '{}')}}`);
  assert.deepEqual(loadDataFile(file).train.x, Float32Array.from([1, 2]));
  // The limit itself: 32 dimensions load, 33 do not.
  const ok = loadDataFile(write('d32.json', `{"x": [${nest(MAX_DATA_DIMS - 1, '2.5')}], "y": [1]}`));
  assert.deepEqual(ok.train.xShape, new Array<number>(MAX_DATA_DIMS).fill(1));
  assert.deepEqual(ok.train.x, Float32Array.from([2.5]));
  expectFileError('d33.json', `{"x": [${nest(MAX_DATA_DIMS, '2.5')}], "y": [1]}`, `'x' nests arrays more than ${MAX_DATA_DIMS} deep: data arrays have at most ${MAX_DATA_DIMS} dimensions`);
});

test('JSON: a UTF-8 BOM is accepted', () => {
  const file = write('bom.json', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"x": [[0.5, -1.25], [3, 4e-1]], "y": [2, 0], "xTest": [[7, 8]], "yTest": [[1]]}')]));
  const ds = loadDataFile(file);
  assert.deepEqual(ds.train.x, Float32Array.from([0.5, -1.25, 3, 0.4]));
  assert.deepEqual(ds.train.xShape, [2, 2]);
  assert.deepEqual(ds.train.y, Float32Array.from([2, 0]));
  assert.deepEqual(ds.train.yShape, [2, 1]);
  assert.deepEqual(ds.test, { x: Float32Array.from([7, 8]), xShape: [1, 2], y: Float32Array.from([1]), yShape: [1, 1] });
});

test('JSON: malformed text, not UTF-8, UTF-16, not an object', () => {
  const file = write('bad.json', '{"x": [[1, 2],\n [3 4]], "y": [0, 1]}');
  let message = '';
  try {
    loadDataFile(file);
  } catch (e) {
    message = (e as Error).message;
  }
  assert.ok(message.startsWith(`${file}: cannot read data: the JSON is malformed (`), message);
  // The position as line and column (V8's own wording, or ours).
  assert.match(message, /line 2,? column 5\)+$/);
  expectFileError('bin.json', Buffer.from([0x7b, 0xff, 0xfe, 0x00, 0x7d]), 'cannot read data: the file is not UTF-8 text');
  expectFileError('u16.json', Buffer.from('\ufeff{"x": [[1]], "y": [1]}', 'utf16le'), 'is UTF-16 text; save it as UTF-8');
  expectFileError('arr.json', '[[1, 2], [3, 4]]', 'data JSON needs \'x\' and \'y\' arrays in an object {"x": [...], "y": [...]}; this file holds an array');
  expectFileError('null.json', 'null', 'data JSON needs \'x\' and \'y\' arrays in an object {"x": [...], "y": [...]}; this file holds null');
  expectFileError('caps.json', '{"X": [[1]], "Y": [1]}', "data JSON needs 'x' and 'y' arrays (it has 'X', 'Y')");
  expectFileError('empty.json', '{}', "data JSON needs 'x' and 'y' arrays (it is empty)");
});

test('JSON: x and y must be non-empty, regular arrays of float32 numbers that agree', () => {
  const cases: [string, string][] = [
    ['{"x": 5, "y": [1]}', "'x' must be an array, not 5"],
    ['{"x": [[1, 2]], "y": {"a": 1}}', "'y' must be an array, not an object"],
    ['{"x": [], "y": []}', "'x' is an empty array: the data needs at least one sample"],
    ['{"x": [[]], "y": [1]}', "'x[0]' is an empty array"],
    ['{"x": [[1, 2], [3, 4]], "y": []}', "'y' is an empty array: the data needs at least one sample"],
    ['{"x": [[1, 2], [3, 4], [5, 6]], "y": [0, 1]}', "'x' and 'y' disagree: 3 inputs but 2 labels"],
    ['{"x": [[1, 2], 5], "y": [0, 1]}', "'x[1]' is 5, but an array of 2 was expected (ragged array)"],
    ['{"x": [[1, true]], "y": [0]}', "'x[0][1]' is true, not a number"],
    ['{"x": [[1, {}]], "y": [0]}', "'x[0][1]' is an object, not a number"],
    [`{"x": [[1, "${'a'.repeat(100)}"]], "y": [0]}`, `'x[0][1]' is "${'a'.repeat(40)}…", not a number`],
    ['{"x": [[1, 2], [1e39, 0]], "y": [0, 1]}', "'x[1][0]' is 1e+39, outside the float32 range (about ±3.4e38)"],
    ['{"x": [[1, 2]], "y": [1e999]}', "'y[0]' is Infinity, not a finite number"],
    ['{"x": [[1, 2]], "y": [0], "xTest": [[1, 2]]}', "'xTest' is given without 'yTest': test data needs both"],
    ['{"x": [[1, 2]], "y": [0], "yTest": [1]}', "'yTest' is given without 'xTest': test data needs both"],
    ['{"x": [[1, 2]], "y": [0], "x_test": [[1, 2]], "y_test": [1]}', "key 'x_test' looks like test data, but test data is read only from 'xTest' and 'yTest'"],
    ['{"x": [[1, 2]], "y": [0], "xTest": [[1, 2], [3, 4]], "yTest": [1]}', "'xTest' and 'yTest' disagree: 2 inputs but 1 labels"],
  ];
  for (const [text, message] of cases) expectFileError('data.json', text, message);
});

test('JSON: a file over the size limit is refused before it is read', () => {
  const file = write('big.json', '{}');
  fs.truncateSync(file, MAX_DATA_JSON_BYTES + 1_000_000); // sparse: no disk used
  expectError(
    () => loadDataFile(file),
    file,
    'the size of this JSON data file is 65 MB, over the limit of 64 MB (JSON is parsed in memory at 10 to 30 times its size: save large data sets as x.npy,y.npy)',
  );
});

// ---------------------------------------------------------------------------------------------
// CSV
// ---------------------------------------------------------------------------------------------

test('CSV: a numeric first row is refused; noHeader reads every row', () => {
  const text = '0.5,1.5,0\n-2,3e-1,1\n4,5,2\n';
  expectFileError(
    'data.csv',
    text,
    "the first row (line 1: '0.5,1.5,0') looks like data, not a header: name the columns in a header row, or mark the file as headerless (noHeader), and every row is read as data",
  );
  const file = write('data.csv', text);
  let ds = loadDataFile(file, { noHeader: true });
  assert.deepEqual(ds.train.x, Float32Array.from([0.5, 1.5, -2, 0.3, 4, 5]));
  assert.deepEqual(ds.train.xShape, [3, 2]);
  assert.deepEqual(ds.train.y, Float32Array.from([0, 1, 2]));
  assert.deepEqual(ds.train.yShape, [3, 1]);
  // Label columns by 0-based index.
  ds = loadDataFile(file, { noHeader: true, labels: ['0'] });
  assert.deepEqual(ds.train.x, Float32Array.from([1.5, 0, 0.3, 1, 5, 2]));
  assert.deepEqual(ds.train.y, Float32Array.from([0.5, -2, 4]));
  ds = loadDataFile(file, { noHeader: true, labels: ['2', '1'] });
  assert.deepEqual(ds.train.x, Float32Array.from([0.5, -2, 4]));
  assert.deepEqual(ds.train.y, Float32Array.from([0, 1.5, 1, 0.3, 2, 5]));
  for (const bad of ['3', 'label', '-1', '1.0']) {
    expectError(() => loadDataFile(file, { noHeader: true, labels: [bad] }), file, `label column '${bad}' is not a column index 0..2: the file has no header, so label columns are chosen by number, counting from 0`);
  }
  expectError(() => loadDataFile(file, { noHeader: true, labels: ['1', '1'] }), file, 'label column 1 (counting from 0) is chosen twice');
  expectError(() => loadDataFile(file, { noHeader: true, labels: ['0', '1', '2'] }), file, 'every column is a label column: the inputs need at least one column');
  // A header given as data.
  expectFileError('data.csv', 'a,b,label\n1,2,0\n', "line 1, column 0 (counting from 0): 'a' is not a number (data cells hold plain decimals such as -1.5 or 2e-3); the first row looks like a header, so do not mark the file as headerless", { noHeader: true });
  expectFileError('data.csv', '\n\n', 'the CSV file has no rows', { noHeader: true });
  expectFileError('data.csv', '1,2,3\n4,5\n', 'line 2 has 2 fields, line 1 has 3', { noHeader: true });
  expectFileError('data.csv', '1,2,3\n4,5,\n', 'line 2, column 2 (counting from 0) is empty', { noHeader: true });
});

test('CSV: only plain decimal numbers are data, with the line and column of any other', () => {
  const bad = ['0x1A', '0b101', '0o17', 'Infinity', '-Infinity', 'NaN', 'nan', '1_000', '1 000', '1,5e', '+-1', '.', '1e', 'e5', '1.2.3', '١٢', '1e+', '--1', 'true'];
  for (const cell of bad) {
    const text = `a,b,label\n1,2,0\n\n3,"${cell}",1\n`;
    expectFileError('data.csv', text, `line 4, column 'b': '${cell}' is not a number (data cells hold plain decimals such as -1.5 or 2e-3)`);
  }
  expectFileError('data.csv', 'a,b,label\n1,,0\n', "line 2, column 'b' is empty");
  expectFileError('data.csv', 'a,b,label\n1,  ,0\n', "line 2, column 'b' is empty");
  expectFileError('data.csv', 'a,b,label\n1,2,1e39\n', "line 2, column 'label': '1e39' is outside the float32 range (about ±3.4e38)");
  expectFileError('data.csv', `a,b,label\n1,${'9'.repeat(100)},0\n`, `line 2, column 'b': '${'9'.repeat(40)}…' is outside the float32 range (about ±3.4e38)`);
  // What is accepted: signs, a bare fraction or point, exponents, spaces around, quotes.
  const file = write('data.csv', 'a,b,label\n+1.5, -.5 ,1.\n"2E3",007,-0e-2\n');
  const ds = loadDataFile(file);
  assert.deepEqual(ds.train.x, Float32Array.from([1.5, -0.5, 2000, 7]));
  assert.deepEqual(ds.train.y, Float32Array.from([1, -0]));
});

test('CSV: a UTF-8 BOM is accepted; ragged rows, unclosed quotes and blank lines', () => {
  const file = write('bom.csv', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('x1,x2,label\r\n0.5,-1.25,2\r\n3,4e-1,0\r\n')]));
  const ds = loadDataFile(file, { labels: ['x1'] });
  assert.deepEqual(ds.train.x, Float32Array.from([-1.25, 2, 0.4, 0]));
  assert.deepEqual(ds.train.y, Float32Array.from([0.5, 3]));
  // Line numbers count blank lines.
  expectFileError('data.csv', 'a,b,c\n\n1,2,3\n  \n1,2\n', 'line 5 has 2 fields, the header has 3');
  expectFileError('data.csv', 'a,b,c\n1,2,3,4\n', 'line 2 has 4 fields, the header has 3');
  expectFileError('data.csv', 'a,b,c\n1,"2,3\n4,5,6\n', 'line 2: a quoted cell is not closed (a cell cannot span lines)');
  expectFileError('data.csv', 'a,b,c\n1,"2"x,3\n', 'line 2: text after the closing quote of cell 2');
  expectFileError('u16.csv', Buffer.from('\ufeffa,b\n1,2\n', 'utf16le'), 'is UTF-16 text; save it as UTF-8');
  expectFileError('bin.csv', Buffer.from([0x61, 0x2c, 0x62, 0x0a, 0x31, 0x2c, 0xff, 0x0a]), 'the file is not UTF-8 text (an invalid byte on line 1 or in the 16 MB after it)');
});

test('CSV: header names, label columns by name, a single column', () => {
  expectFileError('data.csv', 'a,b,a\n1,2,3\n', "the header names column 'a' twice (columns 1 and 3 of 3)");
  expectFileError('data.csv', ',x1,label\n0,1,2\n', "the header's column 1 of 3 has no name (a pandas index column? save with index=False)");
  expectFileError('data.csv', 'x1,,label\n0,1,2\n', "the header's column 2 of 3 has no name");
  expectFileError('data.csv', 'x1,x2,label\n0,1,2\n', "label column 'cls' is not in the header (x1, x2, label)", { labels: ['cls'] });
  const wide = `${Array.from({ length: 25 }, (_, i) => `c${i}`).join(',')}\n${'1,'.repeat(24)}1\n`;
  expectFileError('data.csv', wide, "label column 'y' is not in the header (c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15, c16, c17, c18, c19, … 5 more)", { labels: ['y'] });
  expectFileError('data.csv', 'x1,x2,label\n0,1,2\n', "label column 'x2' is chosen twice", { labels: ['x2', 'x2'] });
  expectFileError('data.csv', 'x1,label\n0,1\n', 'every column is a label column: the inputs need at least one column', { labels: ['x1', 'label'] });
  expectFileError('data.csv', 'label\n1\n2\n', 'the file has a single column, which is taken as the labels: the inputs need at least one more column');
  expectFileError('data.csv', 'a;b;label\n1;2;0\n', "the file has a single column, which is taken as the labels: the inputs need at least one more column (is it separated by ';'? Basin reads comma-separated values)");
  expectFileError('data.csv', 'a\tb\tlabel\n1\t2\t0\n', "the file has a single column, which is taken as the labels: the inputs need at least one more column (is it separated by '\\t'? Basin reads comma-separated values)");
  expectFileError('data.csv', '\n  \nx1,x2,label\n\n', 'CSV needs a header line and at least one row');
  // Label columns anywhere, by name, quoted header names.
  const file = write('data.csv', '"c0",x1,c1,"x 2",c2\n1,0.1,0,0.2,0\n0,0.3,0,0.4,1\n');
  const ds = loadDataFile(file, { labels: ['c2', 'c0'] });
  assert.deepEqual(ds.train.x, Float32Array.from([0.1, 0, 0.2, 0.3, 0, 0.4]));
  assert.deepEqual(ds.train.y, Float32Array.from([0, 1, 1, 0]));
});

test('CSV: a file larger than one decoding chunk keeps its lines and line numbers', () => {
  // About 19 MB (long cells, to keep the rows few): the 16 MB chunks must split on line breaks
  // and keep counting lines. Every row is checked, so a line lost or read twice shows.
  const n = 350_000;
  const zeros = '0'.repeat(20);
  let block = '';
  for (let k = 0; k < 1000; k++) block += `${k}.25${zeros},-${k}.5${zeros},${k % 3}\n`;
  const file = write('big.csv', `a,b,label\n${block.repeat(n / 1000)}`);
  assert.ok(fs.statSync(file).size > 16 * 1024 * 1024);
  const ds = loadDataFile(file);
  assert.deepEqual(ds.train.xShape, [n, 2]);
  for (let i = 0; i < n; i++) {
    const k = i % 1000;
    if (ds.train.x[2 * i] !== k + 0.25 || ds.train.x[2 * i + 1] !== -(k + 0.5) || ds.train.y[i] !== k % 3) assert.fail(`row ${i} is wrong`);
  }
  fs.appendFileSync(file, '1,2,0x3\n');
  expectError(() => loadDataFile(file), file, `line ${n + 2}, column 'label': '0x3' is not a number (data cells hold plain decimals such as -1.5 or 2e-3)`);
});

// ---------------------------------------------------------------------------------------------
// .npy
// ---------------------------------------------------------------------------------------------

test('.npy: every dtype in either byte order loads exact values', () => {
  const dir = tmpDir();
  const cases: [string, number[]][] = [
    ['>f8', [0.1, -2, 3.5, 1e-3, 0, 7]],
    ['<f8', [0.1, -2, 3.5, 1e-3, 0, 7]],
    ['>f4', [0.25, -1.5, 1e30, 0, -0, 8]],
    ['>i8', [-1, 2, -3_000_000_000, 2 ** 40, -(2 ** 52) + 3, 0]],
    ['<i8', [-1, 2, -3_000_000_000, 2 ** 40, -(2 ** 52) + 3, 0]],
    ['>u8', [0, 1, 2 ** 33, 2 ** 52, 7, 4_294_967_295]],
    ['<u8', [0, 1, 2 ** 33, 2 ** 52, 7, 4_294_967_295]],
    ['>i4', [-2_147_483_648, 2_147_483_647, -1, 0, 5, 6]],
    ['<u4', [4_294_967_295, 0, 1, 2, 3, 4]],
    ['>i2', [-32_768, 32_767, -1, 0, 1, 2]],
    ['<u2', [65_535, 0, 1, 2, 3, 4]],
    ['|i1', [-128, 127, -1, 0, 1, 2]],
    ['|u1', [255, 0, 1, 2, 3, 4]],
    ['|b1', [1, 0, 0, 1, 1, 0]],
  ];
  for (const [descr, values] of cases) {
    const file = path.join(dir, `a${descr.replace(/[<>|]/, (c) => ({ '<': 'le', '>': 'be', '|': 'na' })[c] ?? '')}.npy`);
    fs.writeFileSync(file, npy(descr, [2, 3], values));
    assert.deepEqual(readNpy(file), { values: Float32Array.from(values), shape: [2, 3] }, descr);
  }
  // float64 and int64 values beyond float32's precision round as float32 does.
  const f = path.join(dir, 'round.npy');
  fs.writeFileSync(f, npy('>i8', [2], [2 ** 53 - 1, -(2 ** 40) - 1]));
  assert.deepEqual(readNpy(f).values, Float32Array.from([2 ** 53, -(2 ** 40)]));
  // Format versions 2 and 3 (a UTF-8 header).
  for (const version of [2, 3] as const) {
    fs.writeFileSync(f, npyBytes({ descr: '<f4', shape: [3], data: encode('<f4', [1, 2, 3]), version }));
    assert.deepEqual(readNpy(f), { values: Float32Array.from([1, 2, 3]), shape: [3] });
  }
  // Python 2's long integers in the shape.
  fs.writeFileSync(f, npyBytes({ descr: '<f4', shape: '(1L, 2L)', data: encode('<f4', [1, 2]) }));
  assert.deepEqual(readNpy(f), { values: Float32Array.from([1, 2]), shape: [1, 2] });
});

test('.npy: Fortran order is read into C order', () => {
  const dir = tmpDir();
  const file = path.join(dir, 'f.npy');
  // [[1, 2, 3], [4, 5, 6]] stored column by column.
  fs.writeFileSync(file, npy('<f4', [2, 3], [1, 4, 2, 5, 3, 6], true));
  assert.deepEqual(readNpy(file), { values: Float32Array.from([1, 2, 3, 4, 5, 6]), shape: [2, 3] });
  // 3-D: element (i, j, k) holds 100i + 10j + k; in Fortran order i varies fastest.
  const shape = [2, 3, 4];
  const fOrder: number[] = [];
  for (let k = 0; k < 4; k++) for (let j = 0; j < 3; j++) for (let i = 0; i < 2; i++) fOrder.push(100 * i + 10 * j + k);
  const cOrder: number[] = [];
  for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) for (let k = 0; k < 4; k++) cOrder.push(100 * i + 10 * j + k);
  fs.writeFileSync(file, npy('>f8', shape, fOrder, true));
  assert.deepEqual(readNpy(file), { values: Float32Array.from(cOrder), shape });
  // With x and y as a pair.
  const x = path.join(dir, 'x.npy');
  const y = path.join(dir, 'y.npy');
  fs.writeFileSync(x, npy('<f4', [2, 3], [1, 4, 2, 5, 3, 6], true));
  fs.writeFileSync(y, npy('|u1', [2], [1, 0], true));
  const ds = loadDataFile(`${x},${y}`);
  assert.deepEqual(ds.train, { x: Float32Array.from([1, 2, 3, 4, 5, 6]), xShape: [2, 3], y: Float32Array.from([1, 0]), yShape: [2, 1] });
});

test('.npy: broken headers, shapes and data lengths', () => {
  const f4 = (shape: number[] | string, n: number): Buffer => npyBytes({ descr: '<f4', shape, data: encode('<f4', new Array<number>(n).fill(1)) });
  const cases: [Buffer, string][] = [
    [f4('(-1, 2)', 2), 'the shape (-1, 2) has a negative dimension -1'],
    [f4('(2, 2.5)', 5), "the shape (2, 2.5) has a dimension '2.5' that is not a non-negative integer"],
    [f4('(2, abc)', 2), "the shape (2, abc) has a dimension 'abc' that is not a non-negative integer"],
    [f4('(99999999999999999999,)', 2), "the shape (99999999999999999999,) has a dimension '99999999999999999999' that is not a non-negative integer"],
    [f4('(2,,3)', 6), "the shape (2,,3) has a dimension '' that is not a non-negative integer"],
    [
      f4('(100000, 100000, 100000)', 0),
      'the number of values in shape (100000, 100000, 100000) is 1.00e+15, over the limit of 500,000,000 (data is held in memory as float32: use a subset of the samples)',
    ],
    [f4(`(${new Array<string>(MAX_DATA_DIMS + 1).fill('1').join(', ')})`, 1), `the shape has ${MAX_DATA_DIMS + 1} dimensions; data arrays have at most ${MAX_DATA_DIMS}`],
    [f4([2, 3], 5), "truncated: 20 bytes of data, but shape (2, 3) of '<f4' needs 24"],
    [f4([2, 3], 7), "28 bytes of data, but shape (2, 3) of '<f4' needs 24: the file is damaged or holds more than one array"],
    [Buffer.from('not numpy at all'), 'not a .npy file (bad magic)'],
    [Buffer.from('\x93NUMPY', 'latin1'), 'not a .npy file (bad magic)'],
    [Buffer.concat([Buffer.from('\x93NUMPY\x04\x00', 'latin1'), Buffer.alloc(8)]), '.npy format version 4.0 is not supported (versions 1.0 to 3.0 are)'],
    [Buffer.concat([Buffer.from('\x93NUMPY\x01\x00', 'latin1'), Buffer.from([100, 0]), Buffer.from('{}')]), 'truncated: the .npy header is 100 bytes but the file ends after 2'],
    [Buffer.concat([Buffer.from('\x93NUMPY\x02\x00', 'latin1'), Buffer.from([0, 0, 0, 0x40])]), 'the .npy header length is 1.1 GB, over the limit of 66 KB (numpy writes a few dozen bytes: the file is damaged)'],
    [Buffer.concat([Buffer.from('\x93NUMPY\x02\x00', 'latin1'), Buffer.from([0, 0])]), 'truncated: the file ends inside the .npy header'],
    [npyBytes({ descr: '', shape: '', data: Buffer.alloc(0), header: "{'descr': '<f4', 'fortran_order': False, }" }), "malformed .npy header: no 'shape' tuple (the header is '{'descr': '<f4', 'fortran_order': False, }')"],
    [npyBytes({ descr: '', shape: '', data: Buffer.alloc(0), header: "{'descr': '<f4', 'shape': (1,), }" }), "malformed .npy header: no 'fortran_order' True or False (the header is '{'descr': '<f4', 'shape': (1,), }')"],
    [npyBytes({ descr: '', shape: '', data: Buffer.alloc(0), header: "{'fortran_order': False, 'shape': (1,), }" }), "malformed .npy header: no 'descr' (dtype) (the header is '{'fortran_order': False, 'shape': (1,), }')"],
    [npyBytes({ descr: '', shape: '', data: Buffer.alloc(0), header: 'garbage' }), "malformed .npy header: not a {...} dictionary (the header is 'garbage')"],
    [npyBytes({ descr: '', shape: '', data: Buffer.alloc(8), header: "{'descr': [('a', '<f4'), ('b', '<f4')], 'fortran_order': False, 'shape': (1,), }" }), 'structured (record) arrays are not supported: save each field as a plain numeric array'],
    [npyBytes({ descr: '|O', shape: [1], data: Buffer.alloc(8) }), "dtype '|O' is not supported (float32, float64, int8 to int64, uint8 to uint64 and bool are, in either byte order)"],
    [npyBytes({ descr: '<c8', shape: [1], data: Buffer.alloc(8) }), "dtype '<c8' is not supported (float32, float64, int8 to int64, uint8 to uint64 and bool are, in either byte order)"],
    [npyBytes({ descr: '<f2', shape: [1], data: Buffer.alloc(2) }), "dtype '<f2' is not supported (float32, float64, int8 to int64, uint8 to uint64 and bool are, in either byte order)"],
    [npyBytes({ descr: '|f4', shape: [1], data: Buffer.alloc(4) }), "dtype '|f4' is not supported (float32, float64, int8 to int64, uint8 to uint64 and bool are, in either byte order)"],
    [npy('>f8', [2, 2], [1, 2, 1e39, 4]), 'element [1, 0] is 1e+39, outside the float32 range (about ±3.4e38)'],
  ];
  const dir = tmpDir();
  cases.forEach(([bytes, message], i) => {
    const file = path.join(dir, `case${i}.npy`);
    fs.writeFileSync(file, bytes);
    expectError(() => readNpy(file), file, message);
  });
});

test('.npy: x and y must agree and hold samples', () => {
  const dir = tmpDir();
  const x = path.join(dir, 'x.npy');
  const y = path.join(dir, 'y.npy');
  fs.writeFileSync(x, npy('<f4', [3, 2], [1, 2, 3, 4, 5, 6]));
  fs.writeFileSync(y, npy('<f4', [2], [0, 1]));
  expectError(() => loadDataFile(`${x},${y}`), x, `3 inputs but 2 labels: the first dimension counts samples (shape (3, 2) here, (2,) in ${y})`);
  fs.writeFileSync(y, npyBytes({ descr: '<f4', shape: '()', data: encode('<f4', [1]) }));
  expectError(() => loadDataFile(`${x},${y}`), y, 'holds a single number (shape ()), not an array of samples');
  fs.writeFileSync(y, npy('<f4', [0], []));
  expectError(() => loadDataFile(`${x},${y}`), y, 'holds no samples (shape (0,))');
  fs.writeFileSync(y, npy('<f4', [3, 0], []));
  expectError(() => loadDataFile(`${x},${y}`), y, 'holds no values (shape (3, 0))');
  fs.writeFileSync(y, npy('<f4', [3], [0, 1, 2]));
  expectError(() => loadDataFile(`${x},${y},${y}`), x, 'give two .npy files, inputs and labels (x.npy,y.npy), not 3');
  expectError(() => loadDataFile(`${x},${path.join(dir, 'nope.npy')}`), path.join(dir, 'nope.npy'), 'data file not found');
  expectError(() => loadDataFile(`${x},${y}`, { labels: ['1'] }), x, 'label columns are chosen only in CSV data: .npy labels are the second file (x.npy,y.npy)');
  expectError(() => loadDataFile(`${x},${y}`, { noHeader: true }), x, 'only CSV data has a header row to leave out: this is a .npy file');
  assert.deepEqual(loadDataFile(`${x},${y}`).train.y, Float32Array.from([0, 1, 2]));
});

// ---------------------------------------------------------------------------------------------
// Any format
// ---------------------------------------------------------------------------------------------

test('only regular files are read: folders, devices, FIFOs', () => {
  const dir = tmpDir();
  const folder = path.join(dir, 'data.csv');
  fs.mkdirSync(folder);
  expectError(() => loadDataFile(folder), folder, 'is a folder, not a data file');
  if (process.platform !== 'win32') {
    expectError(() => loadDataFile('/dev/zero'), '/dev/zero', 'is a device, not a regular file: data is read only from regular files');
    const fifo = path.join(dir, 'pipe.json');
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
    // In-process: a regression would block on open() here, so the FIFO goes through the CLI
    // (below, with a timeout) as well.
    expectError(() => loadDataFile(fifo), fifo, 'is a FIFO (named pipe), not a regular file: data is read only from regular files');
  }
});

test('paths with commas, pairs of text files, unknown formats, options that do not apply', () => {
  const dir = path.join(tmpDir(), 'a,b');
  fs.mkdirSync(dir);
  const csv = path.join(dir, 'data.csv');
  fs.writeFileSync(csv, 'x,label\n1,0\n');
  assert.deepEqual(loadDataFile(csv).train.x, Float32Array.from([1]));
  const json = write('data.json', '{"x": [[1]], "y": [0]}');
  expectError(() => loadDataFile(`${json},${json}`), json, 'a .json file holds inputs and labels both: only .npy data comes as a pair of files');
  expectError(() => loadDataFile(json, { labels: ['y'] }), json, "label columns are chosen only in CSV data: JSON data gives the labels as 'y'");
  expectError(() => loadDataFile(json, { noHeader: true }), json, 'only CSV data has a header row to leave out: this is a JSON file');
  const npz = write('data.npz', 'PK');
  expectError(() => loadDataFile(npz), npz, 'not a valid .npz (zip) archive: no end of central directory record (the file is truncated or not a zip)');
  const tsv = write('data.tsv', 'a\tb\n');
  expectError(() => loadDataFile(tsv), tsv, "unknown data format '.tsv' (use .json, .csv, .npy or .npz)");
});

// ---------------------------------------------------------------------------------------------
// Through the CLI: exit 1 with the message, never an internal error or a stack trace
// ---------------------------------------------------------------------------------------------

function infoOn(data: string): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, 'info', '--model', MODEL, '--data', data], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, BASIN_DEBUG: '' } });
  assert.equal(r.error, undefined, `the CLI did not finish: ${String(r.error)}`);
  assert.ok(!r.stderr.includes('    at '), `a stack trace was printed:\n${r.stderr}`);
  assert.ok(!/internal error/.test(r.stderr), `reported as an internal error:\n${r.stderr}`);
  return { status: r.status, stderr: r.stderr };
}

function expectCliError(data: string, file: string, message: string): void {
  const r = infoOn(data);
  assert.equal(r.status, 1, r.stderr);
  assert.equal(r.stderr, `basin: ${file}: ${message}\n`);
}

test('CLI: broken data files exit 1 with the message', () => {
  const deep = write('deep.json', `{"x": ${nest(100_000)}, "y": [1]}`);
  expectCliError(deep, deep, `'x' nests arrays more than ${MAX_DATA_DIMS} deep: data arrays have at most ${MAX_DATA_DIMS} dimensions`);
  const dir = tmpDir();
  const x = path.join(dir, 'x.npy');
  const y = path.join(dir, 'y.npy');
  fs.writeFileSync(x, npyBytes({ descr: '<f4', shape: '(-1, 2)', data: Buffer.alloc(8) }));
  fs.writeFileSync(y, npy('<f4', [1], [0]));
  expectCliError(`${x},${y}`, x, 'the shape (-1, 2) has a negative dimension -1');
  const whole = npy('<f4', [2, 2], [1, 2, 3, 4]);
  fs.writeFileSync(x, whole.subarray(0, whole.length - 10));
  expectCliError(`${x},${y}`, x, "truncated: 6 bytes of data, but shape (2, 2) of '<f4' needs 16");
  const numeric = write('data.csv', '0.5,1.5,0\n-2,3e-1,1\n');
  expectCliError(
    numeric,
    numeric,
    "the first row (line 1: '0.5,1.5,0') looks like data, not a header: name the columns in a header row, or mark the file as headerless (noHeader), and every row is read as data",
  );
  const hex = write('data.csv', 'x1,x2,label\n0.5,0x1A,0\n');
  expectCliError(hex, hex, "line 2, column 'x2': '0x1A' is not a number (data cells hold plain decimals such as -1.5 or 2e-3)");
  if (process.platform !== 'win32') {
    const fifo = path.join(tmpDir(), 'pipe.csv');
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
    expectCliError(fifo, fifo, 'is a FIFO (named pipe), not a regular file: data is read only from regular files');
  }
  // And good data still runs: a BOM CSV of the right width.
  const good = write('good.csv', '\ufeffx1,x2,label\n0.5,-0.25,2\n0.1,0.3,0\n');
  const r = infoOn(good);
  assert.equal(r.status, 0, r.stderr);
});
