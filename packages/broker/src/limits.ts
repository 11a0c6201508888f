// Every bound the state machine enforces, and the bounds on one client request the front end
// enforces, with defaults and the range each may be set to. They decide results, and results must
// agree across nodes, so the limits in force are replicated state (cluster-settings.ts): a cluster
// starts from these defaults and changes them through the log.

/**
 * What one client request may carry. Only the front end reads these, before proposing
 * (packages/server request-limits.ts); apply never does, so an entry accepted under one value
 * applies alike under any other, and old entries apply as they always did. Replicated all the same
 * because they decide whether a request is accepted, which must not depend on the node asked.
 */
export interface RequestLimitSettings {
  /** Messages in one Publish or PublishStream request. */
  maxMessagesPerPublish: number;
  /** UTF-8 bytes of each string property of a message (AMQP's shortstr) and of a death entry. */
  maxPropertyStringBytes: number;
  /** Bytes of one header, binding argument or subscription argument value. */
  maxHeaderValueBytes: number;
  /** Bytes of one binding's or subscription's arguments, keys and values together. */
  maxArgumentsBytes: number;
  /** What a whole message may carry beyond maxMessageBytes: properties, headers, deaths and names. */
  messageOverheadBytes: number;
  /** Death entries (x-death) a client may publish with one message. */
  maxDeaths: number;
  /** Routing keys of one published death entry. */
  maxDeathRoutingKeys: number;
}

export interface BrokerLimits extends RequestLimitSettings {
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
  /**
   * Deliveries one apply makes to one no_ack consumer. Prefetch does not bound such a consumer
   * (as in RabbitMQ), so without this one command could move a whole queue into one stream; the
   * rest follows on later applies.
   */
  maxNoAckDeliveriesPerApply: number;
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
  maxNoAckDeliveriesPerApply: 256,
  dedupWindow: 4096,
  maxProducers: 10_000,
  producerIdleMs: 10 * 60 * 1000,
  timerIntervalMs: 1000,
  maxMessagesPerPublish: 10_000,
  maxPropertyStringBytes: 255,
  maxHeaderValueBytes: 64 * 1024,
  maxArgumentsBytes: 4 * 1024,
  messageOverheadBytes: 64 * 1024,
  maxDeaths: 64,
  maxDeathRoutingKeys: 64,
});

export interface LimitRange {
  min: number;
  max: number;
}

const MiB = 1024 * 1024;

/**
 * What each limit may be set to. The upper ends keep one node's memory and one apply's work
 * bounded whatever an operator sets: dedup memory is window × producers results, and a message
 * (maxMessageBytes + messageOverheadBytes, 48 MiB at most) must fit, with room to spare, in the
 * 64 MiB gRPC messages that node and SDK accept. A request limit of 0 refuses what it counts.
 */
export const limitRanges: Readonly<Record<keyof BrokerLimits, LimitRange>> = Object.freeze({
  maxMessageBytes: { min: 1, max: 32 * MiB },
  maxQueues: { min: 1, max: 1_000_000 },
  maxExchanges: { min: 1, max: 1_000_000 },
  maxBindings: { min: 1, max: 10_000_000 },
  maxHeaders: { min: 1, max: 4096 },
  // AMQP's shortstr: clients of the AMQP front end cannot carry longer names.
  maxNameLength: { min: 1, max: 255 },
  maxConsumersPerQueue: { min: 1, max: 100_000 },
  maxUnackedPerConsumer: { min: 1, max: 1_000_000 },
  maxNoAckDeliveriesPerApply: { min: 1, max: 65_536 },
  dedupWindow: { min: 1, max: 65_536 },
  maxProducers: { min: 1, max: 1_000_000 },
  producerIdleMs: { min: 1000, max: 30 * 24 * 60 * 60 * 1000 },
  timerIntervalMs: { min: 1, max: 60 * 60 * 1000 },
  maxMessagesPerPublish: { min: 1, max: 100_000 },
  maxPropertyStringBytes: { min: 1, max: 64 * 1024 },
  maxHeaderValueBytes: { min: 1, max: 16 * MiB },
  // Every node holds arguments as long as their binding or consumer lives.
  maxArgumentsBytes: { min: 0, max: MiB },
  messageOverheadBytes: { min: 0, max: 16 * MiB },
  maxDeaths: { min: 0, max: 4096 },
  maxDeathRoutingKeys: { min: 0, max: 4096 },
});

/** Why `value` cannot be limit `key`, or null when it can. */
export function limitRangeError(key: keyof BrokerLimits, value: number): string | null {
  const { min, max } = limitRanges[key];
  if (Number.isSafeInteger(value) && value >= min && value <= max) return null;
  return `${key} must be an integer in [${min}, ${max}], got ${String(value)}`;
}

export function resolveLimits(limits: Partial<BrokerLimits> | undefined): BrokerLimits {
  const resolved: BrokerLimits = { ...defaultLimits, ...limits };
  for (const key of limitKeys) {
    const error = limitRangeError(key, resolved[key]);
    if (error !== null) throw new RangeError(`broker limit ${error}`);
  }
  return resolved;
}

export const limitKeys: readonly (keyof BrokerLimits)[] = Object.freeze(Object.keys(limitRanges) as (keyof BrokerLimits)[]);

// A key missing here, or one that is no request limit, fails to compile.
const requestLimitFlags: Readonly<Record<keyof RequestLimitSettings, true>> = {
  maxMessagesPerPublish: true,
  maxPropertyStringBytes: true,
  maxHeaderValueBytes: true,
  maxArgumentsBytes: true,
  messageOverheadBytes: true,
  maxDeaths: true,
  maxDeathRoutingKeys: true,
};

/** The settings only the front end reads (RequestLimitSettings). */
export const requestLimitKeys: readonly (keyof RequestLimitSettings)[] = Object.freeze(Object.keys(requestLimitFlags) as (keyof RequestLimitSettings)[]);

// Defaults outside their own ranges would make a fresh cluster hold settings no SetClusterSettings
// could restore: refuse to load instead.
resolveLimits(defaultLimits);

/**
 * Bounds of users, virtual hosts and permissions. Fixed rather than settings; a change to one
 * changes what commands answer, so it goes with a new machine version (machine-version.ts).
 */
export const accessLimits = Object.freeze({
  maxUsers: 10_000,
  /** Each vhost also holds five predeclared exchanges, which count against maxExchanges. */
  maxVhosts: 1_000,
  /** UTF-8 bytes of a user or vhost name (AMQP's shortstr: the vhost is in connection.open). */
  maxNameBytes: 255,
  maxTags: 32,
  maxTagBytes: 64,
  maxPasswordHashBytes: 1024,
  /** UTF-8 bytes of one permission pattern. */
  maxPatternBytes: 1024,
});
