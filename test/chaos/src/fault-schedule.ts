// The fault schedule of a run, a pure function of (seed, nemeses, duration): one seed reproduces
// the same faults at the same offsets. Which node a fault hits is decided when it starts, from
// the cluster's state then and the fault's own seed, so it too is the same for the same state.

import { SeededRandom } from "./seeded-random.ts";

export const NEMESES = ["kill", "pause", "transfer", "membership"] as const;
export type Nemesis = (typeof NEMESES)[number];

export type KillTarget = "random" | "leader" | "majority";
export type PauseTarget = "random" | "leader";

export type FaultPlan =
  | { readonly nemesis: "kill"; readonly target: KillTarget }
  | { readonly nemesis: "pause"; readonly target: PauseTarget }
  | { readonly nemesis: "transfer"; readonly intervalMs: number }
  | { readonly nemesis: "membership" };

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

/** Parses "kill,pause" or "all" into the nemeses it names. */
export function parseNemeses(text: string): Nemesis[] {
  const names = text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  if (names.length === 1 && names[0] === "all") return [...NEMESES];
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
      return { nemesis };
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
    default: {
      const never: never = plan;
      throw new Error(`unknown plan ${JSON.stringify(never)}`);
    }
  }
}
