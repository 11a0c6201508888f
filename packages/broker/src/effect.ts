// Effects are data returned by apply; only the leader acts on them.
import type { BrokerMessage } from "./broker-message.ts";

export type Effect = DeliverEffect | ConsumerCancelledEffect | DeliveryPausedEffect;

/**
 * A consumer as its client knows it: the session whose stream carries its deliveries and the tag
 * the client gave it. `id` is how commands (ack, cancel, consumer down) name it, which is a
 * convention of whoever proposes the Subscribe, not something to take apart.
 */
export interface ConsumerRef {
  readonly id: string;
  readonly sessionId: string;
  readonly consumerTag: string;
}

export interface DeliverEffect {
  kind: "deliver";
  consumer: ConsumerRef;
  deliveryTag: number;
  queue: string;
  message: BrokerMessage;
  redelivered: boolean;
  /** Deliveries of this message so far, this one included. */
  deliveryCount: number;
}

/** The broker ended a subscription the client did not cancel. */
export interface ConsumerCancelledEffect {
  kind: "consumerCancelled";
  consumer: ConsumerRef;
  reason: "queueDeleted";
  queue: string;
}

/**
 * A no_ack consumer got its share of one apply (BrokerLimits.maxNoAckDeliveriesPerApply) while its
 * queue still holds ready messages. The next applied command, whatever it is (a Tick will do),
 * delivers more; a leader paces a fast consumer by proposing one once the stream took the last.
 */
export interface DeliveryPausedEffect {
  kind: "deliveryPaused";
  consumer: ConsumerRef;
  queue: string;
}
