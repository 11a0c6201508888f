// A message as the broker holds it. One BrokerMessage is shared by every queue a publish reaches;
// each queue keeps its own QueuedMessage with per-copy state. The body is not in the state: the
// state names it by key (BodyRef), every node keeps the bytes in its body store as it applies the
// publish, and the node reads them back when it delivers.
import type { raftmq } from "@raftmq/proto";

export type MessageProperties = raftmq.v1.MessageProperties.$Properties;

/** The properties of every message published without any: one object, never written to. */
export const EMPTY_PROPERTIES: MessageProperties = Object.freeze({});

/**
 * Strings many messages repeat (routing keys, exchange names), kept once: a queue of millions of
 * messages with one routing key holds one copy of it. Bounded: past its size it starts over.
 */
export class StringPool {
  private readonly pool = new Map<string, string>();
  constructor(private readonly max = 4096) {}

  intern(s: string): string {
    const held = this.pool.get(s);
    if (held !== undefined) return held;
    if (this.pool.size >= this.max) this.pool.clear();
    this.pool.set(s, s);
    return s;
  }
}

/** A body in the nodes' body stores: keys are handed out in log order, the same on every node. */
export interface BodyRef {
  readonly bodyKey: number;
  readonly bodySize: number;
}

/** A body the apply of one entry asks the node to store under its key. */
export interface NewBody {
  readonly key: number;
  readonly bytes: Uint8Array;
}

/**
 * What a message was published (or dead-lettered) with, apart from its body. Messages published
 * without properties to one exchange and routing key share one head: a queue of millions of them
 * holds one.
 */
export interface MessageHead {
  /** The exchange it was published to (or dead-lettered through). */
  readonly exchange: string;
  readonly routingKey: string;
  readonly properties: MessageProperties;
}

/** A message: its head and its body, which is the one under bodyKey (bytes never change). */
export interface BrokerMessage extends MessageHead, BodyRef {}

/**
 * One copy of a message in one queue, as an object: a message that was taken (delivered, got,
 * returned); one never taken is a row of its queue's ReadyRing instead. It is a BrokerMessage
 * itself; copies of one publish in several queues, and the copies a dead-lettering makes, name
 * the same body.
 */
export class QueuedMessage implements BrokerMessage {
  constructor(
    /** Broker-wide, increasing: a requeued message returns to its place by this. */
    readonly id: number,
    readonly head: MessageHead,
    readonly bodyKey: number,
    readonly bodySize: number,
    /** Log time after which it is expired (0: never). */
    readonly expiresAt: number,
    public deliveryCount: number,
    public redelivered: boolean,
  ) {}

  get exchange(): string {
    return this.head.exchange;
  }

  get routingKey(): string {
    return this.head.routingKey;
  }

  get properties(): MessageProperties {
    return this.head.properties;
  }

  /** The message this copy is of (the copy itself: it carries everything a delivery shows). */
  get message(): BrokerMessage {
    return this;
  }

  get size(): number {
    return this.bodySize;
  }
}

/**
 * Heads of messages published without properties, one per exchange and routing key (bounded:
 * past its size it starts over, which only costs memory).
 */
export class HeadPool {
  private readonly pool = new Map<string, MessageHead>();
  constructor(private readonly max = 4096) {}

  head(exchange: string, routingKey: string): MessageHead {
    const key = `${exchange}\u0000${routingKey}`;
    const held = this.pool.get(key);
    if (held !== undefined) return held;
    if (this.pool.size >= this.max) this.pool.clear();
    const head = Object.freeze({ exchange, routingKey, properties: EMPTY_PROPERTIES });
    this.pool.set(key, head);
    return head;
  }
}
