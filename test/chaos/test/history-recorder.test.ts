import { appendFile, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { check } from "../src/checker.ts";
import { HistoryParseError, RecorderError } from "../src/history-errors.ts";
import { HistoryRecorder } from "../src/history-recorder.ts";
import { readHistory } from "../src/read-history.ts";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "raftmq-history-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A clock the test moves by hand. */
function manualClock(): { clock: () => number; set(t: number): void } {
  let now = 0;
  return {
    clock: () => now,
    set: (t) => {
      now = t;
    },
  };
}

describe("history recorder", () => {
  it("round-trips invoke/completion pairs and plain ops through a real file, stamping time", async () => {
    const path = join(dir, "history.jsonl");
    const c = manualClock();
    const rec = await HistoryRecorder.open(path, { clock: c.clock });
    c.set(5);
    const pub = rec.invoke({ f: "publish", process: "p1", value: 1, queue: "q" });
    c.set(12);
    pub.ok();
    const lostPub = rec.invoke({ f: "publish", process: "p1", value: 2, queue: "q" });
    c.set(30);
    lostPub.info({ error: "deadline exceeded" });
    rec.record({ f: "kill", process: "nemesis", type: "info", value: "kill n2" });
    c.set(40);
    rec.record({ f: "deliver", process: "c1", type: "ok", value: 1, queue: "q", redelivered: false, deliveryTag: 1 });
    rec.invoke({ f: "ack", process: "c1", value: 1, deliveryTag: 1 }).ok();
    const drain = rec.invoke({ f: "drain", process: "drain", queue: "q" });
    drain.ok({ value: 0 });
    expect(pub.done).toBe(true);
    expect(() => pub.fail()).toThrow(RecorderError);
    expect(rec.count).toBe(10);
    await rec.close();

    const { ops, truncated } = await readHistory(path);
    expect(truncated).toBeUndefined();
    expect(ops).toEqual([
      { f: "publish", process: "p1", value: 1, queue: "q", type: "invoke", time: 5 },
      { f: "publish", process: "p1", value: 1, queue: "q", type: "ok", time: 12 },
      { f: "publish", process: "p1", value: 2, queue: "q", type: "invoke", time: 12 },
      { f: "publish", process: "p1", value: 2, queue: "q", type: "info", error: "deadline exceeded", time: 30 },
      { f: "kill", process: "nemesis", type: "info", value: "kill n2", time: 30 },
      { f: "deliver", process: "c1", type: "ok", value: 1, queue: "q", redelivered: false, deliveryTag: 1, time: 40 },
      { f: "ack", process: "c1", value: 1, deliveryTag: 1, type: "invoke", time: 40 },
      { f: "ack", process: "c1", value: 1, deliveryTag: 1, type: "ok", time: 40 },
      { f: "drain", process: "drain", queue: "q", type: "invoke", time: 40 },
      { f: "drain", process: "drain", queue: "q", type: "ok", value: 0, time: 40 },
    ]);
    const r = check(ops);
    expect(r.valid).toBe(true);
    expect(r.faults).toEqual([{ f: "kill", value: "kill n2", start: 30, end: 40, healed: false }]);
  });

  it("uses a monotonic clock by default and refuses ops after close", async () => {
    const path = join(dir, "history.jsonl");
    const rec = await HistoryRecorder.open(path);
    const a = rec.record({ f: "heal", process: "nemesis", type: "info", value: "heal" });
    await new Promise((resolve) => setTimeout(resolve, 5));
    const b = rec.record({ f: "heal", process: "nemesis", type: "info", value: "heal" });
    expect(a.time).toBeGreaterThanOrEqual(0);
    expect(b.time - a.time).toBeGreaterThanOrEqual(4);
    await rec.close();
    expect(() => rec.record({ f: "heal", process: "nemesis", type: "info", value: "heal" })).toThrow(/closed/);
    expect((await readFile(path, "utf8")).trim().split("\n")).toHaveLength(2);
  });

  it("writes many ops without waiting and keeps them all, in order", async () => {
    const path = join(dir, "history.jsonl");
    const rec = await HistoryRecorder.open(path);
    const n = 20_000;
    for (let v = 0; v < n; v++) rec.invoke({ f: "publish", process: `p${v % 4}`, value: v }).ok();
    await rec.close();
    const { ops } = await readHistory(path);
    expect(ops).toHaveLength(2 * n);
    expect(ops.map((op) => (op.f === "publish" ? op.value : -1)).filter((_, i) => i % 2 === 0)).toEqual(
      Array.from({ length: n }, (_, v) => v),
    );
  });

  it("fails loudly when the disk falls too far behind", async () => {
    const rec = await HistoryRecorder.open(join(dir, "history.jsonl"), { maxBufferedBytes: 1000 });
    const flood = (): void => {
      for (let v = 0; v < 1000; v++) rec.record({ f: "kill", process: "nemesis", type: "info", value: "x".repeat(100) });
    };
    expect(flood).toThrow(/behind/);
    await rec.close();
  });
});

describe("readHistory", () => {
  it("drops and reports a last line cut short by a crash", async () => {
    const path = join(dir, "history.jsonl");
    const rec = await HistoryRecorder.open(path);
    rec.invoke({ f: "publish", process: "p1", value: 1 }).ok();
    await rec.close();
    await appendFile(path, '{"f":"publish","process":"p1","type":"inv');
    const { ops, truncated } = await readHistory(path);
    expect(ops).toHaveLength(2);
    expect(truncated).toEqual({ lineNumber: 3, text: '{"f":"publish","process":"p1","type":"inv' });
  });

  it("accepts a complete last line without a newline", async () => {
    const path = join(dir, "history.jsonl");
    await writeFile(path, '{"f":"publish","process":"p1","type":"invoke","value":1,"time":0}');
    const { ops, truncated } = await readHistory(path);
    expect(truncated).toBeUndefined();
    expect(ops).toHaveLength(1);
  });

  it("rejects a bad line in the middle, naming the line", async () => {
    const path = join(dir, "history.jsonl");
    await writeFile(
      path,
      [
        '{"f":"publish","process":"p1","type":"invoke","value":1,"time":0}',
        '{"f":"publish","process":"p1","type":"done","value":1,"time":1}',
        '{"f":"publish","process":"p1","type":"ok","value":1,"time":2}',
        "",
      ].join("\n"),
    );
    await expect(readHistory(path)).rejects.toThrow(HistoryParseError);
    await expect(readHistory(path)).rejects.toThrow(/:2: type must be one of/);
  });

  it("validates each kind of op", async () => {
    const path = join(dir, "history.jsonl");
    const bad = [
      ['{"f":"deliver","process":"c1","type":"ok","value":1,"queue":"q","deliveryTag":1,"time":0}', /redelivered/],
      ['{"f":"publish","process":"p1","type":"invoke","value":1.5,"time":0}', /integer/],
      ['{"f":"kill","process":"c1","type":"info","value":"n1","time":0}', /nemesis/],
      ['{"f":"explode","process":"nemesis","type":"info","value":"n1","time":0}', /unknown f/],
      ['{"f":"ack","process":"c1","type":"ok","value":1,"time":-1}', /time/],
    ] as const;
    for (const [line, reason] of bad) {
      await writeFile(path, `${line}\n`);
      await expect(readHistory(path)).rejects.toThrow(reason);
    }
  });
});
