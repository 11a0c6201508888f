import { describe, expect, it } from "vitest";
import { crc32c } from "../src/crc32c.ts";
import { CorruptionError } from "../src/errors.ts";
import {
  type BatchOp,
  decodeEntry,
  decodeHardState,
  decodeSnapshotManifest,
  encodeEntry,
  encodeHardState,
  encodeSnapshotManifest,
  frame,
  pushEntryPuts,
  unframe,
} from "../src/record-codec.ts";
import { entryIndexOf, entryKey, hardStateKey, snapshotManifestKey } from "../src/record-keys.ts";
import { makeEntry } from "./fixtures/log-entries.ts";

const DIR = "/var/lib/raftmq/node-1";

/** Bit-at-a-time CRC-32C, the definition the table-driven code must agree with. */
function referenceCrc32c(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of bytes) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return ~c >>> 0;
}

describe("CRC-32C", () => {
  it("matches the check values of RFC 3720 (iSCSI) appendix B.4", () => {
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i))).toBe(0x46dd794e);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i))).toBe(0x113fdb5c);
    expect(crc32c(new TextEncoder().encode("123456789"))).toBe(0xe3069283);
  });

  it("agrees with the bitwise definition at every length and when extended piecewise", () => {
    const bytes = Uint8Array.from({ length: 300 }, (_, i) => (i * 167 + 13) & 0xff);
    for (let n = 0; n <= bytes.length; n += 7) {
      const part = bytes.subarray(0, n);
      expect(crc32c(part)).toBe(referenceCrc32c(part));
      const cut = Math.floor(n / 3);
      expect(crc32c(part.subarray(cut), crc32c(part.subarray(0, cut)))).toBe(referenceCrc32c(part));
    }
  });
});

describe("record keys", () => {
  it("sort entry keys in log order across 32-bit boundaries", () => {
    const indexes = [0, 1, 255, 256, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 5, Number.MAX_SAFE_INTEGER];
    const keys = indexes.map(entryKey);
    for (let k = 1; k < keys.length; k++) expect(Buffer.compare(keys[k - 1] as Uint8Array, keys[k] as Uint8Array)).toBe(-1);
    expect(keys.map(entryIndexOf)).toEqual(indexes);
    expect(() => entryKey(-1)).toThrow(RangeError);
  });
});

describe("framed records", () => {
  it("round-trip entries and hard state", () => {
    const entry = makeEntry(2 ** 35, 7);
    const key = entryKey(entry.index);
    expect(decodeEntry(key, encodeEntry(key, entry), entry.index, DIR)).toEqual(entry);
    const hardState = { term: 9, vote: 0, commit: 0 };
    expect(decodeHardState(hardStateKey, encodeHardState(hardStateKey, hardState), DIR)).toEqual(hardState);
  });

  it("the batch entry encoder writes exactly what the generated protobuf encoder writes", () => {
    const entries = [
      { index: 1, term: 0, type: 0, data: new Uint8Array(0) },
      { index: 2, term: 1, type: 1, data: new Uint8Array([1, 2, 3]) },
      { index: 2 ** 31, term: 2 ** 31 + 1, type: 0, data: new Uint8Array(200).fill(9) },
      { index: 2 ** 45 + 17, term: 2 ** 40, type: 1, data: new Uint8Array(70_000).fill(3) },
    ];
    const ops: BatchOp[] = [];
    pushEntryPuts(entries, ops);
    expect(ops.length).toBe(entries.length);
    ops.forEach((op, k) => {
      const entry = entries[k];
      if (op.type !== "put" || entry === undefined) throw new Error("expected one put per entry");
      expect(Buffer.from(op.key).equals(Buffer.from(entryKey(entry.index)))).toBe(true);
      expect(Buffer.from(op.value).equals(Buffer.from(encodeEntry(op.key, entry)))).toBe(true);
      const decoded = decodeEntry(op.key, op.value, entry.index, DIR);
      expect([decoded.index, decoded.term, decoded.type]).toEqual([entry.index, entry.term, entry.type]);
      expect(Buffer.from(decoded.data).equals(Buffer.from(entry.data))).toBe(true);
    });
  });

  it("round-trip a snapshot manifest with an empty membership", () => {
    const manifest = { meta: { index: 10, term: 2, confState: { voters: [], learners: [] } }, dataBytes: 0, chunkCount: 0, dataChecksum: 0 };
    expect(decodeSnapshotManifest(snapshotManifestKey, encodeSnapshotManifest(snapshotManifestKey, manifest), DIR)).toEqual(manifest);
  });

  it("reject every single flipped bit, naming the record and the directory", () => {
    const key = entryKey(42);
    const value = encodeEntry(key, makeEntry(42, 3));
    for (let bit = 0; bit < value.length * 8; bit++) {
      const damaged = Uint8Array.from(value);
      damaged[bit >> 3] = (damaged[bit >> 3] ?? 0) ^ (1 << (bit & 7));
      expect(() => decodeEntry(key, damaged, 42, DIR)).toThrow(CorruptionError);
    }
    try {
      decodeEntry(key, value.subarray(0, value.length - 1), 42, DIR);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(CorruptionError);
      expect((error as Error).message).toContain("entry 42");
      expect((error as Error).message).toContain(DIR);
    }
  });

  it("reject a value shorter than its checksum and a value under another key", () => {
    expect(() => unframe(hardStateKey, new Uint8Array(3), "hard state", DIR)).toThrow(/shorter than its checksum/);
    const value = frame(entryKey(1), new Uint8Array([1, 2, 3]));
    expect(unframe(entryKey(1), value, "entry 1", DIR)).toEqual(new Uint8Array([1, 2, 3]));
    expect(() => unframe(entryKey(2), value, "entry 2", DIR)).toThrow(/checksum mismatch/);
  });
});
