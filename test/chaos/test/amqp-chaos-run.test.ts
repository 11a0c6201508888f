// The case over AMQP 0-9-1: amqplib publishers on confirm channels and consumers with
// manual acks (prefetch 50), each on a connection to a random node's AMQP port and reconnecting,
// maybe elsewhere, when it fails, while the leader is killed and the network partitioned. No
// confirmed message may be lost; AMQP has no idempotent producer, so duplicates are allowed and
// only counted, and a nack or a connection lost before the confirm is an unknown outcome.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseNemeses } from "../src/fault-schedule.ts";
import { runChaosInNamespaces } from "../src/net/hub-runner.ts";
import { probeNetworkSupport } from "../src/net/network-support.ts";
import { runChaos } from "../src/run-chaos.ts";
import { expectCleanRun } from "./expect-clean-run.ts";

/** Seed 47 over 25 s: the leader killed, the leader isolated, a random node killed, a majority killed. */
const SEED = 47;
const SECONDS = 25;

const support = await probeNetworkSupport();
// Partitions need the namespace network; without it the leader kills still run.
const nemesis = support.available ? "kill,partition" : "kill";
if (!support.available) process.stdout.write(`AMQP chaos run: partitions skipped: ${support.reason}\n`);

describe("the AMQP workload under chaos", () => {
  it(`3 nodes, amqplib with confirms, nemesis ${nemesis}, seed ${SEED}: no confirmed message lost`, { timeout: 120_000 }, async () => {
    const outDir = mkdtempSync(join(tmpdir(), `raftmq-chaos-amqp-${SEED}-`));
    const lines: string[] = [];
    const options = {
      workloadKind: "amqp" as const,
      timeSec: SECONDS,
      nemeses: parseNemeses(nemesis),
      seed: SEED,
      nodes: 3,
      outDir,
      // With TLS the nodes serve plain AMQP on their own loopback only, out of the hub's reach.
      security: "insecure" as const,
      vanishers: 0,
      say: (line: string) => lines.push(line),
    };
    const run = support.available ? await runChaosInNamespaces(options) : await runChaos({ ...options, out: { write: (text: string) => lines.push(text) } });
    process.stdout.write(`${run.summaryLine}\n`);
    if (!run.valid) process.stdout.write(`run kept in ${outDir}:\n${lines.join("\n")}\n`);
    expectCleanRun(run);
    expect(run.workload).toBe("amqp");
    expect(run.check.faults.map((f) => f.f)).toContain("kill");
    if (support.available) expect(run.check.faults.map((f) => f.f)).toContain("start-partition");
    // The clients' own counts agree with the history: every publish ended acked, nacked or unknown.
    const amqp = run.amqp;
    expect(amqp).toBeDefined();
    if (amqp === undefined) return;
    expect(amqp.publishes).toBe(run.check.publishes.attempted);
    expect(amqp.confirmed).toBe(run.check.publishes.confirmed);
    expect(amqp.confirmed + amqp.nacked + amqp.unknown).toBe(amqp.publishes);
    // The faults reached the clients: some connection was lost and opened again.
    expect(amqp.reconnects).toBeGreaterThan(0);
    rmSync(outDir, { recursive: true, force: true });
  });
});
