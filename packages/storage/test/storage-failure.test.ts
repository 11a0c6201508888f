import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { RaftStorage, StorageFailedError } from "../src/index.ts";
import { isIntact, makeEntries } from "./fixtures/log-entries.ts";
import { TempDirs } from "./fixtures/temp-data-dir.ts";

const temp = new TempDirs();
afterEach(() => temp.removeAll());

describe("after a failed write", () => {
  it("reports unhealthy, acknowledges nothing it did not persist, and refuses every later save", async () => {
    const root = await mkdtemp(join(tmpdir(), "raftmq-failing-"));
    // A small memtable, so a new write-ahead log file is needed (and cannot be made) soon.
    const storage = await RaftStorage.open({ dir: join(root, "data"), writeBufferBytes: 1024 * 1024 });
    try {
      await storage.save({ hardState: { term: 1, vote: 1, commit: 0 }, entries: makeEntries(1, 10, 1, 1024), snapshot: null });
      // The directory disappears under the open database: the next write-ahead log file
      // cannot be created once the memtable fills, a real I/O error.
      await rm(root, { recursive: true, force: true });
      let next = 11;
      let failure: unknown = null;
      let acknowledged = 10;
      for (let batch = 0; batch < 200 && failure === null; batch++) {
        try {
          await storage.save({ hardState: null, entries: makeEntries(next, next + 63, 1, 1024), snapshot: null });
          acknowledged = next + 63;
          next += 64;
        } catch (error) {
          failure = error;
        }
      }
      expect(failure).toBeInstanceOf(StorageFailedError);
      expect((failure as Error).message).toMatch(/write failed/);
      const health = storage.health();
      expect(health.ok).toBe(false);
      if (!health.ok) expect(health.error).toBe(failure);
      // The failed batch is not visible; everything acknowledged still is.
      expect(storage.lastIndex()).toBe(acknowledged);
      expect(storage.entries(acknowledged, acknowledged + 1, 1)[0]?.index).toBe(acknowledged);
      await expect(storage.save({ hardState: { term: 2, vote: 0, commit: 0 }, entries: [], snapshot: null })).rejects.toBe(failure);
      await expect(storage.compact(1)).rejects.toBe(failure);
      expect(storage.initialState().hardState.term).toBe(1);
    } finally {
      await storage.close().catch(() => undefined);
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe("reads while a write is in flight", () => {
  it("see the log as it was until the write resolves, even where the write deletes", async () => {
    const storage = await RaftStorage.open({ dir: await temp.make(), cacheBytes: 0 });
    try {
      for (let round = 0; round < 10; round++) {
        const base = round * 20;
        const term = round + 1;
        await storage.save({ hardState: null, entries: makeEntries(base + 1, base + 30, term), snapshot: null });
        // Replace the last 20 entries with 10 of a new term: 10 records deleted, 10 rewritten.
        const pending = storage.save({ hardState: null, entries: makeEntries(base + 11, base + 20, term + 1), snapshot: null });
        let done = false;
        void pending.then(() => {
          done = true;
        });
        let reads = 0;
        while (!done) {
          const last = storage.lastIndex();
          const entries = storage.entries(base + 1, last + 1, Number.MAX_SAFE_INTEGER);
          const expectedTerm = (index: number) => (last === base + 30 ? term : index > base + 10 ? term + 1 : term);
          expect(entries.every((e) => isIntact(e, e.index, expectedTerm(e.index)))).toBe(true);
          reads++;
          await new Promise((resolve) => setImmediate(resolve));
        }
        await pending;
        expect(reads).toBeGreaterThan(0);
        expect(storage.lastIndex()).toBe(base + 20);
      }
    } finally {
      await storage.close();
    }
  });
});
