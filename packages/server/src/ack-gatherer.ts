// Single acks that a Consume stream receives within one event-loop turn, gathered per consumer:
// the leader proposes one AckTags command per consumer instead of one Ack per delivery, as
// RabbitMQ's quorum queues settle many message ids in one command. Anything else the stream asks
// for flushes them first, so the log keeps the order in which the client sent its requests.
import { MAX_ACK_TAGS } from "@raftmq/broker";

export class AckGatherer {
  private held = new Map<string, number[]>();
  private timer: NodeJS.Immediate | null = null;

  constructor(
    /** Proposes the acks of one consumer, in the order they arrived. */
    private readonly send: (consumerTag: string, deliveryTags: number[]) => void,
    private readonly maxTags = MAX_ACK_TAGS,
  ) {}

  /** Holds an ack until the end of this turn, or sends the consumer's acks now once it holds maxTags. */
  add(consumerTag: string, deliveryTag: number): void {
    let tags = this.held.get(consumerTag);
    if (tags === undefined) {
      tags = [];
      this.held.set(consumerTag, tags);
    }
    tags.push(deliveryTag);
    if (tags.length >= this.maxTags) {
      this.held.delete(consumerTag);
      this.send(consumerTag, tags);
      return;
    }
    this.timer ??= setImmediate(() => this.flush());
  }

  /** Sends everything held: one call per consumer. */
  flush(): void {
    if (this.timer !== null) {
      clearImmediate(this.timer);
      this.timer = null;
    }
    if (this.held.size === 0) return;
    const held = this.held;
    this.held = new Map();
    for (const [consumerTag, tags] of held) this.send(consumerTag, tags);
  }
}
