// Every bound the state machine enforces, with defaults. All nodes of a cluster must run with the
// same limits: they decide results, and results must agree across nodes.

export interface BrokerLimits {
  /** Largest message body accepted by a publish. */
  maxMessageBytes: number;
  maxQueues: number;
  /** Exchanges, counting the predeclared ones. */
  maxExchanges: number;
  /** Bindings across all exchanges. */
  maxBindings: number;
  /** Headers of one message, or arguments of one binding or subscription. */
  maxHeaders: number;
  /** Queue, exchange, routing key, consumer, session and producer ids (AMQP's shortstr: 255). */
  maxNameLength: number;
  maxConsumersPerQueue: number;
  /** Unacknowledged deliveries a consumer may hold when its prefetch is 0 ("unlimited"). */
  maxUnackedPerConsumer: number;
  /** Sequences remembered per idempotent producer. */
  dedupWindow: number;
  /** Producers remembered at once; the least recently seen is forgotten first. */
  maxProducers: number;
  /** A producer unseen for this much log time is forgotten. */
  producerIdleMs: number;
  /** Log time between sweeps of every queue for TTL and x-expires (a Tick always sweeps). */
  timerIntervalMs: number;
}

export const defaultLimits: Readonly<BrokerLimits> = Object.freeze({
  maxMessageBytes: 16 * 1024 * 1024,
  maxQueues: 10_000,
  maxExchanges: 10_000,
  maxBindings: 100_000,
  maxHeaders: 64,
  maxNameLength: 255,
  maxConsumersPerQueue: 1_000,
  maxUnackedPerConsumer: 10_000,
  dedupWindow: 4096,
  maxProducers: 10_000,
  producerIdleMs: 10 * 60 * 1000,
  timerIntervalMs: 1000,
});

export function resolveLimits(limits: Partial<BrokerLimits> | undefined): BrokerLimits {
  const resolved: BrokerLimits = { ...defaultLimits, ...limits };
  for (const [key, value] of Object.entries(resolved)) {
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw new RangeError(`broker limit ${key} must be a positive integer, got ${String(value)}`);
    }
  }
  return resolved;
}
