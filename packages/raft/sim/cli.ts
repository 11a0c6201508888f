// `pnpm sim`: runs many seeds (or replays one with a trace) and prints how to replay a failure.
import { parseArgs } from "node:util";
import { type FaultProfile, profileForSeed, profileNamed } from "./fault-profiles.ts";
import { type SimResult, SimulationFailure, runSimulation } from "./simulation.ts";

const { values } = parseArgs({
  options: {
    seeds: { type: "string", default: "100" },
    "start-seed": { type: "string", default: "1" },
    seed: { type: "string" },
    nodes: { type: "string", default: "3" },
    profile: { type: "string" },
    "unsafe-commit-previous-term": { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
});

if (values.help) {
  console.log(`usage: pnpm sim [--seeds N] [--start-seed S] [--nodes 3|5] [--profile NAME] [--unsafe-commit-previous-term]
       pnpm sim --seed S [--nodes 3|5] [--profile NAME] [--unsafe-commit-previous-term]   replay one seed with a trace

  --unsafe-commit-previous-term  inject a known bug into every node: commit a previous-term entry
                                 by counting replicas (Raft §5.4.2, Figure 8); seeds should fail`);
  process.exit(0);
}

function parseNodes(text: string): 3 | 5 {
  if (text === "3") return 3;
  if (text === "5") return 5;
  throw new Error(`--nodes must be 3 or 5, got ${text}`);
}

const nodes = parseNodes(values.nodes);
const named = values.profile === undefined ? undefined : profileNamed(values.profile);
const unsafeCommitPreviousTerm = values["unsafe-commit-previous-term"];
if (unsafeCommitPreviousTerm) console.error("injecting a known bug: leaders commit previous-term entries by counting (§5.4.2, Figure 8)");

function profileFor(seed: number): FaultProfile {
  const profile = named ?? profileForSeed(seed);
  return unsafeCommitPreviousTerm ? { ...profile, unsafeCommitPreviousTerm } : profile;
}

/** The failure with a replay line that injects the same bug, so it reproduces. */
function failureMessage(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  if (!(error instanceof SimulationFailure) || !unsafeCommitPreviousTerm) return message;
  return message.replace(/^(\s*replay: .*)$/m, "$1 --unsafe-commit-previous-term");
}

function summary(r: SimResult): string {
  return `seed ${r.seed} ${r.profile}: ${r.leadersElected} leaders, ${r.proposalsAcknowledged} acknowledged, applied ${r.lastApplied}, ${r.crashes} crashes, ${r.partitions} partitions, ${r.confChanges} conf changes, ${r.snapshotsInstalled} snapshots installed, ${r.readsAnswered} reads answered, recovered in ${r.ticksToRecover} ticks`;
}

if (values.seed !== undefined) {
  const seed = Number(values.seed);
  try {
    const result = await runSimulation({ seed, nodes, profile: profileFor(seed), trace: (line) => console.log(line) });
    console.log(summary(result));
  } catch (error) {
    console.error(failureMessage(error));
    process.exit(1);
  }
} else {
  const count = Number(values.seeds);
  const start = Number(values["start-seed"]);
  const began = performance.now();
  let failures = 0;
  let acknowledged = 0;
  for (let seed = start; seed < start + count; seed++) {
    try {
      const result = await runSimulation({ seed, nodes, profile: profileFor(seed) });
      acknowledged += result.proposalsAcknowledged;
    } catch (error) {
      failures++;
      console.error(error instanceof SimulationFailure ? failureMessage(error) : error);
    }
  }
  const seconds = (performance.now() - began) / 1000;
  console.log(`${count} seeds on ${nodes} nodes: ${count - failures} passed, ${failures} failed, ${acknowledged} proposals acknowledged, ${seconds.toFixed(1)} s`);
  if (failures > 0) process.exit(1);
}
