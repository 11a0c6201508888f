// The data directory's format version: format 1 (hard state and log end in front of the
// entries) is moved to format 2 at open, in one synced batch, and nothing is lost.
import { ClassicLevel } from "classic-level";
import { afterEach, describe, expect, it } from "vitest";
import { encodeFormatVersion, encodeHardState, encodeLogEnd } from "../src/record-codec.ts";
import { formatKey, hardStateKey, legacyHardStateKey, legacyLogEndKey, logEndKey } from "../src/record-keys.ts";
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
    { type: "put", key: legacyHardStateKey, value: encodeHardState(legacyHardStateKey, hardState) },
    { type: "put", key: legacyLogEndKey, value: encodeLogEnd(legacyLogEndKey, last) },
    { type: "put", key: formatKey, value: encodeFormatVersion(formatKey, 1) },
  ]);
  await db.close();
}

describe("storage format", () => {
  it("keeps the records rewritten by every write behind the entries", async () => {
    const dir = await temp.make();
    const storage = await RaftStorage.open({ dir });
    await storage.save({ hardState: { term: 2, vote: 1, commit: 3 }, entries: makeEntries(1, 5, 2), snapshot: null });
    await storage.close();
    expect(STORAGE_FORMAT_VERSION).toBe(2);
    expect(await rawKeys(dir)).toEqual(["01", "20", "21"]);
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
    expect(await rawKeys(dir)).toEqual(["01", "20", "21"]);

    const again = await RaftStorage.open({ dir });
    expect(again.initialState().hardState).toEqual({ term: 4, vote: 2, commit: 6 });
    expect(again.lastIndex()).toBe(7);
    await again.close();
  });
});
