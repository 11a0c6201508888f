// Effects are data returned by apply; only the leader acts on them.
import type { BrokerMessage } from "./broker-message.ts";

export type Effect = DeliverEffect | ReturnEffect | ConsumerCancelledEffect | QueueDeletedEffect;

export interface DeliverEffect {
  kind: "deliver";
  consumerId: string;
  deliveryTag: number;
  queue: string;
  message: BrokerMessage;
  redelivered: boolean;
  /** Deliveries of this message so far, this one included. */
  deliveryCount: number;
}

/** A mandatory publish that reached no queue. */
export interface ReturnEffect {
  kind: "return";
  /** The publish: its log index and its position in the entry's batch. */
  ref: { index: number; position: number; producerId: string; sequence: number };
  reason: "NO_ROUTE";
  message: BrokerMessage;
}

export interface ConsumerCancelledEffect {
  kind: "consumerCancelled";
  consumerId: string;
  reason: "queue deleted";
}

export interface QueueDeletedEffect {
  kind: "queueDeleted";
  queue: string;
}
