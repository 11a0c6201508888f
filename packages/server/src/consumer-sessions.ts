// The Consume streams attached to this node (the leader), one session each. Effects name the
// session and consumer tag of their consumer and are routed to the stream of that session.
import type { BodyRef, ConsumerCancelledEffect, Effect } from "@raftmq/broker";
import type { raftmq } from "@raftmq/proto";
import { DEFAULT_CONSUME_MAX_PENDING_BYTES } from "./bounded-stream-writer.ts";
import type { GrpcFailure } from "./grpc-status.ts";

type Delivery = raftmq.v1.Delivery.$Properties;

/** Deliveries per `deliveries` message at most; a longer run goes out in several. */
export const MAX_BATCH_DELIVERIES = 256;
/** Body bytes per `deliveries` message at most (a larger single message still goes alone). */
export const MAX_BATCH_BODY_BYTES = 1024 * 1024;

export interface SessionSink {
  write(response: raftmq.v1.ConsumeResponse.$Properties): void;
  /** Whether the session's consumer `consumerTag` takes its deliveries in batches. */
  batched(consumerTag: string): boolean;
  /**
   * A no_ack consumer of the session had its share of one apply and its queue holds more: the
   * next applied command delivers more, so the sink asks for one when its stream has room.
   */
  deliveryPaused(): void;
  /** Ends the stream: OK when `failure` is null. */
  end(failure: GrpcFailure | null): void;
}

/** Deliveries to one consumer waiting to go out together. */
interface Run {
  consumerTag: string;
  deliveries: Delivery[];
  bodyBytes: number;
}

export class ConsumerSessions {
  private readonly sessions = new Map<string, SessionSink>();
  private counter = 0;
  delivered = 0;

  constructor(
    /** Unique per node boot, so session ids never repeat across restarts. */
    private readonly prefix: string,
    private readonly maxSessions: number,
    /** A delivered message's body, read from where the node keeps bodies. */
    private readonly readBody: (ref: BodyRef) => Uint8Array,
    /** Bytes of deliveries one stream may have waiting to be sent before it is cut off. */
    readonly maxPendingBytes = DEFAULT_CONSUME_MAX_PENDING_BYTES,
    /** Called after the deliveries of a route to each consumer they went to: the node reads the next bodies ahead. */
    private readonly readAhead: (consumerId: string) => void = () => {},
  ) {
    if (prefix.includes("/")) throw new RangeError(`session prefix ${prefix} must not contain "/"`);
  }

  get size(): number {
    return this.sessions.size;
  }

  /** Returns the new session's id, or null when the node has its limit of sessions. */
  open(sink: SessionSink): string | null {
    if (this.sessions.size >= this.maxSessions) return null;
    const id = `${this.prefix}-${++this.counter}`;
    this.sessions.set(id, sink);
    return id;
  }

  /** Forgets the session; true when it was open. */
  close(sessionId: string): boolean {
    return this.sessions.delete(sessionId);
  }

  has(sessionId: string): boolean {
    return this.sessions.has(sessionId);
  }

  /**
   * Sends the effects meant for local consumers; the rest are dropped (their sessions went away).
   * A run of deliveries to one consumer that takes batches goes out as one `deliveries` message
   * (bounded by MAX_BATCH_DELIVERIES and MAX_BATCH_BODY_BYTES); each stream still sees its
   * effects in the order the state machine produced them.
   */
  route(effects: readonly Effect[]): void {
    const runs = new Map<SessionSink, Run>();
    const deliveredTo = new Set<string>();
    const flush = (sink: SessionSink) => {
      const run = runs.get(sink);
      if (run === undefined) return;
      runs.delete(sink);
      sink.write(run.deliveries.length === 1 ? { delivery: run.deliveries[0] } : { deliveries: { deliveries: run.deliveries } });
    };
    for (const effect of effects) {
      switch (effect.kind) {
        case "deliver": {
          const sink = this.sessions.get(effect.consumer.sessionId);
          if (sink === undefined) continue;
          const m = effect.message;
          const body = this.readBody(m);
          const tag = effect.consumer.consumerTag;
          const delivery: Delivery = {
            consumerTag: tag,
            deliveryTag: effect.deliveryTag,
            queue: effect.queue,
            exchange: m.exchange,
            routingKey: m.routingKey,
            redelivered: effect.redelivered,
            deliveryCount: effect.deliveryCount,
            properties: m.properties,
            body,
          };
          this.delivered++;
          deliveredTo.add(effect.consumer.id);
          const bodyBytes = body.byteLength;
          const run = runs.get(sink);
          if (run !== undefined && run.consumerTag === tag && run.deliveries.length < MAX_BATCH_DELIVERIES && run.bodyBytes + bodyBytes <= MAX_BATCH_BODY_BYTES) {
            run.deliveries.push(delivery);
            run.bodyBytes += bodyBytes;
            continue;
          }
          flush(sink);
          if (sink.batched(tag)) runs.set(sink, { consumerTag: tag, deliveries: [delivery], bodyBytes });
          else sink.write({ delivery });
          continue;
        }
        case "consumerCancelled": {
          const sink = this.sessions.get(effect.consumer.sessionId);
          if (sink === undefined) continue;
          flush(sink);
          sink.write({ cancelled: { consumerTag: effect.consumer.consumerTag, reason: cancelReason(effect) } });
          continue;
        }
        case "deliveryPaused": {
          const sink = this.sessions.get(effect.consumer.sessionId);
          if (sink === undefined) continue;
          flush(sink);
          sink.deliveryPaused();
          continue;
        }
        default: {
          const never: never = effect;
          throw new Error(`unknown effect ${JSON.stringify(never)}`);
        }
      }
    }
    for (const sink of runs.keys()) flush(sink);
    for (const id of deliveredTo) this.readAhead(id);
  }

  /** Ends every stream with `failure` (leadership lost, node stopping). */
  endAll(failure: GrpcFailure): string[] {
    const ids = [...this.sessions.keys()];
    const sinks = [...this.sessions.values()];
    this.sessions.clear();
    for (const sink of sinks) sink.end(failure);
    return ids;
  }
}

/** Why the broker ended a subscription, in words for the person reading the client's error. */
export function cancelReason(effect: ConsumerCancelledEffect): string {
  switch (effect.reason) {
    case "queueDeleted":
      return `queue "${effect.queue}" was deleted`;
    default: {
      const never: never = effect.reason;
      return String(never);
    }
  }
}
