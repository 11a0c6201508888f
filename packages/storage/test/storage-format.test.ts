// The data directory's format version: format 1 (hard state and log end in front of the
// entries) is moved to format 2 at open, in one synced batch, and format 2 (the snapshot's
// chunks in the log's database) to format 3 (in a database of their own); nothing is lost.
import { ClassicLevel } from "classic-level";
import { afterEach, describe, expect, it } from "vitest";
import { readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { decodeFormatVersion, encodeFormatVersion, encodeHardState, encodeLogEnd, frame } from "../src/record-codec.ts";
import { entriesStartKey, formatKey, hardStateKey, legacyHardStateKey, legacyLogEndKey, logEndKey, snapshotChunkKey } from "../src/record-keys.ts";
import { SNAPSHOTS_DIR } from "../src/snapshot-db.ts";
import { RaftStorage, STORAGE_FORMAT_VERSION } from "../src/index.ts";
import { makeEntries } from "./fixtures/log-entries.ts";
import { TempDirs } from "./fixtures/temp-data-dir.ts";

const temp = new TempDirs();
afterEach(() => temp.removeAll());

async function rawKeys(dir: string): Promise<string[]> {
  const db = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: "view", valueEncoding: "view" });
  await db.open();
  const keys = await db.keys({ lt: Uint8Array.of(0x10) }).all();
  const after = await db.keys({ gte: Uint8Array.of(0x11) }).all();
  await db.close();
  return [...keys, ...after].map((k) => Buffer.from(k).toString("hex"));
}

/** Turns a directory written by this code into what format 1 wrote. */
async function downgradeToFormat1(dir: string, hardState: { term: number; vote: number; commit: number }, last: number): Promise<void> {
  const db = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: "view", valueEncoding: "view" });
  await db.open();
  await db.batch([
    { type: "del", key: hardStateKey },
    { type: "del", key: logEndKey },
    { type: "del", key: entriesStartKey },
    { type: "put", key: legacyHardStateKey, value: encodeHardState(legacyHardStateKey, hardState) },
    { type: "put", key: legacyLogEndKey, value: encodeLogEnd(legacyLogEndKey, last) },
    { type: "put", key: formatKey, value: encodeFormatVersion(formatKey, 1) },
  ]);
  await db.close();
}

/** Turns a directory written by this code, holding a snapshot at `index`, into what format 2 wrote. */
async function downgradeToFormat2(dir: string, index: number, data: Uint8Array, chunkBytes: number): Promise<void> {
  const db = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: "view", valueEncoding: "view" });
  await db.open();
  const batch = db.batch();
  for (let chunk = 0; chunk * chunkBytes < data.length; chunk++) {
    const key = snapshotChunkKey(index, chunk);
    batch.put(key, frame(key, data.subarray(chunk * chunkBytes, (chunk + 1) * chunkBytes)));
  }
  batch.put(formatKey, encodeFormatVersion(formatKey, 2));
  await batch.write();
  await db.close();
  await rm(join(dir, SNAPSHOTS_DIR), { recursive: true });
}

async function formatOf(dir: string): Promise<number> {
  const db = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: "view", valueEncoding: "view" });
  await db.open();
  const value = await db.get(formatKey);
  await db.close();
  return decodeFormatVersion(formatKey, value as Uint8Array, dir);
}

describe("storage format", () => {
  it("keeps the records rewritten by every write behind the entries", async () => {
    const dir = await temp.make();
    const storage = await RaftStorage.open({ dir });
    await storage.save({ hardState: { term: 2, vote: 1, commit: 3 }, entries: makeEntries(1, 5, 2), snapshot: null });
    await storage.close();
    expect(STORAGE_FORMAT_VERSION).toBe(3);
    expect(await rawKeys(dir)).toEqual(["01", "0f", "20", "21"]);
  });

  it("moves a format 1 directory to format 2 at open, keeping hard state and log", async () => {
    const dir = await temp.make();
    const first = await RaftStorage.open({ dir });
    await first.save({ hardState: { term: 3, vote: 2, commit: 4 }, entries: makeEntries(1, 6, 3), snapshot: null });
    await first.close();
    await downgradeToFormat1(dir, { term: 3, vote: 2, commit: 4 }, 6);
    expect(await rawKeys(dir)).toEqual(["01", "02", "06"]);

    const reopened = await RaftStorage.open({ dir });
    expect(reopened.initialState().hardState).toEqual({ term: 3, vote: 2, commit: 4 });
    expect(reopened.lastIndex()).toBe(6);
    await reopened.save({ hardState: { term: 4, vote: 2, commit: 6 }, entries: makeEntries(7, 7, 4), snapshot: null });
    await reopened.close();
    expect(await rawKeys(dir)).toEqual(["01", "0f", "20", "21"]);

    const again = await RaftStorage.open({ dir });
    expect(again.initialState().hardState).toEqual({ term: 4, vote: 2, commit: 6 });
    expect(again.lastIndex()).toBe(7);
    await again.close();
  });

  it("moves a format 2 directory's snapshot into a database of its own at open, re-cut to this storage's chunk size", async () => {
    const dir = await temp.make();
    const data = Uint8Array.from({ length: 1000 }, (_, i) => (i * 7) % 256);
    const first = await RaftStorage.open({ dir, snapshotChunkBytes: 300 });
    await first.save({ hardState: { term: 2, vote: 1, commit: 30 }, entries: makeEntries(1, 40, 2), snapshot: null });
    await first.createSnapshot(30, { voters: [1, 2, 3], learners: [] }, data, 5);
    await first.close();
    // Format 2 kept the chunks in the log's database, cut to 300 bytes here.
    await downgradeToFormat2(dir, 30, data, 300);
    expect(await formatOf(dir)).toBe(2);

    const reopened = await RaftStorage.open({ dir, snapshotChunkBytes: 128 });
    expect(Buffer.from(reopened.snapshot().data).equals(Buffer.from(data))).toBe(true);
    expect(reopened.snapshot().meta.index).toBe(30);
    expect(reopened.firstIndex()).toBe(26);
    expect(reopened.lastIndex()).toBe(40);
    await reopened.close();
    expect(await formatOf(dir)).toBe(3);
    expect(await rawKeys(dir)).toEqual(["01", "03", "04", "0f", "20", "21", "22"]);
    expect(await readdir(join(dir, SNAPSHOTS_DIR))).toEqual(["30"]);

    const again = await RaftStorage.open({ dir, snapshotChunkBytes: 128 });
    expect(Buffer.from(again.snapshot().data).equals(Buffer.from(data))).toBe(true);
    expect(again.initialState().hardState).toEqual({ term: 2, vote: 1, commit: 30 });
    await again.close();
  });
});
