// Throughput of the peer transport: two transports in one process on loopback, one sending
// AppendEntries-shaped messages to the other. Prints messages/s, entries/s and CPU time per
// entry (both ends share the process), median of 3 runs.
import { performance } from "node:perf_hooks";
import * as grpc from "@grpc/grpc-js";
import { raftmq } from "@raftmq/proto";
import { createMessage, type Entry, type Message } from "@raftmq/raft";
import { PeerTransport } from "../src/peer-transport.ts";

const ENTRY_BYTES = 1024;
const RUNS = 3;
/** The producer keeps at most this much queued, like a Raft leader's in-flight window. */
const WINDOW_BYTES = 8 * 1024 * 1024;
const SEND_SLICE = 128;

interface Endpoint {
  transport: PeerTransport;
  server: grpc.Server;
  port: number;
}

interface RunResult {
  messagesPerSec: number;
  entriesPerSec: number;
  cpuMicrosPerEntry: number;
  frames: number;
  dropped: number;
}

async function endpoint(id: number, onMessages: (messages: Message[]) => void): Promise<Endpoint> {
  const transport = new PeerTransport({ selfId: id, onMessages });
  const server = new grpc.Server(transport.serverOptions());
  transport.addService(server);
  const port = await transport.bind(server, "127.0.0.1:0");
  return { transport, server, port };
}

function appendEntries(index: number, entriesPerMessage: number, data: Uint8Array): Message {
  const entries: Entry[] = [];
  for (let i = 0; i < entriesPerMessage; i++) {
    entries.push({ term: 3, index: index + i + 1, type: raftmq.v1.EntryType.ENTRY_TYPE_NORMAL, data });
  }
  return createMessage({ type: raftmq.v1.MessageType.MESSAGE_TYPE_APPEND_ENTRIES, from: 1, to: 2, term: 3, logIndex: index, logTerm: 3, entries, commit: index });
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

async function run(entriesPerMessage: number, totalEntries: number): Promise<RunResult> {
  const count = Math.floor(totalEntries / entriesPerMessage);
  let received = 0;
  let receivedEntries = 0;
  const a = await endpoint(1, () => {});
  const b = await endpoint(2, (messages) => {
    received += messages.length;
    for (const m of messages) receivedEntries += m.entries.length;
  });
  a.transport.setPeer(2, `127.0.0.1:${b.port}`);
  b.transport.setPeer(1, `127.0.0.1:${a.port}`);
  while (a.transport.stats()[2]?.connected !== true) await nextTurn();

  const data = new Uint8Array(ENTRY_BYTES).fill(7);
  const startCpu = process.cpuUsage();
  const start = performance.now();
  let sent = 0;
  while (received < count) {
    const queued = a.transport.stats()[2]?.queuedBytes ?? 0;
    if (sent < count && queued < WINDOW_BYTES) {
      const slice: Message[] = [];
      const end = Math.min(count, sent + SEND_SLICE);
      for (; sent < end; sent++) slice.push(appendEntries(sent * entriesPerMessage, entriesPerMessage, data));
      a.transport.send(slice);
    }
    await nextTurn();
  }
  const seconds = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(startCpu);
  const result: RunResult = {
    messagesPerSec: count / seconds,
    entriesPerSec: receivedEntries / seconds,
    cpuMicrosPerEntry: (cpu.user + cpu.system) / receivedEntries,
    frames: b.transport.inboundStats().frames,
    dropped: a.transport.stats()[2]?.droppedMessages ?? 0,
  };
  await Promise.all([a.transport.close(), b.transport.close()]);
  a.server.forceShutdown();
  b.server.forceShutdown();
  return result;
}

function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

const fmt = (n: number): string => Math.round(n).toLocaleString("en-US");

async function main(): Promise<void> {
  console.log(`peer transport, loopback, ${ENTRY_BYTES} B entries, median of ${RUNS} runs (CPU covers both ends)`);
  for (const [entriesPerMessage, totalEntries] of [
    [1, 200_000],
    [64, 640_000],
  ] as const) {
    const results: RunResult[] = [];
    for (let i = 0; i < RUNS; i++) results.push(await run(entriesPerMessage, totalEntries));
    const messages = Math.floor(totalEntries / entriesPerMessage);
    console.log(
      `${String(entriesPerMessage).padStart(2)} entries/message: ` +
        `${fmt(median(results.map((r) => r.messagesPerSec)))} msgs/s, ` +
        `${fmt(median(results.map((r) => r.entriesPerSec)))} entries/s, ` +
        `${median(results.map((r) => r.cpuMicrosPerEntry)).toFixed(2)} µs CPU/entry, ` +
        `${fmt(median(results.map((r) => r.frames)))} frames for ${fmt(messages)} messages, ` +
        `${fmt(Math.max(...results.map((r) => r.dropped)))} dropped`,
    );
  }
}

await main();
