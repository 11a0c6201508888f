// The Raft peer transport: two long-lived gRPC streams from this node to each peer, each on a
// connection of its own, carrying batched Raft messages in order. The bulk lane carries appends
// and snapshot chunks; the control lane carries everything else (heartbeats, votes, answers,
// TimeoutNow), so that a heartbeat or a vote never waits behind megabytes of entries in a
// queue, an HTTP/2 connection or a TCP buffer (etcd's rafthttp splits its streams the same
// way). Raft needs no order between the two: a heartbeat commits only what the follower is
// known to hold. The reverse direction of a stream carries only flow-control acks, because
// answers travel on the answering node's own streams. Every frame names the Raft group of its
// messages, so one pair of streams serves every group two nodes share.
import * as grpc from "@grpc/grpc-js";
import { raftmq } from "@raftmq/proto";
import type { Entry, Message, SnapshotChunk } from "@raftmq/raft";
import { Backoff, type BackoffOptions, DEFAULT_BACKOFF } from "./backoff.ts";
import { asBuffer, defineService, rawBytes } from "@raftmq/proto/grpc";
import { encodeFrame } from "./raft-frame.ts";

export const RAFT_SERVICE_NAME = "raftmq.v1.Raft";

/** `service Raft` with its proto message types, for tools that speak to a node's peer port. */
export const raftServiceDefinition = defineService(RAFT_SERVICE_NAME, {
  Stream: { request: raftmq.v1.MessageBatch, response: raftmq.v1.StreamAck, requestStream: true, responseStream: true },
  FetchBodies: { request: raftmq.v1.FetchBodiesRequest, response: raftmq.v1.FetchBodiesResponse, requestStream: false, responseStream: false },
});

// The transport decodes frames itself: a frame that fails to decode is answered with
// INVALID_ARGUMENT, where a throwing deserializer would make grpc-js answer INTERNAL.
const rawServiceDefinition = defineService(RAFT_SERVICE_NAME, {
  Stream: { request: rawBytes, response: raftmq.v1.StreamAck, requestStream: true, responseStream: true },
  FetchBodies: { request: raftmq.v1.FetchBodiesRequest, response: raftmq.v1.FetchBodiesResponse, requestStream: false, responseStream: false },
});

/** Keys one FetchBodies request may name. */
export const MAX_FETCH_KEYS = 4096;
/** Body bytes one FetchBodies answer carries at most (one larger body still goes alone). */
export const MAX_FETCH_BYTES = 4 * 1024 * 1024;
/** How long a FetchBodies call may take. */
const FETCH_TIMEOUT_MS = 10_000;

const STREAM_PATH = rawServiceDefinition.Stream.path;

const MiB = 1024 * 1024;

export const PEER_TRANSPORT_DEFAULTS = {
  maxMessageBytes: 64 * MiB,
  maxBatchMessages: 256,
  maxBatchBytes: 4 * MiB,
  maxQueuedBytes: 64 * MiB,
  /**
   * Bytes of bulk frames encoded and written per event-loop turn, across peers (a larger
   * single message goes alone), so that sending big entries to several peers is spread over
   * turns instead of holding the loop for all of them at once.
   */
  maxBulkBytesPerTurn: 4 * MiB,
  /** sendNow writes a bulk lane's queue before returning only up to this many bytes. */
  maxInlineBulkBytes: 1 * MiB,
  connectTimeoutMs: 5_000,
  closeTimeoutMs: 1_000,
  /** A receiver acknowledges what arrived on a stream at most this often. */
  ackIntervalMs: 100,
  keepalive: { timeMs: 10_000, timeoutMs: 5_000 },
} as const;

export type PeerState = "connected" | "disconnected";

/** The cluster's single Raft group, until there are more. */
export const DEFAULT_GROUP_ID = 1;

/** Metadata of a peer stream: the opening node's id. */
export const PEER_ID_METADATA_KEY = "raftmq-peer-id";

/**
 * Who opened an inbound stream, as its transport security proves it: the node id its verified
 * certificate names, or the reason it is refused (no certificate, another CA, a user's
 * certificate).
 */
export type StreamIdentity = { ok: true; peerId: number } | { ok: false; reason: string };

export interface PeerTransportOptions {
  selfId: number;
  /**
   * Raft groups whose messages this transport carries (default [DEFAULT_GROUP_ID]). A peer's
   * frame naming any other group is refused like a malformed one.
   */
  groups?: readonly number[];
  /** Called with each received batch, in order per sender; all its messages are of groupId. */
  onMessages: (messages: Message[], groupId: number) => void;
  /**
   * Proves who opened an inbound stream (mutual TLS). Without it the transport is insecure and
   * believes the id a stream names. With it, a stream is refused unless the proven id is the one
   * it names, and a message from any other id closes the stream.
   */
  identify?: (call: Pick<grpc.ServerUnaryCall<unknown, unknown>, "getAuthContext">, claimedId: number) => StreamIdentity;
  /** For logs: a stream or a frame was refused for who sent it; remote is the caller's address. */
  onRefused?: (remote: string, peerId: number, reason: string) => void;
  /**
   * A message arrived from a peer this transport has no link to (a node joining a cluster led by
   * a member it was not configured with). Addresses are never taken from the stream itself: the
   * node looks the sender up among the members.
   */
  onUnknownSender?: (peerId: number) => void;
  /** For logs and metrics. */
  onPeerState?: (peerId: number, state: PeerState) => void;
  /**
   * A stream a peer opened to this node ended, for whatever reason (its process died and the
   * kernel closed the connection, the network cut it, it shut down).
   */
  onInboundClosed?: (peerId: number) => void;
  /** Messages to this peer could not be delivered; Raft should probe it again (reportUnreachable). */
  onUnreachable?: (peerId: number) => void;
  /**
   * For logs: a frame from a peer was refused and its stream closed with INVALID_ARGUMENT.
   * peerId is 0 when the stream did not name its sender.
   */
  onFrameRejected?: (peerId: number, reason: string) => void;
  /** Reads bodies for a peer's FetchBodies (null where none is held); none served without it. */
  bodySource?: (keys: readonly number[]) => (Uint8Array | null)[];
  /** gRPC max send and receive message length, set explicitly on both ends (default 64 MiB). */
  maxMessageBytes?: number;
  /** Messages per MessageBatch frame (default 256). */
  maxBatchMessages?: number;
  /** Bytes per frame (default 4 MiB); a single larger message travels alone. */
  maxBatchBytes?: number;
  /** Per-peer, per-lane outbound queue bound; past it messages are dropped and onUnreachable fires (default 64 MiB). */
  maxQueuedBytes?: number;
  /** Bulk bytes encoded per event-loop turn (default 4 MiB; a larger single message goes alone). */
  maxBulkBytesPerTurn?: number;
  /** Bulk bytes sendNow writes before returning; more waits for the next turn (default 1 MiB). */
  maxInlineBulkBytes?: number;
  /** Reconnect backoff (default 50 ms .. 2 s, 20% jitter). */
  backoff?: BackoffOptions;
  /** A stream not accepted within this time is abandoned and retried (default 5 s). */
  connectTimeoutMs?: number;
  /** HTTP/2 keepalive pings: a peer that does not answer within timeoutMs is declared dead. */
  keepalive?: { timeMs: number; timeoutMs: number };
  /** Credentials of the link to a peer (mutual TLS checks that the peer is that node). */
  credentials?: grpc.ChannelCredentials | ((peerId: number) => grpc.ChannelCredentials);
  /** Extra options of the channels to peers (the TLS server name, say). */
  channelOptions?: grpc.ChannelOptions;
  serverCredentials?: grpc.ServerCredentials;
}

export interface PeerStats {
  connected: boolean;
  queuedBytes: number;
  sentMessages: number;
  droppedMessages: number;
}

export interface InboundStats {
  streams: number;
  frames: number;
  messages: number;
  /** Messages that failed validation (wrong recipient, unknown type …). */
  droppedMessages: number;
  /**
   * Frames that failed to decode or named a group this transport does not serve; each closed
   * its stream with INVALID_ARGUMENT.
   */
  rejectedFrames: number;
  /** Of rejectedFrames, those naming a group this transport does not serve (0 or none included). */
  unknownGroupFrames: number;
  /** Streams refused for who opened them (no or a foreign certificate, a claimed id that is not the proven one). */
  refusedStreams: number;
}

// ---------------------------------------------------------------------------------------------
// Wire conversion

const EMPTY_BYTES = new Uint8Array(0);
const MAX_MESSAGE_TYPE = raftmq.v1.MessageType.MESSAGE_TYPE_READ_INDEX_RESPONSE;

// Upper bounds of the encoded size, so a frame built from estimates never exceeds its limit:
// a varint field costs at most 11 bytes (tag + 10), a length prefix at most 6 (tag + 5).
const MESSAGE_OVERHEAD = 6 + 10 * 11 + 2 + 6 + 6;
const ENTRY_OVERHEAD = 6 + 3 * 11 + 6;
const SNAPSHOT_OVERHEAD = 6 + 6 + 2 * 11 + 6 + 2 * 6 + 2 * 11 + 6 + 2;
/** A frame's group id, which no message's estimate covers. */
const FRAME_OVERHEAD = 11;

/** An upper bound of `m`'s encoded size inside a MessageBatch. */
export function estimateWireSize(m: Message): number {
  let size = MESSAGE_OVERHEAD + m.context.length;
  const entries = m.entries;
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i];
    if (entry !== undefined) size += ENTRY_OVERHEAD + entry.data.length;
  }
  const snapshot = m.snapshot;
  if (snapshot != null) {
    const conf = snapshot.meta.confState;
    size += SNAPSHOT_OVERHEAD + snapshot.data.length + 11 * (conf.voters.length + conf.learners.length);
  }
  return size;
}

interface LongBits {
  low: number;
  high: number;
}

/**
 * A uint64 field as a number. Decoded values are numbers, but the generated classes keep
 * their zero defaults on the prototype, created while `long` was still installed: an absent
 * field reads as a Long. Converting here keeps fromWire correct either way.
 */
function u64(value: number | LongBits | null | undefined): number {
  if (typeof value === "number") return value;
  if (value == null) return 0;
  return value.high * 0x1_0000_0000 + (value.low >>> 0);
}

function snapshotFromWire(s: raftmq.v1.SnapshotChunk.$Properties): SnapshotChunk {
  const meta = s.meta;
  const conf = meta?.confState;
  return {
    meta: {
      index: u64(meta?.index),
      term: u64(meta?.term),
      confState: { voters: (conf?.voters ?? []).map(u64), learners: (conf?.learners ?? []).map(u64) },
    },
    offset: u64(s.offset),
    totalSize: u64(s.totalSize),
    data: bytes(s.data),
    done: s.done ?? false,
  };
}

/**
 * Decodes one stream frame. Decoding from a plain Uint8Array (not a Buffer) makes protobufjs
 * hand out byte fields as plain Uint8Array views into the frame: no copies, and the types the
 * core declares. Throws on malformed input.
 */
export function decodeFrame(frame: Uint8Array): raftmq.v1.MessageBatch {
  const view = Buffer.isBuffer(frame) ? new Uint8Array(frame.buffer, frame.byteOffset, frame.byteLength) : frame;
  return raftmq.v1.MessageBatch.decode(view);
}

// Absent byte fields read the prototype's shared empty Buffer.
function bytes(value: Uint8Array | null | undefined): Uint8Array {
  return value == null || value.length === 0 ? EMPTY_BYTES : value;
}

/**
 * Turns a decoded wire message into the core's Message. One object per message; entries are
 * the decoded ones, completed in place: protobufjs leaves zero-valued fields on the prototype,
 * and code that spreads or copies an entry must still see every field. Byte fields are views
 * into the received frame, not copies.
 */
export function fromWire(m: raftmq.v1.Message): Message {
  const entries = m.entries;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    if (e === undefined) continue;
    e.term = u64(e.term);
    e.index = u64(e.index);
    e.type = e.type ?? raftmq.v1.EntryType.ENTRY_TYPE_NORMAL;
    e.data = bytes(e.data);
  }
  return {
    type: m.type,
    from: u64(m.from),
    to: u64(m.to),
    term: u64(m.term),
    logIndex: u64(m.logIndex),
    logTerm: u64(m.logTerm),
    // Every field was set just above.
    entries: entries as Entry[],
    commit: u64(m.commit),
    reject: m.reject,
    rejectHint: u64(m.rejectHint),
    hintTerm: u64(m.hintTerm),
    snapshot: m.snapshot == null ? null : snapshotFromWire(m.snapshot),
    context: bytes(m.context),
  };
}

// ---------------------------------------------------------------------------------------------
// Outbound queue of one peer

/**
 * FIFO of messages with their estimated sizes and groups; a moving head keeps dequeue O(1).
 * One queue per peer for every group keeps the per-peer bound and the order of sends.
 */
class OutboundQueue {
  private messages: Message[] = [];
  private sizes: number[] = [];
  private groups: number[] = [];
  private head = 0;
  bytes = 0;

  get length(): number {
    return this.messages.length - this.head;
  }

  /** The group of the next frame; only meaningful while the queue is not empty. */
  get headGroup(): number {
    return this.groups[this.head] ?? 0;
  }

  push(message: Message, size: number, groupId: number): void {
    this.messages.push(message);
    this.sizes.push(size);
    this.groups.push(groupId);
    this.bytes += size;
  }

  /**
   * Takes the longest prefix within the limits whose messages all belong to the head's group,
   * since a frame names one group; always at least one message.
   */
  takeFrame(maxMessages: number, maxBytes: number): Message[] {
    const start = this.head;
    const end = Math.min(this.messages.length, start + maxMessages);
    const group = this.groups[start];
    let bytes = 0;
    let i = start;
    while (i < end) {
      const size = this.sizes[i] ?? 0;
      if (i > start && (bytes + size > maxBytes || this.groups[i] !== group)) break;
      bytes += size;
      i++;
    }
    const frame = this.messages.slice(start, i);
    this.head = i;
    this.bytes -= bytes;
    if (this.head === this.messages.length) {
      this.messages = [];
      this.sizes = [];
      this.groups = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.messages.length) {
      this.messages = this.messages.slice(this.head);
      this.sizes = this.sizes.slice(this.head);
      this.groups = this.groups.slice(this.head);
      this.head = 0;
    }
    if (this.bytes < 0 || (this.length === 0 && this.bytes !== 0)) {
      throw new Error(`outbound queue accounting broken: ${this.bytes} bytes for ${this.length} messages`);
    }
    return frame;
  }

  /** Empties the queue; returns how many messages were discarded. */
  clear(): number {
    const discarded = this.length;
    this.messages = [];
    this.sizes = [];
    this.groups = [];
    this.head = 0;
    this.bytes = 0;
    return discarded;
  }
}

// ---------------------------------------------------------------------------------------------
// Links to peers

type OutboundCall = grpc.ClientDuplexStream<Uint8Array, raftmq.v1.StreamAck>;

/** Which of a peer's two streams a message travels on. */
export type Lane = "control" | "bulk";

/** Appends (entries, probes, commit notices) and snapshot chunks are bulk; the rest is control. */
export function laneOf(m: Pick<Message, "type">): Lane {
  return m.type === raftmq.v1.MessageType.MESSAGE_TYPE_APPEND_ENTRIES || m.type === raftmq.v1.MessageType.MESSAGE_TYPE_INSTALL_SNAPSHOT ? "bulk" : "control";
}

/** Metadata of a peer stream: which lane it is (for logs and tests; the receiver treats both alike). */
export const PEER_LANE_METADATA_KEY = "raftmq-peer-lane";

type LinkState =
  | { kind: "connecting"; client: grpc.Client; call: OutboundCall; timer: NodeJS.Timeout }
  | { kind: "connected"; client: grpc.Client; call: OutboundCall }
  | { kind: "backoff"; timer: NodeJS.Timeout }
  | { kind: "closed" };

/** A peer: its address and its two lanes. */
interface Peer {
  readonly id: number;
  address: string;
  readonly control: PeerLink;
  readonly bulk: PeerLink;
  /** Both lanes connected, as last reported through onPeerState. */
  connected: boolean;
}

/** One lane to a peer: its stream, queue and counters. */
interface PeerLink {
  readonly id: number;
  readonly lane: Lane;
  readonly peer: Peer;
  state: LinkState;
  readonly queue: OutboundQueue;
  readonly backoff: Backoff;
  /** False while the stream's buffer is full, until it emits 'drain'. */
  writable: boolean;
  sentMessages: number;
  sentFrames: number;
  droppedMessages: number;
  /** Messages the peer has acknowledged on the current stream. */
  acked: number;
}

interface InboundStream {
  readonly call: grpc.ServerDuplexStream<Uint8Array, raftmq.v1.StreamAck.$Properties>;
  /** The id the opener named in its metadata (proven, when the transport is secure), or 0. */
  readonly peerId: number;
  readonly remote: string;
  received: number;
  /** The ack timer, while one is due. */
  ackTimer: NodeJS.Timeout | null;
  finished: boolean;
}

function assertId(id: number, what: string): void {
  if (!(Number.isSafeInteger(id) && id > 0)) throw new RangeError(`${what} must be a positive integer, got ${id}`);
}

function assertLimit(value: number, name: string): void {
  if (!(Number.isSafeInteger(value) && value > 0)) throw new RangeError(`${name} must be a positive integer, got ${value}`);
}

export class PeerTransport {
  private readonly selfId: number;
  private readonly groups: ReadonlySet<number>;
  private readonly onMessages: (messages: Message[], groupId: number) => void;
  private readonly identify: ((call: Pick<grpc.ServerUnaryCall<unknown, unknown>, "getAuthContext">, claimedId: number) => StreamIdentity) | undefined;
  private readonly onRefused: ((remote: string, peerId: number, reason: string) => void) | undefined;
  private readonly onUnknownSender: ((peerId: number) => void) | undefined;
  private readonly onPeerState: ((peerId: number, state: PeerState) => void) | undefined;
  private readonly onInboundClosed: ((peerId: number) => void) | undefined;
  private readonly onUnreachable: ((peerId: number) => void) | undefined;
  private readonly onFrameRejected: ((peerId: number, reason: string) => void) | undefined;
  /** Set once the node's body store is open (PeerTransportOptions.bodySource). */
  bodySource: ((keys: readonly number[]) => (Uint8Array | null)[]) | undefined;
  private readonly maxMessageBytes: number;
  private readonly maxBatchMessages: number;
  private readonly maxBatchBytes: number;
  private readonly maxQueuedBytes: number;
  private readonly maxBulkBytesPerTurn: number;
  private readonly maxInlineBulkBytes: number;
  private readonly connectTimeoutMs: number;
  private readonly backoffOptions: BackoffOptions;
  private readonly keepalive: { timeMs: number; timeoutMs: number };
  private readonly credentials: (peerId: number) => grpc.ChannelCredentials;
  private readonly serverCredentials: grpc.ServerCredentials;
  private readonly channelOptions: grpc.ChannelOptions;

  private readonly peers = new Map<number, Peer>();
  private readonly inbound = new Set<InboundStream>();
  private readonly inboundCounters: InboundStats = {
    streams: 0,
    frames: 0,
    messages: 0,
    droppedMessages: 0,
    rejectedFrames: 0,
    unknownGroupFrames: 0,
    refusedStreams: 0,
  };
  /** Lanes with queued messages, flushed once the current event-loop turn ends (bulk ones within the turn's budget). */
  private readonly dirty = new Set<PeerLink>();
  /** Peers to report unreachable at the next flush, so the callback never re-enters a send. */
  private readonly unreachable = new Set<number>();
  private flushHandle: NodeJS.Immediate | null = null;
  /** Streams being ended; close() waits for them. */
  private readonly closing = new Set<Promise<void>>();
  private closed = false;

  constructor(options: PeerTransportOptions) {
    assertId(options.selfId, "selfId");
    this.selfId = options.selfId;
    const groups = options.groups ?? [DEFAULT_GROUP_ID];
    if (groups.length === 0) throw new RangeError("groups must name at least one Raft group");
    for (const group of groups) assertId(group, "group id");
    this.groups = new Set(groups);
    this.onMessages = options.onMessages;
    this.identify = options.identify;
    this.onRefused = options.onRefused;
    this.onUnknownSender = options.onUnknownSender;
    this.onPeerState = options.onPeerState;
    this.onInboundClosed = options.onInboundClosed;
    this.onUnreachable = options.onUnreachable;
    this.onFrameRejected = options.onFrameRejected;
    this.bodySource = options.bodySource;
    const d = PEER_TRANSPORT_DEFAULTS;
    this.maxMessageBytes = options.maxMessageBytes ?? d.maxMessageBytes;
    this.maxBatchMessages = options.maxBatchMessages ?? d.maxBatchMessages;
    this.maxBatchBytes = options.maxBatchBytes ?? d.maxBatchBytes;
    this.maxQueuedBytes = options.maxQueuedBytes ?? d.maxQueuedBytes;
    this.maxBulkBytesPerTurn = options.maxBulkBytesPerTurn ?? d.maxBulkBytesPerTurn;
    this.maxInlineBulkBytes = options.maxInlineBulkBytes ?? d.maxInlineBulkBytes;
    this.connectTimeoutMs = options.connectTimeoutMs ?? d.connectTimeoutMs;
    this.keepalive = options.keepalive ?? d.keepalive;
    assertLimit(this.maxMessageBytes, "maxMessageBytes");
    assertLimit(this.maxBatchMessages, "maxBatchMessages");
    assertLimit(this.maxBatchBytes, "maxBatchBytes");
    assertLimit(this.maxQueuedBytes, "maxQueuedBytes");
    assertLimit(this.maxBulkBytesPerTurn, "maxBulkBytesPerTurn");
    assertLimit(this.maxInlineBulkBytes, "maxInlineBulkBytes");
    assertLimit(this.connectTimeoutMs, "connectTimeoutMs");
    assertLimit(this.keepalive.timeMs, "keepalive.timeMs");
    assertLimit(this.keepalive.timeoutMs, "keepalive.timeoutMs");
    if (this.maxBatchBytes > this.maxMessageBytes) {
      throw new RangeError(`maxBatchBytes (${this.maxBatchBytes}) must not exceed maxMessageBytes (${this.maxMessageBytes})`);
    }
    this.backoffOptions = { ...(options.backoff ?? DEFAULT_BACKOFF) };
    // Constructing one validates the options now rather than at the first reconnect.
    new Backoff(this.backoffOptions);
    const credentials = options.credentials ?? grpc.credentials.createInsecure();
    this.credentials = typeof credentials === "function" ? credentials : () => credentials;
    this.serverCredentials = options.serverCredentials ?? grpc.ServerCredentials.createInsecure();
    this.channelOptions = {
      "grpc.max_send_message_length": this.maxMessageBytes,
      "grpc.max_receive_message_length": this.maxMessageBytes,
      "grpc.keepalive_time_ms": this.keepalive.timeMs,
      "grpc.keepalive_timeout_ms": this.keepalive.timeoutMs,
      "grpc.keepalive_permit_without_calls": 1,
      // Each connection attempt gets its own channel, so the transport's backoff is the only
      // one; a shared subchannel would add grpc's own (up to two minutes) on top.
      "grpc.use_local_subchannel_pool": 1,
      "grpc.initial_reconnect_backoff_ms": this.backoffOptions.initialMs,
      "grpc.max_reconnect_backoff_ms": this.backoffOptions.maxMs,
      // A retried stream would replay buffered frames; Raft retransmits on its own.
      "grpc.enable_retries": 0,
      ...options.channelOptions,
    };
  }

  /** Options for the grpc.Server that will carry this transport: message limits and keepalive. */
  serverOptions(): grpc.ServerOptions {
    return {
      "grpc.max_send_message_length": this.maxMessageBytes,
      "grpc.max_receive_message_length": this.maxMessageBytes,
      "grpc.keepalive_time_ms": this.keepalive.timeMs,
      "grpc.keepalive_timeout_ms": this.keepalive.timeoutMs,
    };
  }

  /** Binds `server` to `address` with the configured server credentials; resolves to the port. */
  bind(server: grpc.Server, address: string): Promise<number> {
    return new Promise((resolve, reject) => {
      server.bindAsync(address, this.serverCredentials, (err, port) => (err ? reject(err) : resolve(port)));
    });
  }

  /** Registers service Raft on a grpc.Server the node owns. */
  addService(server: grpc.Server): void {
    server.addService(rawServiceDefinition, {
      Stream: (call: grpc.ServerDuplexStream<Uint8Array, raftmq.v1.StreamAck.$Properties>) => this.acceptStream(call),
      FetchBodies: (
        call: grpc.ServerUnaryCall<raftmq.v1.FetchBodiesRequest, raftmq.v1.FetchBodiesResponse.$Properties>,
        callback: grpc.sendUnaryData<raftmq.v1.FetchBodiesResponse.$Properties>,
      ) => this.answerFetch(call, callback),
    });
  }

  /** Asks peer `peerId` for the bodies of `keys` (at most MAX_FETCH_KEYS); resolves to the first of them it could answer. */
  fetchBodies(peerId: number, keys: readonly number[]): Promise<raftmq.v1.FetchedBody[]> {
    const peer = this.peers.get(peerId);
    if (peer === undefined) return Promise.reject(new Error(`peer ${peerId} is not known`));
    if (keys.length > MAX_FETCH_KEYS) return Promise.reject(new RangeError(`at most ${MAX_FETCH_KEYS} keys per fetch, got ${keys.length}`));
    const client = new grpc.Client(peer.address, this.credentials(peerId), this.channelOptions);
    const method = rawServiceDefinition.FetchBodies;
    return new Promise<raftmq.v1.FetchedBody[]>((resolve, reject) => {
      client.makeUnaryRequest(
        method.path,
        method.requestSerialize,
        method.responseDeserialize,
        raftmq.v1.FetchBodiesRequest.create({ keys: [...keys] }),
        this.introduction("control"),
        { deadline: Date.now() + FETCH_TIMEOUT_MS },
        (err, answer) => {
          if (err !== null || answer === undefined) reject(err ?? new Error("FetchBodies answered nothing"));
          else resolve((answer.bodies ?? []) as raftmq.v1.FetchedBody[]);
        },
      );
    }).finally(() => client.close());
  }

  private answerFetch(
    call: grpc.ServerUnaryCall<raftmq.v1.FetchBodiesRequest, raftmq.v1.FetchBodiesResponse.$Properties>,
    callback: grpc.sendUnaryData<raftmq.v1.FetchBodiesResponse.$Properties>,
  ): void {
    const named = this.namedId(call.metadata);
    if (this.identify !== undefined) {
      const identity = this.identify(call, named);
      const reason = !identity.ok ? identity.reason : identity.peerId !== named ? `its certificate names node ${identity.peerId} but the call claims to be node ${named || "(none)"}` : "";
      if (reason !== "") {
        this.inboundCounters.refusedStreams++;
        this.onRefused?.(call.getPeer(), named, reason);
        callback({ code: grpc.status.PERMISSION_DENIED, details: `node ${this.selfId} refused a body fetch: ${reason}` });
        return;
      }
    }
    const source = this.bodySource;
    if (source === undefined) {
      callback({ code: grpc.status.UNIMPLEMENTED, details: `node ${this.selfId} serves no bodies` });
      return;
    }
    const keys = call.request.keys.map((k) => Number(k));
    if (keys.length > MAX_FETCH_KEYS || keys.some((k) => !Number.isSafeInteger(k) || k <= 0)) {
      callback({ code: grpc.status.INVALID_ARGUMENT, details: `a body fetch names 1 to ${MAX_FETCH_KEYS} positive keys` });
      return;
    }
    try {
      const found = source(keys);
      const bodies: raftmq.v1.FetchedBody.$Properties[] = [];
      let bytes = 0;
      for (let i = 0; i < keys.length; i++) {
        const body = found[i] ?? null;
        const size = body?.length ?? 0;
        if (bodies.length > 0 && bytes + size > MAX_FETCH_BYTES) break;
        bytes += size;
        bodies.push(body === null ? { key: keys[i], found: false } : { key: keys[i], found: true, body });
      }
      callback(null, { bodies });
    } catch (error) {
      callback({ code: grpc.status.INTERNAL, details: `node ${this.selfId} could not read bodies: ${(error as Error).message}` });
    }
  }

  /** Adds a peer or changes its address (host:port). */
  setPeer(peerId: number, address: string): void {
    assertId(peerId, "peerId");
    if (peerId === this.selfId) throw new RangeError(`peer ${peerId} is this node`);
    if (address.length === 0) throw new RangeError(`peer ${peerId}: empty address`);
    if (this.closed) return;
    const existing = this.peers.get(peerId);
    if (existing !== undefined) {
      if (existing.address === address) return;
      existing.address = address;
      for (const link of [existing.control, existing.bulk]) {
        this.detach(link);
        link.backoff.reset();
        this.connect(link);
      }
      return;
    }
    const peer = { id: peerId, address, connected: false } as Peer;
    const lane = (name: Lane): PeerLink => ({
      id: peerId,
      lane: name,
      peer,
      state: { kind: "closed" },
      queue: new OutboundQueue(),
      backoff: new Backoff(this.backoffOptions),
      writable: true,
      sentMessages: 0,
      sentFrames: 0,
      droppedMessages: 0,
      acked: 0,
    });
    Object.assign(peer, { control: lane("control"), bulk: lane("bulk") });
    this.peers.set(peerId, peer);
    this.connect(peer.control);
    this.connect(peer.bulk);
  }

  removePeer(peerId: number): void {
    const peer = this.peers.get(peerId);
    if (peer === undefined) return;
    this.peers.delete(peerId);
    for (const link of [peer.control, peer.bulk]) {
      this.dirty.delete(link);
      link.droppedMessages += link.queue.clear();
      this.detach(link);
    }
  }

  /** Whether `link` is still one of this transport's lanes (not of a removed or replaced peer). */
  private live(link: PeerLink): boolean {
    return !this.closed && this.peers.get(link.id) === link.peer;
  }

  /**
   * Queues messages of group `groupId` for their recipients; never blocks. Frames leave once
   * this turn ends.
   */
  send(messages: Message[], groupId: number = DEFAULT_GROUP_ID): void {
    if (!this.groups.has(groupId)) {
      throw new Error(`node ${this.selfId} asked to send messages of Raft group ${groupId}, which it does not serve`);
    }
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i];
      if (m === undefined) continue;
      if (m.from !== this.selfId || m.to === this.selfId) {
        throw new Error(`node ${this.selfId} asked to send a message from ${m.from} to ${m.to}`);
      }
      const peer = this.peers.get(m.to);
      if (peer === undefined || this.closed) {
        this.unreachable.add(m.to);
        continue;
      }
      const link = laneOf(m) === "bulk" ? peer.bulk : peer.control;
      // While the peer is known to be down, queued messages would only go stale: Raft
      // retransmits what matters once it hears the peer is reachable again.
      const size = estimateWireSize(m);
      if (link.state.kind === "backoff" || link.queue.bytes + size > this.maxQueuedBytes) {
        link.droppedMessages++;
        this.unreachable.add(link.id);
        continue;
      }
      link.queue.push(m, size, groupId);
      this.dirty.add(link);
    }
    if (this.dirty.size > 0 || this.unreachable.size > 0) this.scheduleFlush();
  }

  /**
   * Like send, but the messages are written to their streams before this returns instead of
   * once the turn ends: for a batch that is complete as it is, such as one Raft Ready's.
   * Peers found unreachable are still reported at the end of the turn.
   */
  sendNow(messages: Message[], groupId: number = DEFAULT_GROUP_ID): void {
    this.send(messages, groupId);
    for (const link of this.dirty) {
      // Big entries are encoded in later turns, within the per-turn budget.
      if (link.lane === "bulk" && link.queue.bytes > this.maxInlineBulkBytes) continue;
      this.flush(link, Number.POSITIVE_INFINITY);
      this.dirty.delete(link);
    }
  }

  stats(): Record<number, PeerStats> {
    const out: Record<number, PeerStats> = {};
    for (const peer of this.peers.values()) {
      const { control, bulk } = peer;
      out[peer.id] = {
        connected: control.state.kind === "connected" && bulk.state.kind === "connected",
        queuedBytes: control.queue.bytes + bulk.queue.bytes,
        sentMessages: control.sentMessages + bulk.sentMessages,
        droppedMessages: control.droppedMessages + bulk.droppedMessages,
      };
    }
    return out;
  }

  /** Counters of what arrived on streams from peers. */
  inboundStats(): InboundStats {
    return { ...this.inboundCounters, streams: this.inbound.size };
  }

  /** Ends every stream and clears every timer; resolves once outbound streams have finished. */
  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      if (this.flushHandle !== null) {
        clearImmediate(this.flushHandle);
        this.flushHandle = null;
      }
      this.dirty.clear();
      this.unreachable.clear();
      for (const peer of this.peers.values()) {
        for (const link of [peer.control, peer.bulk]) {
          link.droppedMessages += link.queue.clear();
          this.detach(link);
        }
      }
      for (const stream of this.inbound) this.finishInbound(stream);
      this.inbound.clear();
    }
    await Promise.all([...this.closing]);
  }

  // -------------------------------------------------------------------------------------------
  // Outbound

  private scheduleFlush(): void {
    if (this.flushHandle !== null || this.closed) return;
    this.flushHandle = setImmediate(() => {
      this.flushHandle = null;
      let budget = this.maxBulkBytesPerTurn;
      for (const link of [...this.dirty]) {
        this.dirty.delete(link);
        if (link.lane === "control") {
          this.flush(link, Number.POSITIVE_INFINITY);
          continue;
        }
        if (budget <= 0) {
          this.dirty.add(link);
          continue;
        }
        budget -= this.flush(link, budget);
        // Frames left over wait for the next turn; the lane goes to the back of the line.
        if (link.queue.length > 0 && link.writable && link.state.kind === "connected") this.dirty.add(link);
      }
      this.reportUnreachable();
      if (this.dirty.size > 0) this.scheduleFlush();
    });
  }

  private reportUnreachable(): void {
    if (this.unreachable.size === 0) return;
    const peers = [...this.unreachable];
    this.unreachable.clear();
    if (this.onUnreachable === undefined) return;
    for (const peer of peers) this.onUnreachable(peer);
  }

  /**
   * Writes queued frames while the stream takes them, stopping once `budget` bytes are written
   * (a first frame larger than the budget still goes); answers the bytes written.
   */
  private flush(link: PeerLink, budget: number): number {
    const state = link.state;
    if (state.kind !== "connected") return 0;
    let written = 0;
    while (link.writable && link.queue.length > 0 && written < budget) {
      const groupId = link.queue.headGroup;
      const messages = link.queue.takeFrame(this.maxBatchMessages, this.maxBatchBytes - FRAME_OVERHEAD);
      const frame = encodeFrame(groupId, messages);
      written += frame.length;
      if (frame.length > this.maxMessageBytes) {
        // Only a single message can get here (estimates bound multi-message frames); sending
        // it would fail the whole stream.
        link.droppedMessages += messages.length;
        this.unreachable.add(link.id);
        continue;
      }
      link.sentMessages += messages.length;
      link.sentFrames++;
      link.writable = state.call.write(asBuffer(frame));
    }
    return written;
  }

  private connect(link: PeerLink): void {
    if (!this.live(link)) return;
    const client = new grpc.Client(link.peer.address, this.credentials(link.id), this.channelOptions);
    const call: OutboundCall = client.makeBidiStreamRequest(
      STREAM_PATH,
      asBuffer,
      (bytes: Buffer) => raftmq.v1.StreamAck.decode(bytes),
      this.introduction(link.lane),
    );
    const timer = setTimeout(() => call.cancel(), this.connectTimeoutMs);
    link.state = { kind: "connecting", client, call, timer };
    link.writable = true;
    link.acked = 0;
    const current = (): boolean => link.state.kind !== "backoff" && link.state.kind !== "closed" && link.state.call === call;
    // The server answers with headers at once; until then the stream is not known to work.
    call.on("metadata", () => {
      if (!current() || link.state.kind !== "connecting") return;
      clearTimeout(link.state.timer);
      link.state = { kind: "connected", client, call };
      link.backoff.reset();
      this.laneStateChanged(link.peer);
      this.schedule(link);
      this.reportUnreachable();
    });
    call.on("data", (ack: raftmq.v1.StreamAck) => {
      if (current()) link.acked = ack.received;
    });
    call.on("drain", () => {
      if (!current()) return;
      link.writable = true;
      this.schedule(link);
      this.reportUnreachable();
    });
    // Every ending, clean or not, also emits 'status'; that is where it is handled.
    call.on("error", () => {});
    call.on("status", () => {
      if (current()) this.streamEnded(link);
    });
  }

  private streamEnded(link: PeerLink): void {
    const state = link.state;
    if (state.kind !== "connecting" && state.kind !== "connected") return;
    if (state.kind === "connecting") clearTimeout(state.timer);
    state.client.close();
    // What was written may be lost with the stream; what is queued would arrive late.
    link.droppedMessages += link.queue.clear();
    this.dirty.delete(link);
    if (!this.live(link)) {
      link.state = { kind: "closed" };
      this.laneStateChanged(link.peer);
      return;
    }
    const delay = link.backoff.next();
    link.state = { kind: "backoff", timer: setTimeout(() => this.connect(link), delay) };
    this.laneStateChanged(link.peer);
    this.unreachable.add(link.id);
    this.reportUnreachable();
  }

  /** Stops the link's stream or timer without scheduling a reconnect. */
  private detach(link: PeerLink): void {
    const state = link.state;
    link.state = { kind: "closed" };
    switch (state.kind) {
      case "closed":
        return;
      case "backoff":
        clearTimeout(state.timer);
        return;
      case "connecting":
        clearTimeout(state.timer);
        this.trackClosing(this.endCall(state.call, state.client));
        return;
      case "connected":
        this.laneStateChanged(link.peer);
        this.trackClosing(this.endCall(state.call, state.client));
        return;
      default: {
        const unreachable: never = state;
        throw new Error(`unknown link state ${JSON.stringify(unreachable)}`);
      }
    }
  }

  private trackClosing(ending: Promise<void>): void {
    this.closing.add(ending);
    void ending.then(() => this.closing.delete(ending));
  }

  /** Half-closes the stream so the peer sees a clean end; cancels it if that takes too long. */
  private endCall(call: OutboundCall, client: grpc.Client): Promise<void> {
    return new Promise((resolve) => {
      let done = false;
      const finish = (): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        call.cancel();
        client.close();
        resolve();
      };
      const timer = setTimeout(finish, PEER_TRANSPORT_DEFAULTS.closeTimeoutMs);
      call.on("status", finish);
      call.end();
    });
  }

  /** Queues a lane's frames for the end of this turn (control at once, bulk within the budget). */
  private schedule(link: PeerLink): void {
    if (link.queue.length === 0) return;
    this.dirty.add(link);
    this.scheduleFlush();
  }

  /** Reports a peer connected once both its lanes are, and disconnected once either is not. */
  private laneStateChanged(peer: Peer): void {
    const connected = peer.control.state.kind === "connected" && peer.bulk.state.kind === "connected";
    if (connected === peer.connected) return;
    peer.connected = connected;
    this.onPeerState?.(peer.id, connected ? "connected" : "disconnected");
  }

  /** Stream metadata naming this node and the lane. */
  private introduction(lane: Lane): grpc.Metadata {
    const metadata = new grpc.Metadata();
    metadata.set(PEER_ID_METADATA_KEY, String(this.selfId));
    metadata.set(PEER_LANE_METADATA_KEY, lane);
    return metadata;
  }

  /** The id a stream's opener named, or 0 if none (or this node's own). */
  private namedId(metadata: grpc.Metadata): number {
    const named = Number(metadata.get(PEER_ID_METADATA_KEY)[0] ?? "");
    return Number.isSafeInteger(named) && named > 0 && named !== this.selfId ? named : 0;
  }

  /** True when messages to `peerId` have somewhere to go. */
  hasPeer(peerId: number): boolean {
    return this.peers.has(peerId);
  }

  // -------------------------------------------------------------------------------------------
  // Inbound

  private acceptStream(call: grpc.ServerDuplexStream<Uint8Array, raftmq.v1.StreamAck.$Properties>): void {
    if (this.closed) {
      call.emit("error", { code: grpc.status.UNAVAILABLE, details: `node ${this.selfId} is shutting down` });
      return;
    }
    const named = this.namedId(call.metadata);
    const remote = call.getPeer();
    if (this.identify !== undefined) {
      const identity = this.identify(call, named);
      const reason = !identity.ok ? identity.reason : identity.peerId !== named ? `its certificate names node ${identity.peerId} but the stream claims to be node ${named || "(none)"}` : "";
      if (reason !== "") {
        this.inboundCounters.refusedStreams++;
        call.emit("error", { code: grpc.status.PERMISSION_DENIED, details: `node ${this.selfId} refused a Raft stream: ${reason}` });
        this.onRefused?.(remote, named, reason);
        return;
      }
    }
    const stream: InboundStream = { call, peerId: named, remote, received: 0, ackTimer: null, finished: false };
    this.inbound.add(stream);
    // Headers at once tell the sender the stream is accepted before any ack is due.
    call.sendMetadata(new grpc.Metadata());
    call.on("data", (frame: Uint8Array) => this.receiveFrame(stream, frame));
    let reported = false;
    const closed = (): void => {
      if (reported || this.closed) return;
      reported = true;
      if (stream.peerId !== 0) this.onInboundClosed?.(stream.peerId);
    };
    call.on("end", () => {
      this.finishInbound(stream);
      closed();
    });
    call.on("cancelled", () => {
      stream.finished = true;
      this.inbound.delete(stream);
      closed();
    });
    call.on("error", () => {
      stream.finished = true;
      this.inbound.delete(stream);
      closed();
    });
  }

  private finishInbound(stream: InboundStream): void {
    this.inbound.delete(stream);
    if (stream.finished) return;
    stream.finished = true;
    stream.call.end();
  }

  private rejectInbound(stream: InboundStream, details: string, code: grpc.status = grpc.status.INVALID_ARGUMENT): void {
    this.inbound.delete(stream);
    if (stream.finished) return;
    stream.finished = true;
    this.inboundCounters.rejectedFrames++;
    // grpc-js turns an emitted error into the call's status and ends the call.
    stream.call.emit("error", { code, details });
    if (code === grpc.status.PERMISSION_DENIED) this.onRefused?.(stream.remote, stream.peerId, details);
    else this.onFrameRejected?.(stream.peerId, details);
  }

  private receiveFrame(stream: InboundStream, frame: Uint8Array): void {
    if (stream.finished) return;
    let batch: raftmq.v1.MessageBatch;
    try {
      batch = decodeFrame(frame);
    } catch (err) {
      this.rejectInbound(stream, `malformed MessageBatch frame: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    // Checked before any message is looked at: a sender that names a group this node does not
    // serve (or none, from before frames named groups) disagrees with it about what the
    // messages mean, and stepping them into another group's Raft would corrupt it.
    const groupId = u64(batch.groupId);
    if (!this.groups.has(groupId)) {
      this.inboundCounters.unknownGroupFrames++;
      this.rejectInbound(stream, `MessageBatch frame for Raft group ${groupId}, which node ${this.selfId} does not serve`);
      return;
    }
    // Decoding produced Message instances, whatever the declared element type says.
    const wire = batch.messages as raftmq.v1.Message[];
    const accepted: Message[] = [];
    for (let i = 0; i < wire.length; i++) {
      const m = wire[i];
      if (m === undefined) continue;
      // On a secure transport the sender is proven: a message in another node's name is forged.
      if (this.identify !== undefined && u64(m.from) !== stream.peerId) {
        this.rejectInbound(stream, `a message from node ${u64(m.from)} arrived on the stream of node ${stream.peerId}`, grpc.status.PERMISSION_DENIED);
        return;
      }
      if (this.acceptable(m)) accepted.push(fromWire(m));
    }
    this.inboundCounters.frames++;
    this.inboundCounters.messages += accepted.length;
    this.inboundCounters.droppedMessages += wire.length - accepted.length;
    stream.received += wire.length;
    this.scheduleAck(stream);
    if (accepted.length > 0) {
      if (this.onUnknownSender !== undefined) {
        const from = accepted[0]?.from ?? 0;
        if (from !== 0 && !this.peers.has(from)) this.onUnknownSender(from);
      }
      this.onMessages(accepted, groupId);
    }
  }

  /** Whether a received message is addressed to this node and well formed enough to step. */
  private acceptable(m: raftmq.v1.Message): boolean {
    if (u64(m.to) !== this.selfId) return false;
    const from = u64(m.from);
    if (!(from > 0) || from === this.selfId) return false;
    if (!(m.type > 0 && m.type <= MAX_MESSAGE_TYPE)) return false;
    if (m.type === raftmq.v1.MessageType.MESSAGE_TYPE_INSTALL_SNAPSHOT) {
      return m.snapshot != null && m.snapshot.meta != null;
    }
    return true;
  }

  // One cumulative ack per interval, however many frames arrived in it: acks carry progress
  // only, and writing one per frame would put a stream write on every message's path.
  private scheduleAck(stream: InboundStream): void {
    if (stream.ackTimer !== null) return;
    stream.ackTimer = setTimeout(() => {
      stream.ackTimer = null;
      // A sender that does not read its acks must not make them pile up here; the next ack
      // carries the total anyway.
      if (stream.finished || stream.call.writableNeedDrain) return;
      stream.call.write({ received: stream.received });
    }, PEER_TRANSPORT_DEFAULTS.ackIntervalMs);
    stream.ackTimer.unref();
  }
}
