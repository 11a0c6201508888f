// A message as the broker holds it. One BrokerMessage is shared by every queue a publish reaches
// (the body bytes are never copied); each queue keeps its own QueuedMessage with per-copy state.
import type { raftmq } from "@raftmq/proto";

export type MessageProperties = raftmq.v1.MessageProperties.$Properties;

export interface BrokerMessage {
  /** The exchange it was published to (or dead-lettered through). */
  readonly exchange: string;
  readonly routingKey: string;
  readonly properties: MessageProperties;
  readonly body: Uint8Array;
}

/** One copy of a message in one queue. */
export class QueuedMessage {
  constructor(
    /** Broker-wide, increasing: a requeued message returns to its place by this. */
    readonly id: number,
    readonly message: BrokerMessage,
    /** Log time after which it is expired (0: never). */
    readonly expiresAt: number,
    public deliveryCount: number,
    public redelivered: boolean,
  ) {}

  get size(): number {
    return this.message.body.byteLength;
  }
}
