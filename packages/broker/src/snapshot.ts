// Encodes the broker state as a BrokerSnapshot and back. Lists follow the state's insertion order
// and messages shared by several queues are stored once, so equal states give equal bytes.
import { int64 } from "./proto-int.ts";
import { raftmq } from "@raftmq/proto";
import { BrokerInvariantError, invariant } from "./broker-error.ts";
import { type BrokerMessage, QueuedMessage } from "./broker-message.ts";
import { type BrokerState, emptyState, type Session } from "./broker-state.ts";
import type { PublishResult } from "./command-result.ts";
import { Exchange, type ExchangeType } from "./exchange.ts";
import type { BrokerLimits } from "./limits.ts";
import { queueArgumentsFromProto, queueArgumentsToProto } from "./queue-arguments.ts";
import { Consumer, Queue } from "./queue.ts";

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


export function encodeState(s: BrokerState): Uint8Array {
  const messages: raftmq.v1.SnapshotMessage.$Properties[] = [];
  const refs = new Map<BrokerMessage, number>();
  const copy = (m: QueuedMessage): raftmq.v1.SnapshotQueuedMessage.$Properties => {
    let ref = refs.get(m.message);
    if (ref === undefined) {
      ref = messages.length;
      refs.set(m.message, ref);
      const msg = m.message;
      messages.push({ exchange: msg.exchange, routingKey: msg.routingKey, properties: msg.properties, body: msg.body });
    }
    return { id: m.id, messageRef: ref, expiresAtMs: m.expiresAt, deliveryCount: m.deliveryCount, redelivered: m.redelivered };
  };
  const exchanges = [...s.exchanges.values()].map((e) => ({
    name: e.name,
    type: typeToProto[e.type],
    durable: e.durable,
    autoDelete: e.autoDelete,
    internal: e.internal,
    alternateExchange: e.alternateExchange,
    builtin: e.builtin,
    hadBinding: e.hadBinding,
    bindings: [...e.bindings.values()].map((b) => ({ queue: b.queue, routingKey: b.routingKey, arguments: [...b.arguments] })),
  }));
  const queues = [...s.queues.values()].map((q) => ({
    name: q.name,
    seq: q.seq,
    durable: q.durable,
    exclusive: q.exclusive,
    ownerSessionId: q.ownerSessionId,
    autoDelete: q.autoDelete,
    arguments: queueArgumentsToProto(q.args),
    ready: [...q.readyInOrder()].map(copy),
    returnedCount: q.returned.length,
    nextConsumer: q.nextConsumer,
    hadConsumer: q.hadConsumer,
    lastUsedAtMs: q.lastUsedAt,
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
    inflight: [...c.inflight].map(([tag, m]) => ({ deliveryTag: tag, message: copy(m) })),
  }));
  const sessions = [...s.sessions.values()].map((x) => ({
    id: x.id,
    consumers: [...x.consumers],
    gets: [...x.gets].map(([tag, d]) => ({ deliveryTag: tag, message: copy(d.message), queue: d.queue.name })),
    exclusiveQueues: [...x.exclusiveQueues],
  }));
  const producers = [...s.dedup.producers].map(([id, p]) => ({
    id,
    lastSeenAtMs: p.lastSeenAt,
    evictedUpTo: p.evictedUpTo,
    entries: [...p.results].map(([sequence, r]) => ({
      sequence,
      routedQueues: r.routedQueues,
      returned: r.returned,
      rejectedBy: r.rejectedBy ?? "",
    })),
  }));
  return pb.BrokerSnapshot.encode({
    nowMs: s.now,
    lastSweepAtMs: s.lastSweepAt,
    nextMessageId: s.nextMessageId,
    nextQueueSeq: s.nextQueueSeq,
    nextGeneratedName: s.nextGeneratedName,
    nextGetTag: s.nextGetTag,
    messages,
    exchanges,
    queues,
    consumers,
    sessions,
    producers,
  }).finish();
}

// Decoded nested messages are typed as all-optional; these read them with proto3 defaults.
const str = (v: string | null | undefined): string => v ?? "";
const num = int64;
const bool = (v: boolean | null | undefined): boolean => v ?? false;
const list = <T>(v: T[] | null | undefined): T[] => v ?? [];

export function decodeState(bytes: Uint8Array, limits: BrokerLimits): BrokerState {
  const snap = pb.BrokerSnapshot.decode(bytes);
  const s = emptyState(limits);
  s.exchanges.clear();
  s.now = num(snap.nowMs);
  s.lastSweepAt = num(snap.lastSweepAtMs);
  s.nextMessageId = num(snap.nextMessageId);
  s.nextQueueSeq = num(snap.nextQueueSeq);
  s.nextGeneratedName = num(snap.nextGeneratedName);
  s.nextGetTag = num(snap.nextGetTag);
  const messages: BrokerMessage[] = list(snap.messages).map((m) => ({
    exchange: str(m.exchange),
    routingKey: str(m.routingKey),
    properties: m.properties ?? {},
    body: m.body ?? new Uint8Array(0),
  }));
  const copy = (c: raftmq.v1.SnapshotQueuedMessage.$Properties | null | undefined): QueuedMessage => {
    invariant(c != null, "snapshot delivery has a message");
    const message = messages[num(c.messageRef)];
    invariant(message !== undefined, `snapshot message ref ${c.messageRef} is out of range`);
    return new QueuedMessage(num(c.id), message, num(c.expiresAtMs), num(c.deliveryCount), bool(c.redelivered));
  };
  for (const q of list(snap.queues)) {
    const name = str(q.name);
    const queue = new Queue(name, num(q.seq), bool(q.durable), bool(q.exclusive), str(q.ownerSessionId), bool(q.autoDelete), queueArgumentsFromProto(q.arguments), num(q.lastUsedAtMs));
    queue.hadConsumer = bool(q.hadConsumer);
    const ready = list(q.ready).map(copy);
    const returnedCount = num(q.returnedCount);
    // Returned messages were written head first; the stack keeps its head at the end.
    for (let i = returnedCount - 1; i >= 0; i--) {
      const m = ready[i];
      invariant(m !== undefined, `queue "${name}" returned count exceeds its messages`);
      queue.returned.push(m);
      queue.readyBytes += m.size;
    }
    for (let i = returnedCount; i < ready.length; i++) queue.pushTail(ready[i] as QueuedMessage);
    queue.nextConsumer = num(q.nextConsumer);
    s.queues.set(name, queue);
  }
  for (const e of list(snap.exchanges)) {
    const name = str(e.name);
    const ex = new Exchange(name, typeFromProto(num(e.type)), bool(e.durable), bool(e.autoDelete), bool(e.internal), str(e.alternateExchange), bool(e.builtin));
    for (const b of list(e.bindings)) {
      const binding = ex.addBinding(str(b.queue), str(b.routingKey), list(b.arguments));
      const q = s.queues.get(str(b.queue));
      invariant(binding !== null && q !== undefined, `snapshot binding of exchange "${name}" to queue "${str(b.queue)}" is valid`);
      q.bindings.add(binding);
      s.bindingCount++;
    }
    ex.hadBinding = bool(e.hadBinding);
    s.exchanges.set(name, ex);
  }
  for (const c of list(snap.consumers)) {
    const q = s.queues.get(str(c.queue));
    invariant(q !== undefined, `snapshot consumer "${str(c.id)}" has queue "${str(c.queue)}"`);
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
      exclusiveQueues: new Set(list(x.exclusiveQueues)),
    };
    for (const g of list(x.gets)) {
      const q = s.queues.get(str(g.queue));
      invariant(q !== undefined, `snapshot get of session "${session.id}" has queue "${str(g.queue)}"`);
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
    s.dedup.producers.set(str(p.id), { lastSeenAt: num(p.lastSeenAtMs), results, evictedUpTo: num(p.evictedUpTo) });
  }
  return s;
}
