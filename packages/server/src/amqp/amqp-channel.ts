// One AMQP channel: its methods translated into broker calls, publishes assembled from content
// frames and sent with confirms, deliveries numbered per channel. Methods are handled in the order
// they arrive; a publish waits only for what came before it to be sent, never for a confirm.
import type { AmqpMethod, BasicProperties, MethodArgs } from "@raftmq/amqp";
import * as grpc from "@grpc/grpc-js";
import { raftmq } from "@raftmq/proto";
import type { CallStatus, LocalBrokerCalls, LocalStream } from "../local-calls.ts";
import { AmqpError, amqpErrorOfStatus, commandInvalid, notImplemented, preconditionFailed, REPLY, toAmqpError } from "./amqp-errors.ts";
import type { ConnectionSession, SessionConsumer } from "./amqp-session.ts";
import { consumeArguments, exchangeType, fromMessageProperties, queueArguments, stringArgument, tableToHeaders, toMessageProperties } from "./amqp-translate.ts";

type PublishRequest = raftmq.v1.PublishRequest.$Properties;
type PublishResponse = raftmq.v1.PublishResponse;
type OutboundMessage = raftmq.v1.OutboundMessage.$Properties;

/** What a channel needs of its connection. */
export interface ChannelHost {
  readonly calls: LocalBrokerCalls;
  session(): Promise<ConnectionSession>;
  /** The session's id when it is open (an exclusive queue of the connection names it), else "". */
  openSessionId(): string;
  /** A queue deleted: no longer one of the connection's exclusive queues. */
  forgetExclusive(queue: string): void;
  sendMethod(channel: number, method: AmqpMethod): void;
  sendContent(channel: number, method: AmqpMethod, properties: BasicProperties, body: Uint8Array): void;
  /** Largest body the cluster takes now. */
  maxBodyBytes(): number;
  /** A message could not be sent to the client (logged). */
  undeliverable(consumerTag: string, reason: string): void;
  /** Unconfirmed publishes changed by `delta` (the connection stops reading above its bound). */
  publishing(messages: number, bytes: number): void;
  /** Bytes of content received for publishes not complete yet changed by `delta`. */
  receiving(delta: number): void;
  /** A channel error or a connection error the channel ran into. */
  fail(channel: AmqpChannel, error: AmqpError, classId: number, methodId: number): void;
  readonly serverCancelNotify: boolean;
}

interface Content {
  publish: MethodArgs<"basic.publish">;
  bodySize: number;
  properties: BasicProperties | null;
  chunks: Buffer[];
  received: number;
}

interface InflightBatch {
  seqs: number[];
  /** The messages of mandatory publishes, by index in the batch, to return if unroutable. */
  mandatory: Map<number, OutboundMessage>;
  bytes: number;
}

interface Unacked {
  consumerTag: string;
  streamTag: number;
  /** Held by a session that went down with a leader: requeued there, settling it changes nothing. */
  stale: boolean;
}

/** Statuses ending a publish stream that refuse what was published rather than lose track of it. */
const REFUSED_PUBLISH_STATUSES: ReadonlySet<number> = new Set([grpc.status.INVALID_ARGUMENT, grpc.status.NOT_FOUND, grpc.status.PERMISSION_DENIED, grpc.status.FAILED_PRECONDITION, grpc.status.UNAUTHENTICATED]);

/** RabbitMQ's direct reply-to pseudo-queue. */
export const DIRECT_REPLY_TO = "amq.rabbitmq.reply-to";

/** How long closing a channel waits for the confirms of what was published on it. */
const CLOSE_DRAIN_MS = 5000;

/** Batches awaiting confirms on one channel above which the connection stops reading. */
export const MAX_INFLIGHT_BATCHES = 1024;

export class AmqpChannel {
  state: "open" | "closing" = "open";
  private queue: Promise<void> = Promise.resolve();
  private queued = 0;
  private content: Content | null = null;
  private lastQueue = "";
  private prefetch = 0;
  private confirmMode = false;
  private publishSeq = 0;
  private publisher: LocalStream<PublishRequest, PublishResponse> | null = null;
  private batch: { messages: OutboundMessage[]; seqs: number[]; mandatory: Map<number, OutboundMessage>; bytes: number } | null = null;
  private readonly inflight: InflightBatch[] = [];
  private batchNo = 0;
  private publisherDone: Promise<void> = Promise.resolve();
  private publisherEndedResolve: () => void = () => {};
  readonly consumers = new Map<string, SessionConsumer>();
  private deliveryTag = 0;
  private readonly unacked = new Map<number, Unacked>();
  /** The queue behind this channel's direct reply-to consumer, "" without one. */
  private replyQueue = "";

  constructor(
    readonly id: number,
    private readonly host: ChannelHost,
  ) {}

  get inflightBatches(): number {
    return this.inflight.length;
  }

  /** Runs `op` after every method before it; a failure closes the channel (or the connection). */
  private serial(classId: number, methodId: number, op: () => Promise<void> | undefined | void): void {
    const failed = (err: unknown) => this.host.fail(this, toAmqpError(err), classId, methodId);
    if (this.state !== "open") return;
    if (this.queued === 0) {
      // Nothing ahead: run now, so that a publish needs no turn of the event loop.
      let result: Promise<void> | undefined | void;
      try {
        result = op();
      } catch (err) {
        failed(err);
        return;
      }
      if (result === undefined) return;
      this.queued++;
      this.queue = result.catch(failed).finally(() => this.queued--);
      return;
    }
    this.queued++;
    this.queue = this.queue
      .then(async () => {
        if (this.state === "open") await op();
      })
      .catch(failed)
      .finally(() => this.queued--);
  }

  private reply(method: AmqpMethod): void {
    if (this.state === "open") this.host.sendMethod(this.id, method);
  }

  /** A method frame for this channel (not channel.open/close, which the connection handles). */
  method(m: AmqpMethod & { classId: number; methodId: number }): void {
    if (this.content !== null) throw new AmqpError(REPLY.UNEXPECTED_FRAME, `expected content for basic.publish, got ${m.name}`);
    const { classId, methodId } = m;
    switch (m.name) {
      case "channel.flow":
        if (!m.args.active) throw notImplemented("active=false: channel.flow is not supported; raftmq stops reading instead");
        this.reply({ name: "channel.flow-ok", args: { active: true } });
        return;
      case "exchange.declare": {
        const a = m.args;
        this.serial(classId, methodId, async () => {
          const alternate = stringArgument(a.arguments ?? {}, "alternate-exchange");
          await this.host.calls.unary("DeclareExchange", {
            name: a.exchange,
            type: exchangeType(a.type, a.passive),
            durable: a.durable,
            autoDelete: a.autoDelete,
            internal: a.internal,
            alternateExchange: alternate ?? "",
            passive: a.passive,
          });
          if (!a.noWait) this.reply({ name: "exchange.declare-ok", args: {} });
        });
        return;
      }
      case "exchange.delete": {
        const a = m.args;
        this.serial(classId, methodId, async () => {
          await this.host.calls.unary("DeleteExchange", { name: a.exchange, ifUnused: a.ifUnused });
          if (!a.noWait) this.reply({ name: "exchange.delete-ok", args: {} });
        });
        return;
      }
      case "exchange.bind":
      case "exchange.unbind": {
        const a = m.args;
        const bind = m.name === "exchange.bind";
        this.serial(classId, methodId, async () => {
          const request = { exchange: a.source, destinationExchange: a.destination, routingKey: a.routingKey, arguments: tableToHeaders(a.arguments ?? {}) };
          await this.host.calls.unary(bind ? "Bind" : "Unbind", request);
          if (!a.noWait) this.reply(bind ? { name: "exchange.bind-ok", args: {} } : { name: "exchange.unbind-ok", args: {} });
        });
        return;
      }
      case "queue.declare": {
        const a = m.args;
        this.serial(classId, methodId, async () => {
          const sessionId = a.exclusive ? (await this.host.session()).id : this.host.openSessionId();
          const res = await this.host.calls.unary<raftmq.v1.DeclareQueueResponse>("DeclareQueue", {
            name: a.queue,
            durable: a.durable,
            exclusive: a.exclusive,
            sessionId,
            autoDelete: a.autoDelete,
            arguments: queueArguments(a.arguments ?? {}),
            passive: a.passive,
          });
          this.lastQueue = res.name;
          if (a.exclusive && !a.passive) (await this.host.session()).exclusiveQueues.add(res.name);
          if (!a.noWait) this.reply({ name: "queue.declare-ok", args: { queue: res.name, messageCount: Number(res.messageCount ?? 0), consumerCount: res.consumerCount ?? 0 } });
        });
        return;
      }
      case "queue.bind":
      case "queue.unbind": {
        const a = m.args;
        const bind = m.name === "queue.bind";
        this.serial(classId, methodId, async () => {
          // The session id lets the connection bind its own exclusive queues.
          const request = { exchange: a.exchange, queue: this.queueName(a.queue), routingKey: a.routingKey, arguments: tableToHeaders(a.arguments ?? {}), sessionId: this.host.openSessionId() };
          await this.host.calls.unary(bind ? "Bind" : "Unbind", request);
          if (bind && !(a as MethodArgs<"queue.bind">).noWait) this.reply({ name: "queue.bind-ok", args: {} });
          if (!bind) this.reply({ name: "queue.unbind-ok", args: {} });
        });
        return;
      }
      case "queue.purge": {
        const a = m.args;
        this.serial(classId, methodId, async () => {
          const res = await this.host.calls.unary<raftmq.v1.PurgeQueueResponse>("PurgeQueue", { name: this.queueName(a.queue), sessionId: this.host.openSessionId() });
          if (!a.noWait) this.reply({ name: "queue.purge-ok", args: { messageCount: Number(res.messageCount ?? 0) } });
        });
        return;
      }
      case "queue.delete": {
        const a = m.args;
        this.serial(classId, methodId, async () => {
          const name = this.queueName(a.queue);
          const res = await this.host.calls.unary<raftmq.v1.DeleteQueueResponse>("DeleteQueue", {
            name,
            ifUnused: a.ifUnused,
            ifEmpty: a.ifEmpty,
            sessionId: this.host.openSessionId(),
          });
          this.host.forgetExclusive(name);
          if (!a.noWait) this.reply({ name: "queue.delete-ok", args: { messageCount: Number(res.messageCount ?? 0) } });
        });
        return;
      }
      case "basic.qos": {
        const a = m.args;
        if (a.prefetchSize !== 0) throw notImplemented(`prefetch_size=${a.prefetchSize}: only prefetch_count is supported`);
        // RabbitMQ's meaning: global=false limits each consumer the channel starts next; global=true
        // would share one limit across the channel's consumers, which raftmq approximates per consumer.
        this.serial(classId, methodId, () => {
          this.prefetch = a.prefetchCount;
          this.reply({ name: "basic.qos-ok", args: {} });
        });
        return;
      }
      case "basic.consume": {
        const a = m.args;
        this.serial(classId, methodId, async () => {
          const session = await this.host.session();
          const directReply = a.queue === DIRECT_REPLY_TO;
          if (directReply) {
            if (!a.noAck) throw preconditionFailed("reply consumer cannot acknowledge");
            if (this.replyQueue !== "") throw preconditionFailed("reply consumer already set");
            // The replies' queue: exclusive to this connection, gone with it, named by the broker.
            const res = await this.host.calls.unary<raftmq.v1.DeclareQueueResponse>("DeclareQueue", { name: "", exclusive: true, autoDelete: true, sessionId: session.id });
            this.replyQueue = res.name;
            session.exclusiveQueues.add(res.name);
          }
          const tag = a.consumerTag === "" ? session.generateTag() : a.consumerTag;
          if (this.consumers.has(tag) || session.hasConsumer(tag)) throw new AmqpError(REPLY.NOT_ALLOWED, `attempt to reuse consumer tag '${tag}'`);
          const consumer: SessionConsumer = { tag, channel: this, noAck: a.noAck, confirmed: false, replyOk: !a.noWait, directReply };
          this.consumers.set(tag, consumer);
          session.subscribe(consumer, {
            queue: directReply ? this.replyQueue : this.queueName(a.queue),
            prefetch: this.prefetch,
            noAck: a.noAck,
            exclusive: a.exclusive,
            consumerTag: tag,
            arguments: consumeArguments(a.arguments ?? {}),
            batchDeliveries: true,
          });
        });
        return;
      }
      case "basic.cancel": {
        const a = m.args;
        this.serial(classId, methodId, async () => {
          const consumer = this.consumers.get(a.consumerTag);
          if (consumer !== undefined) {
            this.consumers.delete(a.consumerTag);
            (await this.host.session()).cancel(consumer);
          }
          if (!a.noWait) this.reply({ name: "basic.cancel-ok", args: { consumerTag: a.consumerTag } });
        });
        return;
      }
      case "basic.publish": {
        if (m.args.immediate) throw notImplemented("immediate=true");
        this.content = { publish: m.args, bodySize: -1, properties: null, chunks: [], received: 0 };
        return;
      }
      case "basic.get": {
        const a = m.args;
        this.serial(classId, methodId, async () => {
          const session = await this.host.session();
          const got = await session.get(this.host.calls, this, this.queueName(a.queue));
          if (got === null) {
            this.reply({ name: "basic.get-empty", args: { clusterId: "" } });
            return;
          }
          const d = got.delivery;
          const streamTag = Number(d.deliveryTag ?? 0);
          if (this.state !== "open") {
            if (!a.noAck) session.settle("nack", got.consumerTag, streamTag, false, true);
            return;
          }
          const tag = this.deliveryTag + 1;
          try {
            this.host.sendContent(
              this.id,
              { name: "basic.get-ok", args: { deliveryTag: tag, redelivered: d.redelivered === true, exchange: d.exchange ?? "", routingKey: d.routingKey ?? "", messageCount: got.messageCount } },
              fromMessageProperties(d.properties),
              d.body ?? Buffer.alloc(0),
            );
          } catch (err) {
            session.settle("nack", got.consumerTag, streamTag, false, true);
            throw err;
          }
          this.deliveryTag = tag;
          // no-ack: acknowledged once sent, so a message that could not be sent stays queued.
          if (a.noAck) session.settle("ack", got.consumerTag, streamTag, false, false);
          else this.unacked.set(tag, { consumerTag: got.consumerTag, streamTag, stale: false });
        });
        return;
      }
      case "basic.ack":
        this.serial(classId, methodId, () => this.settle("ack", m.args.deliveryTag, m.args.multiple, true));
        return;
      case "basic.nack":
        this.serial(classId, methodId, () => this.settle(m.args.requeue ? "nack" : "reject", m.args.deliveryTag, m.args.multiple, m.args.requeue));
        return;
      case "basic.reject":
        this.serial(classId, methodId, () => this.settle(m.args.requeue ? "nack" : "reject", m.args.deliveryTag, false, m.args.requeue));
        return;
      case "basic.recover":
      case "basic.recover-async": {
        const ok = m.name === "basic.recover";
        this.serial(classId, methodId, () => {
          this.requeueAll();
          if (ok) this.reply({ name: "basic.recover-ok", args: {} });
        });
        return;
      }
      case "confirm.select": {
        const a = m.args;
        this.serial(classId, methodId, () => {
          this.confirmMode = true;
          if (!a.noWait) this.reply({ name: "confirm.select-ok", args: {} });
        });
        return;
      }
      case "tx.select":
      case "tx.commit":
      case "tx.rollback":
        throw notImplemented("transactions (tx.select) are not supported; use publisher confirms (confirm.select)");
      default:
        throw commandInvalid(`${m.name} is not a method a client sends on a channel`);
    }
  }

  private queueName(name: string): string {
    if (name !== "") return name;
    if (this.lastQueue === "") throw new AmqpError(REPLY.NOT_FOUND, "no previously declared queue");
    return this.lastQueue;
  }

  /** A content header frame. */
  header(bodySize: number, properties: BasicProperties): void {
    const c = this.content;
    if (c === null || c.properties !== null) throw new AmqpError(REPLY.UNEXPECTED_FRAME, "a content header frame with no basic.publish before it");
    const max = this.host.maxBodyBytes();
    if (bodySize > max) {
      this.content = null;
      throw preconditionFailed(`message size ${bodySize} is larger than configured max size ${max}`);
    }
    c.bodySize = bodySize;
    c.properties = properties;
    if (bodySize === 0) this.published(c, Buffer.alloc(0));
  }

  /** A content body frame. */
  body(payload: Buffer): void {
    const c = this.content;
    if (c === null || c.properties === null) throw new AmqpError(REPLY.UNEXPECTED_FRAME, "a content body frame with no content header before it");
    c.received += payload.length;
    if (c.received > c.bodySize) throw new AmqpError(REPLY.FRAME_ERROR, `content body of ${c.received} bytes is larger than the ${c.bodySize} its header announced`);
    // A view of the socket's chunk would keep all of it: the partial body is copied.
    c.chunks.push(c.bodySize === payload.length ? payload : Buffer.from(payload));
    this.host.receiving(payload.length);
    if (c.received === c.bodySize) {
      this.host.receiving(-c.received);
      this.published(c, c.chunks.length === 1 ? (c.chunks[0] as Buffer) : Buffer.concat(c.chunks, c.received));
    }
  }

  private published(c: Content, body: Buffer): void {
    this.content = null;
    const p = c.publish;
    const properties = toMessageProperties(c.properties ?? {});
    let routingKey = p.routingKey;
    // Direct reply-to: a request names this channel's replies queue; a reply goes to the queue named.
    if (properties.replyTo === DIRECT_REPLY_TO) {
      if (this.replyQueue === "") throw preconditionFailed("fast reply consumer does not exist");
      properties.replyTo = `${DIRECT_REPLY_TO}.${this.replyQueue}`;
    }
    if (p.exchange === "" && routingKey.startsWith(`${DIRECT_REPLY_TO}.`)) routingKey = routingKey.slice(DIRECT_REPLY_TO.length + 1);
    const message: OutboundMessage = { exchange: p.exchange, routingKey, mandatory: p.mandatory, properties, body };
    this.serial(60, 40, () => {
      const seq = this.confirmMode ? ++this.publishSeq : 0;
      if (this.batch === null) {
        this.batch = { messages: [], seqs: [], mandatory: new Map(), bytes: 0 };
        queueMicrotask(() => this.flush());
      }
      if (p.mandatory) this.batch.mandatory.set(this.batch.messages.length, message);
      this.batch.messages.push(message);
      this.batch.seqs.push(seq);
      this.batch.bytes += body.length;
      this.host.publishing(1, body.length);
    });
  }

  private flush(): void {
    const batch = this.batch;
    this.batch = null;
    if (batch === null || this.state !== "open") {
      if (batch !== null) this.host.publishing(-batch.messages.length, -batch.bytes);
      return;
    }
    if (this.publisher === null || this.publisher.isEnded) {
      this.publisherDone = new Promise((resolve) => {
        this.publisherEndedResolve = resolve;
      });
      const stream = this.host.calls.publishStream(
        (r) => this.confirmed(stream, r),
        (status) => this.publisherEnded(stream, status),
      );
      this.publisher = stream;
    }
    this.inflight.push({ seqs: batch.seqs, mandatory: batch.mandatory, bytes: batch.bytes });
    this.publisher.send({ messages: batch.messages, clientSequence: ++this.batchNo });
  }

  private confirmed(stream: LocalStream<PublishRequest, PublishResponse>, r: PublishResponse): boolean {
    if (stream !== this.publisher) return true;
    const batch = this.inflight.shift();
    if (batch === undefined) return true;
    this.host.publishing(-batch.seqs.length, -batch.bytes);
    const confirms = r.confirms ?? [];
    let runEnd = 0;
    let runLength = 0;
    const flushRun = () => {
      if (runLength > 0 && this.confirmMode) this.reply({ name: "basic.ack", args: { deliveryTag: runEnd, multiple: runLength > 1 } });
      runLength = 0;
    };
    for (let i = 0; i < batch.seqs.length; i++) {
      const seq = batch.seqs[i] ?? 0;
      const c = confirms[i];
      const status = c?.status ?? raftmq.v1.ConfirmStatus.CONFIRM_STATUS_NACK;
      const reason = c?.reason ?? "";
      if (status === raftmq.v1.ConfirmStatus.CONFIRM_STATUS_ACK) {
        runEnd = seq;
        runLength++;
        continue;
      }
      if (reason === "NO_ROUTE") {
        // Unroutable and mandatory: returned, then confirmed, as RabbitMQ does.
        const m = batch.mandatory.get(i);
        if (m !== undefined && this.state === "open") {
          flushRun();
          this.returnMessage(m);
        }
        runEnd = seq;
        runLength++;
        continue;
      }
      flushRun();
      const refusal = refusalOf(reason);
      if (refusal !== null) {
        // The publish itself was wrong (no such exchange, a bad property): the channel closes,
        // as RabbitMQ closes it, and what follows on it is not sent.
        this.host.fail(this, refusal, 60, 40);
        return true;
      }
      if (this.confirmMode) this.reply({ name: "basic.nack", args: { deliveryTag: seq, multiple: false, requeue: false } });
    }
    flushRun();
    return true;
  }

  /** basic.return of an unroutable mandatory message (built from what the client sent, so it has an AMQP form). */
  private returnMessage(m: OutboundMessage): void {
    try {
      this.host.sendContent(
        this.id,
        { name: "basic.return", args: { replyCode: REPLY.NO_ROUTE, replyText: "NO_ROUTE", exchange: m.exchange ?? "", routingKey: m.routingKey ?? "" } },
        fromMessageProperties(m.properties),
        m.body ?? Buffer.alloc(0),
      );
    } catch (err) {
      this.host.undeliverable("", toAmqpError(err).message);
    }
  }

  private publisherEnded(stream: LocalStream<PublishRequest, PublishResponse>, status: CallStatus | null): void {
    if (stream !== this.publisher) return;
    this.publisherEndedResolve();
    this.publisher = null;
    const lost = this.inflight.splice(0);
    for (const b of lost) this.host.publishing(-b.seqs.length, -b.bytes);
    // A publish the broker refused outright (access, a user_id naming another user, a bad
    // property) closes the channel, as in RabbitMQ.
    if (status !== null && REFUSED_PUBLISH_STATUSES.has(status.code)) {
      this.host.fail(this, amqpErrorOfStatus(status), 60, 40);
      return;
    }
    // The leader changed or the stream was refused: what was not confirmed may or may not have
    // been applied. It is nacked, never acked without a commit; the next publish opens a stream.
    if (this.confirmMode && this.state === "open") for (const b of lost) for (const seq of b.seqs) this.reply({ name: "basic.nack", args: { deliveryTag: seq, multiple: false, requeue: false } });
  }

  /** A delivery from the connection's session for one of this channel's consumers. */
  deliver(consumer: SessionConsumer, d: raftmq.v1.IDelivery, session: ConnectionSession): void {
    try {
      this.sendDelivery(consumer, d);
    } catch (err) {
      // A message with no AMQP form (a gRPC publisher's routing key beyond 255 bytes): it goes
      // back to its queue, where a gRPC consumer can take it, and the connection closes with
      // 541 naming why, rather than lose the message or hand it round for ever.
      const error = toAmqpError(err);
      this.host.undeliverable(consumer.tag, error.message);
      if (!consumer.noAck) session.settle("nack", consumer.tag, Number(d.deliveryTag ?? 0), false, true);
      this.host.fail(this, error, 60, 60);
    }
  }

  private sendDelivery(consumer: SessionConsumer, d: raftmq.v1.IDelivery): void {
    const tag = this.deliveryTag + 1;
    this.host.sendContent(
      this.id,
      {
        name: "basic.deliver",
        args: { consumerTag: consumer.tag, deliveryTag: tag, redelivered: d.redelivered === true, exchange: d.exchange ?? "", routingKey: consumer.directReply ? `${DIRECT_REPLY_TO}.${d.routingKey ?? ""}` : (d.routingKey ?? "") },
      },
      fromMessageProperties(d.properties),
      d.body ?? Buffer.alloc(0),
    );
    this.deliveryTag = tag;
    if (!consumer.noAck) this.unacked.set(tag, { consumerTag: consumer.tag, streamTag: Number(d.deliveryTag ?? 0), stale: false });
  }

  /** The session moved to a new leader, which requeued what the old one held. */
  sessionResumed(): void {
    for (const u of this.unacked.values()) u.stale = true;
  }

  /** The broker cancelled a consumer (its queue went away). */
  serverCancelled(consumer: SessionConsumer): void {
    this.consumers.delete(consumer.tag);
    if (this.host.serverCancelNotify) this.reply({ name: "basic.cancel", args: { consumerTag: consumer.tag, noWait: true } });
  }

  /** The broker refused a subscription: the channel closes, as RabbitMQ's basic.consume fails. */
  consumerRefused(consumer: SessionConsumer, error: AmqpError): void {
    this.consumers.delete(consumer.tag);
    this.host.fail(this, error, 60, 20);
  }

  consumeOk(consumer: SessionConsumer): void {
    if (consumer.replyOk) this.reply({ name: "basic.consume-ok", args: { consumerTag: consumer.tag } });
  }

  private settle(kind: "ack" | "nack" | "reject", deliveryTag: number, multiple: boolean, requeue: boolean): Promise<void> | undefined {
    const picked: [number, Unacked][] = [];
    if (multiple) {
      for (const entry of this.unacked) {
        if (deliveryTag !== 0 && entry[0] > deliveryTag) break;
        picked.push(entry);
      }
    } else {
      const u = this.unacked.get(deliveryTag);
      if (u === undefined) {
        if (deliveryTag > this.deliveryTag || deliveryTag === 0) throw preconditionFailed(`unknown delivery tag ${deliveryTag}`);
        // Settled already (RabbitMQ would close the channel; a repeated ack changes nothing here).
        return undefined;
      }
      picked.push([deliveryTag, u]);
    }
    for (const [tag] of picked) this.unacked.delete(tag);
    const live = picked.filter(([, u]) => !u.stale).map(([, u]) => u);
    if (live.length === 0) return undefined;
    return this.host.session().then((session) => {
      if (!multiple || live.length === 1) {
        for (const u of live) session.settle(kind, u.consumerTag, u.streamTag, false, requeue);
        return;
      }
      // Per consumer, the deliveries picked are a prefix of what it holds: one multiple settle each.
      const highest = new Map<string, number>();
      for (const u of live) highest.set(u.consumerTag, Math.max(highest.get(u.consumerTag) ?? 0, u.streamTag));
      for (const [consumerTag, streamTag] of highest) session.settle(kind, consumerTag, streamTag, true, requeue);
    });
  }

  private requeueAll(): Promise<void> | undefined {
    if (this.unacked.size === 0) return undefined;
    return this.settle("nack", 0, true, true);
  }

  /**
   * Closes the channel's business. What the client published before closing is still sent, and
   * the close waits for its confirms (up to CLOSE_DRAIN_MS), as RabbitMQ routes every publish it
   * read before a channel.close; then what the channel held goes back to its queues and its
   * consumers end. A channel closed by an error drops what was not sent yet.
   */
  async release(): Promise<void> {
    if (this.content !== null) this.host.receiving(-this.content.received);
    this.content = null;
    await this.queue;
    if (this.state === "open" && this.batch !== null) this.flush();
    this.state = "closing";
    const dropped = this.batch;
    this.batch = null;
    if (dropped !== null) this.host.publishing(-dropped.messages.length, -dropped.bytes);
    const publisher = this.publisher;
    if (publisher !== null && !publisher.isEnded) {
      const done = this.publisherDone;
      publisher.end();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([done, new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_DRAIN_MS)))]);
      clearTimeout(timer);
      if (!publisher.isEnded) publisher.cancel();
    }
    // The replies queue is auto-delete: it goes with its consumer.
    if (this.replyQueue !== "") this.host.forgetExclusive(this.replyQueue);
    if (this.unacked.size === 0 && this.consumers.size === 0) return;
    const session = await this.host.session();
    await this.requeueAll();
    for (const consumer of this.consumers.values()) session.cancel(consumer);
    this.consumers.clear();
  }
}

/** The AMQP error for a publish the broker refused outright, or null for a nack. */
function refusalOf(reason: string): AmqpError | null {
  const colon = reason.indexOf(": ");
  const code = colon > 0 ? reason.slice(0, colon) : reason;
  const text = colon > 0 ? reason.slice(colon + 2) : reason;
  switch (code) {
    case "NOT_FOUND":
      return new AmqpError(REPLY.NOT_FOUND, text);
    case "INVALID_ARGUMENT":
    case "FAILED_PRECONDITION":
    case "PRECONDITION_FAILED":
      return new AmqpError(REPLY.PRECONDITION_FAILED, text);
    case "PERMISSION_DENIED":
      return new AmqpError(REPLY.ACCESS_REFUSED, text);
    default:
      return null;
  }
}
