// The peer transport over real gRPC servers on 127.0.0.1: ordering, batching, reconnects,
// limits, Raft groups, and what a receiver does with frames it must not trust.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { raftmq } from "@raftmq/proto";
import { afterEach, describe, expect, it } from "vitest";
import { createMessage, type Message } from "@raftmq/raft";
import { Backoff, backoffDelay } from "../src/backoff.ts";
import { defineService, rawBytes } from "@raftmq/proto/grpc";
import {
  DEFAULT_GROUP_ID,
  decodeFrame,
  fromWire,
  laneOf,
  PEER_TRANSPORT_DEFAULTS,
  type PeerTransportOptions,
  PeerTransport,
  RAFT_SERVICE_NAME,
  raftServiceDefinition,
} from "../src/peer-transport.ts";

const T = raftmq.v1.MessageType;
const RAFT_PROTO = fileURLToPath(new URL("../../../proto/raftmq/v1/raft.proto", import.meta.url));
const FAST_BACKOFF = { initialMs: 20, maxMs: 200, jitter: 0.2 };

// ---------------------------------------------------------------------------------------------
// Fixtures


/** A heartbeat whose commit field carries a sequence number, to check order on arrival. */
function numbered(from: number, to: number, seq: number): Message {
  return createMessage({ type: T.MESSAGE_TYPE_HEARTBEAT, from, to, term: 1, commit: seq });
}

function pattern(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 31 + seed * 7 + (i >>> 8)) & 0xff;
  return bytes;
}

interface TestNode {
  id: number;
  port: number;
  transport: PeerTransport;
  server: grpc.Server;
  received: Message[];
  batches: number;
  /** The group of each batch, in order of arrival. */
  batchGroups: number[];
  unreachable: number[];
  states: string[];
}

const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  const pending = cleanups.splice(0).reverse();
  for (const cleanup of pending) await cleanup();
});

async function startNode(
  id: number,
  port = 0,
  options: Partial<Omit<PeerTransportOptions, "selfId" | "onMessages">> = {},
): Promise<TestNode> {
  const node: TestNode = {
    id,
    port: 0,
    received: [],
    batches: 0,
    batchGroups: [],
    unreachable: [],
    states: [],
    server: undefined as unknown as grpc.Server,
    transport: new PeerTransport({
      selfId: id,
      backoff: FAST_BACKOFF,
      ...options,
      onMessages: (messages, groupId) => {
        node.batches++;
        node.batchGroups.push(groupId);
        node.received.push(...messages);
      },
      onUnreachable: (peer) => node.unreachable.push(peer),
      onPeerState: (peer, state) => node.states.push(`${peer}:${state}`),
    }),
  };
  node.server = new grpc.Server(node.transport.serverOptions());
  node.transport.addService(node.server);
  node.port = await node.transport.bind(node.server, `127.0.0.1:${port}`);
  cleanups.push(() => stopNode(node));
  return node;
}

async function stopNode(node: TestNode): Promise<void> {
  await node.transport.close();
  node.server.forceShutdown();
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function waitFor(what: string, predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * A Raft.Stream opened by a proto-loader client of its own, optionally naming a sender in its
 * metadata: the acks it receives and the status it ends with.
 */
function protoLoaderStream(
  port: number,
  peerId = 0,
): { call: grpc.ClientDuplexStream<object, { received: number }>; acks: number[]; status: Promise<grpc.StatusObject> } {
  const loaded = protoLoader.loadSync(RAFT_PROTO, { longs: Number, enums: Number });
  const method = (loaded["raftmq.v1.Raft"] as grpc.ServiceDefinition).Stream;
  if (method === undefined) throw new Error("proto-loader found no Raft.Stream");
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  cleanups.push(async () => client.close());
  const metadata = new grpc.Metadata();
  if (peerId > 0) metadata.set("raftmq-peer-id", String(peerId));
  const call = client.makeBidiStreamRequest(method.path, method.requestSerialize, method.responseDeserialize, metadata) as grpc.ClientDuplexStream<
    object,
    { received: number }
  >;
  const acks: number[] = [];
  const status = new Promise<grpc.StatusObject>((resolve) => call.on("status", resolve));
  call.on("data", (ack: { received: number }) => acks.push(ack.received));
  call.on("error", () => {});
  return { call, acks, status };
}

/** A Raft.Stream server that keeps every frame a transport writes to it, undecoded. */
async function frameRecorder(): Promise<{ port: number; frames: Uint8Array[] }> {
  const frames: Uint8Array[] = [];
  const server = new grpc.Server();
  const service = defineService(RAFT_SERVICE_NAME, {
    Stream: { request: rawBytes, response: raftmq.v1.StreamAck, requestStream: true, responseStream: true },
  });
  server.addService(service, {
    Stream: (call: grpc.ServerDuplexStream<Uint8Array, raftmq.v1.StreamAck.$Properties>) => {
      // A transport writes nothing until the stream's headers arrive.
      call.sendMetadata(new grpc.Metadata());
      call.on("data", (frame: Uint8Array) => frames.push(frame));
      call.on("end", () => call.end());
    },
  });
  const port = await bindInsecure(server);
  cleanups.push(async () => server.forceShutdown());
  return { port, frames };
}

function connect(a: TestNode, b: TestNode): void {
  a.transport.setPeer(b.id, `127.0.0.1:${b.port}`);
  b.transport.setPeer(a.id, `127.0.0.1:${a.port}`);
}

function sequencesFrom(node: TestNode, from: number): number[] {
  return node.received.filter((m) => m.from === from).map((m) => m.commit);
}

function range(start: number, end: number): number[] {
  return Array.from({ length: end - start }, (_, i) => start + i);
}

// ---------------------------------------------------------------------------------------------

describe("backoff", () => {
  it("doubles from initialMs and stops at maxMs", () => {
    const options = { initialMs: 50, maxMs: 2_000, jitter: 0 };
    const delays = range(0, 8).map((attempt) => backoffDelay(attempt, options, () => 0.5));
    expect(delays).toEqual([50, 100, 200, 400, 800, 1_600, 2_000, 2_000]);
    expect(backoffDelay(10_000, options, () => 0.5)).toBe(2_000);
  });

  it("spreads each delay by at most the jitter fraction, both ways", () => {
    const options = { initialMs: 100, maxMs: 100, jitter: 0.2 };
    expect(backoffDelay(0, options, () => 0)).toBe(80);
    expect(backoffDelay(0, options, () => 0.999999)).toBe(120);
    const backoff = new Backoff(options);
    for (let i = 0; i < 100; i++) {
      const delay = backoff.next();
      expect(delay).toBeGreaterThanOrEqual(80);
      expect(delay).toBeLessThanOrEqual(120);
    }
  });

  it("starts over after reset and rejects nonsense options", () => {
    const backoff = new Backoff({ initialMs: 10, maxMs: 1_000, jitter: 0 });
    expect([backoff.next(), backoff.next(), backoff.next()]).toEqual([10, 20, 40]);
    backoff.reset();
    expect(backoff.next()).toBe(10);
    expect(() => new Backoff({ initialMs: 0, maxMs: 10, jitter: 0 })).toThrow(RangeError);
    expect(() => new Backoff({ initialMs: 10, maxMs: 5, jitter: 0 })).toThrow(RangeError);
    expect(() => new Backoff({ initialMs: 10, maxMs: 50, jitter: 2 })).toThrow(RangeError);
  });
});

describe("fromWire", () => {
  const snapshot = {
    meta: { index: 900, term: 7, confState: { voters: [1, 2, 3], learners: [4] } },
    offset: 65_536,
    totalSize: 200_000,
    data: pattern(1_000, 3),
    done: true,
  };
  const entries = [
    { term: 7, index: 101, type: raftmq.v1.EntryType.ENTRY_TYPE_NORMAL, data: pattern(40, 1) },
    { term: 7, index: 102, type: raftmq.v1.EntryType.ENTRY_TYPE_NORMAL, data: new Uint8Array(0) },
    { term: 7, index: 103, type: raftmq.v1.EntryType.ENTRY_TYPE_CONF_CHANGE, data: pattern(12, 2) },
  ];
  const cases: Message[] = [
    createMessage({ type: T.MESSAGE_TYPE_PRE_VOTE, from: 1, to: 2, term: 8, logIndex: 103, logTerm: 7 }),
    createMessage({ type: T.MESSAGE_TYPE_PRE_VOTE_RESPONSE, from: 2, to: 1, term: 8, reject: true }),
    createMessage({ type: T.MESSAGE_TYPE_REQUEST_VOTE, from: 1, to: 3, term: 8, logIndex: 103, logTerm: 7 }),
    createMessage({ type: T.MESSAGE_TYPE_REQUEST_VOTE_RESPONSE, from: 3, to: 1, term: 8 }),
    createMessage({ type: T.MESSAGE_TYPE_APPEND_ENTRIES, from: 1, to: 2, term: 7, logIndex: 100, logTerm: 6, entries, commit: 99 }),
    createMessage({ type: T.MESSAGE_TYPE_APPEND_ENTRIES_RESPONSE, from: 2, to: 1, term: 7, logIndex: 50, reject: true, rejectHint: 40, hintTerm: 5 }),
    createMessage({ type: T.MESSAGE_TYPE_HEARTBEAT, from: 1, to: 2, term: 7, commit: 103, context: pattern(8, 9) }),
    createMessage({ type: T.MESSAGE_TYPE_HEARTBEAT_RESPONSE, from: 2, to: 1, term: 7, context: pattern(8, 9) }),
    createMessage({ type: T.MESSAGE_TYPE_INSTALL_SNAPSHOT, from: 1, to: 4, term: 7, snapshot }),
    createMessage({ type: T.MESSAGE_TYPE_INSTALL_SNAPSHOT_RESPONSE, from: 4, to: 1, term: 7, logIndex: 66_536 }),
    createMessage({ type: T.MESSAGE_TYPE_TIMEOUT_NOW, from: 1, to: 2, term: 7 }),
    createMessage({ type: T.MESSAGE_TYPE_READ_INDEX, from: 2, to: 1, term: 7, context: pattern(16, 4) }),
    createMessage({ type: T.MESSAGE_TYPE_READ_INDEX_RESPONSE, from: 1, to: 2, term: 7, logIndex: 103, context: pattern(16, 4) }),
  ];

  it("covers every message type", () => {
    const covered = new Set(cases.map((m) => m.type));
    const all = Object.values(T).filter((v): v is number => typeof v === "number" && v !== T.MESSAGE_TYPE_UNSPECIFIED);
    expect([...covered].sort((a, b) => a - b)).toEqual(all.sort((a, b) => a - b));
  });

  it.each(cases.map((m) => [T[m.type], m] as const))("%s survives encode, decode and fromWire", (_name, original) => {
    const bytes = raftmq.v1.MessageBatch.encode({ messages: [original] }).finish();
    const decoded = decodeFrame(bytes).messages[0] as raftmq.v1.Message;
    const back = fromWire(decoded);
    expect(back).toEqual(original);
    // Zero-valued fields must be own properties, so spreading an entry keeps them.
    for (const entry of back.entries) expect({ ...entry }).toEqual(entry);
    expect(back.entries.map((e) => ({ ...e }))).toEqual(original.entries);
  });

  it("gives a snapshot chunk without meta an empty one instead of null", () => {
    const bytes = raftmq.v1.Message.encode({ type: T.MESSAGE_TYPE_INSTALL_SNAPSHOT, from: 1, to: 2, snapshot: { offset: 5 } }).finish();
    const back = fromWire(raftmq.v1.Message.decode(bytes));
    expect(back.snapshot?.meta).toEqual({ index: 0, term: 0, confState: { voters: [], learners: [] } });
    expect(back.snapshot?.offset).toBe(5);
  });
});

describe("grpc codec", () => {
  const loaderOptions = { longs: Number, enums: Number, defaults: true };

  it("names methods as proto-loader does", () => {
    const loaded = protoLoader.loadSync(RAFT_PROTO, loaderOptions);
    const service = loaded["raftmq.v1.Raft"] as grpc.ServiceDefinition;
    expect(raftServiceDefinition.Stream.path).toBe("/raftmq.v1.Raft/Stream");
    expect(raftServiceDefinition.Stream.path).toBe(service.Stream?.path);
    expect(raftServiceDefinition.Stream.requestStream).toBe(true);
    expect(raftServiceDefinition.Stream.responseStream).toBe(true);
    expect(() => defineService("bad name", {})).toThrow();
  });

  it("serves a proto-loader client", async () => {
    const server = new grpc.Server();
    const seen: raftmq.v1.MessageBatch[] = [];
    server.addService(raftServiceDefinition, {
      Stream: (call: grpc.ServerDuplexStream<raftmq.v1.MessageBatch, raftmq.v1.StreamAck.$Properties>) => {
        call.on("data", (batch: raftmq.v1.MessageBatch) => {
          seen.push(batch);
          call.write({ received: batch.messages.length * 10 });
        });
        call.on("end", () => call.end());
      },
    });
    const port = await bindInsecure(server);
    cleanups.push(async () => server.forceShutdown());

    const loaded = protoLoader.loadSync(RAFT_PROTO, loaderOptions);
    const method = (loaded["raftmq.v1.Raft"] as grpc.ServiceDefinition).Stream;
    if (method === undefined) throw new Error("proto-loader found no Raft.Stream");
    const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    cleanups.push(async () => client.close());
    const call = client.makeBidiStreamRequest(method.path, method.requestSerialize, method.responseDeserialize);
    const acks: number[] = [];
    call.on("data", (ack: { received: number }) => acks.push(ack.received));
    call.on("error", () => {});
    call.write({
      messages: [
        { type: T.MESSAGE_TYPE_APPEND_ENTRIES, from: 1, to: 2, term: 3, entries: [{ term: 3, index: 9, data: Buffer.from("hi") }] },
        { type: T.MESSAGE_TYPE_HEARTBEAT, from: 1, to: 2, term: 3, commit: 9 },
      ],
    });
    await waitFor("an ack", () => acks.length === 1);
    call.end();
    expect(acks).toEqual([20]);
    const first = seen[0]?.messages[0];
    expect(first?.type).toBe(T.MESSAGE_TYPE_APPEND_ENTRIES);
    expect(first?.term).toBe(3);
    expect(Buffer.from(first?.entries?.[0]?.data ?? []).toString()).toBe("hi");
    expect(seen[0]?.messages[1]?.commit).toBe(9);
  });

  it("talks to a proto-loader server", async () => {
    const loaded = protoLoader.loadSync(RAFT_PROTO, loaderOptions);
    const service = loaded["raftmq.v1.Raft"] as grpc.ServiceDefinition;
    const server = new grpc.Server();
    const seen: { messages: { type: number; to: number; context: Buffer }[] }[] = [];
    server.addService(service, {
      Stream: (call: grpc.ServerDuplexStream<(typeof seen)[number], { received: number }>) => {
        call.on("data", (batch: (typeof seen)[number]) => {
          seen.push(batch);
          call.write({ received: 7 });
        });
        call.on("end", () => call.end());
      },
    });
    const port = await bindInsecure(server);
    cleanups.push(async () => server.forceShutdown());

    const method = raftServiceDefinition.Stream;
    const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    cleanups.push(async () => client.close());
    const call = client.makeBidiStreamRequest(method.path, method.requestSerialize, method.responseDeserialize);
    const acks: number[] = [];
    call.on("data", (ack: raftmq.v1.StreamAck) => acks.push(ack.received));
    call.on("error", () => {});
    call.write({ messages: [createMessage({ type: T.MESSAGE_TYPE_READ_INDEX, from: 2, to: 1, context: pattern(4, 1) })] });
    await waitFor("an ack", () => acks.length === 1);
    call.end();
    expect(acks).toEqual([7]);
    expect(seen[0]?.messages[0]?.type).toBe(T.MESSAGE_TYPE_READ_INDEX);
    expect(seen[0]?.messages[0]?.to).toBe(1);
    expect(new Uint8Array(seen[0]?.messages[0]?.context ?? [])).toEqual(pattern(4, 1));
  });
});

async function bindInsecure(server: grpc.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port)));
  });
}

describe("PeerTransport", () => {
  it("delivers messages between three nodes in order", async () => {
    const nodes = await Promise.all([startNode(1), startNode(2), startNode(3)]);
    for (const a of nodes) for (const b of nodes) if (a.id < b.id) connect(a, b);
    const perPair = 600;
    // Sends spread over many event-loop turns, in uneven slices.
    for (let seq = 0; seq < perPair; ) {
      const slice = 1 + (seq % 37);
      for (const a of nodes) {
        for (const b of nodes) {
          if (a === b) continue;
          a.transport.send(range(seq, Math.min(perPair, seq + slice)).map((s) => numbered(a.id, b.id, s)));
        }
      }
      seq += slice;
      await new Promise((resolve) => setImmediate(resolve));
    }
    await waitFor("every message", () => nodes.every((n) => n.received.length === 2 * perPair));
    for (const receiver of nodes) {
      for (const sender of nodes) {
        if (sender === receiver) continue;
        expect(sequencesFrom(receiver, sender.id)).toEqual(range(0, perPair));
      }
      expect(receiver.received.every((m) => m.to === receiver.id)).toBe(true);
      expect(receiver.batchGroups.every((g) => g === DEFAULT_GROUP_ID)).toBe(true);
    }
    for (const n of nodes) {
      for (const [peer, stats] of Object.entries(n.transport.stats())) {
        expect(stats, `node ${n.id} -> ${peer}`).toMatchObject({ connected: true, sentMessages: perPair, droppedMessages: 0 });
      }
    }
  });

  it("a message from a sender without a link is reported, and no address is taken from the stream", async () => {
    const unknown: number[] = [];
    const joiner = await startNode(7, 0, { onUnknownSender: (peer) => unknown.push(peer) });
    const leaderPort = await freePort();
    const leader = await startNode(1027, leaderPort);
    leader.transport.setPeer(joiner.id, `127.0.0.1:${joiner.port}`);
    leader.transport.send([numbered(1027, 7, 1)]);
    await waitFor("the leader's message", () => joiner.received.length === 1);
    // The joiner learns the sender's id, never an address: the node looks it up among the members.
    expect(unknown).toEqual([1027]);
    expect(joiner.transport.hasPeer(1027)).toBe(false);
    joiner.transport.setPeer(1027, `127.0.0.1:${leaderPort}`);
    joiner.transport.send([numbered(7, 1027, 2)]);
    await waitFor("the joiner's answer", () => leader.received.length === 1);
    expect(leader.received[0]).toMatchObject({ from: 7, to: 1027, commit: 2 });
  });

  it("coalesces a burst of sends in one turn into few frames", async () => {
    const [a, b] = await Promise.all([startNode(1), startNode(2)]);
    connect(a, b);
    await waitFor("connection", () => a.transport.stats()[2]?.connected === true);
    const count = 5_000;
    for (let seq = 0; seq < count; seq++) a.transport.send([numbered(1, 2, seq)]);
    await waitFor("the burst", () => b.received.length === count);
    expect(sequencesFrom(b, 1)).toEqual(range(0, count));
    const frames = b.transport.inboundStats().frames;
    // 256 messages per frame at most: 20 frames would be perfect packing.
    expect(frames).toBeLessThanOrEqual(Math.ceil(count / 256) + 2);
    expect(b.batches).toBe(frames);
    expect(a.transport.stats()[2]?.sentMessages).toBe(count);
  });

  it("sendNow writes before it returns; send waits for the end of the turn", async () => {
    const [a, b] = await Promise.all([startNode(1), startNode(2)]);
    connect(a, b);
    await waitFor("connection", () => a.transport.stats()[2]?.connected === true);
    a.transport.sendNow([numbered(1, 2, 1), numbered(1, 2, 2)]);
    expect(a.transport.stats()[2]?.sentMessages).toBe(2);
    a.transport.send([numbered(1, 2, 3)]);
    expect(a.transport.stats()[2]?.sentMessages).toBe(2);
    await waitFor("all three", () => b.received.length === 3);
    expect(sequencesFrom(b, 1)).toEqual([1, 2, 3]);
  });

  it("acknowledges a stream's progress once per interval, not once per frame", async () => {
    const b = await startNode(2);
    const { call, acks } = protoLoaderStream(b.port);
    // 40 frames spread over about 200 ms: two or three intervals' worth.
    for (let i = 1; i <= 40; i++) {
      call.write({ groupId: 1, messages: [{ type: T.MESSAGE_TYPE_HEARTBEAT, from: 3, to: 2, commit: i }] });
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await waitFor("an ack of every frame", () => acks.includes(40));
    call.end();
    expect(b.received).toHaveLength(40);
    expect(acks.length).toBeGreaterThanOrEqual(1);
    expect(acks.length).toBeLessThanOrEqual(Math.ceil((40 * 5) / PEER_TRANSPORT_DEFAULTS.ackIntervalMs) + 3);
    expect(acks).toEqual([...acks].sort((x, y) => x - y));
  });

  it("splits frames by bytes as well as by count", async () => {
    const [a, b] = await Promise.all([startNode(1, 0, { maxBatchBytes: 64 * 1024 }), startNode(2)]);
    connect(a, b);
    await waitFor("connection", () => a.transport.stats()[2]?.connected === true);
    const entry = { term: 1, index: 1, type: raftmq.v1.EntryType.ENTRY_TYPE_NORMAL, data: pattern(4_096, 5) };
    const batch = range(0, 100).map((seq) => createMessage({ type: T.MESSAGE_TYPE_APPEND_ENTRIES, from: 1, to: 2, commit: seq, entries: [entry] }));
    a.transport.send(batch);
    await waitFor("the batch", () => b.received.length === 100);
    const frames = b.transport.inboundStats().frames;
    // 100 x ~4 KiB = ~410 KiB in frames of at most 64 KiB.
    expect(frames).toBeGreaterThanOrEqual(7);
    expect(frames).toBeLessThanOrEqual(10);
    expect(sequencesFrom(b, 1)).toEqual(range(0, 100));
  });

  it("bounds the queue for a peer that is down, reports it, and reconnects when it comes up", async () => {
    const port = await freePort();
    const a = await startNode(1, 0, { maxQueuedBytes: 16 * 1024 });
    a.transport.setPeer(2, `127.0.0.1:${port}`);
    const entry = { term: 1, index: 1, type: raftmq.v1.EntryType.ENTRY_TYPE_NORMAL, data: pattern(1_024, 1) };
    const burst = range(0, 100).map((seq) => createMessage({ type: T.MESSAGE_TYPE_APPEND_ENTRIES, from: 1, to: 2, commit: seq, entries: [entry] }));
    a.transport.send(burst);
    const queued = a.transport.stats()[2];
    expect(queued?.queuedBytes).toBeGreaterThan(0);
    expect(queued?.queuedBytes).toBeLessThanOrEqual(16 * 1024);
    expect(queued?.droppedMessages).toBeGreaterThan(80);
    await waitFor("an unreachable report", () => a.unreachable.includes(2));
    await waitFor("the failed stream", () => a.transport.stats()[2]?.queuedBytes === 0);
    expect(a.transport.stats()[2]?.connected).toBe(false);

    const b = await startNode(2, port);
    b.transport.setPeer(1, `127.0.0.1:${a.port}`);
    let seq = 1_000;
    await waitFor("a message after the peer came up", () => {
      a.transport.send([numbered(1, 2, seq++)]);
      return b.received.length > 0;
    });
    // Both lanes: the control lane may carry a message before the bulk lane is up.
    await waitFor("connected", () => a.transport.stats()[2]?.connected === true);
    expect(a.states).toContain("2:connected");
    a.transport.send(range(0, 10).map((s) => numbered(1, 2, 5_000 + s)));
    const later = (): number[] => sequencesFrom(b, 1).filter((s) => s >= 5_000);
    await waitFor("later messages", () => later().length === 10);
    expect(later()).toEqual(range(5_000, 5_010));
    // Whatever got through arrived in order.
    const all = sequencesFrom(b, 1);
    expect(all).toEqual([...all].sort((x, y) => x - y));
  });

  it("retries a dead peer at the backoff's pace rather than spinning", async () => {
    const port = await freePort();
    const a = await startNode(1, 0, { backoff: { initialMs: 50, maxMs: 200, jitter: 0 } });
    a.transport.setPeer(2, `127.0.0.1:${port}`);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    // 50 + 100 + 200 + 200 + 200 ... ms: about 7 attempts in a second on each of the two
    // lanes, each failure reported once.
    expect(a.unreachable.length).toBeGreaterThanOrEqual(3);
    expect(a.unreachable.length).toBeLessThanOrEqual(20);
  });

  it("reconnects after the peer restarts on the same port", async () => {
    const [a, b] = await Promise.all([startNode(1), startNode(2)]);
    connect(a, b);
    a.transport.send(range(0, 5).map((s) => numbered(1, 2, s)));
    await waitFor("first messages", () => b.received.length === 5);

    await stopNode(b);
    await waitFor("disconnect noticed", () => a.states.includes("2:disconnected"));
    const restarted = await startNode(2, b.port);
    restarted.transport.setPeer(1, `127.0.0.1:${a.port}`);
    let seq = 100;
    await waitFor("a message to the restarted peer", () => {
      a.transport.send([numbered(1, 2, seq++)]);
      return restarted.received.length > 0;
    });
    // Connected once at the start and once again after the restart (both lanes each time).
    await waitFor("both lanes again", () => a.states.filter((s) => s === "2:connected").length === 2);
    // And the other way round, on the restarted node's new stream.
    restarted.transport.send([numbered(2, 1, 42)]);
    await waitFor("the answer", () => a.received.some((m) => m.commit === 42));
  });

  it("carries a 1 MiB snapshot chunk intact", async () => {
    const [a, b] = await Promise.all([startNode(1), startNode(2)]);
    connect(a, b);
    const data = pattern(1024 * 1024, 11);
    const snapshot = {
      meta: { index: 5_000, term: 3, confState: { voters: [1, 2, 3], learners: [] } },
      offset: 0,
      totalSize: data.length,
      data,
      done: false,
    };
    const chunk = createMessage({ type: T.MESSAGE_TYPE_INSTALL_SNAPSHOT, from: 1, to: 2, term: 3, snapshot });
    a.transport.send([chunk, numbered(1, 2, 1)]);
    await waitFor("the chunk", () => b.received.length === 2);
    // The chunk travels on the bulk lane, the heartbeat on the control lane: either may be first.
    const got = b.received.find((m) => m.type === T.MESSAGE_TYPE_INSTALL_SNAPSHOT);
    expect(got?.snapshot?.meta).toEqual(snapshot.meta);
    expect(got?.snapshot?.data.length).toBe(data.length);
    expect(Buffer.compare(Buffer.from(got?.snapshot?.data ?? []), Buffer.from(data))).toBe(0);
    expect(b.received.find((m) => m.type === T.MESSAGE_TYPE_HEARTBEAT)?.commit).toBe(1);
  });

  it("drops a message larger than maxMessageBytes without breaking the stream", async () => {
    const limits = { maxMessageBytes: 256 * 1024, maxBatchBytes: 64 * 1024 };
    const [a, b] = await Promise.all([startNode(1, 0, limits), startNode(2, 0, limits)]);
    connect(a, b);
    await waitFor("connection", () => a.transport.stats()[2]?.connected === true);
    const entry = { term: 1, index: 1, type: raftmq.v1.EntryType.ENTRY_TYPE_NORMAL, data: pattern(512 * 1024, 2) };
    a.transport.send([numbered(1, 2, 1), createMessage({ type: T.MESSAGE_TYPE_APPEND_ENTRIES, from: 1, to: 2, entries: [entry] }), numbered(1, 2, 2)]);
    await waitFor("the small messages", () => b.received.length === 2);
    expect(sequencesFrom(b, 1)).toEqual([1, 2]);
    expect(a.unreachable).toContain(2);
    expect(a.transport.stats()[2]).toMatchObject({ connected: true, droppedMessages: 1, sentMessages: 2 });
  });

  it("rejects malformed frames with INVALID_ARGUMENT and keeps serving", async () => {
    const [a, b] = await Promise.all([startNode(1), startNode(2)]);
    connect(a, b);

    // A raw client: a length prefix that runs past the end of the frame.
    const raw = new grpc.Client(`127.0.0.1:${b.port}`, grpc.credentials.createInsecure());
    cleanups.push(async () => raw.close());
    const rawCall = raw.makeBidiStreamRequest("/raftmq.v1.Raft/Stream", Buffer.from, (bytes: Buffer) => bytes);
    const rawStatus = new Promise<grpc.StatusObject>((resolve) => rawCall.on("status", resolve));
    rawCall.on("error", () => {});
    rawCall.on("data", () => {});
    rawCall.write(Buffer.from([0x0a, 0x05, 0x08]));
    expect((await rawStatus).code).toBe(grpc.status.INVALID_ARGUMENT);

    // A proto-loader client with a schema of its own, whose Message bytes are a cut-off varint.
    const dir = mkdtempSync(join(tmpdir(), "raft-proto-"));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const evilProto = join(dir, "evil.proto");
    writeFileSync(
      evilProto,
      `syntax = "proto3"; package raftmq.v1;
       message MessageBatch { repeated bytes messages = 1; }
       message StreamAck { uint64 received = 1; }
       service Raft { rpc Stream(stream MessageBatch) returns (stream StreamAck); }`,
    );
    const evil = (protoLoader.loadSync(evilProto)["raftmq.v1.Raft"] as grpc.ServiceDefinition).Stream;
    if (evil === undefined) throw new Error("no Stream method in evil.proto");
    const evilClient = new grpc.Client(`127.0.0.1:${b.port}`, grpc.credentials.createInsecure());
    cleanups.push(async () => evilClient.close());
    const evilCall = evilClient.makeBidiStreamRequest(evil.path, evil.requestSerialize, evil.responseDeserialize);
    const evilStatus = new Promise<grpc.StatusObject>((resolve) => evilCall.on("status", resolve));
    evilCall.on("error", () => {});
    evilCall.on("data", () => {});
    evilCall.write({ messages: [Buffer.from([0x10, 0xff])] });
    const status = await evilStatus;
    expect(status.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(status.details).toMatch(/malformed/);
    expect(b.transport.inboundStats().rejectedFrames).toBe(2);

    // A well-formed frame with messages for someone else, or of no known type: dropped one by one.
    const { call, acks } = protoLoaderStream(b.port);
    call.write({
      groupId: 1,
      messages: [
        { type: T.MESSAGE_TYPE_HEARTBEAT, from: 3, to: 9, commit: 1 },
        { type: 99, from: 3, to: 2, commit: 2 },
        { type: T.MESSAGE_TYPE_INSTALL_SNAPSHOT, from: 3, to: 2, commit: 3 },
        { type: T.MESSAGE_TYPE_HEARTBEAT, from: 3, to: 2, commit: 4 },
      ],
    });
    await waitFor("the ack", () => acks.includes(4));
    expect(b.received.map((m) => [m.from, m.commit])).toEqual([[3, 4]]);
    expect(b.transport.inboundStats().droppedMessages).toBe(3);
    call.end();

    // The node's own peers are unaffected.
    a.transport.send([numbered(1, 2, 77)]);
    await waitFor("a peer's message", () => b.received.some((m) => m.from === 1 && m.commit === 77));
  });

  it("stops sending to a removed peer and reports messages for unknown peers", async () => {
    const [a, b] = await Promise.all([startNode(1), startNode(2)]);
    connect(a, b);
    a.transport.send([numbered(1, 2, 1)]);
    await waitFor("first message", () => b.received.length === 1);
    // A control lane and a bulk lane.
    await waitFor("both lanes", () => b.transport.inboundStats().streams === 2);

    a.transport.removePeer(2);
    expect(a.transport.stats()[2]).toBeUndefined();
    await waitFor("the stream to end", () => b.transport.inboundStats().streams === 0);
    a.transport.send([numbered(1, 2, 2), numbered(1, 3, 3)]);
    await waitFor("unreachable reports", () => a.unreachable.includes(2) && a.unreachable.includes(3));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(sequencesFrom(b, 1)).toEqual([1]);
  });

  it("puts appends and snapshot chunks on the bulk lane and every other message on the control lane", () => {
    const bulk = [T.MESSAGE_TYPE_APPEND_ENTRIES, T.MESSAGE_TYPE_INSTALL_SNAPSHOT];
    for (const type of Object.values(T).filter((v): v is number => typeof v === "number" && v > 0)) {
      expect(laneOf({ type }), T[type]).toBe(bulk.includes(type) ? "bulk" : "control");
    }
  });

  it("a heartbeat sent after 64 MiB of appends overtakes them", async () => {
    const [a, b] = await Promise.all([startNode(1, 0, { maxQueuedBytes: 128 * 1024 * 1024 }), startNode(2)]);
    connect(a, b);
    await waitFor("connection", () => a.transport.stats()[2]?.connected === true);
    const data = pattern(8 * 1024 * 1024, 3);
    const appends = range(0, 8).map((i) =>
      createMessage({ type: T.MESSAGE_TYPE_APPEND_ENTRIES, from: 1, to: 2, term: 1, logIndex: i, logTerm: 1, entries: [{ term: 1, index: i + 1, type: 0, data }] }),
    );
    a.transport.send([...appends, numbered(1, 2, 99)]);
    await waitFor("everything", () => b.received.length === 9, 30_000);
    const heartbeatAt = b.received.findIndex((m) => m.type === T.MESSAGE_TYPE_HEARTBEAT);
    // On one stream it would come last, behind every append; here it does not wait for them.
    expect(heartbeatAt).toBeLessThan(8);
    expect(b.received.filter((m) => m.type === T.MESSAGE_TYPE_APPEND_ENTRIES).map((m) => m.logIndex)).toEqual(range(0, 8));
  });

  it("sendNow leaves a big append to later turns, a bounded amount per turn, and writes small ones at once", async () => {
    const [a, b, c] = await Promise.all([startNode(1, 0, { maxBulkBytesPerTurn: 1024 * 1024, maxInlineBulkBytes: 256 * 1024 }), startNode(2), startNode(3)]);
    connect(a, b);
    a.transport.setPeer(3, `127.0.0.1:${c.port}`);
    await waitFor("connections", () => a.transport.stats()[2]?.connected === true && a.transport.stats()[3]?.connected === true);
    const append = (to: number, bytes: number): Message =>
      createMessage({ type: T.MESSAGE_TYPE_APPEND_ENTRIES, from: 1, to, term: 1, entries: [{ term: 1, index: 1, type: 0, data: pattern(bytes, to) }] });
    a.transport.sendNow([append(2, 1024)]);
    expect(a.transport.stats()[2]?.sentMessages).toBe(1);

    a.transport.sendNow([append(2, 2 * 1024 * 1024), append(3, 2 * 1024 * 1024)]);
    expect(a.transport.stats()[2]?.sentMessages).toBe(1);
    expect(a.transport.stats()[3]?.sentMessages).toBe(0);
    // One frame over the budget per turn: the first peer's in the next turn, the second's after it.
    await new Promise((resolve) => setImmediate(resolve));
    expect((a.transport.stats()[2]?.sentMessages ?? 0) + (a.transport.stats()[3]?.sentMessages ?? 0)).toBe(2);
    await new Promise((resolve) => setImmediate(resolve));
    expect((a.transport.stats()[2]?.sentMessages ?? 0) + (a.transport.stats()[3]?.sentMessages ?? 0)).toBe(3);
    await waitFor("both", () => b.received.length === 2 && c.received.length === 1);
  });

  it("refuses to send a message that is not from this node", async () => {
    const a = await startNode(1);
    expect(() => a.transport.send([numbered(2, 3, 1)])).toThrow(/from 2 to 3/);
    expect(() => a.transport.send([numbered(1, 1, 1)])).toThrow();
    expect(() => a.transport.setPeer(1, "127.0.0.1:1")).toThrow(RangeError);
  });
});

describe("Raft groups", () => {
  const chunk = (from: number, to: number, data: Uint8Array): Message =>
    createMessage({
      type: T.MESSAGE_TYPE_INSTALL_SNAPSHOT,
      from,
      to,
      term: 3,
      snapshot: { meta: { index: 500, term: 3, confState: { voters: [1, 2, 3], learners: [] } }, offset: 0, totalSize: data.length, data, done: true },
    });

  it("names group 1 on every frame it writes, the one carrying a snapshot chunk included", async () => {
    const recorder = await frameRecorder();
    // The chunk goes alone on the bulk lane; the two heartbeats share a frame on the control lane.
    const a = await startNode(1, 0, { maxBatchBytes: 64 * 1024 });
    a.transport.setPeer(2, `127.0.0.1:${recorder.port}`);
    a.transport.send([numbered(1, 2, 1), chunk(1, 2, pattern(100 * 1024, 4)), numbered(1, 2, 2)]);
    const messagesIn = (): number => recorder.frames.reduce((n, f) => n + decodeFrame(f).messages.length, 0);
    await waitFor("every message", () => messagesIn() === 3);
    const batches = recorder.frames.map((f) => decodeFrame(f));
    expect(batches).toHaveLength(2);
    expect(batches.map((b) => b.groupId)).toEqual([DEFAULT_GROUP_ID, DEFAULT_GROUP_ID]);
    const withChunk = batches.find((b) => b.messages.some((m) => m.snapshot != null));
    expect(withChunk?.groupId).toBe(1);
    expect(withChunk?.messages[0]?.snapshot?.data?.length).toBe(100 * 1024);
  });

  it("delivers a batch that names the group, with its group", async () => {
    const b = await startNode(2);
    const { call, acks } = protoLoaderStream(b.port, 3);
    call.write({ groupId: 1, messages: [{ type: T.MESSAGE_TYPE_HEARTBEAT, from: 3, to: 2, term: 4, commit: 7 }] });
    await waitFor("the ack", () => acks.includes(1));
    call.end();
    expect(b.received).toMatchObject([{ type: T.MESSAGE_TYPE_HEARTBEAT, from: 3, to: 2, term: 4, commit: 7 }]);
    expect(b.batchGroups).toEqual([1]);
  });

  it("refuses a frame naming another group, group 0 or none, and delivers nothing of it", async () => {
    const rejected: [number, string][] = [];
    const b = await startNode(2, 0, { onFrameRejected: (peer, reason) => rejected.push([peer, reason]) });
    const cases: [string, number | undefined][] = [
      ["group 2", 2],
      ["group 0", 0],
      ["no group", undefined],
    ];
    for (const [what, groupId] of cases) {
      const { call, status } = protoLoaderStream(b.port, 3);
      call.write({
        groupId,
        messages: [
          { type: T.MESSAGE_TYPE_HEARTBEAT, from: 3, to: 2, commit: 1 },
          { type: T.MESSAGE_TYPE_INSTALL_SNAPSHOT, from: 3, to: 2, snapshot: { meta: { index: 9, term: 1 }, data: Buffer.from("state"), done: true } },
        ],
      });
      // The stream is refused as a whole: not even a later frame of the right group gets in.
      call.write({ groupId: 1, messages: [{ type: T.MESSAGE_TYPE_HEARTBEAT, from: 3, to: 2, commit: 2 }] });
      const { code, details } = await status;
      expect(code, what).toBe(grpc.status.INVALID_ARGUMENT);
      expect(details, what).toMatch(new RegExp(`Raft group ${groupId ?? 0}\\b`));
    }
    expect(rejected.map(([peer, reason]) => [peer, reason.match(/group \d+/)?.[0]])).toEqual([
      [3, "group 2"],
      [3, "group 0"],
      [3, "group 0"],
    ]);
    expect(b.transport.inboundStats()).toMatchObject({ frames: 0, messages: 0, rejectedFrames: 3, unknownGroupFrames: 3 });

    // The node still serves its group; nothing of the refused streams came before this.
    const { call, acks } = protoLoaderStream(b.port, 3);
    call.write({ groupId: 1, messages: [{ type: T.MESSAGE_TYPE_HEARTBEAT, from: 3, to: 2, commit: 3 }] });
    await waitFor("the ack", () => acks.includes(1));
    call.end();
    expect(b.received.map((m) => m.commit)).toEqual([3]);
    expect(b.batchGroups).toEqual([1]);
  });

  it("serves many groups on one lane: frames never mix groups, and order holds across them", async () => {
    const [a, b] = await Promise.all([startNode(1, 0, { groups: [1, 5] }), startNode(2, 0, { groups: [5, 1] })]);
    connect(a, b);
    await waitFor("connection", () => a.transport.stats()[2]?.connected === true);
    // All in one turn, so only the change of group splits the frames.
    a.transport.send([numbered(1, 2, 0), numbered(1, 2, 1)], 1);
    a.transport.send([numbered(1, 2, 2), chunk(1, 2, pattern(1_000, 1))], 5);
    a.transport.send([numbered(1, 2, 3)]);
    a.transport.send([numbered(1, 2, 4)], 5);
    await waitFor("every message", () => b.received.length === 6);
    // The heartbeats keep their order on the control lane; the chunk comes on the bulk lane.
    const heartbeats = b.received.filter((m) => m.type === T.MESSAGE_TYPE_HEARTBEAT);
    expect(heartbeats.map((m) => m.commit)).toEqual([0, 1, 2, 3, 4]);
    expect(b.received.find((m) => m.snapshot != null)?.snapshot?.data).toEqual(pattern(1_000, 1));
    // Four control frames (groups 1, 5, 1, 5) and the chunk's frame of group 5.
    expect([...b.batchGroups].sort((x, y) => x - y)).toEqual([1, 1, 5, 5, 5]);
    expect(b.transport.inboundStats().frames).toBe(5);
    expect(b.transport.inboundStats().unknownGroupFrames).toBe(0);

    // A peer that does not serve the group refuses the frame, which ends the sender's stream to it.
    const c = await startNode(3);
    a.transport.setPeer(3, `127.0.0.1:${c.port}`);
    await waitFor("connection", () => a.transport.stats()[3]?.connected === true);
    a.transport.send([numbered(1, 3, 1)], 5);
    await waitFor("the refusal", () => c.transport.inboundStats().unknownGroupFrames === 1);
    await waitFor("the sender to see its stream end", () => a.states.includes("3:disconnected"));
    expect(c.received).toEqual([]);
  });

  it("sends only for groups it serves and rejects nonsense group ids", async () => {
    const a = await startNode(1);
    expect(() => a.transport.send([numbered(1, 2, 1)], 2)).toThrow(/group 2/);
    expect(() => a.transport.sendNow([numbered(1, 2, 1)], 0)).toThrow(/group 0/);
    const onMessages = (): void => {};
    expect(() => new PeerTransport({ selfId: 1, onMessages, groups: [] })).toThrow(RangeError);
    expect(() => new PeerTransport({ selfId: 1, onMessages, groups: [0] })).toThrow(RangeError);
    expect(() => new PeerTransport({ selfId: 1, onMessages, groups: [1, 2.5] })).toThrow(RangeError);
  });
});
