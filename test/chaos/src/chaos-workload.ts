// What a chaos run asks of its workload, whichever protocol the clients speak: the SDK over gRPC
// (workload.ts) or AMQP 0-9-1 through amqplib (amqp-workload.ts). Both write the same history.

import type { DuplicatePolicy } from "./checker.ts";

export const WORKLOAD_KINDS = ["grpc", "amqp"] as const;
export type WorkloadKind = (typeof WORKLOAD_KINDS)[number];

export interface ChaosWorkload {
  /** The durable queues it publishes to and consumes from. */
  readonly queues: readonly string[];
  readonly stats: { readonly publishes: number; readonly deliveries: number };
  /** Declares the queues. */
  setup(): Promise<void>;
  /** Starts the producers and consumers; they run until stop(). */
  start(): void;
  /** Stops publishing, waits a bounded time for outstanding confirms, and closes the consumers but the kept ones. */
  stop(): Promise<void>;
  /** Reads every queue until it stays empty, recording each delivery with phase "drain". */
  drain(): Promise<void>;
  /** Subscribed consumers per queue: what the cluster should list right now. */
  openConsumers(): Map<string, number>;
  /** Closes the consumers stop() left attached. */
  closeKept(): Promise<void>;
}

export function parseWorkloadKind(text: string): WorkloadKind {
  const kind = WORKLOAD_KINDS.find((k) => k === text);
  if (kind === undefined) throw new RangeError(`--workload must be ${WORKLOAD_KINDS.join(" or ")}, got "${text}"`);
  return kind;
}

/**
 * The checker's rule for repeated deliveries. SDK producers carry an idempotent producer id, so
 * only a redelivery may repeat a value; an AMQP publisher has none, and at-least-once allows any
 * duplicate (confirmed messages must still all be consumed).
 */
export function duplicatePolicyOf(kind: WorkloadKind): DuplicatePolicy {
  switch (kind) {
    case "grpc":
      return "redelivered";
    case "amqp":
      return "any";
    default: {
      const never: never = kind;
      throw new Error(`unknown workload ${String(never)}`);
    }
  }
}
