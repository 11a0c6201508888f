// The fast failover under the simulator's faults: followers hear at once that their connections
// to the leader closed (a crash, or a partition that cuts them off from a leader that may well be
// alive) and campaign without waiting out their election timeout. Safety after every step and
// liveness after healing must hold as in every other profile.
import { describe, expect, it } from "vitest";
import { LEADER_LOSS_PROFILES } from "../sim/fault-profiles.ts";
import { runSimulation, SimulationFailure } from "../sim/simulation.ts";
import { seedCount } from "./sim-seeds.ts";

async function run(nodes: 3 | 5, count: number): Promise<{ failures: string[]; campaigns: number; applied: number }> {
  const failures: string[] = [];
  let campaigns = 0;
  let applied = 0;
  for (let i = 0; i < count; i++) {
    const profile = LEADER_LOSS_PROFILES[i % LEADER_LOSS_PROFILES.length];
    try {
      const result = await runSimulation({ seed: 1 + i, nodes, profile });
      campaigns += result.leaderLossCampaigns;
      applied += result.lastApplied;
    } catch (error) {
      failures.push(error instanceof SimulationFailure ? error.message : String(error));
    }
  }
  return { failures, campaigns, applied };
}

describe("simulator with leader-loss detection", () => {
  it.each([
    [3, 300],
    [5, 150],
  ] as const)("%i nodes: safe and live, and the early campaigns do happen", async (nodes, fallback) => {
    const count = seedCount(fallback);
    const { failures, campaigns, applied } = await run(nodes, count);
    expect(failures).toEqual([]);
    expect(applied).toBeGreaterThan(0);
    // The path under test is taken, many times over.
    expect(campaigns).toBeGreaterThan(count / 4);
  });
});
