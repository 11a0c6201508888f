// The Raft simulator's smoke configurations, with every node's log on real LevelDB: crashes
// close nothing cleanly, and each restart reopens the node's data directory from disk.
import type { ConfState, Entry, HardState, Snapshot } from "@raftmq/raft";
import { type SimStorage, type StorageFactory, profileNamed, runSimulation } from "@raftmq/raft/sim";
import { afterEach, describe, expect, it } from "vitest";
import { RaftStorage } from "../src/index.ts";
import { TempDirs } from "./fixtures/temp-data-dir.ts";

/** The simulator's write calls, each one synced save of the real storage. */
class SimulatedNodeDisk implements SimStorage {
  constructor(readonly storage: RaftStorage) {}
  append(entries: readonly Entry[]): Promise<void> {
    return this.storage.save({ hardState: null, entries: [...entries], snapshot: null });
  }
  setHardState(hardState: HardState): Promise<void> {
    return this.storage.save({ hardState, entries: [], snapshot: null });
  }
  applySnapshot(snapshot: Snapshot): Promise<void> {
    return this.storage.save({ hardState: null, entries: [], snapshot });
  }
  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Promise<Snapshot> {
    // The simulator compacts on its own schedule, so the snapshot keeps the whole log.
    return this.storage.createSnapshot(index, confState, data, Number.MAX_SAFE_INTEGER);
  }
  compact(index: number): Promise<void> {
    return this.storage.compact(index);
  }
  initialState() {
    return this.storage.initialState();
  }
  firstIndex() {
    return this.storage.firstIndex();
  }
  lastIndex() {
    return this.storage.lastIndex();
  }
  term(index: number) {
    return this.storage.term(index);
  }
  entries(lo: number, hi: number, maxBytes: number) {
    return this.storage.entries(lo, hi, maxBytes);
  }
  snapshot() {
    return this.storage.snapshot();
  }
}

const temp = new TempDirs();
const open = new Set<RaftStorage>();

afterEach(async () => {
  await Promise.all([...open].map((s) => s.close()));
  open.clear();
  await temp.removeAll();
});

function levelDbFactory(): StorageFactory {
  const dirs = new Map<number, string>();
  const current = new Map<number, RaftStorage>();
  return async (id) => {
    // A restart after a crash: drop the old handle (releasing the lock) and read the disk again.
    const previous = current.get(id);
    if (previous !== undefined) {
      open.delete(previous);
      await previous.close();
    }
    let dir = dirs.get(id);
    if (dir === undefined) {
      dir = await temp.make(`raftmq-sim-node-${id}-`);
      dirs.set(id, dir);
    }
    const storage = await RaftStorage.open({ dir, snapshotChunkBytes: 256 });
    current.set(id, storage);
    open.add(storage);
    return new SimulatedNodeDisk(storage);
  };
}

describe("the Raft simulator on LevelDB storage", () => {
  const runs: { nodes: 3 | 5; profile: string; seed: number }[] = [
    { nodes: 3, profile: "crashes", seed: 11 },
    { nodes: 3, profile: "lossy", seed: 12 },
    { nodes: 5, profile: "partitions", seed: 13 },
    { nodes: 3, profile: "chaos", seed: 14 },
    { nodes: 3, profile: "membership", seed: 15 },
  ];
  for (const run of runs) {
    it(`${run.nodes} nodes, ${run.profile}, seed ${run.seed}: safe, live, and restarts read back what was persisted`, async () => {
      const result = await runSimulation({
        seed: run.seed,
        nodes: run.nodes,
        profile: profileNamed(run.profile),
        storage: levelDbFactory(),
      });
      expect(result.leadersElected).toBeGreaterThan(0);
      expect(result.proposalsAcknowledged).toBeGreaterThan(0);
      expect(result.lastApplied).toBeGreaterThan(0);
      if (run.profile === "crashes" || run.profile === "chaos") expect(result.crashes).toBeGreaterThan(0);
    });
  }
});
