import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { ClassicLevel } from "classic-level";
import { afterEach, describe, expect, it } from "vitest";
import { CompactedError, EntryType, UnavailableError } from "@raftmq/raft";
import { RaftStorage, StorageContractError, type StorageOptions } from "../src/index.ts";
import { DROP_ENTRIES_PER_WRITE, LARGE_WRITE_BYTES } from "../src/raft-storage.ts";
import { decodeIndexRecord, encodeIndexRecord } from "../src/record-codec.ts";
import { droppedThroughKey, entryIndexOf, entryKey, snapshotChunkKey, snapshotChunkOf } from "../src/record-keys.ts";
import { SNAPSHOTS_DIR } from "../src/snapshot-db.ts";
import { isIntact, makeEntries, makeEntry } from "./fixtures/log-entries.ts";
import { TempDirs } from "./fixtures/temp-data-dir.ts";

const temp = new TempDirs();
const open: RaftStorage[] = [];

async function openStorage(options: StorageOptions): Promise<RaftStorage> {
  const storage = await RaftStorage.open(options);
  open.push(storage);
  return storage;
}

async function reopen(storage: RaftStorage, options: Partial<StorageOptions> = {}): Promise<RaftStorage> {
  await storage.close();
  return openStorage({ dir: storage.dir, ...options });
}

afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
  await temp.removeAll();
});

const noUpdate = { hardState: null, entries: [], snapshot: null };

async function withRawDb<T>(dir: string, use: (db: ClassicLevel<Uint8Array, Uint8Array>) => Promise<T>): Promise<T> {
  const db = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: "view", valueEncoding: "view" });
  await db.open();
  try {
    return await use(db);
  } finally {
    await db.close();
  }
}

/** The snapshot indexes with a database in the directory, and with chunk records in the log's. */
async function chunkIndexes(dir: string): Promise<{ databases: number[]; inLog: number[] }> {
  const keys = await withRawDb(dir, (db) => db.keys().all());
  const inLog = new Set<number>();
  for (const key of keys) {
    const chunk = snapshotChunkOf(key);
    if (chunk !== undefined) inLog.add(chunk.snapshotIndex);
  }
  const databases = (await readdir(join(dir, SNAPSHOTS_DIR)).catch(() => [])).map(Number);
  return { databases: databases.sort((a, b) => a - b), inLog: [...inLog].sort((a, b) => a - b) };
}

function putRaw(dir: string, key: Uint8Array, value: Uint8Array): Promise<void> {
  return withRawDb(dir, (db) => db.put(key, value));
}
const confState = { voters: [1, 2, 3], learners: [4] };

/** Eight ranges of entries, and a snapshot over all of them, stored: its compacted entries are being deleted. */
async function snapshotDeletingEntries(dir: string): Promise<{ s: RaftStorage; count: number; snapshotDone: Promise<unknown> }> {
  const s = await openStorage({ dir });
  const count = DROP_ENTRIES_PER_WRITE * 8;
  await s.save({ hardState: { term: 1, vote: 1, commit: count }, entries: makeEntries(1, count, 1), snapshot: null });
  const snapshotDone = s.createSnapshot(count, confState, new Uint8Array(10), 0);
  while (s.firstIndex() === 1) await new Promise((resolve) => setImmediate(resolve));
  return { s, count, snapshotDone };
}

/** Indexes of the entry records in the directory. */
/** Bytes that do not compress (xorshift32 from `seed`). */
function noise(seed: number, length: number): Uint8Array {
  let x = seed | 1;
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** Bytes of the log database's table files. */
async function tableBytes(dir: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(dir)) if (name.endsWith(".ldb")) total += (await stat(join(dir, name))).size;
  return total;
}

async function entryIndexesOnDisk(dir: string): Promise<number[]> {
  return (await withRawDb(dir, (db) => db.keys().all())).map(entryIndexOf).filter((i) => i !== undefined);
}

describe("a new data directory", () => {
  it("starts empty: dummy entry 0 at term 0, zero hard state, no snapshot", async () => {
    const s = await openStorage({ dir: await temp.make() });
    expect(s.firstIndex()).toBe(1);
    expect(s.lastIndex()).toBe(0);
    expect(s.term(0)).toBe(0);
    expect(s.initialState()).toEqual({ hardState: { term: 0, vote: 0, commit: 0 }, confState: { voters: [], learners: [] } });
    expect(s.snapshot().meta.index).toBe(0);
    expect(s.snapshot().data.byteLength).toBe(0);
    expect(s.entries(1, 1, 100)).toEqual([]);
    expect(s.health()).toEqual({ ok: true });
  });
});

describe("save", () => {
  it("appends entries and hard state; reads see them only after the save resolves", async () => {
    const s = await openStorage({ dir: await temp.make() });
    const pending = s.save({ hardState: { term: 1, vote: 1, commit: 0 }, entries: makeEntries(1, 10, 1), snapshot: null });
    expect(s.lastIndex()).toBe(0);
    await pending;
    expect(s.lastIndex()).toBe(10);
    expect(s.initialState().hardState).toEqual({ term: 1, vote: 1, commit: 0 });
    const got = s.entries(1, 11, Number.MAX_SAFE_INTEGER);
    expect(got.map((e) => e.index)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(got.every((e) => isIntact(e, e.index, 1))).toBe(true);
  });

  it("stores an entry past LARGE_WRITE_BYTES intact, in order with the saves around it", async () => {
    const s = await openStorage({ dir: await temp.make() });
    const data = new Uint8Array(LARGE_WRITE_BYTES + 3).map((_, i) => (i * 13) % 251);
    const order: number[] = [];
    const saves = [
      s.save({ hardState: { term: 1, vote: 1, commit: 0 }, entries: makeEntries(1, 2, 1), snapshot: null }),
      s.save({ hardState: null, entries: [{ term: 1, index: 3, type: EntryType.ENTRY_TYPE_NORMAL, data }], snapshot: null }),
      s.save({ hardState: { term: 1, vote: 1, commit: 3 }, entries: makeEntries(4, 4, 1), snapshot: null }),
    ].map((p, i) => p.then(() => order.push(i)));
    await Promise.all(saves);
    expect(order).toEqual([0, 1, 2]);
    const again = await reopen(s);
    expect(again.lastIndex()).toBe(4);
    expect(again.initialState().hardState.commit).toBe(3);
    const [big] = again.entries(3, 4, Number.MAX_SAFE_INTEGER);
    expect(Buffer.from(big?.data ?? []).equals(Buffer.from(data))).toBe(true);
  });

  it("truncates a conflicting suffix and replaces it, in the cache and on disk", async () => {
    const s = await openStorage({ dir: await temp.make() });
    await s.save({ hardState: { term: 1, vote: 1, commit: 0 }, entries: makeEntries(1, 20, 1), snapshot: null });
    // A new leader in term 2 overwrites from 12 and ends the log at 15.
    await s.save({ hardState: { term: 2, vote: 2, commit: 5 }, entries: makeEntries(12, 15, 2), snapshot: null });
    expect(s.lastIndex()).toBe(15);
    expect(s.term(11)).toBe(1);
    expect(s.term(12)).toBe(2);
    expect(() => s.term(16)).toThrow(UnavailableError);
    const got = s.entries(10, 16, Number.MAX_SAFE_INTEGER);
    expect(got.map((e) => [e.index, e.term])).toEqual([
      [10, 1],
      [11, 1],
      [12, 2],
      [13, 2],
      [14, 2],
      [15, 2],
    ]);
    const again = await reopen(s);
    expect(again.lastIndex()).toBe(15);
    const reread = again.entries(10, 16, Number.MAX_SAFE_INTEGER);
    expect(reread.every((e) => isIntact(e, e.index, e.index >= 12 ? 2 : 1))).toBe(true);
  });

  it("never serves stale entries from the cache after truncation below the cached range", async () => {
    // A cache of ~3 entries: the truncation point lies below what is cached.
    const s = await openStorage({ dir: await temp.make(), cacheBytes: 3 * (96 + 100) });
    await s.save({ hardState: { term: 1, vote: 1, commit: 0 }, entries: makeEntries(1, 30, 1, 100), snapshot: null });
    await s.save({ hardState: { term: 3, vote: 3, commit: 0 }, entries: makeEntries(10, 12, 3, 100), snapshot: null });
    expect(s.lastIndex()).toBe(12);
    const got = s.entries(1, 13, Number.MAX_SAFE_INTEGER);
    expect(got.map((e) => e.term)).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 1, 3, 3, 3]);
    expect(got.every((e) => isIntact(e, e.index, e.term, 100))).toBe(true);
    // Appending after the truncation continues the new suffix.
    await s.save({ hardState: null, entries: makeEntries(13, 40, 3, 100), snapshot: null });
    expect(s.entries(12, 41, Number.MAX_SAFE_INTEGER).every((e) => e.term === 3)).toBe(true);
  });

  it("serves entries from disk when the cache holds none of them", async () => {
    const s = await openStorage({ dir: await temp.make(), cacheBytes: 0 });
    await s.save({ hardState: null, entries: makeEntries(1, 50, 1), snapshot: null });
    const got = s.entries(1, 51, Number.MAX_SAFE_INTEGER);
    expect(got.length).toBe(50);
    expect(got.every((e) => isIntact(e, e.index, 1))).toBe(true);
  });

  it("keeps the entry type", async () => {
    const s = await openStorage({ dir: await temp.make() });
    const conf = { ...makeEntry(1, 1), type: EntryType.ENTRY_TYPE_CONF_CHANGE };
    await s.save({ hardState: null, entries: [conf], snapshot: null });
    const again = await reopen(s);
    expect(again.entries(1, 2, 1)[0]?.type).toBe(EntryType.ENTRY_TYPE_CONF_CHANGE);
  });

  it("stops at maxBytes but always returns at least one entry", async () => {
    const s = await openStorage({ dir: await temp.make() });
    await s.save({ hardState: null, entries: makeEntries(1, 10, 1, 100), snapshot: null });
    expect(s.entries(1, 11, 250).length).toBe(2);
    expect(s.entries(1, 11, 300).length).toBe(3);
    expect(s.entries(1, 11, 0).length).toBe(1);
  });

  it("refuses a gap, a term going back, a second vote, a commit past the log", async () => {
    const s = await openStorage({ dir: await temp.make() });
    await s.save({ hardState: { term: 2, vote: 1, commit: 0 }, entries: makeEntries(1, 5, 2), snapshot: null });
    await expect(s.save({ hardState: null, entries: makeEntries(7, 8, 2), snapshot: null })).rejects.toThrow(StorageContractError);
    await expect(s.save({ hardState: { term: 1, vote: 0, commit: 0 }, entries: [], snapshot: null })).rejects.toThrow(/term goes back/);
    await expect(s.save({ hardState: { term: 2, vote: 3, commit: 0 }, entries: [], snapshot: null })).rejects.toThrow(/vote/);
    await expect(s.save({ hardState: { term: 2, vote: 1, commit: 9 }, entries: [], snapshot: null })).rejects.toThrow(/beyond/);
    // Contract errors are the caller's bug, not a disk failure: the storage stays usable.
    expect(s.health()).toEqual({ ok: true });
    await s.save({ hardState: { term: 2, vote: 1, commit: 5 }, entries: makeEntries(6, 6, 2), snapshot: null });
    expect(s.lastIndex()).toBe(6);
  });

  it("an empty update writes nothing and resolves", async () => {
    const s = await openStorage({ dir: await temp.make() });
    await s.save(noUpdate);
    expect(s.lastIndex()).toBe(0);
  });
});

describe("term, entries and their errors", () => {
  it("throws CompactedError below the log and UnavailableError above it", async () => {
    const s = await openStorage({ dir: await temp.make() });
    await s.save({ hardState: { term: 1, vote: 1, commit: 100 }, entries: makeEntries(1, 100, 1), snapshot: null });
    await s.createSnapshot(60, confState, new Uint8Array([1, 2, 3]), 10);
    expect(s.firstIndex()).toBe(51);
    expect(s.term(50)).toBe(1);
    expect(() => s.term(49)).toThrow(CompactedError);
    expect(() => s.term(101)).toThrow(UnavailableError);
    expect(() => s.entries(50, 52, 1000)).toThrow(CompactedError);
    expect(() => s.entries(99, 102, 1000)).toThrow(UnavailableError);
    expect(s.entries(51, 101, Number.MAX_SAFE_INTEGER).length).toBe(50);
  });

  it("answers terms across many terms after reopen", async () => {
    const s = await openStorage({ dir: await temp.make() });
    for (let term = 1; term <= 10; term++) {
      await s.save({ hardState: { term, vote: 1, commit: 0 }, entries: makeEntries(term * 10 - 9, term * 10, term), snapshot: null });
    }
    const again = await reopen(s);
    for (let index = 1; index <= 100; index++) expect(again.term(index)).toBe(Math.ceil(index / 10));
  });
});

describe("snapshots and compaction", () => {
  it("createSnapshot stores meta with the log's term, compacts behind it, survives reopen", async () => {
    const s = await openStorage({ dir: await temp.make(), snapshotChunkBytes: 1000 });
    await s.save({ hardState: { term: 1, vote: 1, commit: 0 }, entries: makeEntries(1, 50, 1), snapshot: null });
    await s.save({ hardState: { term: 2, vote: 2, commit: 80 }, entries: makeEntries(51, 100, 2), snapshot: null });
    const data = new Uint8Array(4500).map((_, i) => i % 251);
    const snap = await s.createSnapshot(80, confState, data, 20);
    expect(snap.meta).toEqual({ index: 80, term: 2, confState });
    expect(s.firstIndex()).toBe(61);
    const again = await reopen(s, { snapshotChunkBytes: 1000 });
    expect(again.firstIndex()).toBe(61);
    expect(again.lastIndex()).toBe(100);
    expect(again.initialState()).toEqual({ hardState: { term: 2, vote: 2, commit: 80 }, confState });
    const stored = again.snapshot();
    expect(stored.meta).toEqual({ index: 80, term: 2, confState });
    expect(Buffer.from(stored.data).equals(Buffer.from(data))).toBe(true);
  });

  it("compacts the tables of dropped entries away once they pass compactDroppedBytes, and not before", async () => {
    const dir = await temp.make();
    const s = await openStorage({ dir, writeBufferBytes: 64 * 1024, compactDroppedBytes: 256 * 1024 });
    // Data that does not compress: 2,000 entries of 2 KiB, about 4 MB of tables.
    const entries = makeEntries(1, 2000, 1, 2048).map((e) => ({ ...e, data: noise(e.index, 2048) }));
    for (let at = 0; at < entries.length; at += 100) await s.save({ hardState: { term: 1, vote: 1, commit: at + 100 }, entries: entries.slice(at, at + 100), snapshot: null });
    // Dropping 50 entries (100 KB) does not call for a compaction.
    await s.createSnapshot(60, confState, new Uint8Array(10), 10);
    await s.close();
    expect(await tableBytes(dir)).toBeGreaterThan(2 * 1024 * 1024);
    expect(s.droppedCompactions).toBe(0);
    const again = await reopen(s, { writeBufferBytes: 64 * 1024, compactDroppedBytes: 256 * 1024 });
    await again.createSnapshot(1990, confState, new Uint8Array(10), 10);
    const until = Date.now() + 10_000;
    while (again.droppedCompactions === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    expect(again.droppedCompactions).toBe(1);
    // Their space is freed: the tables hold the 20 entries kept and little else.
    expect(await tableBytes(dir)).toBeLessThan(512 * 1024);
    // What is kept reads back whole, and after a reopen too.
    const kept = again.entries(1981, 2001, Number.MAX_SAFE_INTEGER);
    expect(kept.map((e) => e.index)).toEqual(Array.from({ length: 20 }, (_, i) => 1981 + i));
    const last = await reopen(again);
    expect(last.firstIndex()).toBe(1981);
    expect(Buffer.from(last.entries(2000, 2001, Number.MAX_SAFE_INTEGER)[0]?.data ?? []).equals(Buffer.from(entries[1999]?.data ?? []))).toBe(true);
  });

  it("refuses to snapshot entries that are not committed", async () => {
    const s = await openStorage({ dir: await temp.make() });
    await s.save({ hardState: { term: 1, vote: 1, commit: 10 }, entries: makeEntries(1, 30, 1), snapshot: null });
    await expect(s.createSnapshot(11, confState, new Uint8Array(1), 0)).rejects.toThrow(/not committed/);
    expect(s.snapshot().meta.index).toBe(0);
    await s.createSnapshot(10, confState, new Uint8Array(1), 0);
    expect(s.snapshot().meta.index).toBe(10);
  });

  it("a newer snapshot replaces the older one", async () => {
    const s = await openStorage({ dir: await temp.make(), snapshotChunkBytes: 10 });
    await s.save({ hardState: { term: 1, vote: 1, commit: 100 }, entries: makeEntries(1, 100, 1), snapshot: null });
    await s.createSnapshot(40, confState, new Uint8Array(95).fill(1), 0);
    await s.createSnapshot(70, { voters: [1], learners: [] }, new Uint8Array(33).fill(2), 0);
    await expect(s.createSnapshot(60, confState, new Uint8Array(1), 0)).rejects.toThrow(StorageContractError);
    const again = await reopen(s, { snapshotChunkBytes: 10 });
    const stored = again.snapshot();
    expect(stored.meta.index).toBe(70);
    expect(stored.data).toEqual(new Uint8Array(33).fill(2));
    expect(again.initialState().confState).toEqual({ voters: [1], learners: [] });
    expect(again.firstIndex()).toBe(71);
  });

  it("hands out the latest snapshot's data again without reading it, while it is held, and never an older one", async () => {
    const s = await openStorage({ dir: await temp.make(), snapshotChunkBytes: 10 });
    await s.save({ hardState: { term: 1, vote: 1, commit: 100 }, entries: makeEntries(1, 100, 1), snapshot: null });
    const first = new Uint8Array(95).fill(1);
    await s.createSnapshot(40, confState, first, 0);
    const held = s.snapshot().data;
    expect(held).toBe(first);
    expect(s.snapshot().data).toBe(held);
    await s.createSnapshot(70, confState, new Uint8Array(33).fill(2), 0);
    expect(s.snapshot().meta.index).toBe(70);
    expect(s.snapshot().data).toEqual(new Uint8Array(33).fill(2));
    // Reopened: the data verified at open is the data handed out.
    const again = await reopen(s, { snapshotChunkBytes: 10 });
    const read = again.snapshot().data;
    expect(read).toEqual(new Uint8Array(33).fill(2));
    expect(again.snapshot().data).toBe(read);
    // A received snapshot is handed out as it was given.
    const received = { meta: { index: 150, term: 3, confState }, data: new Uint8Array([9, 9]) };
    await again.save({ hardState: { term: 3, vote: 0, commit: 150 }, entries: [], snapshot: received });
    expect(again.snapshot().data).toBe(received.data);
  });

  it("writes a large snapshot's chunks in several writes, with saves going between them", async () => {
    const s = await openStorage({ dir: await temp.make(), snapshotChunkBytes: 64 * 1024 });
    await s.save({ hardState: { term: 1, vote: 1, commit: 40 }, entries: makeEntries(1, 50, 1), snapshot: null });
    const data = new Uint8Array(24 * 1024 * 1024).map((_, i) => (i * 7) % 251);
    const order: string[] = [];
    const snapshotDone = s.createSnapshot(40, confState, data, 5).then(() => order.push("snapshot"));
    // Queued after the snapshot was started, yet durable long before its last chunk.
    await new Promise((resolve) => setImmediate(resolve));
    const saveDone = s.save({ hardState: null, entries: makeEntries(51, 60, 1), snapshot: null }).then(() => order.push("save"));
    await Promise.all([snapshotDone, saveDone]);
    expect(order).toEqual(["save", "snapshot"]);
    const again = await reopen(s, { snapshotChunkBytes: 64 * 1024 });
    expect(again.lastIndex()).toBe(60);
    expect(again.snapshot().meta.index).toBe(40);
    expect(Buffer.from(again.snapshot().data).equals(Buffer.from(data))).toBe(true);
  });

  it("deletes the entries a snapshot compacts a range at a time, with saves going between the ranges", async () => {
    const dir = await temp.make();
    const order: string[] = [];
    const { s, count, snapshotDone } = await snapshotDeletingEntries(dir);
    const snapshotStored = snapshotDone.then(() => order.push("snapshot"));
    // Queued once the snapshot is stored, when the first range is being deleted: durable before the last.
    const saveDone = s.save({ hardState: null, entries: makeEntries(count + 1, count + 10, 1), snapshot: null }).then(() => order.push("save"));
    await Promise.all([snapshotStored, saveDone]);
    expect(order).toEqual(["save", "snapshot"]);
    await s.close();
    // Once createSnapshot resolves, no compacted entry is left.
    expect(await entryIndexesOnDisk(dir)).toEqual(makeEntries(count + 1, count + 10, 1).map((e) => e.index));
  });

  it("a snapshot stored before close resolves though its compacted entries are left; the next open deletes them", async () => {
    const dir = await temp.make();
    const { s, count, snapshotDone } = await snapshotDeletingEntries(dir);
    await s.close();
    await expect(snapshotDone).resolves.toMatchObject({ meta: { index: count } });
    expect((await entryIndexesOnDisk(dir)).length).toBeGreaterThan(0);
    const again = await openStorage({ dir });
    expect(again.firstIndex()).toBe(count + 1);
    await again.close();
    expect(await entryIndexesOnDisk(dir)).toEqual([]);
  });

  it("deletes compacted entries left behind after the dropped-through record, and all of them in a directory written before it", async () => {
    const dir = await temp.make();
    const { s, count, snapshotDone } = await snapshotDeletingEntries(dir);
    await snapshotDone;
    await s.close();
    const dropped = await withRawDb(dir, async (db) => decodeIndexRecord(droppedThroughKey, (await db.get(droppedThroughKey)) as Uint8Array, "dropped", dir));
    expect(dropped).toBe(count);
    // Entries a crash left behind, after the record, and one before it that a compaction in
    // LevelDB has yet to drop: only those after the record are looked for.
    const stale = makeEntries(count - 3, count, 1);
    await withRawDb(dir, async (db) => {
      for (const e of stale) await db.put(entryKey(e.index), new Uint8Array([1]));
      await db.put(droppedThroughKey, encodeIndexRecord(droppedThroughKey, count - 2));
    });
    const again = await openStorage({ dir });
    await again.close();
    expect(await entryIndexesOnDisk(dir)).toEqual([count - 3, count - 2]);
    // Without the record, the whole compacted range.
    await withRawDb(dir, (db) => db.del(droppedThroughKey));
    const third = await openStorage({ dir });
    expect(third.firstIndex()).toBe(count + 1);
    await third.close();
    expect(await entryIndexesOnDisk(dir)).toEqual([]);
  });

  it("removes the data of a snapshot that was not finished, at once when it fails and at open after a crash", async () => {
    const dir = await temp.make();
    const s = await openStorage({ dir, snapshotChunkBytes: 64 * 1024 });
    await s.save({ hardState: { term: 1, vote: 1, commit: 60 }, entries: makeEntries(1, 60, 1), snapshot: null });
    await s.createSnapshot(10, confState, new Uint8Array(100).fill(1), 0);
    // A received snapshot at 50 lands between the data of the one at 40 and its manifest.
    const failing = s.createSnapshot(40, confState, new Uint8Array(20 * 1024 * 1024).fill(2), 0);
    await new Promise((resolve) => setImmediate(resolve));
    const received = { meta: { index: 50, term: 1, confState }, data: new Uint8Array([5, 5, 5]) };
    await s.save({ hardState: null, entries: [], snapshot: received });
    await expect(failing).rejects.toThrow(StorageContractError);
    await s.close();
    expect(await chunkIndexes(dir)).toEqual({ databases: [50], inLog: [] });
    // What a crash left behind: the database of a snapshot whose manifest was never written, and
    // chunks in the log's database from before snapshots had databases of their own.
    await withRawDb(join(dir, SNAPSHOTS_DIR, "70"), (db) => db.put(snapshotChunkKey(70, 0), new Uint8Array(10)));
    await putRaw(dir, snapshotChunkKey(70, 0), new Uint8Array(10));
    await putRaw(dir, snapshotChunkKey(70, 1), new Uint8Array(10));
    expect(await chunkIndexes(dir)).toEqual({ databases: [50, 70], inLog: [70] });
    const again = await openStorage({ dir });
    expect(again.snapshot()).toEqual(received);
    await again.close();
    expect(await chunkIndexes(dir)).toEqual({ databases: [50], inLog: [] });
  });

  it("compact discards through the index and refuses to pass the snapshot", async () => {
    const s = await openStorage({ dir: await temp.make() });
    await s.save({ hardState: { term: 1, vote: 1, commit: 30 }, entries: makeEntries(1, 30, 1), snapshot: null });
    await s.createSnapshot(20, confState, new Uint8Array(8), 30);
    expect(s.firstIndex()).toBe(1);
    await s.compact(10);
    expect(s.firstIndex()).toBe(11);
    expect(s.term(10)).toBe(1);
    await s.compact(5); // already compacted: nothing to do
    expect(s.firstIndex()).toBe(11);
    await expect(s.compact(25)).rejects.toThrow(/latest snapshot/);
    const again = await reopen(s);
    expect(again.firstIndex()).toBe(11);
    expect(again.entries(11, 31, Number.MAX_SAFE_INTEGER).every((e) => isIntact(e, e.index, 1))).toBe(true);
  });

  it("a received snapshot that disagrees with the log replaces all of it", async () => {
    const s = await openStorage({ dir: await temp.make() });
    await s.save({ hardState: { term: 1, vote: 1, commit: 5 }, entries: makeEntries(1, 30, 1), snapshot: null });
    const snapshot = { meta: { index: 50, term: 3, confState }, data: new Uint8Array([7, 7, 7]) };
    await s.save({ hardState: { term: 3, vote: 0, commit: 50 }, entries: [], snapshot });
    expect(s.firstIndex()).toBe(51);
    expect(s.lastIndex()).toBe(50);
    expect(s.term(50)).toBe(3);
    expect(s.snapshot()).toEqual(snapshot);
    await s.save({ hardState: null, entries: makeEntries(51, 55, 3), snapshot: null });
    const again = await reopen(s);
    expect(again.firstIndex()).toBe(51);
    expect(again.lastIndex()).toBe(55);
    expect(again.initialState()).toEqual({ hardState: { term: 3, vote: 0, commit: 50 }, confState });
  });

  it("a received snapshot that matches the log keeps the entries after it", async () => {
    const s = await openStorage({ dir: await temp.make() });
    await s.save({ hardState: { term: 2, vote: 1, commit: 0 }, entries: makeEntries(1, 30, 2), snapshot: null });
    await s.save({ hardState: null, entries: [], snapshot: { meta: { index: 20, term: 2, confState }, data: new Uint8Array(0) } });
    expect(s.firstIndex()).toBe(21);
    expect(s.lastIndex()).toBe(30);
    const again = await reopen(s);
    expect(again.entries(21, 31, Number.MAX_SAFE_INTEGER).every((e) => isIntact(e, e.index, 2))).toBe(true);
  });

  it("a received snapshot at an index whose term differs drops the suffix", async () => {
    const s = await openStorage({ dir: await temp.make() });
    await s.save({ hardState: { term: 2, vote: 1, commit: 0 }, entries: makeEntries(1, 30, 2), snapshot: null });
    await s.save({ hardState: null, entries: makeEntries(21, 22, 4), snapshot: { meta: { index: 20, term: 4, confState }, data: new Uint8Array(0) } });
    expect(s.lastIndex()).toBe(22);
    expect(s.term(21)).toBe(4);
    const again = await reopen(s);
    expect(again.lastIndex()).toBe(22);
    expect(again.entries(21, 23, Number.MAX_SAFE_INTEGER).map((e) => e.term)).toEqual([4, 4]);
  });

  it("writes a large received snapshot's data to a database of its own, not the log's", async () => {
    const dir = await temp.make();
    const s = await openStorage({ dir, snapshotChunkBytes: 64 * 1024 });
    await s.save({ hardState: { term: 1, vote: 1, commit: 5 }, entries: makeEntries(1, 10, 1), snapshot: null });
    // The log's database, to watch its writes: the snapshot's 24 MB go elsewhere.
    const db = (s as unknown as { db: ClassicLevel<Uint8Array, Uint8Array> }).db;
    const writes: { ops: number; bytes: number }[] = [];
    const onWrite = (ops: { value?: Uint8Array }[]) => writes.push({ ops: ops.length, bytes: ops.reduce((n, op) => n + (op.value?.byteLength ?? 0), 0) });
    db.on("write", onWrite);
    const data = new Uint8Array(24 * 1024 * 1024).map((_, i) => (i * 13) % 251);
    const received = { meta: { index: 50, term: 2, confState }, data };
    await s.save({ hardState: { term: 2, vote: 0, commit: 50 }, entries: [], snapshot: received });
    db.off("write", onWrite);
    expect(writes.reduce((n, w) => n + w.bytes, 0)).toBeLessThan(64 * 1024);
    expect(await readdir(join(dir, SNAPSHOTS_DIR))).toEqual(["50"]);
    const again = await reopen(s, { snapshotChunkBytes: 64 * 1024 });
    expect(again.snapshot().meta).toEqual(received.meta);
    expect(Buffer.from(again.snapshot().data).equals(Buffer.from(data))).toBe(true);
    expect(again.firstIndex()).toBe(51);
  });

  it("refuses a received snapshot that is not newer than the stored one", async () => {
    const s = await openStorage({ dir: await temp.make() });
    await s.save({ hardState: null, entries: [], snapshot: { meta: { index: 20, term: 2, confState }, data: new Uint8Array(0) } });
    await expect(s.save({ hardState: null, entries: [], snapshot: { meta: { index: 20, term: 2, confState }, data: new Uint8Array(0) } })).rejects.toThrow(
      StorageContractError,
    );
  });
});

describe("reopen", () => {
  it("restores hard state, log, terms and cache contents", async () => {
    const dir = await temp.make();
    const s = await openStorage({ dir });
    await s.save({ hardState: { term: 5, vote: 3, commit: 150 }, entries: makeEntries(1, 200, 5), snapshot: null });
    const again = await reopen(s, { cacheBytes: 10_000 });
    expect(again.initialState().hardState).toEqual({ term: 5, vote: 3, commit: 150 });
    expect(again.firstIndex()).toBe(1);
    expect(again.lastIndex()).toBe(200);
    expect(again.entries(1, 201, Number.MAX_SAFE_INTEGER).every((e) => isIntact(e, e.index, 5))).toBe(true);
  });

  it("refuses saves after close", async () => {
    const s = await RaftStorage.open({ dir: await temp.make() });
    await s.close();
    await expect(s.save({ hardState: null, entries: makeEntries(1, 1, 1), snapshot: null })).rejects.toThrow(/closed/);
  });
});
