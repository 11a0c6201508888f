// Safety after every step and liveness after healing, over many seeded runs of 5 nodes.
import { describe, expect, it } from "vitest";
import { runSeeds, seedCount } from "./sim-seeds.ts";

describe("simulator, 5 nodes, every fault profile", () => {
  it("keeps election safety, log matching, leader completeness, state machine safety and liveness", async () => {
    const { failures, applied } = await runSeeds(5, seedCount(1000), 100_001);
    expect(failures).toEqual([]);
    expect(applied).toBeGreaterThan(0);
  });
});
