// Benchmark of a local 3-node cluster (real processes on 127.0.0.1): publish throughput with
// confirms at 256 in flight (1 and 4 producers), window-1 publish latency (through the SDK's
// publisher and as unary calls, after 500 unmeasured rounds each), consume-only drain of a
// backlog, publish-to-deliver latency at a fixed rate, and failover time (SIGKILL of the leader
// to the next confirm). Prints figures; asserts nothing.
// Publishing is measured twice: through the SDK's publisher (what an application uses: it keeps
// 256 messages awaiting confirms and sends the ones waiting together in one request) and with one
// message per PublishStream request (a plain gRPC client that does not batch).
// replication-floor.ts measures the same window-1 path with nothing of raftmq on it.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { connect, type RaftmqClient } from "@raftmq/client";
import { raftmq } from "@raftmq/proto";
import { freePorts } from "../../../test/integration/cluster-harness.ts";
import { type Client, connectClient, Metadata } from "../src/service-client.ts";
import { percentile } from "./percentile.ts";
import { brokerServiceDefinition, clusterServiceDefinition } from "@raftmq/proto/grpc";

const USAGE = `usage: node --import tsx packages/server/bench/cluster.ts [options]
  --messages N       messages per publish phase (30000)
  --samples N        window-1 publishes per latency measurement (2000)
  --backlog N        messages in the backlog the drain phase consumes (50000)
  --e2e-seconds N    length of the publish-to-deliver phase (4)
  --phases LIST      sdk, stream, latency, drain, e2e, failover (all)
  --producers LIST   producer counts of the publish phases (1,4)
  --body-bytes N     message body size (1024)
  --profile-dir DIR  write each node's CPU profile there
`;
const { values: args } = parseArgs({
  options: { help: { type: "boolean", default: false }, backlog: { type: "string", default: "50000" }, "e2e-seconds": { type: "string", default: "4" }, "profile-dir": { type: "string", default: "" }, phases: { type: "string", default: "sdk,stream,latency,drain,e2e,failover" }, producers: { type: "string", default: "1,4" }, messages: { type: "string", default: "30000" }, samples: { type: "string", default: "2000" }, "body-bytes": { type: "string", default: "1024" } },
});
if (args.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const MESSAGES = Number(args.messages);
const PHASES = new Set(args.phases.split(","));
const PRODUCER_COUNTS = args.producers.split(",").map(Number);
for (const n of PRODUCER_COUNTS) if (!Number.isInteger(n) || n < 1 || n > 64) throw new Error(`--producers takes counts from 1 to 64, got ${args.producers}`);
for (const phase of PHASES) if (!["sdk", "stream", "latency", "drain", "e2e", "failover"].includes(phase)) throw new Error(`unknown phase ${phase}`);
const SAMPLES = Number(args.samples);
const LATENCY_WARMUP = 500;
const BODY = new Uint8Array(Number(args["body-bytes"])).fill(120);
const NODE_MAIN = fileURLToPath(new URL("../src/node-main.ts", import.meta.url));
const REPO = fileURLToPath(new URL("../../..", import.meta.url));

interface Node {
  id: number;
  client: number;
  peer: number;
  http: number;
  child: ChildProcess | null;
  exit: Promise<void>;
}

/** The bench runs its nodes insecure: it measures the broker, not TLS (peer-bench compares both). */
function securityFlags(_id: number): string[] {
  return ["--insecure"];
}

function startNode(node: Node, cluster: string, dir: string): Promise<void> {
  const child = spawn(
    process.execPath,
    [...(args["profile-dir"] === "" ? [] : ["--cpu-prof", `--cpu-prof-dir=${args["profile-dir"]}`]), "--import", "tsx", NODE_MAIN, "--node-id", String(node.id), "--data-dir", join(dir, `n${node.id}`), "--client-port", String(node.client), "--peer-port", String(node.peer), "--http-port", String(node.http), "--amqp-port", "0", "--initial-cluster", cluster, "--log-level", "warn", ...securityFlags(node.id)],
    { cwd: REPO, stdio: ["ignore", "ignore", "inherit"] },
  );
  node.child = child;
  node.exit = new Promise((r) => child.once("exit", () => r()));
  return Promise.resolve();
}

function unary<Q, R>(client: Client, path: string, def: { requestSerialize: (v: Q) => Buffer; responseDeserialize: (b: Buffer) => R }, request: Q): Promise<R> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(path, def.requestSerialize, def.responseDeserialize, request, new Metadata(), { deadline: Date.now() + 10_000 }, (err, value) =>
      err !== null || value === undefined ? reject(err ?? new Error("empty")) : resolve(value),
    );
  });
}

const B = brokerServiceDefinition;
const C = clusterServiceDefinition;

async function status(client: Client): Promise<raftmq.v1.StatusResponse.$Properties> {
  return unary(client, C.Status.path, C.Status, {});
}

async function waitLeader(clients: Map<number, Client>): Promise<number> {
  for (;;) {
    try {
      const all = await Promise.all([...clients.values()].map(status));
      const leader = Number(all[0]?.leaderId ?? 0);
      if (leader !== 0 && all.every((s) => Number(s.leaderId) === leader && s.ready)) return leader;
    } catch {
      // a node is not up yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Publishes `count` messages on one stream keeping `inFlight` unconfirmed; resolves when all are confirmed. */
function producer(client: Client, queue: string, count: number, inFlight: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const call = client.makeBidiStreamRequest(B.PublishStream.path, B.PublishStream.requestSerialize, B.PublishStream.responseDeserialize, new Metadata());
    let sent = 0;
    let confirmed = 0;
    const pump = () => {
      while (sent - confirmed < inFlight && sent < count) {
        sent++;
        call.write({ clientSequence: sent, messages: [{ routingKey: queue, body: BODY }] });
      }
    };
    call.on("data", (r: raftmq.v1.PublishResponse) => {
      confirmed += r.confirms.length;
      if (r.confirms[0]?.status !== raftmq.v1.ConfirmStatus.CONFIRM_STATUS_ACK) reject(new Error(`nack: ${r.confirms[0]?.reason}`));
      if (confirmed >= count) {
        call.end();
        resolve();
      } else pump();
    });
    call.on("error", reject);
    pump();
  });
}

/** Publishes `count` messages through the SDK's publisher with `window` awaiting confirms. */
async function sdkProducer(client: RaftmqClient, queue: string, count: number, window: number): Promise<void> {
  const publisher = client.createPublisher({ window });
  const outstanding: Promise<unknown>[] = [];
  for (let i = 0; i < count; i++) {
    outstanding.push(publisher.publish("", queue, BODY));
    // Wait for the oldest confirm whenever the window is full, so the publisher's queue stays short.
    if (publisher.stats().queued > 0) await outstanding.shift();
  }
  await Promise.all(outstanding);
  await publisher.close();
}

/** Subscribes with a large prefetch and acks every 100th delivery (multiple); resolves at `count`. */
function consume(client: Client, queue: string, count: number, onDelivery?: (body: Uint8Array) => void): { done: Promise<void>; subscribed: Promise<void>; cancel: () => void } {
  const call = client.makeBidiStreamRequest(B.Consume.path, B.Consume.requestSerialize, B.Consume.responseDeserialize, new Metadata());
  let received = 0;
  let subscribed!: () => void;
  const subscribedP = new Promise<void>((r) => {
    subscribed = r;
  });
  const done = new Promise<void>((resolve, reject) => {
    call.on("data", (r: raftmq.v1.ConsumeResponse) => {
      if (r.kind === "subscribed") subscribed();
      if (r.kind === "error") reject(new Error(r.error?.message ?? "consume error"));
      if (r.kind !== "delivery" || r.delivery == null) return;
      received++;
      onDelivery?.(r.delivery.body ?? new Uint8Array());
      if (received % 100 === 0 || received === count) call.write({ ack: { consumerTag: "bench", deliveryTag: r.delivery.deliveryTag, multiple: true } });
      if (received === count) resolve();
    });
    call.on("error", (err) => {
      if (received < count) reject(err);
    });
  });
  call.write({ subscribe: { queue, prefetch: 2000, consumerTag: "bench" } });
  return { done, subscribed: subscribedP, cancel: () => call.cancel() };
}

/** CPU seconds (user + system) a process has used so far, from /proc. */
function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

/** CPU seconds used so far by this process (the client) and by each node, all threads. */
interface CpuReading {
  client: number;
  nodes: number[];
}

function readCpu(nodes: readonly Node[]): CpuReading {
  const c = process.cpuUsage();
  return { client: (c.user + c.system) / 1e6, nodes: nodes.map((n) => cpuSeconds(n.child?.pid)) };
}

/** CPU seconds used since `start`, split into the client, the leader and each follower. */
function cpuSince(start: CpuReading, nodes: readonly Node[], leader: number): { client: number; leader: number; followers: number[] } {
  const now = readCpu(nodes);
  const used = now.nodes.map((c, i) => c - (start.nodes[i] ?? 0));
  const leaderAt = nodes.findIndex((n) => n.id === leader);
  return { client: now.client - start.client, leader: used[leaderAt] ?? 0, followers: used.filter((_, i) => i !== leaderAt) };
}

/** CPU seconds of the event loop thread and of all other threads. */
function threadCpu(pid: number | undefined): Map<string, number> {
  const out = new Map<string, number>();
  if (pid === undefined) return out;
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
      // Threads are unnamed: tell the event loop apart from the rest (V8 helpers, GC, the libuv
      // pool that runs LevelDB writes and syncs, LevelDB's compaction thread).
      const name = tid === String(pid) ? "event loop" : "other threads";
      const fields = stat.slice(stat.lastIndexOf(") ") + 2).split(" ");
      out.set(name, (out.get(name) ?? 0) + (Number(fields[11]) + Number(fields[12])) / 100);
    }
  } catch {
    // the process is gone
  }
  return out;
}

function threadCpuDelta(after: Map<string, number>, before: Map<string, number>, messages: number): string {
  return [...after]
    .map(([name, s]) => [name, s - (before.get(name) ?? 0)] as const)
    .filter(([, s]) => s > 0)
    .sort((a, b) => b[1] - a[1])
    .map(([name, s]) => `${name} ${((s * 1e6) / messages).toFixed(0)}`)
    .join(", ");
}

/** A producer on a follower publishes one message at a time; the leader is SIGKILLed mid-way. */
async function measureFailover(nodes: Node[], clients: Map<number, Client>, leader: number): Promise<[string, string]> {
  const follower = nodes.find((n) => n.id !== leader) as Node;
  const fc = clients.get(follower.id) as Client;
  let killedAt = 0;
  let recoveredAt = 0;
  let attempts = 0;
  const leaderNode = nodes.find((n) => n.id === leader) as Node;
  for (let i = 0; recoveredAt === 0 && i < 1_000_000; i++) {
    if (i === 200 && killedAt === 0) {
      killedAt = performance.now();
      leaderNode.child?.kill("SIGKILL");
    }
    try {
      await unary(fc, B.Publish.path, B.Publish, { messages: [{ routingKey: "bench", body: BODY, producerId: "failover", sequence: i + 1 }] });
      if (killedAt > 0) recoveredAt = performance.now();
    } catch {
      attempts++;
      await new Promise((r) => setTimeout(r, 10));
      i--;
    }
  }
  return ["failover: SIGKILL of the leader to the next confirm, ms", `${(recoveredAt - killedAt).toFixed(0)} (${attempts} failed attempts; tick 100 ms, election 10 ticks)`];
}

/**
 * Window-1 publish latency: one message at a time awaiting its confirm, through the SDK's
 * publisher (a PublishStream kept open, as an application publishes) and as unary Publish calls.
 */
async function measureLatency(lc: Client, leaderAddress: string, nodes: Node[], leader: number, rows: [string, string][]): Promise<void> {
  const sdk = await connect([leaderAddress]);
  const publisher = sdk.createPublisher({ window: 1 });
  const streamed: number[] = [];
  // Unmeasured rounds first, so the figures describe a warm process, not the JIT at work.
  for (let i = 0; i < LATENCY_WARMUP; i++) await publisher.publish("", "bench", BODY);
  const cpu0 = readCpu(nodes);
  try {
    for (let i = 0; i < SAMPLES; i++) {
      const t = performance.now();
      await publisher.publish("", "bench", BODY);
      streamed.push(performance.now() - t);
    }
    await publisher.close();
  } finally {
    await sdk.close();
  }
  // CPU time per publish of every process, all threads: compare with replication-floor.ts.
  const cpu = cpuSince(cpu0, nodes, leader);
  const perPublish = (seconds: number) => ((seconds * 1e6) / SAMPLES).toFixed(0);
  const unaryCalls: number[] = [];
  for (let i = 0; i < LATENCY_WARMUP; i++) await unary(lc, B.Publish.path, B.Publish, { messages: [{ routingKey: "bench", body: BODY }] });
  for (let i = 0; i < SAMPLES; i++) {
    const t = performance.now();
    await unary(lc, B.Publish.path, B.Publish, { messages: [{ routingKey: "bench", body: BODY }] });
    unaryCalls.push(performance.now() - t);
  }
  const figures = (samples: number[]) => {
    samples.sort((a, b) => a - b);
    return `${percentile(samples, 50).toFixed(3)} / ${percentile(samples, 99).toFixed(3)} (${samples.length} samples)`;
  };
  rows.push(["window-1 publish latency, SDK publisher, p50 / p99 ms", figures(streamed)]);
  rows.push(["  CPU µs per publish, all threads", `client ${perPublish(cpu.client)}, leader ${perPublish(cpu.leader)}, followers ${cpu.followers.map(perPublish).join(" + ")}`]);
  rows.push(["window-1 publish latency, unary Publish calls, p50 / p99 ms", figures(unaryCalls)]);
  await unary(lc, B.PurgeQueue.path, B.PurgeQueue, { name: "bench" });
}

/** Consume-only drain of a backlog. */
async function measureDrain(lc: Client, rows: [string, string][]): Promise<void> {
  // Consume-only drain of a backlog.
  const backlog = Number(args.backlog);
  await producer(lc, "bench", backlog, 256);
  const t1 = performance.now();
  const drain = consume(lc, "bench", backlog);
  await drain.done;
  const drainSecs = (performance.now() - t1) / 1000;
  drain.cancel();
  rows.push([`consume-only drain of a ${backlog} backlog, msg/s`, `${Math.round(backlog / drainSecs)} (${drainSecs.toFixed(2)} s; prefetch 2000, ack every 100)`]);
  await new Promise((r) => setTimeout(r, 300));
  await unary(lc, B.PurgeQueue.path, B.PurgeQueue, { name: "bench" });
}

/** End-to-end publish-to-deliver latency at a fixed rate of 5,000 msg/s (5 per millisecond). */
async function measureEndToEnd(lc: Client, rows: [string, string][]): Promise<void> {
  // End-to-end publish-to-deliver latency at a fixed rate of 5,000 msg/s (5 per millisecond).
  const e2eCount = Math.round(Number(args["e2e-seconds"]) * 5000);
  const e2e: number[] = [];
  const sink = consume(lc, "bench", e2eCount, (body) => e2e.push(performance.now() - new DataView(body.buffer, body.byteOffset, 8).getFloat64(0)));
  await sink.subscribed;
  const pub = lc.makeBidiStreamRequest(B.PublishStream.path, B.PublishStream.requestSerialize, B.PublishStream.responseDeserialize, new Metadata());
  pub.on("data", () => undefined);
  pub.on("error", () => undefined);
  const startedAt = performance.now();
  let sentE2e = 0;
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const due = Math.min(e2eCount, Math.floor((performance.now() - startedAt) * 5));
      while (sentE2e < due) {
        const body = new Uint8Array(BODY.length);
        new DataView(body.buffer).setFloat64(0, performance.now());
        pub.write({ clientSequence: ++sentE2e, messages: [{ routingKey: "bench", body }] });
      }
      if (sentE2e >= e2eCount) {
        clearInterval(timer);
        resolve();
      }
    }, 1);
  });
  await sink.done;
  pub.end();
  sink.cancel();
  e2e.sort((a, b) => a - b);
  rows.push(["publish-to-deliver latency at 5,000 msg/s, p50 / p99 ms", `${percentile(e2e, 50).toFixed(2)} / ${percentile(e2e, 99).toFixed(2)} (${e2e.length} messages)`]);
  await new Promise((r) => setTimeout(r, 300));
  await unary(lc, B.PurgeQueue.path, B.PurgeQueue, { name: "bench" });
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "raftmq-bench-"));
  const ports = await freePorts(9);
  const nodes: Node[] = [1, 2, 3].map((id, i) => ({ id, client: ports[i * 3] ?? 0, peer: ports[i * 3 + 1] ?? 0, http: ports[i * 3 + 2] ?? 0, child: null, exit: Promise.resolve() }));
  const cluster = nodes.map((n) => `${n.id}=127.0.0.1:${n.peer}/127.0.0.1:${n.client}`).join(",");
  const clients = new Map(nodes.map((n) => [n.id, connectClient(`127.0.0.1:${n.client}`)]));
  const rows: [string, string][] = [];
  try {
    await Promise.all(nodes.map((n) => startNode(n, cluster, dir)));
    const leader = await waitLeader(clients);
    const lc = clients.get(leader) as Client;
    await unary(lc, B.DeclareQueue.path, B.DeclareQueue, { name: "bench" });

    const leaderAddress = `127.0.0.1:${nodes.find((n) => n.id === leader)?.client}`;
    const publishPhase = async (label: string, producers: number, run: (per: number) => Promise<void>) => {
      const per = Math.floor(MESSAGES / producers);
      const total = per * producers;
      const cpu0 = readCpu(nodes);
      const threads0 = nodes.map((n) => threadCpu(n.child?.pid));
      const t0 = performance.now();
      await run(per);
      const secs = (performance.now() - t0) / 1000;
      const cpu = cpuSince(cpu0, nodes, leader);
      const threads = nodes.map((n, i) => threadCpuDelta(threadCpu(n.child?.pid), threads0[i] ?? new Map(), total));
      const perMsg = (seconds: number) => ((seconds * 1e6) / total).toFixed(0);
      const leaderAt = nodes.findIndex((n) => n.id === leader);
      const followerCpu = cpu.followers.reduce((a, b) => a + b, 0);
      rows.push([
        `${label}, ${producers} producer(s), confirmed msg/s`,
        `${Math.round(total / secs)} (${total} msgs in ${secs.toFixed(2)} s; CPU µs/msg: client ${perMsg(cpu.client)}, leader ${perMsg(cpu.leader)}, followers ${perMsg(followerCpu)})`,
      ]);
      rows.push(["  CPU µs/msg by thread, leader", threads[leaderAt] ?? ""]);
      rows.push(["  CPU µs/msg by thread, a follower", threads[nodes.findIndex((n) => n.id !== leader)] ?? ""]);
      await unary(lc, B.PurgeQueue.path, B.PurgeQueue, { name: "bench" });
    };
    if (PHASES.has("sdk")) {
      for (const producers of PRODUCER_COUNTS) {
        await publishPhase("publish through the SDK publisher, 256 in flight", producers, async (per) => {
          const sdk = await Promise.all(Array.from({ length: producers }, () => connect([leaderAddress])));
          try {
            await Promise.all(sdk.map((c) => sdkProducer(c, "bench", per, 256)));
          } finally {
            for (const c of sdk) await c.close();
          }
        });
      }
    }
    if (PHASES.has("stream")) {
      for (const producers of PRODUCER_COUNTS) {
        await publishPhase("publish one message per stream request, 256 in flight", producers, async (per) => {
          const channels = Array.from({ length: producers }, () => connectClient(leaderAddress));
          try {
            await Promise.all(channels.map((c) => producer(c, "bench", per, 256)));
          } finally {
            for (const c of channels) c.close();
          }
        });
      }
    }

    if (PHASES.has("latency")) await measureLatency(lc, leaderAddress, nodes, leader, rows);
    if (PHASES.has("drain")) await measureDrain(lc, rows);
    if (PHASES.has("e2e")) await measureEndToEnd(lc, rows);
    if (PHASES.has("failover")) rows.push(await measureFailover(nodes, clients, leader));
  } finally {
    for (const c of clients.values()) c.close();
    // SIGTERM lets a profiled node write its profile; SIGKILL follows if it lingers.
    for (const n of nodes) n.child?.kill("SIGTERM");
    const lingering = setTimeout(() => {
      for (const n of nodes) n.child?.kill("SIGKILL");
    }, 5000);
    await Promise.all(nodes.map((n) => n.exit));
    clearTimeout(lingering);
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(`raftmq cluster benchmark: 3 nodes on 127.0.0.1, ${BODY.length}-byte bodies, confirms after commit`);
  for (const [name, value] of rows) console.log(`  ${name.padEnd(72)} ${value}`);
}

await main();
