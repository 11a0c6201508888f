// The fault schedule of a run, a pure function of (seed, nemeses, duration): one seed reproduces
// the same faults at the same offsets. Which node a fault hits is decided when it starts, from
// the cluster's state then and the fault's own seed, so it too is the same for the same state.

import { PARTITION_SHAPES, type PartitionShape } from "./net/partition.ts";
import { SeededRandom } from "./seeded-random.ts";

/** Faults on node processes: they work anywhere. */
export const PROCESS_NEMESES = ["kill", "pause", "transfer", "membership", "corrupt"] as const;
/** Faults on the nodes' traffic: they need the namespace network (root, ip, iptables, tc). */
export const NETWORK_NEMESES = ["partition", "loss", "slow"] as const;
export const NEMESES = [...PROCESS_NEMESES, ...NETWORK_NEMESES] as const;
export type Nemesis = (typeof NEMESES)[number];
export type NetworkNemesis = (typeof NETWORK_NEMESES)[number];

/** Which nodes a loss or slow fault hits: one at random, or every member. */
export type LinkScope = "one" | "all";

export type KillTarget = "random" | "leader" | "majority";
export type PauseTarget = "random" | "leader";

export type FaultPlan =
  | { readonly nemesis: "kill"; readonly target: KillTarget }
  | { readonly nemesis: "pause"; readonly target: PauseTarget }
  | { readonly nemesis: "transfer"; readonly intervalMs: number }
  | { readonly nemesis: "membership" }
  | { readonly nemesis: "corrupt" }
  | { readonly nemesis: "partition"; readonly shape: PartitionShape }
  | { readonly nemesis: "loss"; readonly scope: LinkScope; readonly probability: number }
  | { readonly nemesis: "slow"; readonly scope: LinkScope; readonly rateKbit: number; readonly delayMs: number };

export interface ScheduledFault {
  /** Offset from the start of the fault phase, in ms. */
  readonly atMs: number;
  /** How long the fault holds before it is undone. */
  readonly holdMs: number;
  /** Seeds the choice of nodes when the fault starts. */
  readonly seed: number;
  readonly plan: FaultPlan;
}

export interface ScheduleLimits {
  /** Quiet time before the first fault and between faults, in ms. */
  readonly minGapMs: number;
  readonly maxGapMs: number;
  readonly minHoldMs: number;
  readonly maxHoldMs: number;
  /** A run's faults are bounded whatever its length. */
  readonly maxFaults: number;
}

export const DEFAULT_SCHEDULE_LIMITS: Readonly<ScheduleLimits> = {
  minGapMs: 1000,
  maxGapMs: 3000,
  minHoldMs: 1500,
  maxHoldMs: 4000,
  maxFaults: 1000,
};

export function isNetworkNemesis(n: Nemesis): n is NetworkNemesis {
  return (NETWORK_NEMESES as readonly string[]).includes(n);
}

/**
 * Parses "kill,pause" or "all" into the nemeses it names. "all" takes the network nemeses only
 * when `network` says the machine can run them; named ones are always accepted.
 */
export function parseNemeses(text: string, options: { readonly network?: boolean } = {}): Nemesis[] {
  const names = text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  if (names.length === 1 && names[0] === "all") return options.network === true ? [...NEMESES] : [...PROCESS_NEMESES];
  if (names.length === 1 && names[0] === "none") return [];
  const out: Nemesis[] = [];
  for (const name of names) {
    const known = NEMESES.find((n) => n === name);
    if (known === undefined) throw new RangeError(`unknown nemesis "${name}"; expected all, none or a list of ${NEMESES.join(", ")}`);
    if (!out.includes(known)) out.push(known);
  }
  return out;
}

/** Faults one after another, each ending before durationMs; empty when no nemesis is enabled. */
export function planFaults(
  seed: number,
  nemeses: readonly Nemesis[],
  durationMs: number,
  limits: ScheduleLimits = DEFAULT_SCHEDULE_LIMITS,
): ScheduledFault[] {
  if (limits.minGapMs > limits.maxGapMs || limits.minHoldMs > limits.maxHoldMs) throw new RangeError("schedule limits: min above max");
  const faults: ScheduledFault[] = [];
  if (nemeses.length === 0) return faults;
  const rng = new SeededRandom(seed);
  let t = rng.int(limits.minGapMs, limits.maxGapMs);
  while (faults.length < limits.maxFaults) {
    const holdMs = rng.int(limits.minHoldMs, limits.maxHoldMs);
    const plan = planOne(rng, rng.pick(nemeses));
    const faultSeed = rng.int(0, 2 ** 31 - 1);
    if (t + holdMs > durationMs) break;
    faults.push({ atMs: t, holdMs, seed: faultSeed, plan });
    t += holdMs + rng.int(limits.minGapMs, limits.maxGapMs);
  }
  return faults;
}

function planOne(rng: SeededRandom, nemesis: Nemesis): FaultPlan {
  switch (nemesis) {
    case "kill":
      return { nemesis, target: rng.pick<KillTarget>(["random", "leader", "majority"]) };
    case "pause":
      return { nemesis, target: rng.pick<PauseTarget>(["random", "leader"]) };
    case "transfer":
      return { nemesis, intervalMs: rng.int(200, 600) };
    case "membership":
    case "corrupt":
      return { nemesis };
    case "partition":
      return { nemesis, shape: rng.pick(PARTITION_SHAPES) };
    case "loss":
      // Whole percents from 5 to 30: enough to stall TCP, not enough to stop it.
      return { nemesis, scope: rng.pick<LinkScope>(["one", "all"]), probability: rng.int(5, 30) / 100 };
    case "slow":
      return { nemesis, scope: rng.pick<LinkScope>(["one", "all"]), rateKbit: rng.int(2, 16) * 128, delayMs: rng.int(2, 20) * 10 };
    default: {
      const never: never = nemesis;
      throw new Error(`unknown nemesis ${String(never)}`);
    }
  }
}

export function describePlan(plan: FaultPlan): string {
  switch (plan.nemesis) {
    case "kill":
      return `kill ${plan.target}`;
    case "pause":
      return `pause ${plan.target}`;
    case "transfer":
      return `transfer storm every ${plan.intervalMs} ms`;
    case "membership":
      return "remove a member, wipe it, add it back";
    case "corrupt":
      return "damage a member's data, see it refuse to start, replace it";
    case "partition":
      return `partition ${plan.shape}`;
    case "loss":
      return `loss ${Math.round(plan.probability * 100)}% on ${plan.scope === "one" ? "one node" : "every node"}`;
    case "slow":
      return `slow ${plan.rateKbit} kbit/s, ${plan.delayMs} ms delay where netem exists, on ${plan.scope === "one" ? "one node" : "every node"}`;
    default: {
      const never: never = plan;
      throw new Error(`unknown plan ${JSON.stringify(never)}`);
    }
  }
}
