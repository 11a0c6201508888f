// raftmqctl as a user runs it: real binaries against a real 3-node cluster, checking what they
// print and their exit codes, including bad input and an unreachable cluster.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ClusterHarness, freePorts } from "../../../test/integration/cluster-harness.ts";
import { killAll, run } from "./cli-process.ts";

const harness = new ClusterHarness("cli");
let env: Record<string, string> = {};

const ctl = (args: string[], input?: string) => run("raftmqctl", args, { env, input });

beforeAll(async () => {
  await harness.plan(3);
  await harness.startAll(3);
  env = { RAFTMQ_ADDRESSES: [1, 2, 3].map((id) => harness.clientAddress(id)).join(",") };
  // Wait for a leader through the binary itself.
  const until = Date.now() + 30_000;
  for (;;) {
    const r = await ctl(["status"]);
    if (r.code === 0 && r.stdout.includes("leader: node")) break;
    if (Date.now() > until) throw new Error(`no leader: ${r.stdout}${r.stderr}`);
    await new Promise((res) => setTimeout(res, 300));
  }
});

afterAll(async () => {
  await killAll();
  await harness.cleanup();
});

describe("raftmqctl against a cluster", () => {
  it("status shows every member as a table and names the leader", async () => {
    const r = await ctl(["status"]);
    expect(r.code).toBe(0);
    for (const id of [1, 2, 3]) expect(r.stdout).toContain(harness.clientAddress(id));
    expect(r.stdout).toMatch(/│ id │ role\s+│ leader │/);
    expect(r.stdout).toMatch(/leader: node [123] at 127\.0\.0\.1:\d+, term \d+/);
    expect(r.stdout.match(/voter/g)?.length).toBe(3);
    const json = await ctl(["status", "--json"]);
    const parsed = JSON.parse(json.stdout) as { nodes: { nodeId: number }[] };
    expect(parsed.nodes.map((n) => n.nodeId)).toEqual([1, 2, 3]);
  });

  it("declares, publishes from arguments and stdin, consumes with acks", async () => {
    expect((await ctl(["queue", "declare", "cli-orders"])).stdout).toContain("queue cli-orders declared");
    const pub = await ctl(["publish", "cli-orders", "one", "two"]);
    expect(pub.code).toBe(0);
    expect(pub.stdout).toContain("published 2 messages, all confirmed (routed to cli-orders)");
    const fromStdin = await ctl(["publish", "cli-orders"], "three\nfour\nfive\n");
    expect(fromStdin.code).toBe(0);
    expect(fromStdin.stdout).toContain("published 3 messages, all confirmed");
    const info = await ctl(["queue", "info", "cli-orders", "--json"]);
    expect((JSON.parse(info.stdout) as { messagesReady: number }).messagesReady).toBe(5);

    const consumed = await ctl(["consume", "cli-orders", "--count", "4"]);
    expect(consumed.code).toBe(0);
    expect(consumed.stdout.trim().split("\n")).toEqual(["one", "two", "three", "four"]);
    // Acked ones are gone; the fifth is left.
    const after = JSON.parse((await ctl(["queue", "info", "cli-orders", "--json"])).stdout) as { messagesReady: number; messagesUnacked: number };
    expect(after.messagesReady + after.messagesUnacked).toBe(1);
    const purged = await ctl(["purge", "cli-orders"]);
    expect(purged.code).toBe(0);
    expect(purged.stdout).toContain("purged 1 messages from cli-orders");
  });

  it("manages exchanges and bindings", async () => {
    expect((await ctl(["exchange", "declare", "cli-x", "--type", "topic"])).code).toBe(0);
    expect((await ctl(["queue", "declare", "cli-bound"])).code).toBe(0);
    expect((await ctl(["binding", "declare", "cli-x", "cli-bound", "a.#"])).stdout).toContain('bound cli-bound to cli-x with key "a.#"');
    const list = await ctl(["binding", "list", "--exchange", "cli-x", "--json"]);
    expect(JSON.parse(list.stdout)).toEqual([{ exchange: "cli-x", queue: "cli-bound", destinationExchange: "", routingKey: "a.#", arguments: {} }]);
    const pub = await ctl(["publish", "--exchange", "cli-x", "a.b.c", "routed"]);
    expect(pub.stdout).toContain("routed to cli-bound");
    expect((await ctl(["binding", "delete", "cli-x", "cli-bound", "a.#"])).code).toBe(0);
    // An exchange-to-exchange binding: cli-x routes on to cli-y, which routes to the queue.
    expect((await ctl(["exchange", "declare", "cli-y", "--type", "fanout"])).code).toBe(0);
    expect((await ctl(["binding", "declare", "cli-y", "cli-bound"])).code).toBe(0);
    expect((await ctl(["binding", "declare", "cli-x", "cli-y", "b.*", "--to-exchange"])).stdout).toContain('bound exchange cli-y to cli-x with key "b.*"');
    expect((await ctl(["binding", "list", "--to-exchange", "cli-y"])).stdout).toMatch(/cli-x\s+│ exchange cli-y\s+│ b\.\*/);
    expect((await ctl(["publish", "--exchange", "cli-x", "b.c", "via cli-y"])).stdout).toContain("routed to cli-bound");
    expect((await ctl(["binding", "delete", "cli-x", "cli-y", "b.*", "--to-exchange"])).code).toBe(0);
    expect((await ctl(["exchange", "delete", "cli-y"])).code).toBe(0);
    const exchanges = await ctl(["exchange", "list"]);
    expect(exchanges.stdout).toMatch(/cli-x\s+│ topic/);
    expect((await ctl(["exchange", "delete", "cli-x"])).code).toBe(0);
    expect((await ctl(["queue", "delete", "cli-bound"])).stdout).toContain("queue cli-bound deleted with 2 messages");
  });

  it("moves leadership, adds a member and removes it", async () => {
    const status = JSON.parse((await ctl(["status", "--json"])).stdout) as { nodes: { nodeId: number; role: string }[] };
    const leader = status.nodes.find((n) => n.role === "leader")?.nodeId ?? 0;
    const target = [1, 2, 3].find((id) => id !== leader) ?? 1;
    const moved = await ctl(["leader", "transfer", "--to", String(target)]);
    expect(moved.code).toBe(0);
    expect(moved.stdout).toContain(`leader: node ${target}`);

    const spec = await harness.addNodeSpec();
    await harness.start(spec.id, { members: [1, 2, 3, spec.id], join: true });
    const added = await ctl(["members", "add", String(spec.id), `127.0.0.1:${spec.peerPort}`, harness.clientAddress(spec.id)]);
    expect(added.code, added.stderr).toBe(0);
    expect(added.stdout).toContain(`added node ${spec.id}`);
    const removed = await ctl(["members", "remove", String(spec.id)]);
    expect(removed.code, removed.stderr).toBe(0);
    expect(removed.stdout).toMatch(/removed node 4; members: 1 \(voter\), 2 \(voter\), 3 \(voter\)$/m);
    await harness.stop(spec.id, "SIGTERM").catch(() => undefined);
  });

  it("bench prints throughput and latency percentiles as JSON", async () => {
    const r = await ctl(["bench", "--messages", "2000", "--size", "256", "--window", "128", "--json"]);
    expect(r.code).toBe(0);
    const figures = JSON.parse(r.stdout) as { publish: { messages: number; messagesPerSecond: number; latencyMs: Record<string, number> }; consume: { messages: number } };
    expect(figures.publish.messages).toBe(2000);
    expect(figures.consume.messages).toBe(2000);
    expect(figures.publish.messagesPerSecond).toBeGreaterThan(0);
    const l = figures.publish.latencyMs;
    expect(l.p50).toBeLessThanOrEqual(l.p90 ?? 0);
    expect(l.p99).toBeLessThanOrEqual(l.max ?? 0);
    // The bench queue is removed afterwards.
    expect((await ctl(["queue", "list"])).stdout).not.toContain("bench-");
  });
});

describe("raftmqctl on bad input", () => {
  it("an unknown queue: the server's message, exit code 1", async () => {
    const info = await ctl(["queue", "info", "no-such-queue"]);
    expect(info.code).toBe(1);
    expect(info.stderr).toContain("no-such-queue");
    const consume = await ctl(["consume", "no-such-queue", "--count", "1"]);
    expect(consume.code).toBe(1);
    expect(consume.stderr).toContain("no-such-queue");
  });

  it("an invalid name: the server's message, exit code 1", async () => {
    const r = await ctl(["queue", "declare", "n".repeat(300)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/longer than \d+ bytes/);
  });

  it("an unroutable publish fails instead of vanishing", async () => {
    const r = await ctl(["publish", "no-such-queue", "lost?"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("NO_ROUTE");
  });

  it("an unreachable cluster: names the address tried, exit code 1", async () => {
    const [port] = await freePorts(1);
    const address = `127.0.0.1:${port}`;
    const r = await run("raftmqctl", ["--addresses", address, "status"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("cannot reach the cluster");
    expect(r.stderr).toContain(address);
  });

  it("bad flags are usage errors", async () => {
    const r = await ctl(["consume", "q", "--count", "zero"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("--count");
  });
});
