// The Consume streams attached to this node (the leader): each is a session whose consumers are
// `${sessionId}/${consumerTag}`. Delivery effects are routed to the stream that owns the consumer.
import type { Effect } from "@raftmq/broker";
import type { raftmq } from "@raftmq/proto";
import type { GrpcFailure } from "./grpc-status.ts";

export interface SessionSink {
  write(response: raftmq.v1.ConsumeResponse.$Properties): void;
  /** Ends the stream: OK when `failure` is null. */
  end(failure: GrpcFailure | null): void;
}

export class ConsumerSessions {
  private readonly sessions = new Map<string, SessionSink>();
  private counter = 0;
  delivered = 0;

  constructor(
    /** Unique per node boot, so session ids never repeat across restarts. */
    private readonly prefix: string,
    private readonly maxSessions: number,
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

  /** Sends the effects meant for local consumers; the rest are dropped (their sessions went away). */
  route(effects: readonly Effect[]): void {
    for (const effect of effects) {
      switch (effect.kind) {
        case "deliver": {
          const slash = effect.consumerId.indexOf("/");
          const sink = slash < 0 ? undefined : this.sessions.get(effect.consumerId.slice(0, slash));
          if (sink === undefined) continue;
          const m = effect.message;
          sink.write({
            delivery: {
              consumerTag: effect.consumerId.slice(slash + 1),
              deliveryTag: effect.deliveryTag,
              queue: effect.queue,
              exchange: m.exchange,
              routingKey: m.routingKey,
              redelivered: effect.redelivered,
              deliveryCount: effect.deliveryCount,
              properties: m.properties,
              body: m.body,
            },
          });
          this.delivered++;
          continue;
        }
        case "consumerCancelled": {
          const slash = effect.consumerId.indexOf("/");
          const sink = slash < 0 ? undefined : this.sessions.get(effect.consumerId.slice(0, slash));
          sink?.write({ cancelled: { consumerTag: effect.consumerId.slice(slash + 1), reason: effect.reason } });
          continue;
        }
        case "return":
        case "queueDeleted":
          // A return is answered by the publish's NACK confirm; nothing streams for a deleted queue.
          continue;
        default: {
          const never: never = effect;
          throw new Error(`unknown effect ${JSON.stringify(never)}`);
        }
      }
    }
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
