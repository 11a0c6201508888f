// Checks LevelDB's own files against their own checksums, byte by byte, without LevelDB:
// classic-level reads with verify_checksums off and offers no switch for it, so a damaged
// block that still parses (an index block, a value of an overwritten record) or a damaged
// write-ahead-log record (which recovery drops silently) would otherwise go unnoticed.
// Layouts as LevelDB documents them in doc/table_format.md and doc/log_format.md.
import { crc32c } from "./crc32c.ts";
import { uncompressSync } from "snappy";

const FOOTER_BYTES = 48;
const TABLE_MAGIC = Uint8Array.of(0x57, 0xfb, 0x80, 0x8b, 0x24, 0x75, 0x47, 0xdb);
const BLOCK_TRAILER_BYTES = 5;
const CRC_MASK_DELTA = 0xa282ead8;
const LOG_BLOCK_BYTES = 32 * 1024;
const LOG_HEADER_BYTES = 7;
/** Largest block a table may claim after decompression; LevelDB's are about 4 KiB. */
const MAX_BLOCK_BYTES = 64 * 1024 * 1024;

/** What is wrong with a file, in words for the operator; null when it checks out. */
export type FileDamage = string | null;

class Damage extends Error {}

function unmask(masked: number): number {
  const rotated = (masked - CRC_MASK_DELTA) >>> 0;
  return ((rotated >>> 17) | (rotated << 15)) >>> 0;
}

function readUint32LE(bytes: Uint8Array, at: number): number {
  return ((bytes[at] ?? 0) | ((bytes[at + 1] ?? 0) << 8) | ((bytes[at + 2] ?? 0) << 16) | ((bytes[at + 3] ?? 0) << 24)) >>> 0;
}

function readVarint(bytes: Uint8Array, at: number, end: number): { value: number; next: number } {
  let value = 0;
  for (let shift = 0; shift <= 63; shift += 7) {
    if (at >= end) throw new Damage(`varint runs past its block at byte ${at}`);
    const byte = bytes[at++] ?? 0;
    value += (byte & 0x7f) * 2 ** shift;
    if (byte < 0x80) {
      if (!Number.isSafeInteger(value)) throw new Damage(`varint at byte ${at} is out of range`);
      return { value, next: at };
    }
  }
  throw new Damage(`varint at byte ${at} is too long`);
}

interface BlockHandle {
  offset: number;
  size: number;
}

function readHandle(bytes: Uint8Array, at: number, end: number): { handle: BlockHandle; next: number } {
  const offset = readVarint(bytes, at, end);
  const size = readVarint(bytes, offset.next, end);
  return { handle: { offset: offset.value, size: size.value }, next: size.next };
}

/**
 * The block's plain contents after its checksum checked out. With `decompress` false (a data
 * block, whose contents this does not read), only the checksum and the compression type are
 * checked: the checksum covers the stored bytes, and decompressing would cost twice its time.
 */
function readBlock(file: Uint8Array, handle: BlockHandle, what: string, tableEnd: number, decompress = true): Uint8Array {
  const end = handle.offset + handle.size;
  if (end + BLOCK_TRAILER_BYTES > tableEnd) throw new Damage(`${what} at ${handle.offset} (${handle.size} bytes) runs past the table data`);
  const stored = unmask(readUint32LE(file, end + 1));
  // The checksum covers the contents and the compression type byte after them.
  const actual = crc32c(file, 0, handle.offset, end + 1);
  if (stored !== actual) throw new Damage(`${what} at byte ${handle.offset} fails its checksum`);
  const contents = file.subarray(handle.offset, end);
  const type = file[end];
  if (type === 0 || (type === 1 && !decompress)) return contents;
  if (type === 1) {
    try {
      return snappyBlock(contents, MAX_BLOCK_BYTES);
    } catch (error) {
      throw new Damage(`${what} at byte ${handle.offset} does not decompress: ${(error as Error).message}`);
    }
  }
  throw new Damage(`${what} at byte ${handle.offset} has unknown compression type ${type}`);
}

/**
 * A snappy-compressed block's plain bytes. The length snappy's header claims is checked first, so
 * a damaged header cannot ask for gigabytes.
 */
function snappyBlock(contents: Uint8Array, maxBytes: number): Uint8Array {
  let claimed = 0;
  for (let i = 0, scale = 1; ; i++, scale *= 0x80) {
    const b = contents[i];
    if (b === undefined || i >= 5) throw new RangeError("the uncompressed length is malformed");
    claimed += (b & 0x7f) * scale;
    if (b < 0x80) break;
  }
  if (claimed > maxBytes) throw new RangeError(`it claims ${claimed} bytes, more than the limit ${maxBytes}`);
  const plain = uncompressSync(contents, { asBuffer: true });
  if (typeof plain === "string" || plain.length !== claimed) throw new RangeError(`it decompressed to ${plain.length} bytes, its header says ${claimed}`);
  return new Uint8Array(plain.buffer, plain.byteOffset, plain.byteLength);
}

/** The values of a block's entries (the index block's values are the data blocks' handles). */
function blockValues(block: Uint8Array, what: string): Uint8Array[] {
  if (block.length < 4) throw new Damage(`${what} is ${block.length} bytes, too short for its restart count`);
  const restarts = readUint32LE(block, block.length - 4);
  const dataEnd = block.length - 4 * (restarts + 1);
  if (dataEnd < 0) throw new Damage(`${what} claims ${restarts} restart points, more than fit`);
  const values: Uint8Array[] = [];
  let at = 0;
  while (at < dataEnd) {
    const shared = readVarint(block, at, dataEnd);
    const unshared = readVarint(block, shared.next, dataEnd);
    const valueBytes = readVarint(block, unshared.next, dataEnd);
    const valueStart = valueBytes.next + unshared.value;
    const valueEnd = valueStart + valueBytes.value;
    if (valueEnd > dataEnd) throw new Damage(`${what} has an entry running past its end`);
    values.push(block.subarray(valueStart, valueEnd));
    at = valueEnd;
  }
  return values;
}

/** Checks a sorted table (.ldb): footer, meta index, index and every data block's checksum. */
export function checkTableFile(file: Uint8Array): FileDamage {
  try {
    if (file.length < FOOTER_BYTES) throw new Damage(`${file.length} bytes, shorter than a table footer (truncated?)`);
    const footer = file.length - FOOTER_BYTES;
    for (let i = 0; i < TABLE_MAGIC.length; i++) {
      if (file[file.length - TABLE_MAGIC.length + i] !== TABLE_MAGIC[i]) throw new Damage("no table magic number at the end (truncated or overwritten)");
    }
    const metaIndex = readHandle(file, footer, file.length - TABLE_MAGIC.length);
    const index = readHandle(file, metaIndex.next, file.length - TABLE_MAGIC.length);
    const metaBlock = readBlock(file, metaIndex.handle, "meta index block", footer);
    // The meta index points at the filter block (a bloom filter, when one is configured).
    for (const value of blockValues(metaBlock, "meta index block")) {
      readBlock(file, readHandle(value, 0, value.length).handle, "filter block", footer);
    }
    const indexBlock = readBlock(file, index.handle, "index block", footer);
    let blocks = 0;
    for (const value of blockValues(indexBlock, "index block")) {
      const { handle } = readHandle(value, 0, value.length);
      readBlock(file, handle, `data block ${blocks}`, footer, false);
      blocks++;
    }
    return null;
  } catch (error) {
    if (error instanceof Damage) return error.message;
    throw error;
  }
}

/**
 * Checks a write-ahead log (.log): every record's checksum and length. Only the last record of
 * the file may be torn or fail its checksum: a write cut short by a crash ends there and was
 * never acknowledged, while a bad record with records after it is damage.
 */
/** A log record's header: where it starts, its payload length and type, and what is left of its block. */
interface RecordHeader {
  at: number;
  length: number;
  type: number;
  leftInBlock: number;
}

/** The header of the record at `at` (past a block's tail too short for one), or null at the file's end. */
function recordHeader(file: Uint8Array, at: number): RecordHeader | null {
  if (LOG_BLOCK_BYTES - (at % LOG_BLOCK_BYTES) < LOG_HEADER_BYTES) at += LOG_BLOCK_BYTES - (at % LOG_BLOCK_BYTES);
  if (at + LOG_HEADER_BYTES > file.length) return null;
  return { at, length: (file[at + 4] ?? 0) | ((file[at + 5] ?? 0) << 8), type: file[at + 6] ?? 0, leftInBlock: LOG_BLOCK_BYTES - (at % LOG_BLOCK_BYTES) };
}

export function checkWriteAheadLog(file: Uint8Array): FileDamage {
  for (let next = 0; next < file.length; ) {
    const header = recordHeader(file, next);
    if (header === null) return null;
    const { at, length, type, leftInBlock } = header;
    if (type === 0 && length === 0) {
      // Zeroes where a writer preallocated space: only more zeroes may follow.
      for (let i = at; i < file.length; i++) if (file[i] !== 0) return `non-zero bytes at ${i} after the end of the records`;
      return null;
    }
    const end = at + LOG_HEADER_BYTES + length;
    if (end >= file.length && (end > file.length || unmask(readUint32LE(file, at)) !== crc32c(file, 0, at + 6, end))) return null;
    if (LOG_HEADER_BYTES + length > leftInBlock) return `record at byte ${at} claims ${length} bytes, past its 32 KiB block`;
    if (type < 1 || type > 4) return `record at byte ${at} has unknown type ${type}`;
    if (unmask(readUint32LE(file, at)) !== crc32c(file, 0, at + 6, end)) return `record at byte ${at} (${length} bytes) fails its checksum`;
    next = end;
  }
  return null;
}

/**
 * The records of a log-format file (a write-ahead log or a MANIFEST), fragments joined, up to the
 * first record that is torn, fails its checksum or does not fit together.
 */
export function logRecords(file: Uint8Array): Uint8Array[] {
  const records: Uint8Array[] = [];
  let parts: Uint8Array[] | null = null;
  for (let next = 0; next < file.length; ) {
    const header = recordHeader(file, next);
    if (header === null) break;
    const { at, length, type, leftInBlock } = header;
    const end = at + LOG_HEADER_BYTES + length;
    if (type === 0 || end > file.length || LOG_HEADER_BYTES + length > leftInBlock) break;
    if (unmask(readUint32LE(file, at)) !== crc32c(file, 0, at + 6, end)) break;
    const payload = file.subarray(at + LOG_HEADER_BYTES, end);
    next = end;
    if (type === 1) records.push(payload);
    else if (type === 2) parts = [payload];
    else if (type === 3 && parts !== null) parts.push(payload);
    else if (type === 4 && parts !== null) {
      parts.push(payload);
      const joined = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      let o = 0;
      for (const p of parts) {
        joined.set(p, o);
        o += p.length;
      }
      records.push(joined);
      parts = null;
    } else break;
  }
  return records;
}

/** A live table's smallest and largest user keys, from LevelDB's MANIFEST. */
export interface TableKeyRange {
  readonly smallest: Uint8Array;
  readonly largest: Uint8Array;
}

/**
 * The live tables a MANIFEST describes (its version edits replayed: tables added less those
 * deleted), by file number, with their key ranges; null when an edit cannot be read.
 */
export function manifestTables(manifest: Uint8Array): Map<number, TableKeyRange> | null {
  const tables = new Map<number, TableKeyRange>();
  try {
    for (const edit of logRecords(manifest)) {
      let at = 0;
      const varint = (): number => {
        const v = readVarint(edit, at, edit.length);
        at = v.next;
        return v.value;
      };
      const bytes = (): Uint8Array => {
        const n = varint();
        if (at + n > edit.length) throw new Damage("a field runs past its version edit");
        const out = edit.subarray(at, at + n);
        at += n;
        return out;
      };
      while (at < edit.length) {
        const tag = varint();
        switch (tag) {
          case 1: // comparator name
            bytes();
            break;
          case 2: // log number
          case 3: // next file number
          case 4: // last sequence
          case 9: // previous log number
            varint();
            break;
          case 5: // compaction pointer: level, internal key
            varint();
            bytes();
            break;
          case 6: {
            // deleted file: level, number
            varint();
            tables.delete(varint());
            break;
          }
          case 7: {
            // new file: level, number, size, smallest and largest internal keys
            varint();
            const number = varint();
            varint();
            const smallest = bytes();
            const largest = bytes();
            if (smallest.length < 8 || largest.length < 8) throw new Damage("an internal key is shorter than its 8-byte trailer");
            tables.set(number, { smallest: smallest.subarray(0, smallest.length - 8), largest: largest.subarray(0, largest.length - 8) });
            break;
          }
          default:
            throw new Damage(`unknown version edit tag ${tag}`);
        }
      }
    }
  } catch (error) {
    if (error instanceof Damage) return null;
    throw error;
  }
  return tables;
}
