// `pnpm start`: a 5-node simulated cluster under faults, narrated as it runs.
import { profileNamed } from "./fault-profiles.ts";
import { runSimulation } from "./simulation.ts";

const seed = Number(process.argv[2] ?? 2026);
const colors: Record<string, string> = {
  leader: "\x1b[32m",
  election: "\x1b[33m",
  "step-down": "\x1b[33m",
  partition: "\x1b[31m",
  crash: "\x1b[31m",
  restart: "\x1b[36m",
  heal: "\x1b[36m",
  conf: "\x1b[35m",
  applied: "\x1b[35m",
  snapshot: "\x1b[34m",
  commits: "\x1b[1m",
  transfer: "\x1b[35m",
  converged: "\x1b[32m",
};
const useColor = process.stdout.isTTY === true;

function paint(line: string): string {
  const word = line.slice(8).split(/\s+/)[0] ?? "";
  const color = colors[word];
  return useColor && color !== undefined ? `${color}${line}\x1b[0m` : line;
}

console.log(`raftmq simulator: 5 nodes, seed ${seed}, faults: drops, duplicates, delays, partitions, crashes, membership changes, snapshots`);
console.log("(one tick is one heartbeat interval; the election timeout is 10-19 ticks)\n");
const lines: string[] = [];
const began = performance.now();
const result = await runSimulation({
  seed,
  nodes: 5,
  profile: profileNamed("chaos"),
  faultTicks: 400,
  trace: (line) => {
    // Pre-vote rounds are frequent and dull; the outcome (a leader) is what matters.
    if (!line.includes("pre-votes for")) lines.push(line);
  },
});
const seconds = (performance.now() - began) / 1000;
// On a terminal the story is paced so a person can follow it (about three seconds in all).
const pause = process.stdout.isTTY === true ? Math.min(20, 3000 / Math.max(1, lines.length)) : 0;
for (const line of lines) {
  console.log(paint(line));
  if (pause > 0) await new Promise((resolve) => setTimeout(resolve, pause));
}
console.log(`
summary (simulated in ${seconds.toFixed(2)} s of wall time):
  ticks simulated          ${result.ticks}
  leaders elected          ${result.leadersElected}
  proposals acknowledged   ${result.proposalsAcknowledged} (all applied on every member)
  last applied index       ${result.lastApplied}
  messages sent / dropped  ${result.messagesSent} / ${result.messagesDropped}
  crashes / partitions     ${result.crashes} / ${result.partitions}
  membership changes       ${result.confChanges}
  snapshots installed      ${result.snapshotsInstalled}
  linearizable reads       ${result.readsAnswered}
  recovered after healing  ${result.ticksToRecover} ticks
  safety checks            election safety, log matching, leader completeness, state machine safety, read linearizability: all held`);
