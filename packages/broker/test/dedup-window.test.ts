import { describe, expect, it } from "vitest";
import type { PublishResult } from "../src/command-result.ts";
import { DedupWindows } from "../src/dedup-window.ts";

const result: PublishResult = { ok: true, kind: "publish", routedQueues: ["q"], duplicate: false, returned: false };

describe("DedupWindows", () => {
  it("remembers the last `window` sequences of a producer and reports older ones as forgotten", () => {
    const d = new DedupWindows(3, 10, 60_000);
    for (let seq = 1; seq <= 5; seq++) d.record("p", seq, result, 0);
    expect(d.lookup("p", 5).kind).toBe("duplicate");
    expect(d.lookup("p", 3).kind).toBe("duplicate");
    expect(d.lookup("p", 2)).toEqual({ kind: "tooOld", evictedUpTo: 2 });
    expect(d.lookup("p", 6).kind).toBe("new");
  });

  it("evicts the least recently seen producer, counting repeated publishes of the newest", () => {
    const d = new DedupWindows(8, 2, 60_000);
    d.record("a", 1, result, 0);
    d.record("b", 1, result, 1);
    d.record("a", 2, result, 2);
    d.record("a", 3, result, 3);
    d.record("c", 1, result, 4);
    expect([...d.producers.keys()]).toEqual(["a", "c"]);
    d.record("a", 4, result, 5);
    d.record("d", 1, result, 6);
    expect([...d.producers.keys()]).toEqual(["a", "d"]);
  });

  it("expires idle producers from the front and keeps ordering right afterwards", () => {
    const d = new DedupWindows(8, 3, 100);
    d.record("a", 1, result, 0);
    d.record("b", 1, result, 50);
    d.expire(200);
    expect(d.producers.size).toBe(0);
    d.record("b", 2, result, 210);
    d.record("a", 2, result, 220);
    d.record("b", 3, result, 230);
    expect([...d.producers.keys()]).toEqual(["a", "b"]);
  });

  it("new limits apply at once: shorter windows are cut and the least recently seen producers go", () => {
    const d = new DedupWindows(8, 3, 60_000);
    for (let seq = 1; seq <= 4; seq++) d.record("a", seq, result, seq);
    d.record("b", 1, result, 5);
    d.record("c", 1, result, 6);
    d.configure(2, 2, 60_000);
    expect([...d.producers.keys()]).toEqual(["b", "c"]);
    d.configure(2, 3, 60_000);
    for (let seq = 1; seq <= 4; seq++) d.record("a", seq, result, 6 + seq);
    d.configure(1, 3, 60_000);
    expect(d.lookup("a", 4).kind).toBe("duplicate");
    expect(d.lookup("a", 3)).toEqual({ kind: "tooOld", evictedUpTo: 3 });
    d.record("d", 1, result, 20);
    expect([...d.producers.keys()]).toEqual(["c", "a", "d"]);
  });

  it("restores producers in snapshot order, the last restored being the newest", () => {
    const d = new DedupWindows(8, 2, 60_000);
    d.restore("x", { lastSeenAt: 0, results: new Map([[1, result]]), evictedUpTo: -1, lowest: 1 });
    d.restore("y", { lastSeenAt: 1, results: new Map(), evictedUpTo: -1, lowest: -1 });
    d.record("x", 2, result, 2);
    d.record("z", 1, result, 3);
    expect([...d.producers.keys()]).toEqual(["x", "z"]);
  });
});
