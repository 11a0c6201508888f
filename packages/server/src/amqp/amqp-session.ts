// An AMQP connection's consumers, on one Consume stream of the node: the session that owns its
// exclusive queues and holds its unacknowledged deliveries. The stream outlives leader changes
// (the consume front resumes it on the new leader); when it ends, the connection closes, as a
// RabbitMQ connection closes with the node that held its queues.
import { randomBytes } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import type { raftmq } from "@raftmq/proto";
import { cancellation, responseKind, settlement, subscription } from "../consume-front.ts";
import type { CallStatus, LocalBrokerCalls, LocalStream } from "../local-calls.ts";
import type { AmqpChannel } from "./amqp-channel.ts";
import { type AmqpError, amqpErrorOfStatus } from "./amqp-errors.ts";

type ConsumeRequest = raftmq.v1.ConsumeRequest.$Properties;
type ConsumeResponse = raftmq.v1.ConsumeResponse;

export interface SessionConsumer {
  tag: string;
  channel: AmqpChannel;
  noAck: boolean;
  /** The broker took the subscription (consume-ok was due). */
  confirmed: boolean;
  /** Whether the client waits for basic.consume-ok. */
  replyOk: boolean;
  /** The consumer of amq.rabbitmq.reply-to. */
  directReply?: boolean;
  /** A basic.get's consumer: takes its one delivery, or hears the subscription was refused. */
  get?: { subscribed: () => void; take: (d: raftmq.v1.IDelivery) => void; refused: (error: AmqpError) => void };
}

/** What basic.get took: the delivery and its tag on the session. */
export interface Got {
  delivery: raftmq.v1.IDelivery;
  consumerTag: string;
  messageCount: number;
}

/** How long a basic.get waits for a message the queue reported ready before answering get-empty. */
const GET_WAIT_MS = 500;
/** How long it waits when nothing was ready, for a delivery already on its way. */
const GET_EMPTY_GRACE_MS = 20;

/** What the session needs of its connection. */
export interface SessionHost {
  /** Whether the socket takes more now; false pauses deliveries until `drained`. */
  writable(): boolean;
  /** Every open channel. */
  channels(): Iterable<AmqpChannel>;
  /** The stream ended while the connection was open. */
  lost(status: CallStatus | null): void;
}

/** Consumers cancelled by their client whose late deliveries are still handed back. */
const MAX_CANCELLED_REMEMBERED = 1024;

export class ConnectionSession {
  id = "";
  private readonly consumers = new Map<string, SessionConsumer>();
  private readonly cancelled = new Map<string, SessionConsumer>();
  private readonly stream: LocalStream<ConsumeRequest, ConsumeResponse>;
  private closing = false;
  /** Exclusive queues this connection declared and has not deleted. */
  readonly exclusiveQueues = new Set<string>();

  private constructor(
    calls: LocalBrokerCalls,
    private readonly host: SessionHost,
    opened: (session: ConnectionSession) => void,
    failed: (status: CallStatus | null) => void,
  ) {
    this.stream = calls.consume(
      0,
      (r) => {
        if (responseKind(r) === "session" && this.id === "") {
          this.id = r.session?.sessionId ?? "";
          opened(this);
          return true;
        }
        return this.response(r);
      },
      (status) => {
        if (this.id === "") failed(status);
        else if (!this.closing) host.lost(status);
      },
    );
  }

  static open(calls: LocalBrokerCalls, host: SessionHost): Promise<ConnectionSession> {
    return new Promise((resolve, reject) => {
      new ConnectionSession(calls, host, resolve, (status) =>
        reject(amqpErrorOfStatus(status ?? { code: grpc.status.UNAVAILABLE, details: "the consume session ended before it opened", metadata: new grpc.Metadata() })),
      );
    });
  }

  /** The reader has room again. */
  drained(): void {
    this.stream.drained();
  }

  generateTag(): string {
    let tag: string;
    do tag = `amq.ctag-${randomBytes(16).toString("base64url")}`;
    while (this.consumers.has(tag));
    return tag;
  }

  hasConsumer(tag: string): boolean {
    return this.consumers.has(tag);
  }

  subscribe(consumer: SessionConsumer, s: raftmq.v1.Subscription.$Properties): void {
    this.consumers.set(consumer.tag, consumer);
    this.cancelled.delete(consumer.tag);
    this.stream.send(subscription(s));
  }

  cancel(consumer: SessionConsumer): void {
    if (this.consumers.get(consumer.tag) !== consumer) return;
    this.consumers.delete(consumer.tag);
    if (this.cancelled.size >= MAX_CANCELLED_REMEMBERED) {
      const oldest = this.cancelled.keys().next().value;
      if (oldest !== undefined) this.cancelled.delete(oldest);
    }
    this.cancelled.set(consumer.tag, consumer);
    this.stream.send(cancellation(consumer.tag));
  }

  settle(kind: "ack" | "nack" | "reject", consumerTag: string, deliveryTag: number, multiple: boolean, requeue: boolean): void {
    this.stream.send(settlement(kind, { consumerTag, deliveryTag, multiple, requeue }));
  }

  /**
   * basic.get: one message of `queue`, held by this session until the caller settles it, or null
   * when the queue has none ready. A consumer with a credit of one takes it, so that the message
   * stays the client's until it acknowledges it, as RabbitMQ's basic.get does; it is cancelled as
   * soon as it has. Its subscription goes down the session's stream after the channel's earlier
   * settlements, so a message the channel requeued just before is there to get.
   */
  get(calls: LocalBrokerCalls, channel: AmqpChannel, queue: string): Promise<Got | null> {
    const tag = `amq.get-${randomBytes(12).toString("base64url")}`;
    return new Promise<Got | null>((resolve, reject) => {
      let settled = false;
      let taken: raftmq.v1.IDelivery | null = null;
      let ready: number | null = null;
      let timer: NodeJS.Timeout | undefined;
      const finish = (result: Got | null | Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (result instanceof Error) reject(result);
        else resolve(result);
      };
      const answer = () => {
        if (taken !== null && ready !== null) finish({ delivery: taken, consumerTag: tag, messageCount: ready });
      };
      const consumer: SessionConsumer = {
        tag,
        channel,
        noAck: false,
        confirmed: false,
        replyOk: false,
        get: {
          subscribed: () => {
            // Applied: what the queue holds now says whether a message is coming.
            calls.unary<raftmq.v1.QueueInfoResponse>("QueueInfo", { name: queue }).then(
              (info) => {
                ready = Number(info.queue?.messagesReady ?? 0);
                if (taken !== null) return answer();
                // Nothing was ready when the subscription applied (a delivery it made is on its
                // way, so allow it a moment); else another consumer may take it first.
                timer = setTimeout(
                  () => {
                    this.cancel(consumer);
                    finish(null);
                  },
                  ready === 0 ? GET_EMPTY_GRACE_MS : GET_WAIT_MS,
                );
              },
              (err: unknown) => {
                this.cancel(consumer);
                finish(err instanceof Error ? err : new Error(String(err)));
              },
            );
          },
          take: (d) => {
            this.cancel(consumer);
            if (settled) {
              // Too late for this get: back to the queue.
              this.settle("nack", tag, Number(d.deliveryTag ?? 0), false, true);
              return;
            }
            taken = d;
            answer();
          },
          refused: (error) => finish(error),
        },
      };
      this.subscribe(consumer, { queue, prefetch: 1, noAck: false, consumerTag: tag, batchDeliveries: false });
    });
  }

  /** Ends the session: the broker requeues what it held and deletes its exclusive queues. */
  close(): void {
    this.closing = true;
    this.stream.end();
  }

  private response(r: ConsumeResponse): boolean {
    switch (responseKind(r)) {
      case "session":
        if (r.session?.resumed === true) {
          // The old session went down with its leader, and with it the connection's exclusive
          // queues: a connection whose exclusive queues are gone is lost, as in RabbitMQ.
          if (this.exclusiveQueues.size > 0) {
            const names = [...this.exclusiveQueues].slice(0, 3).join(", ");
            this.host.lost({ code: grpc.status.UNAVAILABLE, details: `the leader changed and this connection's exclusive queues (${names}) went with its session`, metadata: new grpc.Metadata() });
            return true;
          }
          // Resumed on a new leader: what the old session held is requeued there.
          this.id = r.session.sessionId ?? this.id;
          for (const channel of this.host.channels()) channel.sessionResumed();
        }
        return true;
      case "subscribed": {
        const consumer = this.consumers.get(r.subscribed ?? "");
        if (consumer !== undefined && !consumer.confirmed) {
          consumer.confirmed = true;
          if (consumer.get !== undefined) consumer.get.subscribed();
          else consumer.channel.consumeOk(consumer);
        }
        return true;
      }
      case "delivery":
        if (r.delivery != null) this.deliver(r.delivery);
        return this.host.writable();
      case "deliveries":
        for (const d of r.deliveries?.deliveries ?? []) this.deliver(d);
        return this.host.writable();
      case "cancelled": {
        const consumer = this.consumers.get(r.cancelled?.consumerTag ?? "");
        if (consumer !== undefined) {
          this.consumers.delete(consumer.tag);
          consumer.channel.serverCancelled(consumer);
        }
        return true;
      }
      case "error": {
        const e = r.error ?? {};
        const consumer = this.consumers.get(e.consumerTag ?? "");
        // A subscription the broker refused closes its channel; a settlement that found nothing to
        // settle (a delivery requeued by a session that went away) changes nothing.
        if (consumer !== undefined && !consumer.confirmed && Number(e.deliveryTag ?? 0) === 0) {
          this.consumers.delete(consumer.tag);
          const error = amqpErrorOfStatus({ code: e.code ?? grpc.status.UNKNOWN, details: e.message ?? "", metadata: new grpc.Metadata() });
          if (consumer.get !== undefined) consumer.get.refused(error);
          else consumer.channel.consumerRefused(consumer, error);
        }
        return true;
      }
      default:
        return true;
    }
  }

  private deliver(d: raftmq.v1.IDelivery): void {
    const tag = d.consumerTag ?? "";
    const consumer = this.consumers.get(tag);
    if (consumer?.get !== undefined) {
      consumer.get.take(d);
      return;
    }
    if (consumer !== undefined) {
      consumer.channel.deliver(consumer, d, this);
      return;
    }
    // Sent before the broker applied the cancel (or the channel closed): back to the queue.
    const gone = this.cancelled.get(tag);
    if (gone !== undefined && !gone.noAck) this.stream.send(settlement("nack", { consumerTag: tag, deliveryTag: d.deliveryTag ?? 0, multiple: false, requeue: true }));
  }
}
