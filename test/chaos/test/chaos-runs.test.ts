// Chaos runs against real node processes, one per nemesis mix (45 s of faults, then heal and
// drain; the consumer-liveness run 30 s on 5 nodes): each must end with nothing lost, nothing
// unexpected, no unmarked duplicate, no order violation, no node crash, and every queue listing
// exactly the consumers whose streams are still open. A failing run keeps its folder (history,
// summary, timeline, node logs) and names it. The network mixes run with each node in its own
// network namespace, where the machine allows it. Last, a run whose nodes never ping their
// clients shows that the liveness check catches a consumer kept after its client vanished.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { describeLiveness, wrongQueues } from "../src/consumer-liveness.ts";
import { parseNemeses } from "../src/fault-schedule.ts";
import { runChaosInNamespaces } from "../src/net/hub-runner.ts";
import { probeNetworkSupport } from "../src/net/network-support.ts";
import { runChaos } from "../src/run-chaos.ts";
import { VANISHER_PREFETCH } from "../src/vanishing-consumers.ts";
import { expectCleanRun } from "./expect-clean-run.ts";

interface Run {
  readonly nemesis: string;
  readonly seed: number;
  readonly network: boolean;
  readonly security: "tls" | "insecure";
  readonly nodes?: number;
  readonly seconds?: number;
  /** Consumer processes that vanish without closing (default: the harness's). */
  readonly vanishers?: number;
}

const RUNS: readonly Run[] = [
  // Secure like a production cluster: mutual TLS between the nodes, TLS and passwords for clients.
  { nemesis: "kill,pause,transfer", seed: 11, network: false, security: "tls" },
  { nemesis: "membership,corrupt", seed: 13, network: false, security: "insecure" },
  { nemesis: "all", seed: 14, network: false, security: "insecure" },
  { nemesis: "partition,loss,slow", seed: 18, network: true, security: "tls" },
  // The case: ring partitions, loss and transfer storms on 5 nodes, with four consumers
  // vanishing in the middle of them (frozen on a ring, cut off under loss on every node, killed
  // on a ring, frozen under a transfer storm), alternately at the leader and at a follower.
  { nemesis: "partition,loss,transfer", seed: 68, network: true, security: "insecure", nodes: 5, seconds: 30, vanishers: 4 },
];
const RUN_SECONDS = 45;

const support = await probeNetworkSupport();
if (!support.available) process.stdout.write(`chaos runs: network mixes skipped: ${support.reason}\n`);

describe("chaos runs on a real cluster", () => {
  for (const { nemesis, seed, network, security, nodes = 3, seconds = RUN_SECONDS, vanishers } of RUNS) {
    const name = `${nodes} nodes, nemesis ${nemesis}, seed ${seed}, ${security}: no confirmed message lost, nothing unexpected, exactly the open consumers listed`;
    it.runIf(!network || support.available)(name, { timeout: 180_000 }, async () => {
      const outDir = mkdtempSync(join(tmpdir(), `raftmq-chaos-run-${seed}-`));
      const lines: string[] = [];
      const options = {
        timeSec: seconds,
        nemeses: parseNemeses(nemesis),
        seed,
        nodes,
        outDir,
        security,
        ...(vanishers === undefined ? {} : { vanishers }),
        say: (line: string) => lines.push(line),
      };
      const run = network ? await runChaosInNamespaces(options) : await runChaos({ ...options, out: { write: (text: string) => lines.push(text) } });
      process.stdout.write(`${run.summaryLine}\n`);
      if (!run.valid) process.stdout.write(`run kept in ${outDir}:\n${lines.join("\n")}\n`);
      expectCleanRun(run);
      expect(run.check.orderViolationCount).toBe(0);
      if (vanishers !== undefined) {
        // Every vanisher vanished, and between them they held deliveries the nodes had to take back.
        expect(run.vanishers.filter((v) => v.vanishedAt === undefined)).toEqual([]);
        expect(run.vanishers.reduce((n, v) => n + v.heldAtVanish, 0)).toBeGreaterThan(0);
      }
      rmSync(outDir, { recursive: true, force: true });
    });
  }
});

describe("the consumer-liveness check", () => {
  it("fails a run whose nodes never ping their clients: a frozen consumer stays listed with what it held", { timeout: 120_000 }, async () => {
    const outDir = mkdtempSync(join(tmpdir(), "raftmq-chaos-liveness-"));
    const lines: string[] = [];
    const run = await runChaos({
      timeSec: 8,
      nemeses: [],
      seed: 5,
      nodes: 3,
      outDir,
      security: "insecure",
      // An hour between pings: in effect no keepalive, the state the issue reports.
      clientKeepaliveMs: 3_600_000,
      vanishers: 1,
      livenessSettleMs: 3000,
      // The drain cannot empty a queue whose messages a gone consumer holds: do not wait long.
      workload: { drainTimeoutMs: 5000 },
      say: (line) => lines.push(line),
      out: { write: (text: string) => lines.push(text) },
    });
    process.stdout.write(`${run.summaryLine}\n`);
    const [vanisher] = run.vanishers;
    expect(vanisher).toMatchObject({ kind: "freeze", heldAtVanish: VANISHER_PREFETCH });
    expect(run.valid).toBe(false);
    const [open, closed] = run.liveness;
    // One queue lists the kept consumer and the frozen one, which holds its whole prefetch.
    expect(wrongQueues(open?.queues ?? [])).toEqual([{ queue: vanisher?.queue, listed: 2, expected: 1, unacked: VANISHER_PREFETCH }]);
    expect(wrongQueues(closed?.queues ?? [])).toEqual([{ queue: vanisher?.queue, listed: 1, expected: 0, unacked: VANISHER_PREFETCH }]);
    expect(run.summaryLine).toContain(`INVALID`);
    expect(run.summaryLine).toContain(`${vanisher?.queue} lists 2 consumers, expected 1, ${VANISHER_PREFETCH} unacked`);
    expect(describeLiveness(run.liveness)).toMatch(/^consumers WRONG/);
    rmSync(outDir, { recursive: true, force: true });
  });
});
