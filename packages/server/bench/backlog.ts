// A deep backlog on a 3-node cluster of real node processes: 1 KiB messages (random bytes) are
// published into one queue with nothing consuming, in steps; after each step it prints the depth
// against each node's resident memory (all of it, and the part no file backs: LevelDB maps the
// tables it reads, and the kernel drops those pages under pressure) and V8 heap (the largest of
// the three, from /metrics), the
// data directories' size on disk (Raft log and body store), and the step's publish rate. Memory
// is also sampled every 200 ms throughout, for the peak. Then every node is restarted and the
// time until a publish is confirmed and the depth reads right is measured, and the backlog is
// drained. For comparison it first publishes a 50,000 backlog into an empty queue and drains it,
// three times (after a round of the same that warms the nodes up), and takes the medians; it does
// the same three times again after the drain, and compares with both.
// Prints figures only.
// With --cold (as root), the kernel's page cache is dropped before the backlog is drained, as it
// is in effect when the bodies on the three nodes' disks outgrow the machine's memory.
//   pnpm bench:backlog [total=1000000] [step=250000] [--cold]
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { publishRange, type raftmq, TestClient, waitForLeader } from "../../../test/integration/broker-test-client.ts";
import { ClusterHarness } from "../../../test/integration/cluster-harness.ts";
import { testAuth } from "../../../test/integration/three-node-cluster.ts";
import { percentile } from "./percentile.ts";

const COLD = process.argv.includes("--cold");
const args = process.argv.slice(2).filter((a) => a !== "--cold");
const TOTAL = Number(args[0] ?? 1_000_000);
const STEP = Number(args[1] ?? 250_000);
const SMALL = 50_000;
const BODY = 1024;
const ids = [1, 2, 3];
const harness = new ClusterHarness("bench-backlog", ["--log-level", "info"]);
await harness.plan(3);
await harness.startAll(3);
const clients = new Map(ids.map((id) => [id, new TestClient(harness.clientAddress(id), testAuth(harness))]));
const at = (id: number) => clients.get(id) as TestClient;

const pool = Array.from({ length: 4096 }, () => new Uint8Array(randomBytes(BODY)));
const body = (seq: number) => pool[seq % pool.length] as Uint8Array;
const MiB = 1024 * 1024;

interface Sample {
  /** Resident memory that no file backs (RssAnon), as the memory alarm reads it. */
  anon: number;
  rss: number;
  heap: number;
  /** Memory outside V8's heap that V8 knows of (Buffers). */
  external: number;
}

/** Node `id`'s /metrics text; null when it does not answer within 2 s. */
async function metricsOf(id: number): Promise<string | null> {
  try {
    return await (await fetch(`http://${harness.host(id)}:${harness.spec(id).httpPort}/metrics`, { signal: AbortSignal.timeout(2000) })).text();
  } catch {
    return null;
  }
}

async function sample(id: number): Promise<Sample | null> {
  const text = await metricsOf(id);
  if (text === null) return null;
  const value = (name: string) => Number(/^(\S+) (\S+)$/m.exec(text.split("\n").find((l) => l.startsWith(`${name} `)) ?? "")?.[2] ?? Number.NaN);
  return { anon: value("raftmq_process_anonymous_memory_bytes"), rss: value("process_resident_memory_bytes"), heap: value("nodejs_heap_size_used_bytes"), external: value("nodejs_external_memory_bytes") };
}

function bytesUnder(dir: string): number {
  let total = 0;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  for (const name of names) {
    try {
      const st = statSync(join(dir, name));
      total += st.isDirectory() ? bytesUnder(join(dir, name)) : st.size;
    } catch {
      // Compaction removed it meanwhile.
    }
  }
  return total;
}

function disk(id: number): { log: number; bodies: number } {
  const dir = harness.spec(id).dataDir;
  const bodies = bytesUnder(join(dir, "bodies"));
  return { log: bytesUnder(dir) - bodies, bodies };
}

const peak = new Map<number, Sample>(ids.map((id) => [id, { anon: 0, rss: 0, heap: 0, external: 0 }]));
/** The largest of each reading of any node since the phase began. */
let phasePeak: Sample = { anon: 0, rss: 0, heap: 0, external: 0 };
const phase = (): Sample => {
  const p = phasePeak;
  phasePeak = { anon: 0, rss: 0, heap: 0, external: 0 };
  return p;
};
let sampling = true;
const sampler = (async () => {
  while (sampling) {
    await Promise.all(
      ids.map(async (id) => {
        const s = await sample(id);
        if (s === null) return;
        const p = peak.get(id) as Sample;
        peak.set(id, { anon: Math.max(p.anon, s.anon), rss: Math.max(p.rss, s.rss), heap: Math.max(p.heap, s.heap), external: Math.max(p.external, s.external) });
        phasePeak = { anon: Math.max(phasePeak.anon, s.anon), rss: Math.max(phasePeak.rss, s.rss), heap: Math.max(phasePeak.heap, s.heap), external: Math.max(phasePeak.external, s.external) };
      }),
    );
    await new Promise((r) => setTimeout(r, 200));
  }
})();

async function publish(leader: number, queue: string, from: number, to: number): Promise<number> {
  const started = performance.now();
  const out = await publishRange(at(leader), { exchange: "", routingKey: queue, producerId: `bench-${queue}`, from, to, perRequest: 64, window: 16, body });
  if (out.confirmed.length !== to - from) throw new Error(`only ${out.confirmed.length} of ${to - from} confirmed`);
  return (to - from) / ((performance.now() - started) / 1000);
}

/** CPU seconds each node has used (user and system) and spent collecting garbage, from its /metrics; NaN for a node that did not answer. */
async function cpuSeconds(): Promise<{ cpu: number; gc: number }[]> {
  return Promise.all(
    ids.map(async (id) => {
      const text = await metricsOf(id);
      if (text === null) return { cpu: Number.NaN, gc: Number.NaN };
      let gc = 0;
      for (const m of text.matchAll(/^nodejs_gc_duration_seconds_sum\{[^}]*\} (\S+)$/gm)) gc += Number(m[1]);
      return { cpu: Number(/^process_cpu_seconds_total (\S+)$/m.exec(text)?.[1] ?? Number.NaN), gc };
    }),
  );
}

/** A node's body store work so far: keys deleted (a range its whole span), ranges compacted, segments dropped whole, bodies delivered from the read-ahead. */
interface BodyWork {
  deletes: number;
  compactions: number;
  dropped: number;
  hits: number;
}

async function bodyWork(): Promise<BodyWork[]> {
  return Promise.all(
    ids.map(async (id) => {
      const text = (await metricsOf(id)) ?? "";
      const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1] ?? Number.NaN);
      return {
        deletes: value("raftmq_body_store_deletes"),
        compactions: value("raftmq_body_store_compactions"),
        dropped: value("raftmq_body_store_segments_dropped"),
        hits: value("raftmq_body_read_ahead_hits"),
      };
    }),
  );
}

/** CPU ms (garbage collection among them) per 1,000 messages that each node spent between two readings. */
function cpuPer(before: { cpu: number; gc: number }[], after: { cpu: number; gc: number }[], count: number, leader: number): string {
  const per = (s: number) => ((s * 1000 * 1000) / count).toFixed(1);
  return ids
    .map((id, i) => {
      const a = after[i] as { cpu: number; gc: number };
      const b = before[i] as { cpu: number; gc: number };
      return `node ${id}${id === leader ? " (leader)" : ""} ${per(a.cpu - b.cpu)} (GC ${per(a.gc - b.gc)})`;
    })
    .join(", ");
}

/**
 * Drains `count` messages from `queue` through one consumer on `node`; returns the rate and
 * prints the CPU time the drain cost each node and this process, per 1,000 messages.
 */
async function drain(node: number, queue: string, count: number): Promise<number> {
  const cpuBefore = await cpuSeconds();
  const workBefore = await bodyWork();
  const ownBefore = process.cpuUsage();
  const started = performance.now();
  const stream = at(node).consume();
  let got = 0;
  /** Stream messages that carried deliveries: each is answered with one ack. */
  let batches = 0;
  await new Promise<void>((resolve, reject) => {
    stream.on("data", (r: raftmq.v1.ConsumeResponse) => {
      if (r.kind !== "delivery" && r.kind !== "deliveries") return;
      const batch = r.kind === "delivery" ? [r.delivery] : (r.deliveries?.deliveries ?? []);
      const last = batch.at(-1);
      got += batch.length;
      batches++;
      if (last != null) stream.write({ ack: { consumerTag: "drain", deliveryTag: last.deliveryTag, multiple: true } });
      if (got >= count) resolve();
    });
    stream.on("error", reject);
    stream.write({ subscribe: { queue, prefetch: 256, consumerTag: "drain", batchDeliveries: true } });
  });
  stream.cancel();
  const seconds = (performance.now() - started) / 1000;
  const cpuAfter = await cpuSeconds();
  const own = process.cpuUsage(ownBefore);
  const workAfter = await bodyWork();
  const work = ids
    .map((id, i) => {
      const a = workAfter[i] as BodyWork;
      const b = workBefore[i] as BodyWork;
      const hits = id === node ? `, ${(((a.hits - b.hits) / count) * 100).toFixed(1)}% of the bodies delivered read ahead` : "";
      return `node ${id} ${fmt(a.dropped - b.dropped)} segments dropped, ${fmt(a.deletes - b.deletes)} keys deleted, ${fmt(a.compactions - b.compactions)} ranges compacted${hits}`;
    })
    .join("; ");
  console.log(
    `  drain of ${fmt(count)} from ${queue} in ${seconds.toFixed(1)} s, ${(count / batches).toFixed(1)} deliveries per stream message: CPU ms per 1,000 messages ${cpuPer(cpuBefore, cpuAfter, count, node)}, this client ${(((own.user + own.system) / 1e3) * (1000 / count)).toFixed(1)}; body store: ${work}`,
  );
  return count / seconds;
}

async function worst(): Promise<Sample> {
  const all = (await Promise.all(ids.map(sample))).filter((s): s is Sample => s !== null);
  return { anon: Math.max(...all.map((s) => s.anon)), rss: Math.max(...all.map((s) => s.rss)), heap: Math.max(...all.map((s) => s.heap)), external: Math.max(...all.map((s) => s.external)) };
}

const fmt = (n: number) => n.toLocaleString("en-US", { maximumFractionDigits: 0 });
const mb = (n: number) => (n / MiB).toFixed(0);

let leader = await waitForLeader(ids.map(at), 60_000);
await at(leader).callRetrying("DeclareQueue", { name: "small", durable: true });
await at(leader).callRetrying("DeclareQueue", { name: "deep", durable: true });
// A first round warms the nodes up (their code is compiled as it first runs); the second is measured.
await publish(leader, "small", 0, SMALL);
await drain(leader, "small", SMALL);
// Three measured rounds: a round takes seconds, and its rates vary by a tenth between rounds on
// this shared machine; the medians are the figures the deep backlog is compared with.
const emptyRates: number[] = [];
const smallDrains: number[] = [];
for (let round = 1; round <= 3; round++) {
  emptyRates.push(await publish(leader, "small", round * SMALL, (round + 1) * SMALL));
  smallDrains.push(await drain(leader, "small", SMALL));
}
const median = (xs: number[]) => percentile([...xs].sort((a, b) => a - b), 50);
const emptyRate = median(emptyRates);
const smallDrain = median(smallDrains);
console.log(
  `into an empty queue, median of 3 rounds: publish ${fmt(emptyRate)} msg/s (${emptyRates.map(fmt).join(", ")}); drain of a ${fmt(SMALL)} backlog ${fmt(smallDrain)} msg/s (${smallDrains.map(fmt).join(", ")})`,
);

const base = await worst();
console.log("| depth | RSS (MiB) | RSS not file-backed (MiB) | heap used (MiB) | external (MiB) | Raft log on disk (MiB) | body store on disk (MiB) | publish rate of the step (msg/s) |");
console.log("|---|---|---|---|---|---|---|---|");
console.log(`| 0 | ${mb(base.rss)} | ${mb(base.anon)} | ${mb(base.heap)} | ${mb(base.external)} | ${mb(Math.max(...ids.map((id) => disk(id).log)))} | ${mb(Math.max(...ids.map((id) => disk(id).bodies)))} | |`);
let lastRate = 0;
let atDepth = base;
let reached = TOTAL;
const stepCpu: string[] = [];
for (let depth = 0; depth < TOTAL; ) {
  const to = Math.min(TOTAL, depth + STEP);
  leader = await waitForLeader(ids.map(at), 60_000);
  const cpuBefore = await cpuSeconds();
  try {
    lastRate = await publish(leader, "deep", depth, to);
  } catch (err) {
    // A finding, not a crash of the benchmark: it goes on with what is queued.
    leader = await waitForLeader(ids.map(at), 60_000);
    reached = Number((await at(leader).call("QueueInfo", { name: "deep" })).queue?.messagesReady);
    console.log(`publishing stopped at ${fmt(reached)} queued: ${(err as Error).message}`);
    break;
  }
  stepCpu.push(`  publish of ${fmt(depth)}–${fmt(to)}: CPU ms per 1,000 messages ${cpuPer(cpuBefore, await cpuSeconds(), to - depth, leader)}`);
  depth = to;
  atDepth = await worst();
  const d = ids.map(disk);
  console.log(`| ${fmt(depth)} | ${mb(atDepth.rss)} | ${mb(atDepth.anon)} | ${mb(atDepth.heap)} | ${mb(atDepth.external)} | ${mb(Math.max(...d.map((x) => x.log)))} | ${mb(Math.max(...d.map((x) => x.bodies)))} | ${fmt(lastRate)} |`);
}
console.log(
  `memory per queued message (at ${fmt(reached)} less empty, largest node): RSS ${((atDepth.rss - base.rss) / reached).toFixed(0)} bytes, not file-backed ${((atDepth.anon - base.anon) / reached).toFixed(0)} bytes, heap ${((atDepth.heap - base.heap) / reached).toFixed(0)} bytes`,
);
for (const line of stepCpu) console.log(line);
console.log(`publish rate at ${fmt(reached)} queued ÷ into an empty queue: ${(lastRate / emptyRate).toFixed(2)}`);

{
  const p = phase();
  console.log(`peak while publishing: RSS ${mb(p.rss)} MiB, not file-backed ${mb(p.anon)} MiB (heap ${mb(p.heap)}, external ${mb(p.external)})`);
}
// Restart of every node with the backlog queued; the log lines of the processes before it are kept.
const earlierLogs = new Map(ids.map((id) => [id, harness.logs(id)]));
for (const id of ids) await harness.stop(id);
const restartAt = performance.now();
// A node with a deep backlog may take longer than the harness's usual 20 s to start: that time is the figure.
await Promise.all(ids.map((id) => harness.start(id, { members: ids, startTimeoutMs: 300_000 })));
let served = 0;
for (;;) {
  try {
    leader = await waitForLeader(ids.map(at), 60_000);
    await publishRange(at(leader), { exchange: "", routingKey: "deep", producerId: "bench-after", from: 0, to: 1, perRequest: 1, window: 1, body });
    const info = await at(leader).call("QueueInfo", { name: "deep" });
    if (Number(info.queue?.messagesReady) === reached + 1) {
      served = performance.now() - restartAt;
      break;
    }
    throw new Error(`depth ${info.queue?.messagesReady}`);
  } catch {
    await new Promise((r) => setTimeout(r, 100));
  }
}
console.log(`restart of all nodes with ${fmt(reached)} queued: serving (a publish confirmed, the depth right) after ${(served / 1000).toFixed(1)} s`);

{
  const p = phase();
  console.log(`peak while restarting: RSS ${mb(p.rss)} MiB, not file-backed ${mb(p.anon)} MiB (heap ${mb(p.heap)}, external ${mb(p.external)})`);
}
leader = await waitForLeader(ids.map(at), 60_000);
if (COLD) {
  execFileSync("sync");
  writeFileSync("/proc/sys/vm/drop_caches", "3");
  console.log("page cache dropped before the drain");
}
const deepDrain = await drain(leader, "deep", reached + 1);
const after = await worst();
{
  const p = phase();
  console.log(`peak while draining: RSS ${mb(p.rss)} MiB, not file-backed ${mb(p.anon)} MiB (heap ${mb(p.heap)}, external ${mb(p.external)})`);
}
// The machine's speed drifts over the tens of minutes a deep backlog takes: the rounds into an
// empty queue are run again right after the drain, and the deep figures compared with both.
const laterRates: number[] = [];
const laterDrains: number[] = [];
for (let round = 4; round <= 6; round++) {
  laterRates.push(await publish(leader, "small", round * SMALL, (round + 1) * SMALL));
  laterDrains.push(await drain(leader, "small", SMALL));
}
const laterRate = median(laterRates);
const laterDrain = median(laterDrains);
console.log(
  `into an empty queue again after the drain, median of 3 rounds: publish ${fmt(laterRate)} msg/s (${laterRates.map(fmt).join(", ")}); drain of a ${fmt(SMALL)} backlog ${fmt(laterDrain)} msg/s (${laterDrains.map(fmt).join(", ")})`,
);
console.log(`publish rate at ${fmt(reached)} queued ÷ into an empty queue after the drain: ${(lastRate / laterRate).toFixed(2)}`);
console.log(
  `drain of the ${fmt(reached)} backlog: ${fmt(deepDrain)} msg/s (÷ drain of ${fmt(SMALL)} before: ${(deepDrain / smallDrain).toFixed(2)}, after: ${(deepDrain / laterDrain).toFixed(2)}); after it, largest node: RSS ${mb(after.rss)} MiB, not file-backed ${mb(after.anon)} MiB, heap ${mb(after.heap)} MiB, external ${mb(after.external)} MiB`,
);
sampling = false;
await sampler;
console.log(`peak per node over the whole run, RSS / not file-backed: ${ids.map((id) => `node ${id} ${mb(peak.get(id)?.rss ?? 0)} / ${mb(peak.get(id)?.anon ?? 0)} MiB`).join(", ")}`);
for (const id of ids) {
  const snapshots = `${earlierLogs.get(id) ?? ""}\n${harness.logs(id)}`
    .split("\n")
    .filter((l) => l.includes('"event":"snapshot"'))
    .map((l) => JSON.parse(l) as { bytes: number; ms: number; encodeMs: number });
  const largest = snapshots.reduce((a, s) => (s.bytes > a.bytes ? s : a), { bytes: 0, ms: 0, encodeMs: 0 });
  const restored = harness
    .logs(id)
    .split("\n")
    .filter((l) => l.includes('"event":"body-store-walked"'))
    .map((l) => JSON.parse(l) as { live: number; ms: number });
  const after = (event: string) => {
    const line = harness
      .logs(id)
      .split("\n")
      .find((l) => l.includes(`"event":"${event}"`));
    return line === undefined ? undefined : (JSON.parse(line) as { ms: number; entries?: number; bodiesAlreadyStored?: number });
  };
  const opened = after("storage-opened");
  const loaded = after("state-loaded");
  const replayed = after("log-replayed");
  console.log(
    `node ${id}: ${snapshots.length} snapshots, the largest ${mb(largest.bytes)} MiB taken in ${largest.ms} ms (encoding ${largest.encodeMs} ms, the loop going on); ` +
      `after restart: log and body store opened in ${opened?.ms ?? "?"} ms, state loaded ${loaded?.ms ?? "?"} ms later, ` +
      `${fmt(replayed?.entries ?? 0)} entries applied again by ${replayed?.ms ?? "?"} ms (${fmt(replayed?.bodiesAlreadyStored ?? 0)} bodies already stored, not written again); ` +
      `body store walks: ${restored.map((w) => `${fmt(w.live)} bodies in ${w.ms} ms`).join(", ") || "none"}`,
  );
}
for (const c of clients.values()) c.close();
await harness.cleanup();
