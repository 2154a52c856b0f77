/**
 * A small, strict reader of numpy's `.npz` archives (`numpy.savez` / `savez_compressed`): a zip
 * file of `.npy` members, stored or deflated. Only what numpy writes is accepted: the end of
 * central directory record (zip64 too), central directory entries, local headers, methods 0
 * (stored) and 8 (deflate, inflated with Node's zlib). The archive is untrusted:
 * - every offset and length is bounds-checked against the file before it is used;
 * - the sizes the directory declares are checked against the limits before anything is inflated,
 *   and inflation stops at the declared size (`maxOutputLength`): a zip bomb whose members
 *   inflate past what they declare is refused, and so is one that declares too much;
 * - each member's CRC-32 is checked where Node's zlib provides it.
 */
import * as zlib from 'node:zlib';
import { InputError } from './errors';
import { MAX_DATA_VALUES, refuseOver } from './limits';

export interface NpzMember {
  /** Name without the `.npy` suffix (numpy's key). */
  key: string;
  name: string;
  method: number;
  compressedSize: number;
  size: number;
  crc: number;
  localOffset: number;
}

/** Bytes the inflated members read together may take: the data limit as float64 plus headers. */
export const MAX_NPZ_INFLATED_BYTES = MAX_DATA_VALUES * 8 + 1_000_000;

/** The archive's members (central directory), checked against the buffer's bounds. */
export function npzMembers(buf: Buffer, file: string): NpzMember[] {
  const bad = (what: string): never => {
    throw new InputError(`not a valid .npz (zip) archive: ${what}`, file);
  };
  // End of central directory: 22 bytes plus a comment of at most 65535 bytes, at the end.
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 22 - 65535); i--) {
    if (buf.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) return bad('no end of central directory record (the file is truncated or not a zip)');
  let count = buf.readUInt16LE(eocd + 10);
  let cdSize = buf.readUInt32LE(eocd + 12);
  let cdOffset = buf.readUInt32LE(eocd + 16);
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    // Zip64: the locator just before the EOCD points at the zip64 EOCD record.
    const loc = eocd - 20;
    if (loc < 0 || buf.readUInt32LE(loc) !== 0x07064b50) return bad('a zip64 archive without its locator');
    const rec = Number(buf.readBigUInt64LE(loc + 8));
    if (!(rec >= 0 && rec + 56 <= buf.length) || buf.readUInt32LE(rec) !== 0x06064b50) return bad('the zip64 end of central directory is out of bounds');
    count = Number(buf.readBigUInt64LE(rec + 32));
    cdSize = Number(buf.readBigUInt64LE(rec + 40));
    cdOffset = Number(buf.readBigUInt64LE(rec + 48));
  }
  if (!(cdOffset + cdSize <= buf.length) || count > 100_000) return bad(`the central directory (${count} entries at ${cdOffset}, ${cdSize} bytes) lies outside the file`);
  const members: NpzMember[] = [];
  let p = cdOffset;
  for (let k = 0; k < count; k++) {
    if (p + 46 > cdOffset + cdSize || buf.readUInt32LE(p) !== 0x02014b50) return bad(`central directory entry ${k} is damaged`);
    const flags = buf.readUInt16LE(p + 8);
    const method = buf.readUInt16LE(p + 10);
    const crc = buf.readUInt32LE(p + 16);
    let compressedSize = buf.readUInt32LE(p + 20);
    let size = buf.readUInt32LE(p + 24);
    const nameLen = buf.readUInt16LE(p + 28);
    const extraLen = buf.readUInt16LE(p + 30);
    const commentLen = buf.readUInt16LE(p + 32);
    let localOffset = buf.readUInt32LE(p + 42);
    const end = p + 46 + nameLen + extraLen + commentLen;
    if (end > cdOffset + cdSize) return bad(`central directory entry ${k} runs past the directory`);
    const name = buf.toString('utf8', p + 46, p + 46 + nameLen);
    // Zip64 extra field: the 64-bit values, in order, for each 32-bit field that is 0xFFFFFFFF.
    for (let e = p + 46 + nameLen; e + 4 <= p + 46 + nameLen + extraLen; ) {
      const id = buf.readUInt16LE(e);
      const len = buf.readUInt16LE(e + 2);
      if (id === 0x0001) {
        let q = e + 4;
        const next = (): number => {
          if (q + 8 > e + 4 + len) return bad(`the zip64 field of '${name.slice(0, 80)}' is too short`);
          const v = Number(buf.readBigUInt64LE(q));
          q += 8;
          return v;
        };
        if (size === 0xffffffff) size = next();
        if (compressedSize === 0xffffffff) compressedSize = next();
        if (localOffset === 0xffffffff) localOffset = next();
      }
      e += 4 + len;
    }
    if (flags & 1) return bad(`member '${name.slice(0, 80)}' is encrypted`);
    members.push({ key: name.replace(/\.npy$/, ''), name, method, compressedSize, size, crc, localOffset });
    p = end;
  }
  return members;
}

/** The inflated bytes of one member, checked: bounds, method, declared size, CRC-32. */
export function npzMemberBytes(buf: Buffer, m: NpzMember, file: string): Buffer {
  const where = `member '${m.name.slice(0, 80)}'`;
  const bad = (what: string): never => {
    throw new InputError(`not a valid .npz (zip) archive: ${where} ${what}`, file);
  };
  if (!(m.localOffset + 30 <= buf.length) || buf.readUInt32LE(m.localOffset) !== 0x04034b50) return bad('has no local header where the directory says');
  const start = m.localOffset + 30 + buf.readUInt16LE(m.localOffset + 26) + buf.readUInt16LE(m.localOffset + 28);
  if (!(start + m.compressedSize <= buf.length)) return bad(`declares ${m.compressedSize} bytes but the file ends before them (truncated)`);
  const data = buf.subarray(start, start + m.compressedSize);
  let out: Buffer;
  if (m.method === 0) {
    if (m.compressedSize !== m.size) return bad(`is stored with ${m.compressedSize} bytes but declares ${m.size}`);
    out = data;
  } else if (m.method === 8) {
    try {
      out = zlib.inflateRawSync(data, { maxOutputLength: Math.max(1, m.size) });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ERR_BUFFER_TOO_LARGE') return bad(`inflates to more than the ${m.size} bytes it declares (a zip bomb?); refused`);
      return bad(`cannot be inflated (${(e as Error).message})`);
    }
  } else return bad(`uses compression method ${m.method}; numpy writes stored (0) or deflate (8)`);
  if (out.length !== m.size) return bad(`inflates to ${out.length} bytes but declares ${m.size}`);
  const crc32 = (zlib as unknown as { crc32?: (b: Uint8Array) => number }).crc32;
  if (crc32 && crc32(out) >>> 0 !== m.crc >>> 0) return bad('fails its CRC-32 check (the file is damaged)');
  return out;
}

/**
 * The members `keys` of an .npz archive held in `buf`, inflated: each must exist (else the
 * error lists the archive's keys), and their declared sizes together are checked before any is
 * inflated.
 */
export function readNpzMembers(buf: Buffer, keys: string[], file: string, hint: string): Map<string, Buffer> {
  const members = npzMembers(buf, file);
  const chosen = keys.map((k) => {
    const m = members.find((x) => x.key === k || x.name === k);
    if (!m) {
      const have = members.map((x) => `'${x.key.slice(0, 40)}'`).slice(0, 20).join(', ');
      throw new InputError(`the archive has no array '${k}' (it holds ${have || 'nothing'}; ${hint})`, file);
    }
    return m;
  });
  refuseOver('the inflated size of the arrays read from the archive', chosen.reduce((s, m) => s + m.size, 0), MAX_NPZ_INFLATED_BYTES, {
    file,
    unit: 'bytes',
    hint: 'data is held in memory as float32: use a subset of the samples',
  });
  return new Map(chosen.map((m, i) => [keys[i], npzMemberBytes(buf, m, file)]));
}
