// Operating a node: --help, HTTP health/readiness/metrics, gRPC health checking and reflection,
// and SIGTERM (leadership handed over, exit code 0).
import { testAuth } from "./three-node-cluster.ts";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectClient, Metadata, NODE_OPTIONS, envName } from "@raftmq/server";
import { eventually, raftmq, TestClient, waitForLeader } from "./broker-test-client.ts";
import { ClusterHarness } from "./cluster-harness.ts";

const harness = new ClusterHarness("ops");
const clients = new Map<number, TestClient>();
let leader = 0;

beforeAll(async () => {
  await harness.plan(3);
  await harness.startAll(3);
  for (const s of harness.specs) clients.set(s.id, new TestClient(harness.clientAddress(s.id), testAuth(harness)));
  leader = await waitForLeader([...clients.values()]);
});

afterAll(async () => {
  for (const c of clients.values()) c.close();
  await harness.cleanup();
});

async function http(id: number, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${harness.spec(id).httpPort}${path}`);
  return { status: res.status, body: await res.text() };
}


/** grpc.health.v1.Health/Check, encoded by hand: request field 1 = service, response field 1 = status. */
function healthCheck(address: string, service: string): Promise<number> {
  const client = connectClient(address, {}, testAuth(harness).channel);
  const name = Buffer.from(service, "utf8");
  const request = Buffer.concat([Buffer.from([0x0a, name.length]), name]);
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      "/grpc.health.v1.Health/Check",
      (b: Buffer) => b,
      (b: Buffer) => b,
      request,
      new Metadata(),
      (err, value) => {
        client.close();
        if (err !== null || value === undefined) reject(err ?? new Error("no answer"));
        // SERVING = 1; an absent field is UNKNOWN = 0.
        else resolve(value.length >= 2 && value[0] === 0x08 ? (value[1] ?? 0) : 0);
      },
    );
  });
}

/** grpc.reflection.v1.ServerReflection: list_services (field 7); returns the raw answer as text. */
function listServices(address: string): Promise<string> {
  const client = connectClient(address, {}, testAuth(harness).channel);
  const call = client.makeBidiStreamRequest(
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    (b: Buffer) => b,
    (b: Buffer) => b,
    new Metadata(),
  );
  return new Promise((resolve, reject) => {
    call.on("data", (b: Buffer) => {
      resolve(b.toString("latin1"));
      call.end();
    });
    call.on("error", (err) => reject(err));
    call.on("status", () => client.close());
    call.write(Buffer.from([0x3a, 0x01, 0x2a]));
  });
}

describe("node operations", () => {
  it("--help lists every option with its environment variable and default", () => {
    const main = fileURLToPath(new URL("../../packages/server/src/node-main.ts", import.meta.url));
    const out = spawnSync(process.execPath, ["--import", "tsx", main, "--help"], { cwd: fileURLToPath(new URL("../..", import.meta.url)), encoding: "utf8" });
    expect(out.status).toBe(0);
    // Commander wraps long lines; compare with runs of whitespace folded.
    const help = out.stdout.replace(/\s+/g, " ");
    for (const spec of NODE_OPTIONS) {
      expect(help).toContain(`--${spec.name}`);
      expect(help).toContain(envName(spec.name));
      if (spec.defaultText !== "") expect(help).toContain(`default ${spec.defaultText}`);
    }
  });

  it("answers /healthz and /readyz on every node, and 404 elsewhere", async () => {
    for (const s of harness.specs) {
      expect(await http(s.id, "/healthz")).toMatchObject({ status: 200 });
      const ready = await http(s.id, "/readyz");
      expect(ready.status).toBe(200);
      expect(ready.body).toContain(`leader ${leader}`);
      expect((await http(s.id, "/nope")).status).toBe(404);
    }
  });

  it("exports Raft and queue metrics in Prometheus format", async () => {
    const c = clients.get(leader) as TestClient;
    await c.call("DeclareQueue", { name: "metered" });
    await c.call("Publish", { messages: [1, 2, 3].map((i) => ({ routingKey: "metered", body: new Uint8Array([i]) })) });
    const metrics = await eventually("queue depth on a follower", async () => {
      const follower = harness.specs.find((s) => s.id !== leader)?.id ?? 0;
      const m = await http(follower, "/metrics");
      return m.body.includes('raftmq_queue_messages{vhost="/",queue="metered",state="ready"} 3') ? m.body : undefined;
    });
    expect(metrics).toMatch(/raftmq_raft_term [1-9]/);
    expect(metrics).toContain('raftmq_raft_role{role="follower"} 1');
    expect(metrics).toContain("raftmq_persist_seconds_bucket");
    // Process metrics, for the operator to see what a node costs.
    expect(metrics).toMatch(/process_resident_memory_bytes [1-9]/);
    expect(metrics).toMatch(/nodejs_heap_size_used_bytes [1-9]/);
    const onLeader = (await http(leader, "/metrics")).body;
    expect(onLeader).toContain('raftmq_raft_role{role="leader"} 1');
    expect(onLeader).toMatch(/raftmq_published_total [3-9]/);
    expect(onLeader).toMatch(/raftmq_proposals_total [1-9]/);
  });

  it("reports SERVING through grpc.health.v1 for the server and for raftmq.v1.Broker", async () => {
    for (const s of harness.specs) {
      await eventually("SERVING", async () => ((await healthCheck(harness.clientAddress(s.id), "")) === 1 ? true : undefined));
      expect(await healthCheck(harness.clientAddress(s.id), "raftmq.v1.Broker")).toBe(1);
    }
  });

  it("lists its services through server reflection", async () => {
    const answer = await listServices(harness.clientAddress(leader));
    expect(answer).toContain("raftmq.v1.Broker");
    expect(answer).toContain("raftmq.v1.Cluster");
  });

  it("on SIGTERM hands leadership over and exits 0; the cluster keeps serving", async () => {
    const old = leader;
    const stoppedAt = Date.now();
    const exit = await harness.stop(old, "SIGTERM");
    const took = Date.now() - stoppedAt;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(took).toBeLessThan(8000);
    const rest = [...clients.entries()].filter(([id]) => id !== old).map(([, c]) => c);
    const next = await waitForLeader(rest);
    expect(next).not.toBe(old);
    const res = await (clients.get(next) as TestClient).call("Publish", { messages: [{ routingKey: "metered", body: new Uint8Array([9]) }] });
    expect(res.confirms[0]?.status).toBe(raftmq.v1.ConfirmStatus.CONFIRM_STATUS_ACK);
    // A restarted node rejoins with its data and catches up.
    await harness.start(old, { members: harness.specs.map((s) => s.id) });
    await waitForLeader([...clients.values()]);
    const info = await (clients.get(old) as TestClient).call("QueueInfo", { name: "metered" });
    expect(Number(info.queue?.messagesReady)).toBe(4);
  });
});
