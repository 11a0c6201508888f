// The key layout of the data directory: a one-byte record kind, then big-endian integers, so
// LevelDB's byte order is log order and one kind's records form one contiguous key range.

export const RecordKind = {
  Format: 0x01,
  /** Where format 1 kept the hard state; read once to move it (see RecordKind.HardState). */
  LegacyHardState: 0x02,
  /** Index and term of the last compacted entry: the log holds the entries after it. */
  LogAnchor: 0x03,
  SnapshotManifest: 0x04,
  SnapshotChunk: 0x05,
  /** Where format 1 kept the log end. */
  LegacyLogEnd: 0x06,
  /**
   * Always there, just in front of the entries (format 3): a scan of the records in front of the
   * entries stops at it. Without it, LevelDB steps over every deleted entry it has yet to compact
   * away before it finds the scan's end, gigabytes under a deep queue.
   */
  EntriesStart: 0x0f,
  Entry: 0x10,
  /**
   * The two records rewritten by nearly every write sort after every entry: then the key range
   * of a freshly written LevelDB table overlaps only the newest tables of the level below, and
   * compaction rewrites a few megabytes instead of the whole level (format 2).
   */
  HardState: 0x20,
  /** The log's last index, rewritten by every write that moves it. */
  LogEnd: 0x21,
  /** Every entry up to this index is deleted (written with the last of those deletes). */
  DroppedThrough: 0x22,
} as const;
export type RecordKind = (typeof RecordKind)[keyof typeof RecordKind];

const TWO_TO_32 = 2 ** 32;

export const formatKey = Uint8Array.of(RecordKind.Format);
export const hardStateKey = Uint8Array.of(RecordKind.HardState);
export const logAnchorKey = Uint8Array.of(RecordKind.LogAnchor);
export const snapshotManifestKey = Uint8Array.of(RecordKind.SnapshotManifest);
export const logEndKey = Uint8Array.of(RecordKind.LogEnd);
export const entriesStartKey = Uint8Array.of(RecordKind.EntriesStart);
export const droppedThroughKey = Uint8Array.of(RecordKind.DroppedThrough);
export const legacyHardStateKey = Uint8Array.of(RecordKind.LegacyHardState);
export const legacyLogEndKey = Uint8Array.of(RecordKind.LegacyLogEnd);
/** Just past every entry key: the exclusive upper bound of the entry range. */
export const entryKeysEnd = Uint8Array.of(RecordKind.Entry + 1);

function writeUint64(view: DataView, offset: number, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`record key index must be a non-negative safe integer, got ${value}`);
  }
  view.setUint32(offset, Math.floor(value / TWO_TO_32));
  view.setUint32(offset + 4, value >>> 0);
}

export const ENTRY_KEY_BYTES = 9;

export function entryKey(index: number): Uint8Array {
  const key = new Uint8Array(ENTRY_KEY_BYTES);
  key[0] = RecordKind.Entry;
  writeUint64(new DataView(key.buffer), 1, index);
  return key;
}

/** The log index an entry key names, or undefined when the key is not an entry key. */
export function entryIndexOf(key: Uint8Array): number | undefined {
  if (key.length !== ENTRY_KEY_BYTES || key[0] !== RecordKind.Entry) return undefined;
  const view = new DataView(key.buffer, key.byteOffset, key.byteLength);
  return view.getUint32(1) * TWO_TO_32 + view.getUint32(5);
}

export function snapshotChunkKey(snapshotIndex: number, chunk: number): Uint8Array {
  const key = new Uint8Array(13);
  key[0] = RecordKind.SnapshotChunk;
  const view = new DataView(key.buffer);
  writeUint64(view, 1, snapshotIndex);
  view.setUint32(9, chunk);
  return key;
}

/** The snapshot index and chunk number a chunk key names, or undefined for any other key. */
export function snapshotChunkOf(key: Uint8Array): { snapshotIndex: number; chunk: number } | undefined {
  if (key.length !== 13 || key[0] !== RecordKind.SnapshotChunk) return undefined;
  const view = new DataView(key.buffer, key.byteOffset, key.byteLength);
  return { snapshotIndex: view.getUint32(1) * TWO_TO_32 + view.getUint32(5), chunk: view.getUint32(9) };
}
