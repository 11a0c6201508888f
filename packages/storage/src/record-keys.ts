// The key layout of the data directory: a one-byte record kind, then big-endian integers, so
// LevelDB's byte order is log order and one kind's records form one contiguous key range.

export const RecordKind = {
  Format: 0x01,
  HardState: 0x02,
  /** Index and term of the last compacted entry: the log holds the entries after it. */
  LogAnchor: 0x03,
  SnapshotManifest: 0x04,
  SnapshotChunk: 0x05,
  /** The log's last index, rewritten by every write that moves it. */
  LogEnd: 0x06,
  Entry: 0x10,
} as const;
export type RecordKind = (typeof RecordKind)[keyof typeof RecordKind];

const TWO_TO_32 = 2 ** 32;

export const formatKey = Uint8Array.of(RecordKind.Format);
export const hardStateKey = Uint8Array.of(RecordKind.HardState);
export const logAnchorKey = Uint8Array.of(RecordKind.LogAnchor);
export const snapshotManifestKey = Uint8Array.of(RecordKind.SnapshotManifest);
export const logEndKey = Uint8Array.of(RecordKind.LogEnd);
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
