// Network faults: partition shapes and the ip/iptables/tc command lines are checked as data; a
// short real run (network nemeses only, nodes in their own namespaces) runs where the machine
// allows it (root, ip, iptables, tc, nsenter) and is skipped with the reason elsewhere.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { NETWORK_NEMESES, parseNemeses, planFaults } from "../src/fault-schedule.ts";
import type { NemesisOp } from "../src/history.ts";
import { runChaosInNamespaces } from "../src/net/hub-runner.ts";
import { clientCutCommands, clientSetupCommands, commandLine, healCommands, LIMITS, lossCommands, nodeSetupCommands, partitionCommands, slowCommands } from "../src/net/net-commands.ts";
import { clientAddress, hubNetns, MAX_CLIENT_ID, MAX_NODE_ID, netLayout, newNetLayout, nodeAddress, nodeNetns, ownerPid } from "../src/net/net-layout.ts";
import { listNetns, parseNetnsList } from "../src/net/netns-cleanup.ts";
import { probeNetworkSupport } from "../src/net/network-support.ts";
import { cutsOf, describePartition, PARTITION_SHAPES, type Partition, type PartitionShape, partitionOf, reachableFrom } from "../src/net/partition.ts";
import { expectCleanRun } from "./expect-clean-run.ts";
import { readHistory } from "../src/read-history.ts";

const SEEDS = Array.from({ length: 40 }, (_, i) => i + 1);
const THREE = [1, 2, 3];
const FIVE = [1, 2, 3, 4, 5];

function all(p: Partition): number[] {
  return [...new Set(p.groups.flat())].sort((a, b) => a - b);
}

function overlap(a: readonly number[], b: readonly number[]): number[] {
  return a.filter((x) => b.includes(x));
}

describe("partition shapes", () => {
  for (const members of [THREE, FIVE]) {
    const n = members.length;
    describe(`${n} nodes`, () => {
      it("isolate-leader: the leader alone, the rest together", () => {
        for (const leader of members) {
          const p = partitionOf("isolate-leader", members, leader, 1);
          expect(p.groups).toEqual([[leader], members.filter((m) => m !== leader)]);
          expect(cutsOf(p)).toHaveLength(n - 1);
          expect(reachableFrom(p, leader)).toEqual([leader]);
        }
      });

      it("halves: two disjoint sides of ceil(n/2) and floor(n/2) nodes, drawn from the seed", () => {
        const splits = new Set<string>();
        for (const seed of SEEDS) {
          const p = partitionOf("halves", members, undefined, seed);
          const [a = [], b = []] = p.groups;
          expect(p.groups).toHaveLength(2);
          expect(overlap(a, b)).toEqual([]);
          expect(all(p)).toEqual(members);
          expect(a.length).toBe(Math.ceil(n / 2));
          expect(b.length).toBe(Math.floor(n / 2));
          expect(cutsOf(p)).toHaveLength(a.length * b.length);
          splits.add(describePartition(p));
        }
        expect(splits.size).toBeGreaterThan(1);
      });

      it("leader-minority: the leader on the smaller side, which is not a majority", () => {
        for (const leader of members) {
          for (const seed of SEEDS.slice(0, 10)) {
            const p = partitionOf("leader-minority", members, leader, seed);
            const [minority = [], majority = []] = p.groups;
            expect(minority).toContain(leader);
            expect(minority.length).toBe(Math.floor(n / 2));
            expect(majority.length).toBe(n - minority.length);
            expect(majority.length).toBeGreaterThan(n / 2);
            expect(overlap(minority, majority)).toEqual([]);
            expect(all(p)).toEqual(members);
          }
        }
      });

      it("bridge: one node in both halves; the halves do not see each other", () => {
        for (const seed of SEEDS) {
          const p = partitionOf("bridge", members, undefined, seed);
          const [a = [], b = []] = p.groups;
          const shared = overlap(a, b);
          expect(shared).toHaveLength(1);
          const bridge = shared[0] ?? 0;
          expect(all(p)).toEqual(members);
          expect(reachableFrom(p, bridge)).toEqual(members);
          // Each side, with the bridge, is a majority: both sides can hear a leader through it.
          expect(a.length).toBe(Math.floor(n / 2) + 1);
          expect(b.length).toBe(Math.floor(n / 2) + 1);
          for (const x of a) for (const y of b) if (x !== bridge && y !== bridge) expect(reachableFrom(p, x)).not.toContain(y);
          expect(cutsOf(p)).toHaveLength((a.length - 1) * (b.length - 1));
        }
      });

      it(n === 5 ? "ring: each node sees its two neighbours, a majority, and no two see the same one" : "ring of three: an open ring, a line through one middle node", () => {
        for (const seed of SEEDS) {
          const p = partitionOf("ring", members, undefined, seed);
          for (const g of p.groups) expect(g).toHaveLength(2);
          expect(all(p)).toEqual(members);
          if (n === 5) {
            expect(p.groups).toHaveLength(5);
            const views = members.map((m) => reachableFrom(p, m).join(","));
            for (const m of members) expect(reachableFrom(p, m)).toHaveLength(3);
            expect(new Set(views).size).toBe(5);
            expect(cutsOf(p)).toHaveLength(5);
          } else {
            expect(p.groups).toHaveLength(2);
            expect(cutsOf(p)).toHaveLength(1);
            const middle = overlap(p.groups[0] ?? [], p.groups[1] ?? []);
            expect(middle).toHaveLength(1);
            expect(reachableFrom(p, middle[0] ?? 0)).toEqual(members);
          }
        }
      });

      it("every shape cuts something, and one seed gives one partition", () => {
        for (const shape of PARTITION_SHAPES) {
          for (const seed of SEEDS.slice(0, 5)) {
            const p = partitionOf(shape, members, members[1], seed);
            expect(cutsOf(p).length).toBeGreaterThan(0);
            expect(partitionOf(shape, members, members[1], seed)).toEqual(p);
          }
        }
      });
    });
  }

  it("a leader that is not a member, or none, is replaced by a member drawn from the seed", () => {
    const p = partitionOf("isolate-leader", THREE, 9, 3);
    expect(p.groups).toHaveLength(2);
    expect(p.groups[0]).toHaveLength(1);
    expect(THREE).toContain(p.groups[0]?.[0]);
    expect(partitionOf("isolate-leader", THREE, undefined, 3)).toEqual(p);
  });

  it("two members: every shape isolates one; one member cannot be partitioned", () => {
    for (const shape of PARTITION_SHAPES) expect(cutsOf(partitionOf(shape, [4, 7], 4, 1))).toEqual([[4, 7]]);
    expect(() => partitionOf("halves", [1], 1, 1)).toThrow(RangeError);
  });

  it("describes a partition by its groups", () => {
    expect(describePartition({ shape: "bridge", groups: [[1, 2], [2, 3]] })).toBe("bridge {n1 n2} | {n2 n3}");
  });
});

describe("namespace layout", () => {
  it("names carry the owner's pid and a nonce; addresses follow the node id", () => {
    const layout = newNetLayout(4321, 35);
    expect(layout.prefix).toBe("raftmq-chaos-4321-z");
    expect(hubNetns(layout)).toBe("raftmq-chaos-4321-z-hub");
    expect(nodeNetns(layout, 3)).toBe("raftmq-chaos-4321-z-n3");
    expect(ownerPid(nodeNetns(layout, 3))).toBe(4321);
    expect(ownerPid("someone-else")).toBeUndefined();
    expect(nodeAddress(netLayout("p", 7), 2)).toBe("10.203.7.12");
    expect(() => nodeAddress(layout, 0)).toThrow(RangeError);
    expect(() => netLayout("Bad Name", 1)).toThrow(RangeError);
  });

  it("client namespaces take addresses above every node's", () => {
    const layout = netLayout("p", 7);
    expect(nodeAddress(layout, MAX_NODE_ID)).toBe("10.203.7.199");
    expect(clientAddress(layout, 1)).toBe("10.203.7.201");
    expect(clientAddress(layout, MAX_CLIENT_ID)).toBe("10.203.7.254");
    expect(() => clientAddress(layout, MAX_CLIENT_ID + 1)).toThrow(RangeError);
  });

  it("reads `ip netns list` with and without ids", () => {
    expect(parseNetnsList("b-hub (id: 3)\na-n1\n\n")).toEqual(["a-n1", "b-hub"]);
  });
});

describe("network fault command lines", () => {
  const layout = netLayout("raftmq-chaos-1-a", 7);
  const ns = (id: number) => `raftmq-chaos-1-a-n${id}`;

  it("a node namespace gets a veth pair to the hub's bridge and its address", () => {
    expect(nodeSetupCommands(layout, 2).map(commandLine)).toEqual([
      ["ip", "netns", "add", ns(2)],
      ["ip", "link", "add", "veth-n2", "type", "veth", "peer", "name", "eth0", "netns", ns(2)],
      ["ip", "link", "set", "veth-n2", "master", "br0"],
      ["ip", "link", "set", "veth-n2", "up"],
      ["ip", "-n", ns(2), "link", "set", "lo", "up"],
      ["ip", "-n", ns(2), "addr", "add", "10.203.7.12/24", "dev", "eth0"],
      ["ip", "-n", ns(2), "link", "set", "eth0", "up"],
    ]);
  });

  it("a client namespace joins the bridge like a node's; cutting it drops everything inside it", () => {
    const c = "raftmq-chaos-1-a-c3";
    expect(clientSetupCommands(layout, 3).map(commandLine)).toEqual([
      ["ip", "netns", "add", c],
      ["ip", "link", "add", "veth-c3", "type", "veth", "peer", "name", "eth0", "netns", c],
      ["ip", "link", "set", "veth-c3", "master", "br0"],
      ["ip", "link", "set", "veth-c3", "up"],
      ["ip", "-n", c, "link", "set", "lo", "up"],
      ["ip", "-n", c, "addr", "add", "10.203.7.203/24", "dev", "eth0"],
      ["ip", "-n", c, "link", "set", "eth0", "up"],
    ]);
    expect(clientCutCommands(layout, 3).map(commandLine)).toEqual([
      ["ip", "netns", "exec", c, "iptables", "-w", "-A", "INPUT", "-j", "DROP"],
      ["ip", "netns", "exec", c, "iptables", "-w", "-A", "OUTPUT", "-j", "DROP"],
    ]);
  });

  it("a partition drops each cut link at both ends, in and out, inside the node namespaces", () => {
    const lines = partitionCommands(layout, partitionOf("isolate-leader", THREE, 1, 1)).map(commandLine);
    expect(lines).toEqual([
      ["ip", "netns", "exec", ns(1), "iptables", "-w", "-A", "INPUT", "-s", "10.203.7.12", "-j", "DROP"],
      ["ip", "netns", "exec", ns(1), "iptables", "-w", "-A", "OUTPUT", "-d", "10.203.7.12", "-j", "DROP"],
      ["ip", "netns", "exec", ns(2), "iptables", "-w", "-A", "INPUT", "-s", "10.203.7.11", "-j", "DROP"],
      ["ip", "netns", "exec", ns(2), "iptables", "-w", "-A", "OUTPUT", "-d", "10.203.7.11", "-j", "DROP"],
      ["ip", "netns", "exec", ns(1), "iptables", "-w", "-A", "INPUT", "-s", "10.203.7.13", "-j", "DROP"],
      ["ip", "netns", "exec", ns(1), "iptables", "-w", "-A", "OUTPUT", "-d", "10.203.7.13", "-j", "DROP"],
      ["ip", "netns", "exec", ns(3), "iptables", "-w", "-A", "INPUT", "-s", "10.203.7.11", "-j", "DROP"],
      ["ip", "netns", "exec", ns(3), "iptables", "-w", "-A", "OUTPUT", "-d", "10.203.7.11", "-j", "DROP"],
    ]);
    // Nothing outside the node namespaces: no rule lands where the runner is.
    for (const shape of PARTITION_SHAPES) {
      for (const c of partitionCommands(layout, partitionOf(shape, FIVE, 2, 5))) expect(c.netns?.startsWith("raftmq-chaos-1-a-n")).toBe(true);
    }
  });

  it("loss: a statistic match on both chains of each target node", () => {
    expect(lossCommands(layout, [3], 0.15).map(commandLine)).toEqual([
      ["ip", "netns", "exec", ns(3), "iptables", "-w", "-A", "INPUT", "-m", "statistic", "--mode", "random", "--probability", "0.1500", "-j", "DROP"],
      ["ip", "netns", "exec", ns(3), "iptables", "-w", "-A", "OUTPUT", "-m", "statistic", "--mode", "random", "--probability", "0.1500", "-j", "DROP"],
    ]);
    expect(() => lossCommands(layout, [1], 0.9)).toThrow(RangeError);
    expect(() => lossCommands(layout, [1], 0)).toThrow(RangeError);
  });

  it("slow: tbf on both ends of the node's veth; netem with delay only where the kernel has it", () => {
    expect(slowCommands(layout, [1], { rateKbit: 512, delayMs: 100, netem: false }).map(commandLine)).toEqual([
      ["ip", "netns", "exec", ns(1), "tc", "qdisc", "replace", "dev", "eth0", "root", "tbf", "rate", "512kbit", "burst", "16kb", "latency", "400ms"],
      ["tc", "qdisc", "replace", "dev", "veth-n1", "root", "tbf", "rate", "512kbit", "burst", "16kb", "latency", "400ms"],
    ]);
    expect(slowCommands(layout, [1], { rateKbit: 512, delayMs: 100, netem: true }).map(commandLine)[1]).toEqual([
      "tc",
      "qdisc",
      "replace",
      "dev",
      "veth-n1",
      "root",
      "netem",
      "delay",
      "100ms",
      "rate",
      "512kbit",
    ]);
    expect(() => slowCommands(layout, [1], { rateKbit: 1, delayMs: 0, netem: false })).toThrow(RangeError);
  });

  it("heal flushes the rules and removes the shapers, tolerating what is not there", () => {
    const heal = healCommands(layout, [2]);
    expect(heal.map(commandLine)).toEqual([
      ["ip", "netns", "exec", ns(2), "iptables", "-w", "-F", "INPUT"],
      ["ip", "netns", "exec", ns(2), "iptables", "-w", "-F", "OUTPUT"],
      ["ip", "netns", "exec", ns(2), "tc", "qdisc", "del", "dev", "eth0", "root"],
      ["tc", "qdisc", "del", "dev", "veth-n2", "root"],
    ]);
    expect(heal.map((c) => c.mayFail === true)).toEqual([false, false, true, true]);
  });

  it("planned network faults stay inside the limits", () => {
    const faults = planFaults(3, [...NETWORK_NEMESES], 600_000);
    expect(new Set(faults.map((f) => f.plan.nemesis))).toEqual(new Set(NETWORK_NEMESES));
    const shapes = new Set<PartitionShape>();
    for (const { plan } of faults) {
      if (plan.nemesis === "loss") {
        expect(plan.probability).toBeGreaterThanOrEqual(LIMITS.minLoss);
        expect(plan.probability).toBeLessThanOrEqual(LIMITS.maxLoss);
      } else if (plan.nemesis === "slow") {
        expect(plan.rateKbit).toBeGreaterThanOrEqual(LIMITS.minRateKbit);
        expect(plan.delayMs).toBeLessThanOrEqual(LIMITS.maxDelayMs);
      } else if (plan.nemesis === "partition") {
        shapes.add(plan.shape);
      }
    }
    expect(shapes).toEqual(new Set(PARTITION_SHAPES));
  });
});

const support = await probeNetworkSupport();
if (!support.available) process.stdout.write(`network-faults: real run skipped: ${support.reason}\n`);

/** The first seed whose schedule holds a partition, so the run is sure to cut something. */
function seedWithPartition(nemeses: readonly (typeof NETWORK_NEMESES)[number][], timeMs: number): number {
  for (let seed = 1; seed < 1000; seed++) if (planFaults(seed, nemeses, timeMs).some((f) => f.plan.nemesis === "partition")) return seed;
  throw new Error("no seed below 1000 plans a partition");
}

describe("a real run with network faults", () => {
  it.runIf(support.available)("partition, loss and slow on 3 nodes: nothing lost or unexpected, and a partition cut real traffic", { timeout: 120_000 }, async () => {
    const timeSec = 12;
    const nemeses = parseNemeses("partition,loss,slow");
    const seed = seedWithPartition(["partition", "loss", "slow"], timeSec * 1000);
    const outDir = mkdtempSync(join(tmpdir(), "raftmq-netfaults-"));
    const lines: string[] = [];
    const run = await runChaosInNamespaces({ timeSec, nemeses, seed, nodes: 3, outDir, say: (line) => lines.push(line) });
    process.stdout.write(`${run.summaryLine}\n`);
    if (!run.valid) process.stdout.write(`run kept in ${outDir}:\n${lines.join("\n")}\n`);
    expectCleanRun(run);
    expect(run.nemesisErrors).toEqual([]);

    // A connect across a cut link failed while one along a kept link worked.
    const { ops } = await readHistory(join(outDir, "history.jsonl"));
    const partitions = ops.filter((o): o is NemesisOp => o.f === "start-partition");
    expect(partitions.length).toBeGreaterThan(0);
    expect(partitions.some((p) => p.probe?.blocked === true && p.probe.connected !== false)).toBe(true);
    expect(run.check.faults.some((f) => f.f === "start-partition" && f.healed)).toBe(true);

    // Every namespace of the run is gone.
    expect((await listNetns()).filter((n) => n.startsWith(`raftmq-chaos-${process.pid}-`))).toEqual([]);
    if (run.valid) rmSync(outDir, { recursive: true, force: true });
  });
});
