// A message as the broker holds it. One BrokerMessage is shared by every queue a publish reaches
// (its body is copied at most once, by keptBody); each queue keeps its own QueuedMessage with
// per-copy state.
import type { raftmq } from "@raftmq/proto";

export type MessageProperties = raftmq.v1.MessageProperties.$Properties;

export interface BrokerMessage {
  /** The exchange it was published to (or dead-lettered through). */
  readonly exchange: string;
  readonly routingKey: string;
  readonly properties: MessageProperties;
  readonly body: Uint8Array;
}

/**
 * A body as a queue keeps it. Bodies arrive as views into larger buffers: a log entry of up to
 * hundreds of messages, or a whole snapshot. A view keeps all of its buffer alive, so one message
 * left in a queue would keep its whole entry, or the whole snapshot. A body that is less than
 * half of its buffer is copied out; one that is most of it (an entry of one message) is not.
 */
export function keptBody(body: Uint8Array): Uint8Array {
  return body.byteLength * 2 < body.buffer.byteLength ? new Uint8Array(body) : body;
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
