// The small pieces: majority arithmetic, the in-flight window, MemoryStorage.
import { describe, expect, it } from "vitest";
import { CompactedError, EntryType, MemoryStorage, StorageError, UnavailableError } from "../src/index.ts";
import { Inflights } from "../src/inflights.ts";
import { committedIndex, voteResult } from "../src/quorum.ts";
import { SnapshotReceiver } from "../src/snapshot-receiver.ts";

const entry = (index: number, term: number, size = 0) => ({ index, term, type: EntryType.ENTRY_TYPE_NORMAL, data: new Uint8Array(size) });

describe("quorum", () => {
  it("commits the highest index a majority of voters holds", () => {
    const match = new Map([
      [1, 9],
      [2, 5],
      [3, 7],
      [4, 1],
      [5, 7],
    ]);
    expect(committedIndex([1, 2, 3, 4, 5], (id) => match.get(id) ?? 0)).toBe(7);
    expect(committedIndex([1, 2, 3, 4], (id) => match.get(id) ?? 0)).toBe(5);
  });

  it("wins, loses or waits on votes", () => {
    expect(voteResult([1, 2, 3], new Map([[1, true]]))).toBe("pending");
    expect(voteResult([1, 2, 3], new Map([[1, true], [2, true]]))).toBe("won");
    expect(voteResult([1, 2, 3], new Map([[1, true], [2, false], [3, false]]))).toBe("lost");
  });
});

describe("inflights", () => {
  it("is full at maxCount messages or maxBytes bytes, and frees acknowledged messages", () => {
    const w = new Inflights(3, 100);
    w.add(5, 10);
    w.add(6, 10);
    expect(w.full()).toBe(false);
    w.add(7, 10);
    expect(w.full()).toBe(true);
    w.freeLE(6);
    expect(w.count).toBe(1);
    w.add(8, 95);
    expect(w.full()).toBe(true); // 105 bytes
    w.freeFirstOne();
    expect(w.totalBytes).toBe(95);
    expect(() => w.add(8, 1)).toThrow();
  });
});

describe("MemoryStorage", () => {
  it("appends, truncates a conflicting suffix, and reads by byte budget", () => {
    const s = new MemoryStorage();
    s.append([entry(1, 1, 10), entry(2, 1, 10), entry(3, 1, 10)]);
    s.append([entry(2, 2, 10)]);
    expect(s.lastIndex()).toBe(2);
    expect(s.term(2)).toBe(2);
    s.append([entry(3, 2, 10), entry(4, 2, 10)]);
    expect(s.entries(1, 5, 25).map((e) => e.index)).toEqual([1, 2]);
    expect(s.entries(1, 5, 0).map((e) => e.index)).toEqual([1]);
    expect(() => s.term(9)).toThrow(UnavailableError);
    expect(() => s.append([entry(9, 2)])).toThrow(StorageError);
  });

  it("snapshots, compacts and installs a received snapshot", () => {
    const s = new MemoryStorage();
    s.append([entry(1, 1), entry(2, 1), entry(3, 2), entry(4, 2)]);
    s.createSnapshot(3, { voters: [1], learners: [] }, new Uint8Array([1]));
    expect(s.firstIndex()).toBe(1); // creating a snapshot releases nothing by itself
    expect(() => s.compact(4)).toThrow(StorageError); // not past the snapshot
    s.compact(3);
    expect(s.firstIndex()).toBe(4);
    expect(s.term(3)).toBe(2);
    expect(() => s.entries(2, 4, 100)).toThrow(CompactedError);
    expect(s.initialState().confState).toEqual({ voters: [1], learners: [] });
    s.applySnapshot({ meta: { index: 10, term: 3, confState: { voters: [1, 2], learners: [] } }, data: new Uint8Array(0) });
    expect([s.firstIndex(), s.lastIndex(), s.term(10)]).toEqual([11, 10, 3]);
    expect(() => s.applySnapshot(s.snapshot())).toThrow(StorageError);
  });
});

describe("SnapshotReceiver", () => {
  const meta = { index: 9, term: 2, confState: { voters: [1], learners: [] } };
  const chunk = (offset: number, data: number[], done: boolean, totalSize = 6) => ({ meta, offset, totalSize, data: new Uint8Array(data), done });

  it("assembles chunks in order, acknowledges duplicates, and restarts after a gap", () => {
    const r = new SnapshotReceiver(100);
    expect(r.receive(chunk(0, [1, 2], false))).toEqual({ kind: "ack", received: 2 });
    expect(r.receive(chunk(0 + 2, [3, 4], false))).toEqual({ kind: "ack", received: 4 });
    expect(r.receive(chunk(2, [3, 4], false))).toEqual({ kind: "ack", received: 4 }); // duplicate
    expect(r.receive(chunk(6, [7], true))).toEqual({ kind: "restart", received: 4 }); // gap
    expect(r.receive(chunk(4, [5, 6], true))).toEqual({ kind: "complete", snapshot: { meta, data: new Uint8Array([1, 2, 3, 4, 5, 6]) } });
  });

  it("refuses a snapshot larger than maxSnapshotBytes before holding any of it", () => {
    const r = new SnapshotReceiver(5);
    expect(r.receive(chunk(0, [1, 2], false))).toEqual({ kind: "restart", received: 0 });
    expect(r.receive(chunk(2, [3, 4], false))).toEqual({ kind: "restart", received: 0 });
  });
});
