// Safety after every step and liveness after healing, over many seeded runs of 3 nodes.
import { describe, expect, it } from "vitest";
import { runSeeds, seedCount } from "./sim-seeds.ts";

describe("simulator, 3 nodes, every fault profile", () => {
  it("keeps election safety, log matching, leader completeness, state machine safety and liveness", async () => {
    const { failures, applied } = await runSeeds(3, seedCount(1000), 1);
    expect(failures).toEqual([]);
    expect(applied).toBeGreaterThan(0);
  });
});
