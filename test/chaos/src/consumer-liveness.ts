// The consumer-liveness check at the end of a run: once every fault is healed, every queue must
// list exactly the consumers whose streams the harness still holds open, and no unacked message
// may be held by a consumer that is gone. A consumer whose client vanished, or whose stream
// died on a node that was cut off or lost leadership, must be downed by then: the check waits a
// bounded settle time, derived from the nodes' client keepalive, and not a moment longer.

import { setTimeout as sleep } from "node:timers/promises";
import type { QueueInfo } from "@raftmq/client";

/** Time beyond keepalive + timeout for a downed session to go through the log and reach the answer. */
export const LIVENESS_MARGIN_MS = 10_000;
const POLL_MS = 250;

/** The derived settle time never exceeds this: a run with keepalive in effect off must still end. */
export const MAX_DERIVED_SETTLE_MS = 60_000;

/** The settle time a node's client keepalive promises: it pings, waits for the answer, then downs. */
export function livenessSettleMs(clientKeepaliveMs: number, clientKeepaliveTimeoutMs: number): number {
  return Math.min(clientKeepaliveMs + clientKeepaliveTimeoutMs + LIVENESS_MARGIN_MS, MAX_DERIVED_SETTLE_MS);
}

/** One queue as the cluster lists it, next to what the harness holds open on it. */
export interface QueueConsumers {
  readonly queue: string;
  readonly listed: number;
  readonly expected: number;
  readonly unacked: number;
}

export interface LivenessCheck {
  /** Which moment of the run: "open" (the kept consumers attached), "closed" (every stream closed). */
  readonly phase: string;
  readonly valid: boolean;
  /** From the check's start to the answer it judged last. */
  readonly elapsedMs: number;
  readonly settleMs: number;
  /** Every queue of the last answer, and every queue the harness expected. */
  readonly queues: readonly QueueConsumers[];
  /** Set when the cluster never answered within the settle time. */
  readonly error?: string;
}

type ListedQueue = Pick<QueueInfo, "name" | "consumers" | "messagesUnacked">;

/**
 * Each listed queue with the consumers expected on it (zero where the harness holds none), and
 * each expected queue the listing lacks (listed as zero). The harness's open consumers ack what
 * they get, so after the drain no queue should hold an unacked message.
 */
export function judgeQueues(listed: readonly ListedQueue[], expected: ReadonlyMap<string, number>): QueueConsumers[] {
  const out = listed.map((q) => ({ queue: q.name, listed: q.consumers, expected: expected.get(q.name) ?? 0, unacked: q.messagesUnacked }));
  for (const [queue, n] of expected) if (!listed.some((q) => q.name === queue)) out.push({ queue, listed: 0, expected: n, unacked: 0 });
  return out.sort((a, b) => (a.queue < b.queue ? -1 : a.queue > b.queue ? 1 : 0));
}

export function wrongQueues(queues: readonly QueueConsumers[]): QueueConsumers[] {
  return queues.filter((q) => q.listed !== q.expected || q.unacked > 0);
}

export interface LivenessCheckOptions {
  readonly phase: string;
  /** Consumers the harness holds open, per queue, asked anew with every answer (a kept consumer may be resubscribing). */
  readonly expected: () => ReadonlyMap<string, number>;
  readonly settleMs: number;
  /** Asks the cluster (a linearizable read: the leader's view) for every queue. */
  readonly listQueues: () => Promise<readonly ListedQueue[]>;
}

/** Asks until the cluster lists exactly the expected consumers and no unacked message, or the settle time is up. */
export async function checkConsumerLiveness(options: LivenessCheckOptions): Promise<LivenessCheck> {
  const started = Date.now();
  const deadline = started + options.settleMs;
  let last: { queues: QueueConsumers[]; at: number } | undefined;
  let error: string | undefined;
  for (;;) {
    try {
      const listed = await options.listQueues();
      const queues = judgeQueues(listed, options.expected());
      last = { queues, at: Date.now() };
      if (wrongQueues(queues).length === 0) return { phase: options.phase, valid: true, elapsedMs: last.at - started, settleMs: options.settleMs, queues };
    } catch (err) {
      error = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() >= deadline) break;
    await sleep(Math.min(POLL_MS, Math.max(0, deadline - Date.now())));
  }
  return {
    phase: options.phase,
    valid: false,
    elapsedMs: (last?.at ?? Date.now()) - started,
    settleMs: options.settleMs,
    queues: last?.queues ?? judgeQueues([], options.expected()),
    ...(last === undefined ? { error: `no answer from the cluster: ${error ?? "none"}` } : {}),
  };
}

/** "consumers exact (open 3 after 0.2 s, closed 0 after 0.4 s)" or what is wrong, queue by queue. */
export function describeLiveness(checks: readonly LivenessCheck[]): string {
  if (checks.length === 0) return "consumers unchecked";
  const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  if (checks.every((c) => c.valid)) {
    return `consumers exact (${checks.map((c) => `${c.phase} ${c.queues.reduce((n, q) => n + q.listed, 0)} after ${seconds(c.elapsedMs)}`).join(", ")})`;
  }
  const wrong = checks
    .filter((c) => !c.valid)
    .map((c) => {
      if (c.error !== undefined) return `${c.phase}: ${c.error}`;
      const queues = wrongQueues(c.queues).map((q) => `${q.queue} lists ${q.listed} consumer${q.listed === 1 ? "" : "s"}, expected ${q.expected}, ${q.unacked} unacked`);
      return `${c.phase}, ${seconds(c.elapsedMs)} into a ${seconds(c.settleMs)} settle: ${queues.join("; ")}`;
    });
  return `consumers WRONG (${wrong.join(" | ")})`;
}
