// Damaged data directories: every kind of damage is reported (CorruptionError or a clear
// open error naming the directory), never returned as data.
import { readdir, rm, stat, truncate, writeFile } from "node:fs/promises";
import { open as openFile } from "node:fs/promises";
import { join } from "node:path";
import { ClassicLevel } from "classic-level";
import { afterEach, describe, expect, it } from "vitest";
import { CorruptionError, RaftStorage, STORAGE_FORMAT_VERSION, StorageFailedError, UnsupportedFormatError } from "../src/index.ts";
import { encodeFormatVersion } from "../src/record-codec.ts";
import { entryKey, formatKey, hardStateKey, snapshotChunkKey } from "../src/record-keys.ts";
import { SNAPSHOTS_DIR } from "../src/snapshot-db.ts";
import { isIntact, makeEntries } from "./fixtures/log-entries.ts";
import { TempDirs } from "./fixtures/temp-data-dir.ts";

const temp = new TempDirs();
afterEach(() => temp.removeAll());

async function writeLog(dir: string, last: number, bytes?: number): Promise<void> {
  const storage = await RaftStorage.open({ dir, snapshotChunkBytes: 100 });
  await storage.save({ hardState: { term: 1, vote: 1, commit: Math.min(10, last) }, entries: makeEntries(1, last, 1, bytes), snapshot: null });
  await storage.close();
}

/** Rewrites one record through a raw LevelDB handle. */
async function rewrite(dir: string, key: Uint8Array, change: (value: Uint8Array | undefined) => Uint8Array | null): Promise<void> {
  const db = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: "view", valueEncoding: "view" });
  await db.open();
  const next = change(await db.get(key));
  if (next === null) await db.del(key);
  else await db.put(key, next);
  await db.close();
}

function flipped(value: Uint8Array | undefined, at: number): Uint8Array {
  if (value === undefined) throw new Error("record to damage is missing");
  const copy = Uint8Array.from(value);
  copy[at] = (copy[at] ?? 0) ^ 0x5a;
  return copy;
}

async function openError(dir: string): Promise<unknown> {
  return RaftStorage.open({ dir, snapshotChunkBytes: 100 }).then(
    async (storage) => {
      await storage.close();
      return null;
    },
    (error: unknown) => error,
  );
}

describe("damaged records", () => {
  it("a flipped byte inside an entry's value is CorruptionError naming the entry and the directory", async () => {
    const dir = await temp.make();
    await writeLog(dir, 20);
    await rewrite(dir, entryKey(7), (v) => flipped(v, 10));
    const error = await openError(dir);
    expect(error).toBeInstanceOf(CorruptionError);
    expect((error as CorruptionError).record).toBe("entry 7");
    expect((error as Error).message).toContain(dir);
  });

  it("a value truncated to a few bytes is CorruptionError, not a short entry", async () => {
    const dir = await temp.make();
    await writeLog(dir, 20);
    await rewrite(dir, entryKey(20), (v) => (v ?? new Uint8Array()).subarray(0, 3));
    const error = await openError(dir);
    expect(error).toBeInstanceOf(CorruptionError);
    expect((error as CorruptionError).record).toBe("entry 20");
  });

  it("an entry stored under another index's key is caught by the keyed checksum", async () => {
    const dir = await temp.make();
    await writeLog(dir, 20);
    const db = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: "view", valueEncoding: "view" });
    await db.open();
    const five = await db.get(entryKey(5));
    if (five === undefined) throw new Error("entry 5 missing");
    await db.put(entryKey(6), five);
    await db.close();
    const error = await openError(dir);
    expect(error).toBeInstanceOf(CorruptionError);
    expect((error as CorruptionError).record).toBe("entry 6");
  });

  it("a missing entry in the middle of the log is reported as a gap", async () => {
    const dir = await temp.make();
    await writeLog(dir, 20);
    await rewrite(dir, entryKey(12), () => null);
    const error = await openError(dir);
    expect(error).toBeInstanceOf(CorruptionError);
    expect((error as Error).message).toMatch(/entry 12 .*jumps from 11 to 13/);
  });

  it("entries lost from the end of the log are reported, not taken for a shorter log", async () => {
    const dir = await temp.make();
    await writeLog(dir, 20);
    await rewrite(dir, entryKey(20), () => null);
    await rewrite(dir, entryKey(19), () => null);
    const error = await openError(dir);
    expect(error).toBeInstanceOf(CorruptionError);
    expect((error as Error).message).toMatch(/entry 19 .*ends at 18 but was written up to 20/);
  });

  it("damaged hard state and snapshot chunks are named", async () => {
    const dir = await temp.make();
    const storage = await RaftStorage.open({ dir, snapshotChunkBytes: 100 });
    await storage.save({ hardState: { term: 1, vote: 1, commit: 20 }, entries: makeEntries(1, 20, 1), snapshot: null });
    await storage.createSnapshot(15, { voters: [1], learners: [] }, new Uint8Array(450).fill(9), 0);
    await storage.close();

    // The snapshot's chunks are in its own database.
    const snapshotDir = join(dir, SNAPSHOTS_DIR, "15");
    await rewrite(snapshotDir, snapshotChunkKey(15, 2), (v) => flipped(v, 50));
    const chunkError = await openError(dir);
    expect(chunkError).toBeInstanceOf(CorruptionError);
    expect((chunkError as CorruptionError).record).toBe("snapshot 15 chunk 2");

    await rewrite(snapshotDir, snapshotChunkKey(15, 2), (v) => flipped(v, 50));
    expect(await openError(dir)).toBeNull();
    await rewrite(dir, hardStateKey, (v) => flipped(v, 5));
    const hardStateError = await openError(dir);
    expect(hardStateError).toBeInstanceOf(CorruptionError);
    expect((hardStateError as CorruptionError).record).toBe("hard state");
    await rewrite(dir, hardStateKey, (v) => flipped(v, 5));
    expect(await openError(dir)).toBeNull();

    await rm(snapshotDir, { recursive: true });
    const missingError = await openError(dir);
    expect(missingError).toBeInstanceOf(CorruptionError);
    expect((missingError as CorruptionError).message).toMatch(/snapshot 15 .*missing although the snapshot manifest names it/);
  });
});

describe("format version", () => {
  it("refuses a directory written in an unknown format, naming both versions", async () => {
    const dir = await temp.make();
    await writeLog(dir, 3);
    await rewrite(dir, formatKey, () => encodeFormatVersion(formatKey, 99));
    const error = await openError(dir);
    expect(error).toBeInstanceOf(UnsupportedFormatError);
    expect((error as Error).message).toContain("version 99");
    expect((error as Error).message).toContain(`supports version ${STORAGE_FORMAT_VERSION}`);
    expect((error as Error).message).toContain(dir);
  });

  it("refuses a directory whose CURRENT or MANIFEST is gone instead of starting an empty database beside its files", async () => {
    for (const damage of ["no CURRENT", "no MANIFEST", "CURRENT names a missing MANIFEST"]) {
      const dir = await temp.make();
      await writeLog(dir, 30);
      const names = await readdir(dir);
      if (damage === "no CURRENT") await rm(join(dir, "CURRENT"));
      if (damage === "no MANIFEST") for (const n of names) if (n.startsWith("MANIFEST-")) await rm(join(dir, n));
      if (damage === "CURRENT names a missing MANIFEST") await writeFile(join(dir, "CURRENT"), "MANIFEST-999999\n");
      const error = await openError(dir);
      expect(error, damage).toBeInstanceOf(CorruptionError);
      expect((error as Error).message, damage).toContain("file list");
      expect((error as Error).message, damage).toContain(dir);
    }
  });

  it("refuses a non-empty directory without a format record", async () => {
    const dir = await temp.make();
    await writeLog(dir, 3);
    await rewrite(dir, formatKey, () => null);
    const error = await openError(dir);
    expect(error).toBeInstanceOf(CorruptionError);
    expect((error as CorruptionError).record).toBe("format record");
  });
});

describe("damaged LevelDB files", () => {
  /** Writes a log and pushes it into sorted table files; returns the largest one. */
  async function tableFile(dir: string): Promise<string> {
    await writeLog(dir, 3000, 300);
    const db = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: "view", valueEncoding: "view" });
    await db.open();
    await db.compactRange(Uint8Array.of(0), Uint8Array.of(0xff));
    await db.close();
    const tables = (await readdir(dir)).filter((name) => name.endsWith(".ldb"));
    const sized = await Promise.all(tables.map(async (name) => ({ name, size: (await stat(join(dir, name))).size })));
    sized.sort((a, b) => b.size - a.size);
    const largest = sized[0];
    if (largest === undefined) throw new Error("no table file was written");
    return join(dir, largest.name);
  }

  function expectClearError(error: unknown, dir: string): void {
    expect(error instanceof CorruptionError || error instanceof StorageFailedError).toBe(true);
    expect((error as Error).message).toContain(dir);
  }

  it("flipped bytes inside a table file are reported, not returned", async () => {
    const dir = await temp.make();
    const file = await tableFile(dir);
    const handle = await openFile(file, "r+");
    const { size } = await handle.stat();
    await handle.write(new Uint8Array(64).fill(0xa5), 0, 64, Math.floor(size / 3));
    await handle.close();
    expectClearError(await openError(dir), dir);
  });

  it("a truncated table file is reported", async () => {
    const dir = await temp.make();
    const file = await tableFile(dir);
    await truncate(file, Math.floor((await stat(file)).size / 2));
    expectClearError(await openError(dir), dir);
  });

  it("a torn tail of the write-ahead log loses only unacknowledged-looking batches, never returns torn entries", async () => {
    const dir = await temp.make();
    const storage = await RaftStorage.open({ dir });
    for (let batch = 0; batch < 20; batch++) {
      await storage.save({ hardState: null, entries: makeEntries(batch * 10 + 1, batch * 10 + 10, 1, 200), snapshot: null });
    }
    await storage.close();
    const logs = (await readdir(dir)).filter((name) => name.endsWith(".log"));
    const log = logs[logs.length - 1];
    if (log === undefined) throw new Error("no write-ahead log file");
    const path = join(dir, log);
    await truncate(path, (await stat(path)).size - 700);
    const reopened = await RaftStorage.open({ dir });
    try {
      const last = reopened.lastIndex();
      expect(last).toBeLessThan(200);
      const entries = reopened.entries(1, last + 1, Number.MAX_SAFE_INTEGER);
      expect(entries.length).toBe(last);
      expect(entries.every((e, k) => e.index === k + 1 && isIntact(e, e.index, 1, 200))).toBe(true);
    } finally {
      await reopened.close();
    }
  });
});
