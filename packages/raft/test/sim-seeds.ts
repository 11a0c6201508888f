// Runs a range of simulator seeds and returns the failures, for the seed test files.
import { FAULT_PROFILES } from "../sim/fault-profiles.ts";
import { SimulationFailure, runSimulation } from "../sim/simulation.ts";

/** Seeds per configuration; RAFTMQ_SIM_SEEDS raises (or lowers) it. */
export function seedCount(fallback: number): number {
  const raw = process.env.RAFTMQ_SIM_SEEDS;
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`RAFTMQ_SIM_SEEDS must be a positive integer, got ${raw}`);
  return n;
}

/** Every fault profile in turn over `count` seeds; returns one replay line per failure. */
export async function runSeeds(nodes: 3 | 5, count: number, startSeed: number): Promise<{ failures: string[]; applied: number }> {
  const failures: string[] = [];
  let applied = 0;
  for (let i = 0; i < count; i++) {
    const seed = startSeed + i;
    const profile = FAULT_PROFILES[i % FAULT_PROFILES.length];
    try {
      const result = await runSimulation({ seed, nodes, profile });
      applied += result.lastApplied;
    } catch (error) {
      failures.push(error instanceof SimulationFailure ? error.message : String(error));
    }
  }
  return { failures, applied };
}
