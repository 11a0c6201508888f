import { randomBytes } from "node:crypto";
// The body store: bodies read back as written, before and after their write lands and across a
// reopen; deletes by key and by range; damage is reported, never returned as a body.
import { readdir, rename, stat } from "node:fs/promises";
import { join } from "node:path";
import { ClassicLevel } from "classic-level";
import { afterEach, describe, expect, it } from "vitest";
import { BodyMissingError, BodyStore, bodyKeyBytes, CorruptionError } from "../src/index.ts";
import { TempDirs } from "./fixtures/temp-data-dir.ts";

const temp = new TempDirs();
afterEach(() => temp.removeAll());

const bytes = (key: number, size = 32) => Buffer.alloc(size, key % 251);
const asBuffer = (b: Uint8Array | null) => (b === null ? null : Buffer.from(b.buffer, b.byteOffset, b.byteLength));

function failOnError(error: Error): void {
  throw error;
}

async function bytesOnDisk(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    total += entry.isDirectory() ? await bytesOnDisk(path) : (await stat(path)).size;
  }
  return total;
}

const segmentsIn = async (dir: string) => (await readdir(dir)).filter((name) => name.startsWith("seg-")).sort();
/** Ranges [from, to) as LiveBodies.ranges. */
const ranges = (...pairs: [number, number][]) => Float64Array.from(pairs.flat());

async function stored(store: BodyStore): Promise<number[]> {
  const out: number[] = [];
  for await (const batch of store.keys(Number.MAX_SAFE_INTEGER)) out.push(...batch);
  return out;
}

describe("body store", () => {
  it("reads a body back at once, after its write lands, and after a reopen", async () => {
    const dir = await temp.make();
    const store = await BodyStore.open({ dir }, failOnError);
    store.put([
      { key: 1, bytes: bytes(1) },
      { key: 2, bytes: bytes(2, 0) },
      { key: 2 ** 40 + 3, bytes: bytes(3, 5000) },
    ]);
    // Not written yet: served from memory.
    expect(asBuffer(store.read(1, 32))).toEqual(bytes(1));
    await store.sync();
    expect(asBuffer(store.read(1, 32))).toEqual(bytes(1));
    expect(asBuffer(store.read(2 ** 40 + 3, 5000))).toEqual(bytes(3, 5000));
    expect(store.written).toBe(3);
    await store.close();
    const again = await BodyStore.open({ dir }, failOnError);
    expect(asBuffer(again.read(2 ** 40 + 3, 5000))).toEqual(bytes(3, 5000));
    expect(again.read(2, 0).length).toBe(0);
    expect(await stored(again)).toEqual([1, 2, 2 ** 40 + 3]);
    expect(() => again.read(7, 10)).toThrow(BodyMissingError);
    await again.close();
  });

  it("does not write again, after a reopen, the bodies of applied entries it already holds", async () => {
    const dir = await temp.make();
    const store = await BodyStore.open({ dir }, failOnError);
    expect(store.appliedAtOpen).toBe(-1);
    for (let key = 1; key <= 10; key++) store.putApplied([{ key, bytes: bytes(key) }]);
    // A body fetched from a peer is no applied one: it does not move the mark.
    store.put([{ key: 500, bytes: bytes(500) }]);
    await store.close();

    const again = await BodyStore.open({ dir }, failOnError);
    expect(again.appliedAtOpen).toBe(10);
    // Entries applied again after the restart: 6..10 are held, 11..15 are new.
    again.putApplied([6, 7, 8, 9, 10, 11, 12, 13, 14, 15].map((key) => ({ key, bytes: bytes(key) })));
    await again.sync();
    expect(again.skipped).toBe(5);
    expect(again.written).toBe(5);
    for (let key = 1; key <= 15; key++) expect(asBuffer(again.read(key, 32))).toEqual(bytes(key));
    await again.close();

    const third = await BodyStore.open({ dir }, failOnError);
    expect(third.appliedAtOpen).toBe(15);
    await third.close();
  });

  it("frees the disk space of a range of bodies once it is deleted", async () => {
    const dir = await temp.make();
    const store = await BodyStore.open({ dir }, failOnError);
    const count = 40_000;
    // Random bodies: LevelDB compresses its tables, and random bytes do not shrink.
    const last = new Uint8Array(randomBytes(1024));
    for (let lo = 1; lo <= count; lo += 1000) {
      store.put(Array.from({ length: 1000 }, (_, i) => ({ key: lo + i, bytes: lo + i === count ? last : new Uint8Array(randomBytes(1024)) })));
      await store.sync();
    }
    const written = await bytesOnDisk(dir);
    expect(written).toBeGreaterThan(count * 1024);
    await store.removeRange(1, count - 99);
    await store.whenCompacted();
    expect(store.compactions).toBe(1);
    expect(await bytesOnDisk(dir)).toBeLessThan(written / 8);
    expect(await stored(store)).toEqual(Array.from({ length: 100 }, (_, i) => count - 99 + i));
    expect(asBuffer(store.read(count, 1024))).toEqual(asBuffer(last));
    await store.close();
  });

  it("deletes by key and by range, and lists the keys below a bound in order", async () => {
    const dir = await temp.make();
    const store = await BodyStore.open({ dir }, failOnError);
    store.put(Array.from({ length: 5000 }, (_, i) => ({ key: i + 1, bytes: bytes(i + 1, 8) })));
    await store.remove([3, 1, 4999]);
    await store.removeRange(10, 4990);
    const left = await stored(store);
    expect(left).toEqual([2, 4, 5, 6, 7, 8, 9, 4990, 4991, 4992, 4993, 4994, 4995, 4996, 4997, 4998, 5000]);
    const below: number[] = [];
    for await (const batch of store.keys(5)) below.push(...batch);
    expect(below).toEqual([2, 4]);
    expect(store.has(2)).toBe(true);
    expect(store.has(3)).toBe(false);
    expect(store.readMany([2, 3]).map(asBuffer)).toEqual([bytes(2, 8), null]);
    await store.close();
  });

  it("reports a damaged or misplaced body instead of returning it", async () => {
    const dir = await temp.make();
    const store = await BodyStore.open({ dir }, failOnError);
    store.put([
      { key: 1, bytes: bytes(1) },
      { key: 2, bytes: bytes(2) },
    ]);
    await store.close();
    expect(await segmentsIn(dir)).toEqual(["seg-0000000000000001"]);
    const db = new ClassicLevel<Uint8Array, Uint8Array>(join(dir, "seg-0000000000000001"), { keyEncoding: "view", valueEncoding: "view" });
    await db.open();
    const one = (await db.get(bodyKeyBytes(1))) as Uint8Array;
    const flipped = Uint8Array.from(one);
    flipped[3] = (flipped[3] as number) ^ 1;
    await db.put(bodyKeyBytes(1), flipped);
    // Body 1's intact value stored under key 2: its checksum covers the key.
    await db.put(bodyKeyBytes(2), one);
    await db.close();
    const again = await BodyStore.open({ dir }, failOnError);
    expect(() => again.read(1, 32)).toThrow(CorruptionError);
    expect(() => again.read(2, 32)).toThrow(CorruptionError);
    await again.close();
  });

  it("begins a new segment once the newest holds its share, and reads across them after a reopen", async () => {
    const dir = await temp.make();
    const store = await BodyStore.open({ dir, segmentBytes: 10_000 }, failOnError);
    // Random bodies, which LevelDB cannot shrink: a reopen finds the newest segment's bytes in its files.
    const made = Array.from({ length: 42 }, () => new Uint8Array(randomBytes(1000)));
    const body = (key: number) => made[key] as Uint8Array;
    // 1 KiB bodies: a segment takes 10 of them before the next begins at the next key.
    for (let key = 1; key <= 35; key += 5) store.putApplied(Array.from({ length: 5 }, (_, i) => ({ key: key + i, bytes: body(key + i) })));
    await store.sync();
    expect(await segmentsIn(dir)).toEqual(["seg-0000000000000001", "seg-000000000000000b", "seg-0000000000000015", "seg-000000000000001f"]);
    expect(store.segmentCount).toBe(4);
    // The full ones are sealed: their last bodies went from LevelDB's log (and memtable) to a table.
    await store.whenCompacted();
    for (const name of (await segmentsIn(dir)).slice(0, 3)) {
      const files = await readdir(join(dir, name));
      const logBytes = (await Promise.all(files.filter((f) => f.endsWith(".log")).map(async (f) => (await stat(join(dir, name, f))).size))).reduce((a, b) => a + b, 0);
      expect(logBytes).toBeLessThan(1000);
      expect(files.some((f) => f.endsWith(".ldb"))).toBe(true);
    }
    for (let key = 1; key <= 35; key++) expect(asBuffer(store.read(key, 1000))).toEqual(asBuffer(body(key)));
    // Read back from the databases: each value is the body and its 4-byte checksum.
    expect(store.readBytes).toBe(35 * 1004);
    await store.close();
    const again = await BodyStore.open({ dir, segmentBytes: 10_000 }, failOnError);
    expect(again.appliedAtOpen).toBe(35);
    expect(await stored(again)).toEqual(Array.from({ length: 35 }, (_, i) => i + 1));
    expect((await again.readManyAsync([3, 17, 35, 36])).map(asBuffer)).toEqual([body(3), body(17), body(35), null].map(asBuffer));
    // The newest segment (31-35) goes on filling after the reopen: 36-40 fill it, 41 begins another.
    again.putApplied(Array.from({ length: 6 }, (_, i) => ({ key: 36 + i, bytes: body(36 + i) })));
    await again.sync();
    expect(await segmentsIn(dir)).toEqual(["seg-0000000000000001", "seg-000000000000000b", "seg-0000000000000015", "seg-000000000000001f", "seg-0000000000000029"]);
    await again.close();
  });

  it("drops whole the segments none of whose keys is live, frees their disk, and skips their keys when deleting", async () => {
    const dir = await temp.make();
    const store = await BodyStore.open({ dir, segmentBytes: 100 * 1024 }, failOnError);
    // Random bodies, 100 per segment: segments begin at 1, 101, 201, ..., 901.
    for (let lo = 1; lo <= 1000; lo += 100) {
      store.putApplied(Array.from({ length: 100 }, (_, i) => ({ key: lo + i, bytes: new Uint8Array(randomBytes(1024)) })));
      await store.sync();
    }
    expect(await segmentsIn(dir)).toHaveLength(10);
    const before = await bytesOnDisk(dir);
    // Live: 150 (in the segment of 101) and 450-459 (of 401); every key below 701 was handed out.
    // Segments of 1, 201, 301, 501 and 601 go; 701 and on hold keys at or above the frontier.
    expect(store.dropSegmentsWithout(ranges([150, 151], [450, 460]), 701)).toBe(5);
    expect(store.segmentCount).toBe(5);
    await store.whenCompacted();
    expect(store.segmentsDropped).toBe(5);
    expect(store.keysDropped).toBe(500);
    expect(await segmentsIn(dir)).toEqual(["seg-0000000000000065", "seg-0000000000000191", "seg-00000000000002bd", "seg-0000000000000321", "seg-0000000000000385"]);
    expect(await bytesOnDisk(dir)).toBeLessThan(before * 0.6);
    // Deletes reach only the segments that are left: 101-149 and 151-200 of the segment of 101.
    await store.removeRange(1, 150);
    await store.removeRange(151, 450);
    await store.remove([1, 2, 250, 151]);
    // Deletes count what was asked for (149 + 299 keys of ranges, 4 by key), whatever the
    // segments held or dropped before.
    expect(store.deleted).toBe(149 + 299 + 4);
    const left = await stored(store);
    expect(left.filter((k) => k < 701)).toEqual([150, ...Array.from({ length: 51 }, (_, i) => 450 + i)]);
    expect(() => store.read(5, 1024)).toThrow(BodyMissingError);
    expect(store.has(150)).toBe(true);
    // The newest segment stays, even with nothing live: the next bodies go there.
    expect(store.dropSegmentsWithout(ranges(), 2000)).toBe(4);
    await store.whenCompacted();
    expect(await segmentsIn(dir)).toEqual(["seg-0000000000000385"]);
    await store.close();
    const again = await BodyStore.open({ dir, segmentBytes: 100 * 1024 }, failOnError);
    expect(again.appliedAtOpen).toBe(1000);
    expect(await stored(again)).toEqual(Array.from({ length: 100 }, (_, i) => 901 + i));
    await again.close();
  });

  it("drops a segment that was sealed a moment ago, whatever of its writes and seal is still under way", async () => {
    const dir = await temp.make();
    const failures: Error[] = [];
    const store = await BodyStore.open({ dir, segmentBytes: 4096 }, (e) => failures.push(e));
    for (let round = 0; round < 5; round++) {
      const from = 1 + round * 40;
      store.putApplied(Array.from({ length: 40 }, (_, i) => ({ key: from + i, bytes: new Uint8Array(randomBytes(512)) })));
      // Consumed as soon as written: every segment but the newest goes at once.
      await Promise.resolve();
      store.dropSegmentsWithout(ranges(), from + 40);
    }
    await store.whenCompacted();
    expect(failures).toEqual([]);
    expect(store.segmentsDropped).toBeGreaterThanOrEqual(20);
    expect(await segmentsIn(dir)).toHaveLength(1);
    expect((await readdir(dir)).filter((n) => n.endsWith(".drop"))).toEqual([]);
    await store.close();
  });

  it("records the matched frontier apart from the segments, and finishes drops and moves a crash interrupted", async () => {
    const dir = await temp.make();
    const store = await BodyStore.open({ dir, segmentBytes: 100 }, failOnError);
    store.putApplied([1, 2, 3].map((key) => ({ key, bytes: bytes(key, 100) })));
    await store.markMatched(3);
    expect(store.matchedAt()).toBe(3);
    await store.close();
    // A drop that got as far as its rename.
    await rename(join(dir, "seg-0000000000000001"), join(dir, "seg-0000000000000001.drop"));
    const again = await BodyStore.open({ dir, segmentBytes: 100 }, failOnError);
    expect(await readdir(dir)).not.toContain("seg-0000000000000001.drop");
    expect(again.matchedAt()).toBe(3);
    expect(await stored(again)).toEqual([2, 3]);
    await again.close();
  });

  it("takes over a store kept in one database, and a move into segments a crash interrupted", async () => {
    const root = await temp.make();
    const dir = join(root, "bodies");
    const store = await BodyStore.open({ dir }, failOnError);
    store.putApplied([1, 2, 3].map((key) => ({ key, bytes: bytes(key) })));
    await store.close();
    // The earlier layout: the database in the folder itself.
    await rename(join(dir, "seg-0000000000000001"), join(root, "single"));
    await rename(dir, join(root, "gone"));
    await rename(join(root, "single"), dir);
    const taken = await BodyStore.open({ dir }, failOnError);
    expect(await segmentsIn(dir)).toEqual(["seg-0000000000000000"]);
    expect(taken.appliedAtOpen).toBe(3);
    expect(await stored(taken)).toEqual([1, 2, 3]);
    taken.putApplied([{ key: 4, bytes: bytes(4) }]);
    await taken.close();
    // A crash between the two renames leaves only the staging folder.
    await rename(dir, `${dir}.new`);
    const finished = await BodyStore.open({ dir }, failOnError);
    expect(await stored(finished)).toEqual([1, 2, 3, 4]);
    expect(asBuffer(finished.read(4, 32))).toEqual(bytes(4));
    await finished.close();
  });
});
