import { describe, expect, it } from "vitest";
import { check } from "../src/checker.ts";
import { buildTimeline, percentile } from "../src/timeline.ts";
import { renderTimelineSvg } from "../src/timeline-plot.ts";
import { HistoryBuilder } from "./history-builder.ts";

/** Second 0: two confirms (10 and 30 ms); second 1: none; second 2: one (500 ms) and a partition. */
function run(): HistoryBuilder {
  return new HistoryBuilder()
    .at(0)
    .invoke("p1", 1)
    .at(10)
    .complete("p1", 1, "ok")
    .at(100)
    .invoke("p1", 2)
    .at(130)
    .complete("p1", 2, "ok")
    .at(200)
    .consume("c1", 1)
    .at(1200)
    .nemesis("start-partition", "{n1} | {n2 n3}")
    .at(1900)
    .invoke("p1", 3)
    .at(2400)
    .complete("p1", 3, "ok")
    .at(2500)
    .nemesis("stop-partition", "{n1} | {n2 n3}")
    .at(2600)
    .consume("c1", 2)
    .consume("c1", 3);
}

describe("timeline", () => {
  it("buckets confirms, deliveries and confirm latency per second", () => {
    const ops = run().ops;
    const t = buildTimeline(ops, check(ops).faults);
    expect(t.bucketMs).toBe(1000);
    expect(t.buckets).toEqual([
      { t: 0, confirmedPerSec: 2, deliveredPerSec: 1, p50Ms: 10, p99Ms: 30 },
      { t: 1, confirmedPerSec: 0, deliveredPerSec: 0, p50Ms: null, p99Ms: null },
      { t: 2, confirmedPerSec: 1, deliveredPerSec: 2, p50Ms: 500, p99Ms: 500 },
    ]);
    expect(t.faults).toEqual([{ f: "start-partition", value: "{n1} | {n2 n3}", start: 1200, end: 2500, healed: true }]);
  });

  it("widens intervals so that a long run stays within the bucket limit", () => {
    const ops = new HistoryBuilder().at(0).publish("p1", 1).at(99_000).publish("p1", 2).ops;
    const t = buildTimeline(ops, [], { maxBuckets: 10 });
    expect(t.bucketMs).toBe(10_000);
    expect(t.buckets).toHaveLength(10);
    expect(t.buckets[9]).toMatchObject({ t: 90, confirmedPerSec: 0.1 });
  });

  it("takes nearest-rank percentiles", () => {
    const sorted = Float64Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(sorted, 0.5)).toBe(50);
    expect(percentile(sorted, 0.99)).toBe(99);
    expect(percentile([7], 0.99)).toBe(7);
    expect(percentile([], 0.5)).toBeNull();
  });

  it("plots throughput and latency with every fault window shaded and labelled", async () => {
    const ops = run().nemesis("kill", "kill n2").at(2700).nemesis("restart", "restart n2").ops;
    const svg = await renderTimelineSvg(buildTimeline(ops, check(ops).faults), { title: "run 7" });
    expect(svg.startsWith("<svg")).toBe(true);
    for (const text of ["run 7", "{n1} | {n2 n3}", "kill n2", "partition", "confirmed publishes/s", "deliveries/s", "p99"]) {
      expect(svg).toContain(text);
    }
    // Each window appears three times: its lane bar and its shading in both panels.
    for (const kind of ["partition", "kill"]) {
      const windows = svg.match(new RegExp(`aria-label="[^"]*fault: ${kind}"[^>]*aria-roledescription="rect mark"`, "g"));
      expect(windows).toHaveLength(3);
    }
  });

  it("draws no fault lanes for a run without faults", async () => {
    const ops = new HistoryBuilder().publish("p1", 1).consume("c1", 1).ops;
    const svg = await renderTimelineSvg(buildTimeline(ops, []));
    expect(svg).toContain("confirmed publishes/s");
    expect(svg).not.toContain(">fault<");
  });
});
