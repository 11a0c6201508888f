import { randomBytes } from "node:crypto";
// The body store: bodies read back as written, before and after their write lands and across a
// reopen; deletes by key and by range; damage is reported, never returned as a body.
import { readdir, stat } from "node:fs/promises";
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
  for (const name of await readdir(dir)) total += (await stat(join(dir, name))).size;
  return total;
}

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
    const db = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: "view", valueEncoding: "view" });
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
});
