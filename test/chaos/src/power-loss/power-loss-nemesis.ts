// The faults of a simulated run, one at a time with quiet between them: power loss of one node,
// of the leader, of a majority or of every node at once (each node keeping only what it synced,
// or a torn prefix of its write in flight), and network partitions. Each shows in the history
// as the same nemesis ops real runs record (kill/restart, start-partition/stop-partition).
import type { SimNetwork } from "@raftmq/raft/sim";
import type { SeededRandom } from "../seeded-random.ts";
import type { SimHistory } from "./sim-history.ts";
import type { SimNode } from "./sim-node.ts";

export type PowerLossTarget = "one" | "leader" | "majority" | "all";
export type FaultKind = PowerLossTarget | "partition";
export const FAULT_KINDS_SIMULATED: readonly FaultKind[] = ["one", "leader", "majority", "all", "partition"];

export interface NemesisOptions {
  /** Relative chance of each fault kind; 0 disables a kind. */
  readonly weights: Readonly<Record<FaultKind, number>>;
  /** Simulated ms between the end of a fault and the start of the next, from [min, max]. */
  readonly quietMs: readonly [number, number];
  /** How long nodes stay off or a partition holds, from [min, max]. */
  readonly holdMs: readonly [number, number];
  /** Chance that a node's write in flight tears (keeps a prefix) instead of vanishing whole. */
  readonly tornRate: number;
}

export interface NemesisStats {
  /** Node power losses (a majority loss of 3 nodes counts 2 here). */
  powerLosses: number;
  readonly events: Record<PowerLossTarget, number>;
  partitions: number;
  /** Power losses that hit a node with a write in flight. */
  unsyncedAtLoss: number;
  tornWrites: number;
}

type Active =
  | { readonly kind: "power"; readonly victims: readonly SimNode[]; readonly endAt: number }
  | { readonly kind: "partition"; readonly endAt: number };

export class PowerLossNemesis {
  readonly stats: NemesisStats = {
    powerLosses: 0,
    events: { one: 0, leader: 0, majority: 0, all: 0 },
    partitions: 0,
    unsyncedAtLoss: 0,
    tornWrites: 0,
  };
  #active: Active | null = null;
  #nextAt: number;
  readonly #kinds: FaultKind[];
  readonly #totalWeight: number;

  constructor(
    private readonly nodes: readonly SimNode[],
    private readonly network: SimNetwork,
    private readonly rng: SeededRandom,
    private readonly history: SimHistory,
    private readonly options: NemesisOptions,
    private readonly now: () => number,
  ) {
    this.#kinds = FAULT_KINDS_SIMULATED.filter((k) => options.weights[k] > 0);
    this.#totalWeight = this.#kinds.reduce((sum, k) => sum + options.weights[k], 0);
    if (!(options.tornRate >= 0 && options.tornRate <= 1)) throw new RangeError(`tornRate must be in [0, 1], got ${options.tornRate}`);
    this.#nextAt = now() + rng.int(options.quietMs[0], options.quietMs[1]);
  }

  /** One simulated millisecond: ends the fault whose time is up, or starts the next when `faulting`. */
  step(faulting: boolean): void {
    const now = this.now();
    const active = this.#active;
    if (active !== null) {
      if (now >= active.endAt) this.#end(active);
      return;
    }
    if (faulting && this.#kinds.length > 0 && now >= this.#nextAt) this.#start(this.#pickKind());
  }

  /** Ends the fault in effect, if any: nodes power on, the network is whole. */
  heal(): void {
    if (this.#active !== null) this.#end(this.#active);
    for (const node of this.nodes) if (!node.powered) node.boot();
  }

  #pickKind(): FaultKind {
    let r = this.rng.next() * this.#totalWeight;
    for (const k of this.#kinds) {
      r -= this.options.weights[k];
      if (r < 0) return k;
    }
    return this.#kinds[this.#kinds.length - 1] ?? "one";
  }

  #start(kind: FaultKind): void {
    const endAt = this.now() + this.rng.int(this.options.holdMs[0], this.options.holdMs[1]);
    if (kind === "partition") {
      this.#partition(endAt);
      return;
    }
    const victims = this.#victims(kind);
    const notes: string[] = [];
    for (const node of victims) {
      const unsynced = node.disk.unsyncedOps();
      const keep = unsynced > 0 && this.rng.next() < this.options.tornRate ? this.rng.int(1, unsynced) : 0;
      node.powerLoss(keep);
      this.stats.powerLosses++;
      if (unsynced > 0) this.stats.unsyncedAtLoss++;
      if (keep > 0) this.stats.tornWrites++;
      notes.push(unsynced === 0 ? `n${node.id} had nothing unsynced` : keep > 0 ? `n${node.id} tore, keeping ${keep}/${unsynced}` : `n${node.id} lost ${unsynced} unsynced`);
    }
    this.stats.events[kind]++;
    this.history.record({
      f: "kill",
      process: "nemesis",
      type: "info",
      value: `power loss (${kind}) of ${victims.map((n) => `n${n.id}`).join(" ")}: ${notes.join("; ")}`,
      nodes: victims.map((n) => `n${n.id}`),
    });
    this.#active = { kind: "power", victims, endAt };
  }

  #victims(kind: PowerLossTarget): SimNode[] {
    const powered = this.nodes.filter((n) => n.powered);
    switch (kind) {
      case "one":
        return [this.rng.pick(powered)];
      case "leader": {
        const leaders = powered.filter((n) => n.isLeader).sort((a, b) => b.term - a.term);
        return [leaders[0] ?? this.rng.pick(powered)];
      }
      case "majority": {
        const count = Math.floor(this.nodes.length / 2) + 1;
        return this.rng.shuffle(powered).slice(0, count).sort((a, b) => a.id - b.id);
      }
      case "all":
        return powered;
      default: {
        const never: never = kind;
        throw new Error(`unknown power loss target ${String(never)}`);
      }
    }
  }

  #partition(endAt: number): void {
    const ids = this.rng.shuffle(this.nodes.map((n) => n.id));
    const leader = this.nodes.find((n) => n.isLeader);
    let groups: number[][];
    if (leader !== undefined && this.rng.next() < 0.5) {
      groups = [[leader.id], ids.filter((id) => id !== leader.id)];
    } else {
      const cut = this.rng.int(1, ids.length - 1);
      groups = [ids.slice(0, cut), ids.slice(cut)];
    }
    groups = groups.map((g) => [...g].sort((a, b) => a - b));
    this.network.partition(groups);
    this.stats.partitions++;
    this.history.record({
      f: "start-partition",
      process: "nemesis",
      type: "info",
      value: `partition ${groups.map((g) => `{${g.map((id) => `n${id}`).join(" ")}}`).join(" | ")}`,
      nodes: groups.flat().map((id) => `n${id}`),
    });
    this.#active = { kind: "partition", endAt };
  }

  #end(active: Active): void {
    this.#active = null;
    const [lo, hi] = this.options.quietMs;
    this.#nextAt = this.now() + this.rng.int(lo, hi);
    switch (active.kind) {
      case "power":
        for (const node of active.victims) node.boot();
        this.history.record({
          f: "restart",
          process: "nemesis",
          type: "info",
          value: `power on ${active.victims.map((n) => `n${n.id}`).join(" ")}`,
          nodes: active.victims.map((n) => `n${n.id}`),
        });
        return;
      case "partition":
        this.network.heal();
        this.history.record({ f: "stop-partition", process: "nemesis", type: "info", value: "network whole" });
        return;
      default: {
        const never: never = active;
        throw new Error(`unknown fault ${JSON.stringify(never)}`);
      }
    }
  }
}
