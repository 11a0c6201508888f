// Encodes the broker state as a BrokerSnapshot and back. Lists follow the state's insertion order
// and messages shared by several queues are stored once, so equal states give equal bytes.
import { int64 } from "./proto-int.ts";
import { lengthPrefix, Reader, raftmq } from "@raftmq/proto";
import { frozenPermissions, frozenUser } from "./access-control.ts";
import { BrokerInvariantError, invariant } from "./broker-error.ts";
import { EMPTY_PROPERTIES, HeadPool, type MessageHead, type NewBody, QueuedMessage, StringPool } from "./broker-message.ts";
import { type BrokerState, emptyState, type Session } from "./broker-state.ts";
import { settingsFromProto, settingsToProto } from "./cluster-settings.ts";
import type { PublishResult } from "./command-result.ts";
import { lowestKey } from "./dedup-window.ts";
import { Exchange, type ExchangeType } from "./exchange.ts";
import { type BrokerLimits, limitKeys, limitRangeError } from "./limits.ts";
import { INITIAL_MACHINE_VERSION, requireMachineVersion } from "./machine-version.ts";
import { queueArgumentsFromProto, queueArgumentsToProto } from "./queue-arguments.ts";
import { Consumer, Queue } from "./queue.ts";
import type { ReadyView } from "./ready-ring.ts";
import { fitsColumns, type ReadyColumns, type ReadyPieceSink, ReadyRunWriter, readReadyPiece } from "./ready-run-writer.ts";
import { DEFAULT_VHOST, Vhost } from "./vhost.ts";

const pb = raftmq.v1;

const typeToProto: Record<ExchangeType, raftmq.v1.ExchangeType> = {
  direct: pb.ExchangeType.EXCHANGE_TYPE_DIRECT,
  fanout: pb.ExchangeType.EXCHANGE_TYPE_FANOUT,
  topic: pb.ExchangeType.EXCHANGE_TYPE_TOPIC,
  headers: pb.ExchangeType.EXCHANGE_TYPE_HEADERS,
};

function typeFromProto(t: raftmq.v1.ExchangeType): ExchangeType {
  for (const [k, v] of Object.entries(typeToProto)) if (v === t) return k as ExchangeType;
  throw new BrokerInvariantError(`snapshot holds unknown exchange type ${t}`);
}

/** A vhost as written: "" for "/", so a snapshot of "/" alone reads as one written before vhosts. */
function vhostField(v: Vhost): string {
  return v.name === DEFAULT_VHOST ? "" : v.name;
}

function vhostOfField(field: string | null | undefined): string {
  return field == null || field === "" ? DEFAULT_VHOST : field;
}

/** Every queue, vhost by vhost: the order of the first piece's `queues`. */
function* allQueues(s: BrokerState): IterableIterator<Queue> {
  for (const v of s.vhosts.values()) yield* v.queues.values();
}

/** Marks the piece format: an old single-message snapshot never starts with a zero byte. */
const PIECES_MARKER = 0;
const PIECES_VERSION = 1;
/** Cost of one queued message in a piece, its shared message's fields included. */
const QUEUED_MESSAGE_OVERHEAD = 64;
/** Cost of one message of a column block: the work of a step, rather than its bytes, which are few. */
const COLUMN_MESSAGE_COST = 16;
/**
 * The state-machine version from which ready messages never taken are written as columns
 * (SnapshotReadyColumns): code before it would skip them as a field it does not know.
 */
export const READY_COLUMNS_VERSION = 7;
export const DEFAULT_PIECE_BYTES = 1024 * 1024;

/**
 * Numbers message heads as they are first referenced; each piece carries the ones new to it.
 * Heads without properties are one entry per exchange and routing key (by value, so a restored
 * state, whose heads are shared differently, writes the same bytes); others one per head.
 */
class MessageTable {
  private readonly refs = new Map<MessageHead, number>();
  private readonly plain = new Map<string, number>();
  private fresh: raftmq.v1.SnapshotMessage.$Properties[] = [];
  private count = 0;
  private lastHead: MessageHead | null = null;
  private lastRef = 0;

  copy(m: QueuedMessage, deliveryCount = m.deliveryCount, redelivered = m.redelivered): raftmq.v1.SnapshotQueuedMessage.$Properties {
    return { id: m.id, messageRef: this.refOf(m.head), expiresAtMs: m.expiresAt, deliveryCount, redelivered, bodyKey: m.bodyKey, bodySize: m.bodySize };
  }

  /** The number of `head` in the table, added to it (and to the fresh ones) when new. */
  refOf(head: MessageHead): number {
    // Runs of messages share a head: the last one answers most lookups without a key.
    if (head === this.lastHead) return this.lastRef;
    const plain = head.properties === EMPTY_PROPERTIES;
    const key = plain ? `${head.exchange}\u0000${head.routingKey}` : "";
    let ref = plain ? this.plain.get(key) : this.refs.get(head);
    if (ref === undefined) {
      ref = this.count++;
      if (plain) this.plain.set(key, ref);
      else this.refs.set(head, ref);
      // A message published without properties has none written: it restores without an object of its own.
      this.fresh.push({ exchange: head.exchange, routingKey: head.routingKey, properties: plain ? null : head.properties });
    }
    this.lastHead = head;
    this.lastRef = ref;
    return ref;
  }

  takeFresh(): raftmq.v1.SnapshotMessage.$Properties[] {
    const out = this.fresh;
    this.fresh = [];
    return out;
  }
}

/**
 * The ready messages of every non-empty queue, in order, so that the state may go on changing
 * while they are encoded. The returned ones (taken before, at the head) are copied as objects
 * with their delivery counts and flags, which change once they are taken again; the ring of
 * those never taken is captured as a view that shares its chunks (no copy).
 */
interface CapturedQueue {
  position: number;
  returned: { m: QueuedMessage; deliveryCount: number; redelivered: boolean }[];
  ready: ReadyView;
}

function captureReady(s: BrokerState): CapturedQueue[] {
  const captured: CapturedQueue[] = [];
  let position = 0;
  for (const q of allQueues(s)) {
    if (q.readyCount > 0) {
      const returned = [];
      for (let i = q.returned.length - 1; i >= 0; i--) {
        const m = q.returned[i] as QueuedMessage;
        returned.push({ m, deliveryCount: m.deliveryCount, redelivered: m.redelivered });
      }
      captured.push({ position, returned, ready: q.ready.capture() });
    }
    position++;
  }
  return captured;
}

/** A producer's dedup window as it was at capture: the window's own arrays go on changing. */
interface CapturedProducer {
  id: string;
  lastSeenAt: number;
  evictedUpTo: number;
  lowest: number;
  sequences: number[];
  results: PublishResult[];
}

function captureProducers(s: BrokerState): CapturedProducer[] {
  const captured: CapturedProducer[] = [];
  for (const [id, p] of s.dedup.producers) {
    captured.push({ id, lastSeenAt: p.lastSeenAt, evictedUpTo: p.evictedUpTo, lowest: p.lowest, sequences: Array.from(p.results.keys()), results: Array.from(p.results.values()) });
  }
  return captured;
}

/**
 * Dedup entries encoded per step while the first piece is built: encoding them costs far more
 * per byte than copying bodies (about 0.2 µs each once optimized, ten times that before), and a
 * cluster's producers may hold millions of them.
 */
export const DEDUP_ENTRIES_PER_STEP = 1024;

/** The tag of BrokerSnapshot.producers (field 12, length-delimited). */
const PRODUCERS_TAG = (12 << 3) | 2;

/**
 * Appends the `producers` field of every captured producer to `parts`, yielding after each
 * DEDUP_ENTRIES_PER_STEP entries. A producer's message is encoded in parts, in field order (id,
 * last seen, evicted up to; its entries a run at a time; lowest sequence), so that the bytes are
 * those of the message encoded at once.
 */
function* encodeProducers(producers: readonly CapturedProducer[], parts: Uint8Array[]): Generator<void, void, undefined> {
  let budget = DEDUP_ENTRIES_PER_STEP;
  for (const p of producers) {
    const body: Uint8Array[] = [pb.SnapshotProducer.encode({ id: p.id, lastSeenAtMs: p.lastSeenAt, evictedUpTo: p.evictedUpTo }).finish()];
    for (let at = 0; at < p.sequences.length; ) {
      const end = Math.min(p.sequences.length, at + budget);
      const entries: raftmq.v1.SnapshotDedupEntry.$Properties[] = [];
      for (let i = at; i < end; i++) {
        const r = p.results[i] as PublishResult;
        entries.push({ sequence: p.sequences[i], routedQueues: r.routedQueues, returned: r.returned, rejectedBy: r.rejectedBy ?? "" });
      }
      body.push(pb.SnapshotProducer.encode({ entries }).finish());
      budget -= end - at;
      at = end;
      if (budget === 0) {
        yield;
        budget = DEDUP_ENTRIES_PER_STEP;
      }
    }
    body.push(pb.SnapshotProducer.encode({ lowestSequence: p.lowest }).finish());
    parts.push(Uint8Array.of(PRODUCERS_TAG), lengthPrefix(totalLength(body)), ...body);
  }
}

function totalLength(parts: readonly Uint8Array[]): number {
  let total = 0;
  for (const p of parts) total += p.length;
  return total;
}

/**
 * The snapshot as pieces of about `maxPieceBytes` each (format above). The first next() captures
 * the state synchronously (the messages of every queue and what else may change) and yields an
 * empty array; the state may change after that, and what follows still describes it as it was.
 * Each later next() does a bounded amount of encoding: the first piece, which starts with the
 * format marker, is built over several steps that yield empty arrays (its producers' dedup
 * windows, DEDUP_ENTRIES_PER_STEP entries a step), then each piece of ready messages is one step.
 */
export function* encodeStatePieces(s: BrokerState, maxPieceBytes = DEFAULT_PIECE_BYTES): Generator<Uint8Array, void, undefined> {
  const table = new MessageTable();
  const exchanges: raftmq.v1.SnapshotExchange.$Properties[] = [];
  for (const v of s.vhosts.values()) {
    for (const e of v.exchanges.values()) {
      exchanges.push({
        name: e.name,
        type: typeToProto[e.type],
        durable: e.durable,
        autoDelete: e.autoDelete,
        internal: e.internal,
        alternateExchange: e.alternateExchange,
        builtin: e.builtin,
        hadBinding: e.hadBinding,
        bindings: [...e.bindings.values()].map((b) =>
          b.destinationKind === "queue"
            ? { queue: b.destination, routingKey: b.routingKey, arguments: [...b.arguments] }
            : { destinationExchange: b.destination, routingKey: b.routingKey, arguments: [...b.arguments] },
        ),
        vhost: vhostField(v),
      });
    }
  }
  const queues = [...allQueues(s)].map((q) => ({
    name: q.name,
    seq: q.seq,
    durable: q.durable,
    exclusive: q.exclusive,
    ownerSessionId: q.ownerSessionId,
    autoDelete: q.autoDelete,
    arguments: queueArgumentsToProto(q.args),
    returnedCount: q.returned.length,
    nextConsumer: q.nextConsumer,
    hadConsumer: q.hadConsumer,
    lastUsedAtMs: q.lastUsedAt,
    dispatchPending: s.backlog.has(q),
    vhost: vhostField(q.vhost),
  }));
  const consumers = [...s.consumers.values()].map((c) => ({
    id: c.id,
    sessionId: c.sessionId,
    queue: c.queue.name,
    prefetch: c.prefetch,
    noAck: c.noAck,
    exclusive: c.exclusive,
    tag: c.tag,
    nextTag: c.nextTag,
    cancelled: c.cancelled,
    inflight: [...c.inflight].map(([tag, m]) => ({ deliveryTag: tag, message: table.copy(m) })),
    vhost: vhostField(c.queue.vhost),
  }));
  const sessions = [...s.sessions.values()].map((x) => ({
    id: x.id,
    consumers: [...x.consumers],
    gets: [...x.gets].map(([tag, d]) => ({ deliveryTag: tag, message: table.copy(d.message), queue: d.queue.name, vhost: vhostField(d.queue.vhost) })),
    exclusiveQueues: [...x.exclusiveQueues].map((q) => q.name),
    exclusiveQueueVhosts: [...x.exclusiveQueues].map((q) => vhostField(q.vhost)),
  }));
  // The first piece is encoded in three parts, in field order, so that it is byte for byte the
  // message encoded at once: the fields before `producers`, the producers, the fields after.
  const before: raftmq.v1.BrokerSnapshot.$Properties = {
    nowMs: s.now,
    lastSweepAtMs: s.lastSweepAt,
    nextMessageId: s.nextMessageId,
    nextQueueSeq: s.nextQueueSeq,
    nextGeneratedName: s.nextGeneratedName,
    nextGetTag: s.nextGetTag,
    messages: table.takeFresh(),
    exchanges,
    queues,
    consumers,
    sessions,
  };
  const after: raftmq.v1.BrokerSnapshot.$Properties = {
    settings: settingsToProto(s.settings),
    machineVersion: s.machineVersion,
    vhosts: [...s.vhosts.keys()].map((name) => ({ name })),
    users: [...s.users.values()].map((u) => ({ name: u.name, passwordHash: u.passwordHash, tags: [...u.tags] })),
    permissions: [...s.permissions].flatMap(([user, ofUser]) => [...ofUser].map(([vhost, p]) => ({ user, vhost, configure: p.configure, write: p.write, read: p.read }))),
    accessVersion: s.accessVersion,
    nextBodyKey: s.nextBodyKey,
  };
  const producers = captureProducers(s);
  const captured = captureReady(s);
  yield new Uint8Array(0);

  const parts: Uint8Array[] = [pb.BrokerSnapshot.encode(before).finish()];
  for (const _ of encodeProducers(producers, parts)) yield new Uint8Array(0);
  parts.push(pb.BrokerSnapshot.encode(after).finish());
  yield concatPieces([Uint8Array.of(PIECES_MARKER, PIECES_VERSION), lengthPrefix(totalLength(parts)), ...parts]);

  // The ready messages, written straight to wire bytes (no object per message): those returned
  // (taken before) as runs' messages, those never taken as columns where the version allows.
  const runs = new ReadyRunWriter();
  const useColumns = s.machineVersion >= READY_COLUMNS_VERSION;
  let bytes = 0;
  for (const c of captured) {
    const n = c.returned.length + c.ready.length;
    // What the message before wrote to: a run, a column block, or nothing yet (of this queue, in this piece).
    let open: "run" | "columns" | null = null;
    for (let i = 0; i < n; i++) {
      if (i < c.returned.length) {
        const r = c.returned[i] as CapturedQueue["returned"][number];
        const m = r.m;
        if (open !== "run") runs.startRun(c.position);
        open = "run";
        runs.message(m.id, table.refOf(m.head), m.expiresAt, r.deliveryCount, r.redelivered, m.bodyKey, m.bodySize);
        bytes += QUEUED_MESSAGE_OVERHEAD;
      } else {
        const j = i - c.returned.length;
        const v = c.ready;
        const id = v.id(j);
        const expiresAt = v.expiresAt(j);
        const bodyKey = v.bodyKey(j);
        // Messages alike (published one after another) go into the columns as a whole, up to
        // where the piece ends: the same bytes as one by one, in a step whatever their number.
        const inColumns = useColumns && fitsColumns(id, expiresAt, bodyKey);
        const alike = inColumns ? Math.min(v.alikeRun(j), Math.ceil((maxPieceBytes - bytes) / COLUMN_MESSAGE_COST)) : 1;
        const end = j + alike - 1;
        if (alike > 1 && fitsColumns(v.id(end), 0, v.bodyKey(end))) {
          if (open !== "columns") runs.startColumns(c.position);
          open = "columns";
          runs.columnRun(alike, id, v.id(j + 1) - id, table.refOf(v.head(j)), bodyKey, v.bodyKey(j + 1) - bodyKey, v.bodySize(j));
          bytes += alike * COLUMN_MESSAGE_COST;
          i += alike - 1;
        } else if (inColumns) {
          if (open !== "columns") runs.startColumns(c.position);
          open = "columns";
          runs.column(id, table.refOf(v.head(j)), expiresAt, bodyKey, v.bodySize(j));
          bytes += COLUMN_MESSAGE_COST;
        } else {
          if (open !== "run") runs.startRun(c.position);
          open = "run";
          runs.message(id, table.refOf(v.head(j)), expiresAt, 0, false, bodyKey, v.bodySize(j));
          bytes += QUEUED_MESSAGE_OVERHEAD;
        }
      }
      if (bytes >= maxPieceBytes) {
        yield readyPiece(table.takeFresh(), runs.take());
        bytes = 0;
        open = null;
      }
    }
  }
  if (bytes > 0) yield readyPiece(table.takeFresh(), runs.take());
}

/** A piece of ready messages: BrokerSnapshot { messages, ready_runs }, framed. */
function readyPiece(messages: raftmq.v1.SnapshotMessage.$Properties[], readyRuns: Uint8Array): Uint8Array {
  const head = messages.length === 0 ? new Uint8Array(0) : pb.BrokerSnapshot.encode({ messages }).finish();
  return concatPieces([lengthPrefix(head.length + readyRuns.length), head, readyRuns]);
}

export function encodeState(s: BrokerState): Uint8Array {
  return concatPieces([...encodeStatePieces(s)]);
}

export function concatPieces(pieces: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(totalLength(pieces));
  let at = 0;
  for (const p of pieces) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// Decoded nested messages are typed as all-optional; these read them with proto3 defaults.
const str = (v: string | null | undefined): string => v ?? "";
const num = int64;
const bool = (v: boolean | null | undefined): boolean => v ?? false;
const list = <T>(v: T[] | null | undefined): T[] => v ?? [];

/** Restores the state from snapshot bytes at once. */
export function decodeState(bytes: Uint8Array, limits: BrokerLimits, restoredBodies: NewBody[] = []): BrokerState {
  const steps = decodeStatePieces(bytes, limits, restoredBodies);
  for (;;) {
    const step = steps.next();
    if (step.done === true) return step.value;
  }
}

/**
 * Restores the state piece by piece: each `next()` decodes one piece; the generator returns
 * the state. Reads both the piece format and an old single-message snapshot.
 */
export function* decodeStatePieces(input: Uint8Array, limits: BrokerLimits, restoredBodies: NewBody[] = []): Generator<void, BrokerState, undefined> {
  // Bodies are views into the snapshot; as Buffer views they are the same type as the bodies of
  // applied commands, whatever type of array the snapshot was read into.
  const bytes = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  if (bytes.length === 0 || bytes[0] !== PIECES_MARKER) {
    const snap = pb.BrokerSnapshot.decode(bytes);
    const restored = stateFromFirstPiece(snap, limits, [], restoredBodies);
    for (let i = 0; i < restored.queues.length; i++) for (const c of list(snap.queues[i]?.ready)) restored.addReady(i, c);
    return restored.finish();
  }
  invariant(bytes[1] === PIECES_VERSION, `snapshot piece format version ${bytes[1]} is not supported (this node reads version ${PIECES_VERSION})`);
  let at = 2;
  const nextPiece = (): Uint8Array | null => {
    if (at >= bytes.length) return null;
    const reader = Reader.create(bytes.subarray(at, Math.min(bytes.length, at + 10)));
    let value: number;
    try {
      value = reader.uint32();
    } catch {
      throw new BrokerInvariantError(`snapshot piece length at byte ${at} is malformed`);
    }
    const next = at + reader.pos;
    invariant(next + value <= bytes.length, `snapshot piece at byte ${at} runs past the end`);
    at = next + value;
    return bytes.subarray(next, next + value);
  };
  const first = nextPiece();
  invariant(first !== null, "snapshot has its first piece");
  const messages: RestoredHead[] = [];
  const restored = stateFromFirstPiece(pb.BrokerSnapshot.decode(first), limits, messages, restoredBodies);
  // The pieces after the first hold heads and ready messages only: read without an object per message.
  const sink: ReadyPieceSink = {
    message: (m) => messages.push(restored.message(pb.SnapshotMessage.decode(m))),
    queued: (position, fields) => {
      if (position >= restored.queues.length) throw new BrokerInvariantError(`snapshot ready run names queue ${position} of ${restored.queues.length}`);
      restored.addReady(position, fields);
    },
    columns: (position, count, columns) => {
      invariant(position < restored.queues.length, `snapshot ready columns name queue ${position} of ${restored.queues.length}`);
      restored.addColumns(position, count, columns);
    },
  };
  for (;;) {
    yield;
    const piece = nextPiece();
    if (piece === null) break;
    try {
      readReadyPiece(piece, sink);
    } catch (error) {
      if (error instanceof RangeError) throw new BrokerInvariantError(error.message);
      throw error;
    }
  }
  return restored.finish();
}


/** A snapshot's message head; one written before bodies were kept apart also names the body it carried. */
interface RestoredHead {
  head: MessageHead;
  bodyKey: number;
  bodySize: number;
}

/** Restores heads: those without properties shared as the broker shares them, strings kept once. */
class HeadRestorer {
  private readonly strings = new StringPool();
  private readonly heads = new HeadPool();

  constructor(
    private readonly s: BrokerState,
    private readonly restoredBodies: NewBody[],
  ) {}

  /**
   * A snapshot's message. One written before bodies were kept apart carries its body: it gets the
   * next key (in snapshot order, so the same on every node) and goes to `restoredBodies` to be stored.
   */
  restore(m: raftmq.v1.SnapshotMessage.$Properties): RestoredHead {
    const exchange = this.strings.intern(str(m.exchange));
    const routingKey = this.strings.intern(str(m.routingKey));
    const head = m.properties == null ? this.heads.head(exchange, routingKey) : { exchange, routingKey, properties: m.properties };
    const inline = m.body ?? new Uint8Array(0);
    if (inline.length === 0) return { head, bodyKey: 0, bodySize: 0 };
    const bodyKey = this.s.nextBodyKey++;
    this.restoredBodies.push({ key: bodyKey, bytes: inline });
    return { head, bodyKey, bodySize: inline.length };
  }
}

interface PartialState {
  queues: raftmq.v1.SnapshotQueue.$Properties[];
  /** Ready messages of each queue (by position), head first, filled by later pieces. */
  /** Adds the next ready message of the queue at `position`, head first. */
  addReady: (position: number, c: raftmq.v1.SnapshotQueuedMessage.$Properties) => void;
  /** Adds the next `count` ready messages, never taken, of the queue at `position`. */
  addColumns: (position: number, count: number, columns: ReadyColumns) => void;
  copy: (c: raftmq.v1.SnapshotQueuedMessage.$Properties | null | undefined) => QueuedMessage;
  message: (m: raftmq.v1.SnapshotMessage.$Properties) => RestoredHead;
  finish: () => BrokerState;
}

/**
 * The version and settings in force when the snapshot was taken. `limits` fill what it does not
 * hold: every setting in a snapshot from before settings were replicated, and a setting added since.
 */
function settingsOfSnapshot(snap: raftmq.v1.BrokerSnapshot, limits: BrokerLimits): { machineVersion: number; settings: BrokerLimits } {
  const machineVersion = snap.machineVersion === 0 ? INITIAL_MACHINE_VERSION : snap.machineVersion;
  requireMachineVersion(machineVersion, "snapshot");
  const settings = settingsFromProto(snap.settings, limits);
  for (const key of limitKeys) {
    const error = limitRangeError(key, settings[key]);
    invariant(error === null, `snapshot setting ${error}`);
  }
  return { machineVersion, settings };
}

/** Everything of the first piece; the queues' ready messages are added before finish(). */
function stateFromFirstPiece(snap: raftmq.v1.BrokerSnapshot, limits: BrokerLimits, messages: RestoredHead[], restoredBodies: NewBody[]): PartialState {
  const { machineVersion, settings } = settingsOfSnapshot(snap, limits);
  const s = emptyState(settings);
  s.machineVersion = machineVersion;
  // Vhosts come back empty, in their order; their predeclared exchanges are in `exchanges`.
  s.vhosts.clear();
  s.defaultVhost.exchanges.clear();
  const vhostNames = list(snap.vhosts).map((v) => str(v.name));
  for (const name of vhostNames.length === 0 ? [DEFAULT_VHOST] : vhostNames) {
    invariant(!s.vhosts.has(name), `snapshot lists vhost "${name}" once`);
    s.vhosts.set(name, name === DEFAULT_VHOST ? s.defaultVhost : new Vhost(name));
  }
  invariant(s.vhosts.has(DEFAULT_VHOST), `snapshot has the default vhost "${DEFAULT_VHOST}"`);
  const vhostOf = (field: string | null | undefined, what: string): Vhost => {
    const v = s.vhosts.get(vhostOfField(field));
    invariant(v !== undefined, `snapshot ${what} is in vhost "${vhostOfField(field)}", which it does not list`);
    return v;
  };
  const queueOf = (vhost: string | null | undefined, name: string | null | undefined, what: string): Queue => {
    const q = vhostOf(vhost, what).queues.get(str(name));
    invariant(q !== undefined, `snapshot ${what} has queue "${str(name)}" in vhost "${vhostOfField(vhost)}"`);
    return q;
  };
  s.accessVersion = num(snap.accessVersion);
  s.now = num(snap.nowMs);
  s.lastSweepAt = num(snap.lastSweepAtMs);
  s.nextMessageId = num(snap.nextMessageId);
  s.nextQueueSeq = num(snap.nextQueueSeq);
  s.nextGeneratedName = num(snap.nextGeneratedName);
  s.nextGetTag = num(snap.nextGetTag);
  s.nextBodyKey = Math.max(1, num(snap.nextBodyKey));
  const heads = new HeadRestorer(s, restoredBodies);
  const message = (m: raftmq.v1.SnapshotMessage.$Properties) => heads.restore(m);
  for (const m of list(snap.messages)) messages.push(message(m));
  /** A queued message's head and body. */
  const head = (c: raftmq.v1.SnapshotQueuedMessage.$Properties): RestoredHead => {
    const restored = messages[num(c.messageRef)];
    invariant(restored !== undefined, `snapshot message ref ${c.messageRef} is out of range`);
    const key = num(c.bodyKey);
    const bodyKey = key > 0 ? key : restored.bodyKey;
    invariant(bodyKey < s.nextBodyKey, `snapshot body key ${bodyKey} is not below its next body key ${s.nextBodyKey}`);
    return key > 0 ? { head: restored.head, bodyKey, bodySize: num(c.bodySize) } : restored;
  };
  const copy = (c: raftmq.v1.SnapshotQueuedMessage.$Properties | null | undefined): QueuedMessage => {
    invariant(c != null, "snapshot delivery has a message");
    const m = head(c);
    return new QueuedMessage(num(c.id), m.head, m.bodyKey, m.bodySize, num(c.expiresAtMs), num(c.deliveryCount), bool(c.redelivered));
  };
  const queues = list(snap.queues);
  const built: Queue[] = [];
  for (const q of queues) {
    const name = str(q.name);
    const vh = vhostOf(q.vhost, `queue "${name}"`);
    invariant(!vh.queues.has(name), `snapshot lists queue "${name}" of vhost "${vh.name}" once`);
    const queue = new Queue(vh, name, num(q.seq), bool(q.durable), bool(q.exclusive), str(q.ownerSessionId), bool(q.autoDelete), queueArgumentsFromProto(q.arguments), num(q.lastUsedAtMs));
    queue.hadConsumer = bool(q.hadConsumer);
    queue.nextConsumer = num(q.nextConsumer);
    if (bool(q.dispatchPending)) s.backlog.add(queue);
    vh.queues.set(name, queue);
    built.push(queue);
  }
  const exchanges = list(snap.exchanges);
  const restoredExchanges: [Vhost, Exchange][] = [];
  for (const e of exchanges) {
    const name = str(e.name);
    const vh = vhostOf(e.vhost, `exchange "${name}"`);
    const ex = new Exchange(name, typeFromProto(num(e.type)), bool(e.durable), bool(e.autoDelete), bool(e.internal), str(e.alternateExchange), bool(e.builtin));
    vh.exchanges.set(name, ex);
    restoredExchanges.push([vh, ex]);
  }
  // Bindings once every exchange is back: a destination exchange may be listed after its source.
  for (let i = 0; i < exchanges.length; i++) {
    const e = exchanges[i] as raftmq.v1.SnapshotExchange;
    const [vh, ex] = restoredExchanges[i] as [Vhost, Exchange];
    for (const b of list(e.bindings)) {
      const toExchange = str(b.destinationExchange);
      if (toExchange !== "") {
        const binding = ex.addBinding("exchange", toExchange, str(b.routingKey), list(b.arguments));
        const dest = vh.exchanges.get(toExchange);
        invariant(binding !== null && dest !== undefined && str(b.queue) === "", `snapshot binding of exchange "${ex.name}" to exchange "${toExchange}" is valid`);
        dest.boundFrom.add(binding);
      } else {
        const binding = ex.addBinding("queue", str(b.queue), str(b.routingKey), list(b.arguments));
        const q = vh.queues.get(str(b.queue));
        invariant(binding !== null && q !== undefined, `snapshot binding of exchange "${ex.name}" to queue "${str(b.queue)}" is valid`);
        q.bindings.add(binding);
      }
      s.bindingCount++;
    }
    ex.hadBinding = bool(e.hadBinding);
  }
  for (const c of list(snap.consumers)) {
    const q = queueOf(c.vhost, c.queue, `consumer "${str(c.id)}"`);
    const consumer = new Consumer(str(c.id), str(c.sessionId), q, num(c.prefetch), bool(c.noAck), bool(c.exclusive), str(c.tag));
    consumer.nextTag = num(c.nextTag);
    consumer.cancelled = bool(c.cancelled);
    for (const d of list(c.inflight)) {
      const m = copy(d.message);
      consumer.inflight.set(num(d.deliveryTag), m);
      q.unacked++;
      q.unackedBytes += m.size;
    }
    if (!consumer.cancelled) q.consumers.push(consumer);
    s.consumers.set(consumer.id, consumer);
  }
  for (const x of list(snap.sessions)) {
    const session: Session = {
      id: str(x.id),
      consumers: new Set(list(x.consumers)),
      gets: new Map(),
      exclusiveQueues: new Set(),
    };
    const exclusive = list(x.exclusiveQueues);
    const exclusiveVhosts = list(x.exclusiveQueueVhosts);
    invariant(exclusiveVhosts.length === 0 || exclusiveVhosts.length === exclusive.length, `snapshot session "${session.id}" has a vhost for each exclusive queue`);
    for (let i = 0; i < exclusive.length; i++) {
      session.exclusiveQueues.add(queueOf(exclusiveVhosts[i], exclusive[i], `exclusive queue of session "${session.id}"`));
    }
    for (const g of list(x.gets)) {
      const q = queueOf(g.vhost, g.queue, `get of session "${session.id}"`);
      const m = copy(g.message);
      session.gets.set(num(g.deliveryTag), { queue: q, message: m });
      q.unacked++;
      q.unackedBytes += m.size;
    }
    s.sessions.set(session.id, session);
  }
  for (const p of list(snap.producers)) {
    const results = new Map<number, PublishResult>();
    for (const e of list(p.entries)) {
      const r: PublishResult = { ok: true, kind: "publish", routedQueues: list(e.routedQueues), duplicate: false, returned: bool(e.returned) };
      if (str(e.rejectedBy) !== "") r.rejectedBy = str(e.rejectedBy);
      results.set(num(e.sequence), r);
    }
    const lowest = p.lowestSequence == null ? lowestKey(results) : num(p.lowestSequence);
    s.dedup.restore(str(p.id), { lastSeenAt: num(p.lastSeenAtMs), results, evictedUpTo: num(p.evictedUpTo), lowest });
  }
  for (const u of list(snap.users)) {
    const name = str(u.name);
    invariant(!s.users.has(name), `snapshot lists user "${name}" once`);
    s.users.set(name, frozenUser(name, str(u.passwordHash), list(u.tags)));
  }
  for (const p of list(snap.permissions)) {
    const user = str(p.user);
    const vhost = str(p.vhost);
    invariant(s.users.has(user) && s.vhosts.has(vhost), `snapshot permissions of user "${user}" on vhost "${vhost}" name both`);
    let ofUser = s.permissions.get(user);
    if (ofUser === undefined) {
      ofUser = new Map();
      s.permissions.set(user, ofUser);
    }
    ofUser.set(vhost, frozenPermissions(str(p.configure), str(p.write), str(p.read)));
  }
  // Per queue: its returned messages (the first returnedCount of its ready ones, as objects) and
  // how many ready ones came so far; those never taken go straight into its ring, no object made.
  const returned: QueuedMessage[][] = queues.map(() => []);
  const seen: number[] = queues.map(() => 0);
  const returnedCounts = queues.map((q) => num(q.returnedCount));
  const addReady = (position: number, c: raftmq.v1.SnapshotQueuedMessage.$Properties) => {
    const queue = built[position] as Queue;
    if ((seen[position] as number) < (returnedCounts[position] as number)) (returned[position] as QueuedMessage[]).push(copy(c));
    else {
      // The common case, millions of times: no object made, and the messages of errors built
      // only when one is thrown.
      if (num(c.deliveryCount) !== 0 || bool(c.redelivered)) throw new BrokerInvariantError(`snapshot queue "${queue.name}" has a message never taken with a delivery count`);
      const restoredHead = messages[num(c.messageRef)];
      if (restoredHead === undefined) throw new BrokerInvariantError(`snapshot message ref ${c.messageRef} is out of range`);
      const key = num(c.bodyKey);
      if (key > 0) {
        if (key >= s.nextBodyKey) throw new BrokerInvariantError(`snapshot body key ${key} is not below its next body key ${s.nextBodyKey}`);
        queue.pushTail(num(c.id), restoredHead.head, key, num(c.bodySize), num(c.expiresAtMs));
      } else queue.pushTail(num(c.id), restoredHead.head, restoredHead.bodyKey, restoredHead.bodySize, num(c.expiresAtMs));
    }
    seen[position] = (seen[position] as number) + 1;
  };
  const addColumns = (position: number, count: number, c: ReadyColumns) => {
    const queue = built[position] as Queue;
    invariant((seen[position] as number) >= (returnedCounts[position] as number), `snapshot queue "${queue.name}" has columns of messages never taken before its returned ones`);
    const { ids, messageRefs, expiresAtMs, bodyKeys, bodySizes } = c;
    // Millions of times: the messages of errors are built only when one is thrown.
    let restoredHead: RestoredHead | undefined;
    let lastRef = -1;
    for (let i = 0; i < count; i++) {
      const ref = messageRefs[i] as number;
      if (ref !== lastRef) {
        restoredHead = messages[ref];
        if (restoredHead === undefined) throw new BrokerInvariantError(`snapshot message ref ${ref} is out of range`);
        lastRef = ref;
      }
      const head = restoredHead as RestoredHead;
      const key = bodyKeys[i] as number;
      const size = bodySizes[i] as number;
      if (size > 0xffff_ffff) throw new BrokerInvariantError(`snapshot body size ${size} is out of range`);
      if (key >= s.nextBodyKey) throw new BrokerInvariantError(`snapshot body key ${key} is not below its next body key ${s.nextBodyKey}`);
      if (key > 0) queue.pushTail(ids[i] as number, head.head, key, size, expiresAtMs[i] as number);
      else queue.pushTail(ids[i] as number, head.head, head.bodyKey, head.bodySize, expiresAtMs[i] as number);
    }
    seen[position] = (seen[position] as number) + count;
  };
  const finish = (): BrokerState => {
    for (let i = 0; i < built.length; i++) {
      const queue = built[i] as Queue;
      const messagesOfQueue = returned[i] as QueuedMessage[];
      const returnedCount = num(queues[i]?.returnedCount);
      invariant(messagesOfQueue.length === returnedCount, `queue "${queue.name}" returned count exceeds its messages`);
      // Returned messages were written head first; the stack keeps its head at the end.
      for (let r = returnedCount - 1; r >= 0; r--) {
        const m = messagesOfQueue[r] as QueuedMessage;
        queue.returned.push(m);
        queue.readyBytes += m.size;
      }
    }
    return s;
  };
  return { queues, addReady, addColumns, copy, message, finish };
}
