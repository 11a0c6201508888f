// Chaos runs of about a minute each (45 s of faults, then heal and drain) against real node
// processes, one per nemesis mix: each must end with nothing
// lost, nothing unexpected, no unmarked duplicate, no order violation and no node crash. A
// failing run keeps its folder (history, summary, timeline, node logs) and names it. The network
// mix runs with each node in its own network namespace, where the machine allows it.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseNemeses } from "../src/fault-schedule.ts";
import { runChaosInNamespaces } from "../src/net/hub-runner.ts";
import { probeNetworkSupport } from "../src/net/network-support.ts";
import { runChaos } from "../src/run-chaos.ts";
import { expectCleanRun } from "./expect-clean-run.ts";

const RUNS = [
  // Secure like a production cluster: mutual TLS between the nodes, TLS and passwords for clients.
  { nemesis: "kill,pause,transfer", seed: 11, network: false, security: "tls" },
  { nemesis: "membership,corrupt", seed: 13, network: false, security: "insecure" },
  { nemesis: "all", seed: 14, network: false, security: "insecure" },
  { nemesis: "partition,loss,slow", seed: 18, network: true, security: "tls" },
] as const;
const RUN_SECONDS = 45;

const support = await probeNetworkSupport();
if (!support.available) process.stdout.write(`chaos runs: network mix skipped: ${support.reason}\n`);

describe("chaos runs on a real 3-node cluster", () => {
  for (const { nemesis, seed, network, security } of RUNS) {
    it.runIf(!network || support.available)(`nemesis ${nemesis}, seed ${seed}, ${security}: no confirmed message lost, nothing unexpected`, { timeout: 180_000 }, async () => {
      const outDir = mkdtempSync(join(tmpdir(), `raftmq-chaos-run-${seed}-`));
      const lines: string[] = [];
      const options = { timeSec: RUN_SECONDS, nemeses: parseNemeses(nemesis), seed, nodes: 3, outDir, security, say: (line: string) => lines.push(line) };
      const run = network ? await runChaosInNamespaces(options) : await runChaos({ ...options, out: { write: (text: string) => lines.push(text) } });
      process.stdout.write(`${run.summaryLine}\n`);
      if (!run.valid) process.stdout.write(`run kept in ${outDir}:\n${lines.join("\n")}\n`);
      expectCleanRun(run);
      expect(run.check.orderViolationCount).toBe(0);
      rmSync(outDir, { recursive: true, force: true });
    });
  }
});
