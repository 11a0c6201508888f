// One seed reproduces one run exactly, and the simulator notices a broken node.
import { describe, expect, it } from "vitest";
import { profileNamed } from "../sim/fault-profiles.ts";
import { SimulationFailure, runSimulation } from "../sim/simulation.ts";
import { memoryStorageFactory, type SimStorage } from "../sim/sim-storage.ts";
import type { ConfState, Entry, HardState, Snapshot } from "../src/index.ts";

/** Delegates to a storage; the write methods can be swapped for tests. */
function wrap(inner: SimStorage, writes: Partial<Pick<SimStorage, "append" | "setHardState">>): SimStorage {
  return {
    initialState: () => inner.initialState(),
    firstIndex: () => inner.firstIndex(),
    lastIndex: () => inner.lastIndex(),
    term: (i: number) => inner.term(i),
    entries: (lo: number, hi: number, max: number) => inner.entries(lo, hi, max),
    snapshot: () => inner.snapshot(),
    append: writes.append ?? ((e: readonly Entry[]) => inner.append(e)),
    setHardState: writes.setHardState ?? ((h: HardState) => inner.setHardState(h)),
    applySnapshot: (s: Snapshot) => inner.applySnapshot(s),
    createSnapshot: (i: number, c: ConfState, d: Uint8Array) => inner.createSnapshot(i, c, d),
    compact: (i: number) => inner.compact(i),
  };
}

describe("simulator", () => {
  it("replays a seed to the same trace", async () => {
    const runOnce = async () => {
      const lines: string[] = [];
      const result = await runSimulation({ seed: 42, nodes: 5, profile: profileNamed("chaos"), trace: (l) => lines.push(l) });
      return { result, lines };
    };
    const a = await runOnce();
    const b = await runOnce();
    expect(a.lines.length).toBeGreaterThan(10);
    expect(b.lines).toEqual(a.lines);
    expect(b.result).toEqual(a.result);
  });

  it("accepts asynchronous storage writes", async () => {
    const memory = memoryStorageFactory();
    const asyncFactory = async (id: number): Promise<SimStorage> => {
      const inner = await memory(id);
      return wrap(inner, {
        append: async (e) => inner.append(e),
        setHardState: async (h) => inner.setHardState(h),
      });
    };
    const result = await runSimulation({ seed: 7, nodes: 3, profile: profileNamed("crashes"), storage: asyncFactory });
    expect(result.proposalsAcknowledged).toBeGreaterThan(0);
  });

  it("reports a storage that forgets its writes, with a replay command", async () => {
    // A disk that silently drops every append after the 50th: the cluster must notice.
    const memory = memoryStorageFactory();
    let appends = 0;
    const forgetful = async (id: number): Promise<SimStorage> => {
      const inner = await memory(id);
      return wrap(inner, {
        append: (e) => {
          appends++;
          if (appends < 50 || id !== 1) inner.append(e);
        },
      });
    };
    const run = runSimulation({ seed: 3, nodes: 3, profile: profileNamed("crashes"), storage: forgetful });
    await expect(run).rejects.toBeInstanceOf(SimulationFailure);
    await expect(run).rejects.toThrow(/pnpm sim --seed 3 --nodes 3 --profile crashes/);
  });
});
