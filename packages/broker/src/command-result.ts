// What a command answers: one variant per command kind, or an error.
import type { BrokerError } from "./broker-error.ts";
import type { BrokerMessage } from "./broker-message.ts";
import type { BrokerLimits } from "./limits.ts";

export type CommandResult = CommandOk | { ok: false; error: BrokerError };

export type CommandOk =
  | { ok: true; kind: "declareExchange" }
  | { ok: true; kind: "deleteExchange" }
  | { ok: true; kind: "declareQueue"; queue: string; messageCount: number; consumerCount: number }
  | { ok: true; kind: "deleteQueue"; messageCount: number }
  | { ok: true; kind: "purgeQueue"; messageCount: number }
  | { ok: true; kind: "bind" }
  | { ok: true; kind: "unbind" }
  | PublishResult
  | { ok: true; kind: "subscribe"; consumerId: string }
  | { ok: true; kind: "cancel" }
  | { ok: true; kind: "setPrefetch" }
  | { ok: true; kind: "ack"; settled: number }
  /** unknown: the tags the consumer did not hold, in the command's order; each of them settled nothing. */
  | { ok: true; kind: "ackTags"; settled: number; unknown: number[] }
  | { ok: true; kind: "nack"; settled: number }
  | { ok: true; kind: "reject"; settled: number }
  | GetResult
  | { ok: true; kind: "consumerDown"; requeued: number }
  | { ok: true; kind: "sessionDown"; consumers: string[]; deletedQueues: string[] }
  | { ok: true; kind: "tick" }
  | { ok: true; kind: "leaderTookOffice"; sessionsDown: number }
  /** The version and every setting in force from this entry on. */
  | { ok: true; kind: "setClusterSettings"; machineVersion: number; settings: Readonly<BrokerLimits> }
  /** created is false when only_if_no_users found users and nothing was added. */
  | { ok: true; kind: "addUser"; created: boolean }
  | { ok: true; kind: "deleteUser" }
  | { ok: true; kind: "setPasswordHash" }
  | { ok: true; kind: "setUserTags" }
  | { ok: true; kind: "addVhost" }
  /** The queues deleted with the vhost, in its order; their consumers got consumerCancelled effects. */
  | { ok: true; kind: "deleteVhost"; deletedQueues: string[] }
  | { ok: true; kind: "setPermissions" }
  | { ok: true; kind: "clearPermissions" };

export interface PublishResult {
  ok: true;
  kind: "publish";
  /** Queues the message was enqueued in, in queue declaration order. */
  routedQueues: string[];
  /** A retry of an already applied (producer id, sequence): routedQueues are the original's. */
  duplicate: boolean;
  /** Set when a reject-publish queue at its limit refused the message: the publish is nacked. */
  rejectedBy?: string;
  /** Mandatory and unroutable: the publish is nacked (NO_ROUTE); nothing else carries it back. */
  returned: boolean;
}

export type GetResult =
  | { ok: true; kind: "get"; empty: true }
  | {
      ok: true;
      kind: "get";
      empty: false;
      message: BrokerMessage;
      /** 0 for no_ack gets; otherwise settle with the session id and this tag. */
      deliveryTag: number;
      redelivered: boolean;
      deliveryCount: number;
      /** Ready messages left in the queue. */
      messageCount: number;
    };
