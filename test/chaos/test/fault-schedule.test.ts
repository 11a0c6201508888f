import { describe, expect, it } from "vitest";
import { DEFAULT_SCHEDULE_LIMITS, NEMESES, PROCESS_NEMESES, parseNemeses, planFaults } from "../src/fault-schedule.ts";

describe("fault schedule", () => {
  it("one seed gives one schedule; another seed gives another", () => {
    const a = planFaults(42, [...NEMESES], 120_000);
    expect(planFaults(42, [...NEMESES], 120_000)).toEqual(a);
    expect(planFaults(43, [...NEMESES], 120_000)).not.toEqual(a);
  });

  it("faults follow one another inside the run, with quiet gaps, and use only the nemeses asked for", () => {
    const faults = planFaults(7, ["kill", "pause"], 60_000);
    expect(faults.length).toBeGreaterThan(5);
    let end = 0;
    for (const f of faults) {
      expect(f.atMs - end).toBeGreaterThanOrEqual(DEFAULT_SCHEDULE_LIMITS.minGapMs);
      expect(f.holdMs).toBeGreaterThanOrEqual(DEFAULT_SCHEDULE_LIMITS.minHoldMs);
      expect(f.holdMs).toBeLessThanOrEqual(DEFAULT_SCHEDULE_LIMITS.maxHoldMs);
      expect(["kill", "pause"]).toContain(f.plan.nemesis);
      end = f.atMs + f.holdMs;
    }
    expect(end).toBeLessThanOrEqual(60_000);
    expect(new Set(faults.map((f) => f.plan.nemesis))).toEqual(new Set(["kill", "pause"]));
  });

  it("no nemesis, no faults; the count is bounded", () => {
    expect(planFaults(1, [], 60_000)).toEqual([]);
    expect(planFaults(1, ["transfer"], 10_000_000, { ...DEFAULT_SCHEDULE_LIMITS, maxFaults: 3 })).toHaveLength(3);
  });

  it("parses nemesis lists", () => {
    expect(parseNemeses("all")).toEqual([...PROCESS_NEMESES]);
    expect(parseNemeses("all", { network: true })).toEqual([...NEMESES]);
    expect(parseNemeses("all", { network: true })).toContain("partition");
    expect(parseNemeses("kill, pause,kill")).toEqual(["kill", "pause"]);
    expect(parseNemeses("kill,partition,loss,slow")).toEqual(["kill", "partition", "loss", "slow"]);
    expect(parseNemeses("none")).toEqual([]);
    expect(() => parseNemeses("kill,cut")).toThrow(/unknown nemesis "cut"/);
  });
});
