// The floor under raftmq's window-1 publish latency on this machine: the same path with nothing
// of raftmq on it. A client sends 1 KiB on a grpc-js stream to a "leader" process, which forwards
// it on streams to two "follower" processes and writes it to its own LevelDB with sync; each
// follower writes it with sync and answers; the leader confirms once two of the three writes are
// done. No Raft, no broker, no protobuf: raw buffers. Prints p50/p99 and CPU per round for each
// process. Run it alternately with `cluster.ts --phases latency` to compare in the same minutes.
//   node --import tsx packages/server/bench/replication-floor.ts [--samples 4000] [--warmup 500] [--no-sync]
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { ClassicLevel } from "classic-level";
import { freePorts } from "../../../test/integration/cluster-harness.ts";
import { percentile } from "./percentile.ts";

const { values: args } = parseArgs({
  options: {
    samples: { type: "string", default: "4000" },
    warmup: { type: "string", default: "500" },
    "no-sync": { type: "boolean", default: false },
    help: { type: "boolean", default: false },
    // Internal: how the script starts its own leader and followers.
    role: { type: "string", default: "client" },
    port: { type: "string", default: "0" },
    peers: { type: "string", default: "" },
    "data-dir": { type: "string", default: "" },
  },
});
if (args.help) {
  process.stdout.write(
    "usage: node --import tsx packages/server/bench/replication-floor.ts [--samples 4000] [--warmup 500] [--no-sync]\n" +
      "Window-1 latency of a bare client -> leader -> 2 followers replication over grpc-js streams\n" +
      "with synced classic-level writes, and CPU time per round of each process.\n",
  );
  process.exit(0);
}

const SYNC = !args["no-sync"];
const identity = (b: Buffer) => b;
const service = {
  Stream: { path: "/floor.Floor/Stream", requestStream: true, responseStream: true, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity, originalName: "stream" },
} as const;
const FloorClient = grpc.makeGenericClientConstructor(service, "Floor");
type Duplex = grpc.ClientDuplexStream<Buffer, Buffer>;

/** One synced batch per message, as a node writes one synced batch per Ready. */
class SyncedLog {
  private seq = 0;
  private constructor(private readonly db: ClassicLevel<Buffer, Buffer>) {}

  static async open(dir: string): Promise<SyncedLog> {
    const db = new ClassicLevel<Buffer, Buffer>(dir, { keyEncoding: "buffer", valueEncoding: "buffer" });
    await db.open();
    return new SyncedLog(db);
  }

  async append(value: Buffer): Promise<void> {
    const key = Buffer.alloc(8);
    key.writeBigUInt64BE(BigInt(++this.seq));
    const batch = this.db.batch();
    batch.put(key, value);
    await batch.write({ sync: SYNC });
  }
}

function serve(port: number, onStream: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => void): Promise<void> {
  const server = new grpc.Server();
  server.addService(service, { Stream: onStream });
  return new Promise((resolve, reject) => server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err) => (err === null ? resolve() : reject(err))));
}

function openStream(port: string): Duplex {
  const client = new FloorClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as { Stream(): Duplex };
  return client.Stream();
}

/** Answers every line on stdin with this process's CPU time so far, all threads, in µs. */
function reportCpuOnRequest(): void {
  process.stdin.on("data", () => {
    const used = process.cpuUsage();
    process.stdout.write(`${used.user + used.system}\n`);
  });
}

async function follower(): Promise<void> {
  const log = await SyncedLog.open(args["data-dir"]);
  await serve(Number(args.port), (call) => {
    call.on("data", (frame: Buffer) => {
      void log.append(frame).then(() => call.write(frame.subarray(0, 8)));
    });
  });
  reportCpuOnRequest();
  process.stdout.write("ready\n");
}

async function leader(): Promise<void> {
  const log = await SyncedLog.open(args["data-dir"]);
  const followers = args.peers.split(",").map(openStream);
  const durable = new Map<bigint, { count: number; confirm: () => void }>();
  let next = 0n;
  const count = (seq: bigint) => {
    const round = durable.get(seq);
    if (round === undefined) return;
    // Two of three: the leader and one follower, or both followers.
    if (++round.count === 2) {
      durable.delete(seq);
      round.confirm();
    }
  };
  for (const f of followers) f.on("data", (answer: Buffer) => count(answer.readBigUInt64BE(0)));
  await serve(Number(args.port), (call) => {
    call.on("data", (body: Buffer) => {
      const seq = ++next;
      const header = Buffer.alloc(8);
      header.writeBigUInt64BE(seq);
      durable.set(seq, { count: 0, confirm: () => call.write(header) });
      const frame = Buffer.concat([header, body]);
      for (const f of followers) f.write(frame);
      void log.append(body).then(() => count(seq));
    });
  });
  reportCpuOnRequest();
  process.stdout.write("ready\n");
}

function startRole(role: string, port: number, dir: string, peers: number[] = []): Promise<ChildProcess> {
  const script = fileURLToPath(import.meta.url);
  const child = spawn(process.execPath, [...process.execArgv, script, "--role", role, "--port", String(port), "--peers", peers.join(","), "--data-dir", dir, ...(SYNC ? [] : ["--no-sync"])], { stdio: ["pipe", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`${role} exited with ${code} before it was ready`)));
    child.stdout?.once("data", () => resolve(child));
  });
}

function cpuOf(child: ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    child.stdout?.once("data", (line: Buffer) => resolve(Number(line.toString())));
    child.stdin?.write("cpu\n");
  });
}

async function client(): Promise<void> {
  const samples = Number(args.samples);
  const warmup = Number(args.warmup);
  const dir = mkdtempSync(join(tmpdir(), "raftmq-floor-"));
  const children: ChildProcess[] = [];
  try {
    const [leaderPort, f1, f2] = (await freePorts(3)) as [number, number, number];
    children.push(await startRole("follower", f1, join(dir, "f1")), await startRole("follower", f2, join(dir, "f2")));
    children.push(await startRole("leader", leaderPort, join(dir, "leader"), [f1, f2]));
    const stream = openStream(String(leaderPort));
    let done = false;
    stream.on("error", (err) => {
      if (!done) throw err;
    });
    const body = Buffer.alloc(1024, 120);
    const roundTrip = () => new Promise<void>((resolve) => {
      stream.once("data", () => resolve());
      stream.write(body);
    });
    for (let i = 0; i < warmup; i++) await roundTrip();
    const childCpuStart = await Promise.all(children.map(cpuOf));
    const cpuStart = process.cpuUsage();
    const latencies: number[] = [];
    for (let i = 0; i < samples; i++) {
      const t = performance.now();
      await roundTrip();
      latencies.push(performance.now() - t);
    }
    const clientCpu = process.cpuUsage(cpuStart);
    const childCpu = (await Promise.all(children.map(cpuOf))).map((end, i) => (end - (childCpuStart[i] ?? 0)) / samples);
    latencies.sort((a, b) => a - b);
    done = true;
    stream.cancel();
    process.stdout.write(`replication floor (grpc-js streams, classic-level ${SYNC ? "synced" : "unsynced"} writes, 1 KiB, window 1)\n`);
    process.stdout.write(`  p50 / p99 ms ${percentile(latencies, 50).toFixed(3)} / ${percentile(latencies, 99).toFixed(3)} (${samples} samples)\n`);
    const perRound = [(clientCpu.user + clientCpu.system) / samples, childCpu[2] ?? 0, childCpu[0] ?? 0, childCpu[1] ?? 0].map((c) => c.toFixed(0));
    process.stdout.write(`  CPU per round µs, all threads: client ${perRound[0]}, leader ${perRound[1]}, followers ${perRound[2]} + ${perRound[3]}\n`);
  } finally {
    for (const c of children) c.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
}

if (args.role === "follower") await follower();
else if (args.role === "leader") await leader();
else await client();
