// Record values: [payload][CRC-32C, big-endian uint32]. The checksum covers the key and the
// payload, so a damaged value and a value found under the wrong key are both caught. Payloads
// are the protobuf messages of raft.proto where one exists, fixed binary layouts otherwise.
import { raftmq } from "@raftmq/proto";
import type { ConfState, Entry, HardState, SnapshotMeta } from "@raftmq/raft";
import { crc32c } from "./crc32c.ts";
import { CorruptionError } from "./errors.ts";
import { ENTRY_KEY_BYTES, RecordKind } from "./record-keys.ts";

const CHECKSUM_BYTES = 4;

export type BatchOp = { type: "put"; key: Uint8Array; value: Uint8Array } | { type: "del"; key: Uint8Array };

export function frame(key: Uint8Array, payload: Uint8Array): Uint8Array {
  const value = new Uint8Array(payload.length + CHECKSUM_BYTES);
  value.set(payload, 0);
  new DataView(value.buffer).setUint32(payload.length, crc32c(payload, crc32c(key)));
  return value;
}

/** The payload of a framed value; CorruptionError when it is torn or its checksum fails. */
export function unframe(key: Uint8Array, value: Uint8Array, record: string, dir: string): Uint8Array {
  if (value.length < CHECKSUM_BYTES) {
    throw new CorruptionError(record, dir, `value is ${value.length} bytes, shorter than its checksum`);
  }
  const payloadBytes = value.length - CHECKSUM_BYTES;
  const stored = new DataView(value.buffer, value.byteOffset, value.byteLength).getUint32(payloadBytes);
  const payload = value.subarray(0, payloadBytes);
  const actual = crc32c(payload, crc32c(key));
  if (stored !== actual) {
    throw new CorruptionError(record, dir, `checksum mismatch (stored ${hex(stored)}, computed ${hex(actual)})`);
  }
  return payload;
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, "0")}`;
}

/** A uint64 field as a number (see @raftmq/proto); anything else means the record is damaged. */
function wireNumber(value: unknown, field: string, record: string, dir: string): number {
  if (typeof value === "number" && Number.isSafeInteger(value)) return value;
  throw new CorruptionError(record, dir, `field ${field} is not a safe integer`);
}

function decodeProto<T>(decode: () => T, record: string, dir: string): T {
  try {
    return decode();
  } catch (error) {
    throw new CorruptionError(record, dir, `payload does not decode: ${(error as Error).message}`, { cause: error });
  }
}

export function encodeEntry(key: Uint8Array, entry: Entry): Uint8Array {
  return frame(key, raftmq.v1.Entry.encode(entry).finish());
}

/**
 * Puts for a run of entries, keys and framed values all cut from one buffer. This is the
 * append hot path: it writes the raftmq.v1.Entry wire format directly (proto3, fields in
 * number order, zero values omitted, as the generated encoder does) instead of allocating
 * per entry; decoding goes through the generated code.
 */
export function pushEntryPuts(entries: readonly Entry[], ops: BatchOp[]): void {
  let total = 0;
  for (const entry of entries) total += ENTRY_KEY_BYTES + entryWireBytes(entry) + CHECKSUM_BYTES;
  // A plain Uint8Array: Buffer's subarray pays for a species lookup on every call.
  const buffer = new Uint8Array(total);
  const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  let at = 0;
  for (const entry of entries) {
    buffer[at] = RecordKind.Entry;
    view.setUint32(at + 1, Math.floor(entry.index / 2 ** 32));
    view.setUint32(at + 5, entry.index >>> 0);
    at += ENTRY_KEY_BYTES;
    const start = at;
    if (entry.term !== 0) at = writeVarint(buffer, writeTag(buffer, at, 1, 0), entry.term);
    if (entry.index !== 0) at = writeVarint(buffer, writeTag(buffer, at, 2, 0), entry.index);
    if (entry.type !== 0) at = writeVarint(buffer, writeTag(buffer, at, 3, 0), entry.type);
    if (entry.data.byteLength !== 0) {
      at = writeVarint(buffer, writeTag(buffer, at, 4, 2), entry.data.byteLength);
      buffer.set(entry.data, at);
      at += entry.data.byteLength;
    }
    // Key and payload lie side by side in the buffer: one checksum call covers both.
    view.setUint32(at, crc32c(buffer, 0, start - ENTRY_KEY_BYTES, at));
    at += CHECKSUM_BYTES;
    ops.push({ type: "put", key: buffer.subarray(start - ENTRY_KEY_BYTES, start), value: buffer.subarray(start, at) });
  }
  if (at !== total) throw new Error(`entry encoder wrote ${at} bytes of the ${total} it sized`);
}

function entryWireBytes(entry: Entry): number {
  if (!Number.isSafeInteger(entry.type) || entry.type < 0 || entry.type >= 2 ** 31) throw new RangeError(`entry type ${entry.type} is not a known enum value`);
  let bytes = 0;
  if (entry.term !== 0) bytes += 1 + varintBytes(entry.term);
  if (entry.index !== 0) bytes += 1 + varintBytes(entry.index);
  if (entry.type !== 0) bytes += 1 + varintBytes(entry.type);
  if (entry.data.byteLength !== 0) bytes += 1 + varintBytes(entry.data.byteLength) + entry.data.byteLength;
  return bytes;
}

function varintBytes(value: number): number {
  let bytes = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 0x80);
    bytes++;
  }
  return bytes;
}

function writeTag(buffer: Uint8Array, at: number, field: number, wireType: number): number {
  buffer[at] = (field << 3) | wireType;
  return at + 1;
}

function writeVarint(buffer: Uint8Array, at: number, value: number): number {
  // Past 2^31 the bit operators would wrap; divide instead.
  while (value >= 0x80000000) {
    buffer[at++] = (value % 0x80) | 0x80;
    value = Math.floor(value / 0x80);
  }
  while (value >= 0x80) {
    buffer[at++] = (value & 0x7f) | 0x80;
    value >>>= 7;
  }
  buffer[at++] = value;
  return at;
}

export function decodeEntry(key: Uint8Array, value: Uint8Array, index: number, dir: string): Entry {
  const record = `entry ${index}`;
  const payload = unframe(key, value, record, dir);
  const decoded = decodeProto(() => raftmq.v1.Entry.decode(payload), record, dir);
  const storedIndex = wireNumber(decoded.index, "index", record, dir);
  if (storedIndex !== index) {
    throw new CorruptionError(record, dir, `record holds index ${storedIndex}`);
  }
  return { term: wireNumber(decoded.term, "term", record, dir), index, type: decoded.type, data: decoded.data };
}

export function encodeHardState(key: Uint8Array, hardState: HardState): Uint8Array {
  return frame(key, raftmq.v1.HardState.encode(hardState).finish());
}

export function decodeHardState(key: Uint8Array, value: Uint8Array, dir: string): HardState {
  const payload = unframe(key, value, "hard state", dir);
  const record = "hard state";
  const decoded = decodeProto(() => raftmq.v1.HardState.decode(payload), record, dir);
  return {
    term: wireNumber(decoded.term, "term", record, dir),
    vote: wireNumber(decoded.vote, "vote", record, dir),
    commit: wireNumber(decoded.commit, "commit", record, dir),
  };
}

/** Index and term of the last entry compacted away (0, 0 for a log that never was). */
export interface LogAnchor {
  index: number;
  term: number;
}

export function encodeLogAnchor(key: Uint8Array, anchor: LogAnchor): Uint8Array {
  const payload = new Uint8Array(16);
  const view = new DataView(payload.buffer);
  view.setFloat64(0, anchor.index);
  view.setFloat64(8, anchor.term);
  return frame(key, payload);
}

export function decodeLogAnchor(key: Uint8Array, value: Uint8Array, dir: string): LogAnchor {
  const payload = unframe(key, value, "log anchor", dir);
  if (payload.length !== 16) throw new CorruptionError("log anchor", dir, `payload is ${payload.length} bytes, expected 16`);
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const anchor = { index: view.getFloat64(0), term: view.getFloat64(8) };
  if (!isCount(anchor.index) || !isCount(anchor.term)) {
    throw new CorruptionError("log anchor", dir, `holds index ${anchor.index}, term ${anchor.term}`);
  }
  return anchor;
}

/**
 * The last index as of the latest write. LevelDB can lose the tail of a damaged table
 * without an error; comparing the entries found with this record turns that into corruption.
 */
/** A record holding one log index (the log end, the end of the deleted entries). */
export function encodeIndexRecord(key: Uint8Array, index: number): Uint8Array {
  const payload = new Uint8Array(8);
  new DataView(payload.buffer).setFloat64(0, index);
  return frame(key, payload);
}

export function decodeIndexRecord(key: Uint8Array, value: Uint8Array, record: string, dir: string): number {
  const payload = unframe(key, value, record, dir);
  if (payload.length !== 8) throw new CorruptionError(record, dir, `payload is ${payload.length} bytes, expected 8`);
  const index = new DataView(payload.buffer, payload.byteOffset, payload.byteLength).getFloat64(0);
  if (!isCount(index)) throw new CorruptionError(record, dir, `holds index ${index}`);
  return index;
}

export function encodeLogEnd(key: Uint8Array, lastIndex: number): Uint8Array {
  return encodeIndexRecord(key, lastIndex);
}

export function decodeLogEnd(key: Uint8Array, value: Uint8Array, dir: string): number {
  return decodeIndexRecord(key, value, "log end", dir);
}

export function encodeFormatVersion(key: Uint8Array, version: number): Uint8Array {
  const payload = new Uint8Array(4);
  new DataView(payload.buffer).setUint32(0, version);
  return frame(key, payload);
}

export function decodeFormatVersion(key: Uint8Array, value: Uint8Array, dir: string): number {
  const payload = unframe(key, value, "format record", dir);
  if (payload.length !== 4) throw new CorruptionError("format record", dir, `payload is ${payload.length} bytes, expected 4`);
  return new DataView(payload.buffer, payload.byteOffset, payload.byteLength).getUint32(0);
}

/**
 * What the stored snapshot is: its Raft metadata and how its data is laid out in chunk
 * records. Written in the same batch as the chunks; the checksum over the whole data catches
 * a snapshot whose chunks do not belong together.
 */
export interface SnapshotManifest {
  meta: SnapshotMeta;
  dataBytes: number;
  chunkCount: number;
  dataChecksum: number;
}

export function encodeSnapshotManifest(key: Uint8Array, manifest: SnapshotManifest): Uint8Array {
  const meta = raftmq.v1.SnapshotMeta.encode(manifest.meta).finish();
  const payload = new Uint8Array(16 + meta.length);
  const view = new DataView(payload.buffer);
  view.setFloat64(0, manifest.dataBytes);
  view.setUint32(8, manifest.chunkCount);
  view.setUint32(12, manifest.dataChecksum);
  payload.set(meta, 16);
  return frame(key, payload);
}

export function decodeSnapshotManifest(key: Uint8Array, value: Uint8Array, dir: string): SnapshotManifest {
  const record = "snapshot manifest";
  const payload = unframe(key, value, record, dir);
  if (payload.length < 16) throw new CorruptionError(record, dir, `payload is ${payload.length} bytes, expected at least 16`);
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const dataBytes = view.getFloat64(0);
  if (!isCount(dataBytes)) throw new CorruptionError(record, dir, `holds data size ${dataBytes}`);
  const decoded = decodeProto(() => raftmq.v1.SnapshotMeta.decode(payload.subarray(16)), record, dir);
  const confState: ConfState = {
    voters: (decoded.confState?.voters ?? []).map((id) => wireNumber(id, "voters", record, dir)),
    learners: (decoded.confState?.learners ?? []).map((id) => wireNumber(id, "learners", record, dir)),
  };
  return {
    meta: { index: wireNumber(decoded.index, "index", record, dir), term: wireNumber(decoded.term, "term", record, dir), confState },
    dataBytes,
    chunkCount: view.getUint32(8),
    dataChecksum: view.getUint32(12),
  };
}

function isCount(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}
