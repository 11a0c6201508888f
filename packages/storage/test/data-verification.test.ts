// The full verification pass at open: damage anywhere in the data directory (a record's value,
// a table block LevelDB itself would not check, a truncated or deleted table, a damaged
// write-ahead-log record, a key this format never writes) is CorruptionError naming it.
import { randomBytes } from "node:crypto";
import { open as openFile, readdir, readFile, rm, stat, truncate } from "node:fs/promises";
import { join } from "node:path";
import { ClassicLevel } from "classic-level";
import { afterEach, describe, expect, it } from "vitest";
import { CorruptionError, RaftStorage } from "../src/index.ts";
import { checkTableFile, checkWriteAheadLog, manifestTables, type TableKeyRange } from "../src/leveldb-file-format.ts";
import { entryIndexOf, entryKey } from "../src/record-keys.ts";
import { makeEntries } from "./fixtures/log-entries.ts";
import { TempDirs } from "./fixtures/temp-data-dir.ts";

const temp = new TempDirs();
afterEach(() => temp.removeAll());

async function writeLog(dir: string, last: number, bytes: number, options: { compact: boolean }): Promise<void> {
  const storage = await RaftStorage.open({ dir });
  for (let lo = 1; lo <= last; lo += 500) {
    await storage.save({ hardState: { term: 1, vote: 1, commit: 0 }, entries: makeEntries(lo, Math.min(last, lo + 499), 1, bytes), snapshot: null });
  }
  await storage.close();
  if (options.compact) await compactAll(dir);
}

/** Compacts the whole database: its records end up in tables. */
async function compactAll(dir: string): Promise<void> {
  const db = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: "view", valueEncoding: "view" });
  await db.open();
  await db.compactRange(Uint8Array.of(0), Uint8Array.of(0xff));
  await db.close();
}

async function filesEnding(dir: string, suffix: string): Promise<string[]> {
  return (await readdir(dir)).filter((name) => name.endsWith(suffix)).sort();
}

async function largestTable(dir: string): Promise<string> {
  const tables = await filesEnding(dir, ".ldb");
  const sized = await Promise.all(tables.map(async (name) => ({ name, size: (await stat(join(dir, name))).size })));
  sized.sort((a, b) => b.size - a.size);
  const largest = sized[0];
  if (largest === undefined) throw new Error("no table file was written");
  return largest.name;
}

async function flipBytes(path: string, at: (size: number) => number, count = 4): Promise<void> {
  const handle = await openFile(path, "r+");
  try {
    const { size } = await handle.stat();
    const offset = at(size);
    const bytes = Buffer.alloc(count);
    await handle.read(bytes, 0, count, offset);
    for (let i = 0; i < count; i++) bytes[i] = (bytes[i] ?? 0) ^ 0x5a;
    await handle.write(bytes, 0, count, offset);
  } finally {
    await handle.close();
  }
}

async function openError(dir: string): Promise<CorruptionError> {
  const result = await RaftStorage.open({ dir }).then(
    async (storage) => {
      await storage.close();
      return null;
    },
    (error: unknown) => error,
  );
  if (!(result instanceof CorruptionError)) throw new Error(`expected CorruptionError, got ${result === null ? "a clean open" : String(result)}`);
  expect(result.message).toContain(dir);
  return result;
}

describe("table files (.ldb)", () => {
  it("a flipped byte in a data block names the table file and the block", async () => {
    const dir = await temp.make();
    await writeLog(dir, 4000, 300, { compact: true });
    const table = await largestTable(dir);
    await flipBytes(join(dir, table), (size) => Math.floor(size / 2));
    const error = await openError(dir);
    expect(error.record).toBe(`table file ${table}`);
    expect(error.message).toMatch(/data block \d+ at byte \d+ fails its checksum/);
  });

  it("a flipped byte in the index block, which LevelDB reads without checking, is found", async () => {
    const dir = await temp.make();
    await writeLog(dir, 4000, 300, { compact: true });
    const table = await largestTable(dir);
    // The index block sits just before the 48-byte footer.
    await flipBytes(join(dir, table), (size) => size - 80, 2);
    const error = await openError(dir);
    expect(error.record).toBe(`table file ${table}`);
  });

  it("a truncated table file is named", async () => {
    const dir = await temp.make();
    await writeLog(dir, 4000, 300, { compact: true });
    const table = await largestTable(dir);
    const path = join(dir, table);
    await truncate(path, Math.floor((await stat(path)).size / 2));
    const error = await openError(dir);
    expect(error.record).toBe(`table file ${table}`);
    expect(error.message).toContain("truncated");
  });

  it("a deleted table file is named", async () => {
    const dir = await temp.make();
    await writeLog(dir, 4000, 300, { compact: true });
    const table = await largestTable(dir);
    await rm(join(dir, table));
    const error = await openError(dir);
    expect(error.message).toContain(table);
    expect(error.message).toContain("missing");
  });

  it("a table that holds only entries below the log's start is not read; one that holds live entries is", async () => {
    const dir = await temp.make();
    // About 8 MB of random bytes (LevelDB compresses its tables): several tables of 2 MiB.
    const writer = await RaftStorage.open({ dir });
    for (let lo = 1; lo <= 4000; lo += 500) {
      const entries = makeEntries(lo, lo + 499, 1, 0).map((e) => ({ ...e, data: new Uint8Array(randomBytes(2000)) }));
      await writer.save({ hardState: { term: 1, vote: 1, commit: lo + 499 }, entries, snapshot: null });
    }
    await writer.close();
    await compactAll(dir);
    // A snapshot at 3,000 with nothing kept below it: entries 1-3,000 are deleted, and their
    // tables stay until LevelDB compacts them.
    const storage = await RaftStorage.open({ dir });
    await storage.createSnapshot(3000, { voters: [1], learners: [] }, new Uint8Array(16), 0);
    await storage.close();
    const tables = await filesEnding(dir, ".ldb");
    // Which table holds which entries, from LevelDB's own list of them.
    const manifest = manifestTables(await readFile(join(dir, (await readFile(join(dir, "CURRENT"), "utf8")).trim())));
    expect(manifest).not.toBeNull();
    const listed = [...(manifest as Map<number, TableKeyRange>).entries()];
    expect(listed.map(([n]) => `${String(n).padStart(6, "0")}.ldb`).sort()).toEqual(tables);
    const dead = listed.filter(([, r]) => (entryIndexOf(r.largest) ?? Number.POSITIVE_INFINITY) <= 3000 && entryIndexOf(r.smallest) !== undefined);
    const live = listed.filter(([, r]) => (entryIndexOf(r.largest) ?? Number.POSITIVE_INFINITY) > 3000);
    expect(dead.length).toBeGreaterThan(0);
    expect(live.length).toBeGreaterThan(0);
    const name = (n: number) => `${String(n).padStart(6, "0")}.ldb`;
    // Damage in a dead table: the open does not read it, and the log is whole.
    await flipBytes(join(dir, name((dead[0] as [number, TableKeyRange])[0])), (size) => Math.floor(size / 3));
    const reopened = await RaftStorage.open({ dir });
    expect(reopened.firstIndex()).toBe(3001);
    expect(reopened.entries(3001, 4001, Number.MAX_SAFE_INTEGER).length).toBe(1000);
    await reopened.close();
    // Damage in a live one is still found.
    const liveTable = name((live[0] as [number, TableKeyRange])[0]);
    await flipBytes(join(dir, liveTable), (size) => Math.floor(size / 3));
    expect((await openError(dir)).message).toContain(liveTable);
  });

  it("an intact table checks out, and every single-byte flip of a small one is caught", async () => {
    const dir = await temp.make();
    await writeLog(dir, 40, 50, { compact: true });
    const table = await largestTable(dir);
    const bytes = new Uint8Array(await readFile(join(dir, table)));
    expect(checkTableFile(bytes)).toBeNull();
    const missed: number[] = [];
    for (let at = 0; at < bytes.length; at++) {
      const copy = Uint8Array.from(bytes);
      copy[at] = (copy[at] ?? 0) ^ 0x01;
      if (checkTableFile(copy) === null) missed.push(at);
    }
    // Only the footer's padding (unused bytes between its two handles and the magic) is unchecked.
    expect(missed.length).toBeLessThan(40);
    expect(missed.filter((at) => at < bytes.length - 48)).toEqual([]);
  });
});

describe("write-ahead log (.log)", () => {
  it("a damaged record followed by more records is corruption, named by file and byte", async () => {
    const dir = await temp.make();
    await writeLog(dir, 1500, 100, { compact: false });
    const logs = await filesEnding(dir, ".log");
    const log = logs[logs.length - 1];
    if (log === undefined) throw new Error("no write-ahead log");
    await flipBytes(join(dir, log), (size) => Math.floor(size / 3));
    const error = await openError(dir);
    expect(error.record).toBe(`write-ahead log ${log}`);
    expect(error.message).toMatch(/record at byte \d+/);
  });

  it("a torn last record is a crash, not damage", () => {
    const record = (payload: number[]): number[] => {
      const header = [0, 0, 0, 0, payload.length & 0xff, payload.length >> 8, 1];
      return [...header, ...payload];
    };
    const torn = Uint8Array.from(record([1, 2, 3, 4, 5, 6, 7, 8]).slice(0, 10));
    expect(checkWriteAheadLog(torn)).toBeNull();
  });
});

describe("records", () => {
  it("a flipped byte inside a value is named by its record", async () => {
    const dir = await temp.make();
    await writeLog(dir, 100, 64, { compact: false });
    const db = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: "view", valueEncoding: "view" });
    await db.open();
    const value = await db.get(entryKey(42));
    if (value === undefined) throw new Error("entry 42 missing");
    const copy = Uint8Array.from(value);
    copy[20] = (copy[20] ?? 0) ^ 0xff;
    await db.put(entryKey(42), copy);
    await db.close();
    const error = await openError(dir);
    expect(error.record).toBe("entry 42");
  });

  it("a key this format never writes is named", async () => {
    const dir = await temp.make();
    await writeLog(dir, 10, 16, { compact: false });
    const db = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: "view", valueEncoding: "view" });
    await db.open();
    await db.put(Uint8Array.of(0x07, 0x01), Uint8Array.of(1));
    await db.close();
    const error = await openError(dir);
    expect(error.record).toBe("record 0701");
  });
});

describe("at run time", () => {
  it("a read that meets a block damaged after open is CorruptionError, not data", async () => {
    const dir = await temp.make();
    const last = 4000;
    const bytes = 3000;
    await writeLog(dir, last, bytes, { compact: true });
    // No tail cache: every read goes to LevelDB, whose 8 MiB block cache holds only the end of the log.
    const storage = await RaftStorage.open({ dir, cacheBytes: 0 });
    try {
      await flipBytes(join(dir, await largestTable(dir)), (size) => Math.floor(size * 0.15), 64);
      let caught: unknown = null;
      for (let index = 1; index <= last && caught === null; index += 50) {
        try {
          storage.entries(index, Math.min(last + 1, index + 50), Number.MAX_SAFE_INTEGER);
        } catch (error) {
          caught = error;
        }
      }
      expect(caught).toBeInstanceOf(CorruptionError);
      expect((caught as Error).message).toContain(dir);
    } finally {
      await storage.close();
    }
  });
});

describe("cost of the pass", () => {
  it("prints the open time per 10,000 entries, with and without the file checks", async () => {
    const dir = await temp.make();
    const entries = 50_000;
    await writeLog(dir, entries, 256, { compact: true });
    const runs = (verifyFiles: boolean) => {
      const times: number[] = [];
      return (async () => {
        for (let run = 0; run < 3; run++) {
          const started = performance.now();
          const storage = await RaftStorage.open({ dir, verifyFiles });
          times.push(performance.now() - started);
          expect(storage.lastIndex()).toBe(entries);
          await storage.close();
        }
        times.sort((a, b) => a - b);
        return times[1] ?? 0;
      })();
    };
    const full = await runs(true);
    const recordsOnly = await runs(false);
    const per10k = (ms: number) => ((ms * 10_000) / entries).toFixed(1);
    process.stdout.write(
      `open of ${entries} entries of 256 B: ${full.toFixed(0)} ms with file checks (${per10k(full)} ms per 10k), ` +
        `${recordsOnly.toFixed(0)} ms records only (${per10k(recordsOnly)} ms per 10k), median of 3\n`,
    );
  });
});
