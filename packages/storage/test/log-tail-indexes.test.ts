import { describe, expect, it } from "vitest";
import { cachedEntryBytes, TailCache } from "../src/tail-cache.ts";
import { TermRuns } from "../src/term-runs.ts";
import { makeEntries } from "./fixtures/log-entries.ts";

describe("term runs", () => {
  it("answer the term of every index, across truncation and compaction", () => {
    const runs = new TermRuns();
    for (let i = 1; i <= 30; i++) runs.append(i, Math.ceil(i / 10));
    expect(runs.runCount).toBe(3);
    expect([1, 10, 11, 20, 21, 30].map((i) => runs.termAt(i))).toEqual([1, 1, 2, 2, 3, 3]);
    runs.truncateFrom(15);
    for (let i = 15; i <= 18; i++) runs.append(i, 5);
    expect([14, 15, 18].map((i) => runs.termAt(i))).toEqual([2, 5, 5]);
    runs.dropThrough(12);
    expect(runs.termAt(12)).toBeUndefined();
    expect(runs.termAt(13)).toBe(2);
    expect(runs.runCount).toBe(2);
    expect(() => runs.append(10, 5)).toThrow(/does not follow/);
  });
});

describe("tail cache", () => {
  it("stays within its byte budget by evicting the oldest entries", () => {
    const entries = makeEntries(1, 100, 1, 100);
    const one = cachedEntryBytes(entries[0] ?? entries[1]!);
    const cache = new TailCache(10 * one);
    cache.append(entries);
    expect(cache.count).toBe(10);
    expect(cache.bytes).toBeLessThanOrEqual(10 * one);
    expect(cache.firstIndex()).toBe(91);
    expect(cache.get(90)).toBeUndefined();
    expect(cache.get(100)?.index).toBe(100);
  });

  it("drops a replaced suffix so it is never served again", () => {
    const cache = new TailCache(1 << 20);
    cache.append(makeEntries(1, 20, 1));
    cache.append(makeEntries(15, 16, 2));
    expect(cache.get(15)?.term).toBe(2);
    expect(cache.get(16)?.term).toBe(2);
    expect(cache.get(17)).toBeUndefined();
    cache.truncateFrom(10);
    expect(cache.get(10)).toBeUndefined();
    expect(cache.get(9)?.term).toBe(1);
  });

  it("starts over when new entries do not follow the cached ones", () => {
    const cache = new TailCache(1 << 20);
    cache.append(makeEntries(1, 5, 1));
    cache.append(makeEntries(50, 52, 2));
    expect(cache.firstIndex()).toBe(50);
    expect(cache.count).toBe(3);
    cache.dropThrough(51);
    expect(cache.firstIndex()).toBe(52);
  });
});
