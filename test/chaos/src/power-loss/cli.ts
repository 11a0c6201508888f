// `pnpm tsx test/chaos/src/power-loss/cli.ts --seed N --nodes 3|5 --steps K [--runs R] [--bug B] [--out file]`:
// runs the power-loss simulation for one seed (or R seeds from N), prints the checker's summary
// and the power losses, and can write the history as JSON lines. Exits 1 when a run is invalid.
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { formatSummary } from "../summary.ts";
import { type PowerLossResult, runPowerLoss } from "./power-loss-sim.ts";
import { historyLines } from "./sim-history.ts";
import { SIM_BUGS, type SimBug } from "./sim-node.ts";

const USAGE = `usage: tsx test/chaos/src/power-loss/cli.ts [--seed N] [--nodes 3|5] [--steps K] [--runs R] [--bug ${SIM_BUGS.join("|")}] [--out history.jsonl]
  --seed N    the run's seed (default 1); with --runs, the first of R consecutive seeds
  --nodes     cluster size (default 3)
  --steps K   simulated milliseconds of workload under faults (default 3000)
  --runs R    run R seeds and print one line each (default 1: one run with the summary table)
  --bug B     inject a known bug to see the checker catch it (default none)
  --out file  write the history of the (single) run as JSON lines`;

function fail(message: string): never {
  process.stderr.write(`${message}\n${USAGE}\n`);
  process.exit(2);
}

function integer(text: string | undefined, name: string, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isSafeInteger(n)) fail(`${name} must be an integer, got ${text}`);
  return n;
}

let values: ReturnType<typeof parse>;
function parse() {
  return parseArgs({
    options: {
      seed: { type: "string" },
      nodes: { type: "string" },
      steps: { type: "string" },
      runs: { type: "string" },
      bug: { type: "string" },
      out: { type: "string" },
      help: { type: "boolean", default: false },
    },
  }).values;
}
try {
  values = parse();
} catch (err) {
  fail(err instanceof Error ? err.message : String(err));
}
if (values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const seed = integer(values.seed, "--seed", 1);
const nodesArg = integer(values.nodes, "--nodes", 3);
if (nodesArg !== 3 && nodesArg !== 5) fail(`--nodes must be 3 or 5, got ${nodesArg}`);
const nodes: 3 | 5 = nodesArg;
const steps = integer(values.steps, "--steps", 3000);
const runs = integer(values.runs, "--runs", 1);
if (runs < 1) fail(`--runs must be >= 1, got ${runs}`);
const bugArg = values.bug ?? "none";
if (!(SIM_BUGS as readonly string[]).includes(bugArg)) fail(`--bug must be one of ${SIM_BUGS.join(", ")}, got ${bugArg}`);
const bug = bugArg as SimBug;
if (values.out !== undefined && runs > 1) fail("--out writes one run's history; drop --runs");

function valid(r: PowerLossResult): boolean {
  return r.check.valid && r.stalled === null && r.divergent.length === 0 && r.nodeFailures.length === 0 && r.electionSafety.length === 0;
}

function line(r: PowerLossResult): string {
  const c = r.check;
  const dup = c.duplicateCounts;
  return [
    `seed ${r.seed} (${r.nodes} nodes${r.bug === "none" ? "" : `, bug ${r.bug}`}): ${valid(r) ? "VALID" : "INVALID"}`,
    `ops ${c.ops}`,
    `confirmed ${c.publishes.confirmed}/${c.publishes.attempted}`,
    `lost ${c.lost.length}`,
    `unexpected ${c.unexpected.length}`,
    `duplicated ${dup.redelivered + dup.notRedelivered} (${dup.notRedelivered} unmarked)`,
    `power losses ${r.nemesis.powerLosses} (one ${r.nemesis.events.one}, leader ${r.nemesis.events.leader}, majority ${r.nemesis.events.majority}, all ${r.allNodePowerLosses})`,
    `all-node power losses ${r.allNodePowerLosses}`,
    `torn writes ${r.nemesis.tornWrites}`,
    `node failures ${r.nodeFailures.length}`,
    `two leaders in a term ${r.electionSafety.length}`,
    `simulated ${(r.simulatedMs / 1000).toFixed(1)} s`,
  ].join(", ");
}

let invalid = 0;
for (let s = seed; s < seed + runs; s++) {
  const r = runPowerLoss({ seed: s, nodes, steps, bug });
  if (!valid(r)) invalid++;
  if (runs === 1) {
    process.stdout.write(`${formatSummary(r.check)}\n`);
    if (r.stalled !== null) process.stdout.write(`stalled: ${r.stalled}\n`);
    if (r.divergent.length > 0) process.stdout.write(`state machines differ on nodes ${r.divergent.join(", ")}\n`);
    for (const f of r.nodeFailures) process.stdout.write(`node failure: ${f}\n`);
    for (const f of r.electionSafety) process.stdout.write(`election safety: ${f}\n`);
    if (values.out !== undefined) {
      writeFileSync(values.out, historyLines(r.ops));
      process.stdout.write(`history: ${values.out}\n`);
    }
  }
  process.stdout.write(`${line(r)}\n`);
}
if (runs > 1) process.stdout.write(`${runs - invalid}/${runs} runs valid\n`);
process.exit(invalid === 0 ? 0 : 1);
