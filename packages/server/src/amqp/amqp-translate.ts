// AMQP values to the broker's and back: message properties and headers (every field type kept,
// see HeaderValue), queue and consumer x-arguments, exchange types.
import { type BasicProperties, decodeFieldValue, encodeFieldValue, type FieldTable, type FieldValue, fromFieldValue } from "@raftmq/amqp";
import { raftmq } from "@raftmq/proto";
import { AmqpError, preconditionFailed, REPLY } from "./amqp-errors.ts";

type Header = raftmq.v1.Header.$Properties;
type HeaderValue = raftmq.v1.HeaderValue.$Properties;
type MessageProperties = raftmq.v1.MessageProperties.$Properties;

const EXCHANGE_TYPES: Record<string, raftmq.v1.ExchangeType> = {
  direct: raftmq.v1.ExchangeType.EXCHANGE_TYPE_DIRECT,
  fanout: raftmq.v1.ExchangeType.EXCHANGE_TYPE_FANOUT,
  topic: raftmq.v1.ExchangeType.EXCHANGE_TYPE_TOPIC,
  headers: raftmq.v1.ExchangeType.EXCHANGE_TYPE_HEADERS,
};

/** The broker's exchange type of an exchange.declare's `type` (any, when only checking it exists). */
export function exchangeType(type: string, passive: boolean): raftmq.v1.ExchangeType {
  const t = EXCHANGE_TYPES[type];
  if (t !== undefined) return t;
  if (passive) return raftmq.v1.ExchangeType.EXCHANGE_TYPE_UNSPECIFIED;
  throw new AmqpError(REPLY.COMMAND_INVALID, `unknown exchange type '${type}'`);
}

/** AMQP's integer tags (and the timestamp's), which the broker keeps as int_value with the tag beside. */
const INTEGER_TAGS: ReadonlySet<string> = new Set(["b", "B", "s", "u", "I", "i", "l", "L", "T"]);

/** A header value the broker keeps, from an AMQP field value. */
export function toHeaderValue(v: FieldValue): HeaderValue {
  if (INTEGER_TAGS.has(v.type)) {
    const n = v.value as number | bigint;
    // A 64-bit value beyond 2^53 would round as a number: its exact bits travel as an AMQP field.
    if (typeof n === "bigint") return { amqpField: encodeFieldValue(v) };
    return v.type === "l" ? { intValue: n } : { intValue: n, amqpType: v.type };
  }
  switch (v.type) {
    case "S":
      return { stringValue: v.value };
    case "t":
      return { boolValue: v.value };
    case "d":
      return { doubleValue: v.value };
    case "f":
      return { doubleValue: v.value, amqpType: "f" };
    case "x":
      return { bytesValue: v.value };
    default:
      return { amqpField: encodeFieldValue(v) };
  }
}

/** The AMQP field value of a header value: the tag it came with, else its kind's own. */
export function fromHeaderValue(v: HeaderValue | null | undefined): FieldValue {
  if (v == null) return { type: "V", value: null };
  const tag = v.amqpType ?? "";
  if (v.amqpField != null) return decodeFieldValue(Buffer.from(v.amqpField));
  if (v.stringValue != null) return { type: "S", value: v.stringValue };
  if (v.boolValue != null) return { type: "t", value: v.boolValue };
  if (v.bytesValue != null) return { type: "x", value: Buffer.from(v.bytesValue) };
  if (v.doubleValue != null) return tag === "f" ? { type: "f", value: v.doubleValue } : { type: "d", value: v.doubleValue };
  if (v.intValue != null) {
    const n = Number(v.intValue);
    // A gRPC publisher's int64 beyond 2^53 arrives rounded to the nearest double; it goes out as that integer.
    if (!Number.isSafeInteger(n)) return { type: "l", value: BigInt(Math.trunc(n)) };
    return INTEGER_TAGS.has(tag) ? ({ type: tag, value: n } as FieldValue) : { type: "l", value: n };
  }
  return { type: "V", value: null };
}

export function tableToHeaders(table: FieldTable): Header[] {
  return Object.keys(table).map((key) => ({ key, value: toHeaderValue(table[key] as FieldValue) }));
}

function headersToTable(headers: readonly Header[]): FieldTable {
  const table: FieldTable = Object.create(null);
  for (const h of headers) table[h.key ?? ""] = fromHeaderValue(h.value);
  return table;
}

/** The broker's message properties of an AMQP publish. */
export function toMessageProperties(p: BasicProperties): MessageProperties {
  return {
    contentType: p.contentType ?? "",
    contentEncoding: p.contentEncoding ?? "",
    headers: p.headers === undefined ? [] : tableToHeaders(p.headers),
    deliveryMode: p.deliveryMode ?? 0,
    priority: p.priority ?? 0,
    correlationId: p.correlationId ?? "",
    replyTo: p.replyTo ?? "",
    expiration: p.expiration ?? "",
    messageId: p.messageId ?? "",
    timestamp: p.timestamp ?? 0,
    type: p.type ?? "",
    userId: p.userId ?? "",
    appId: p.appId ?? "",
  };
}

/** The AMQP properties of a message the broker holds; dead-letter records become x-death. */
export function fromMessageProperties(m: MessageProperties | null | undefined): BasicProperties {
  const p: BasicProperties = {};
  if (m == null) return p;
  if (m.contentType) p.contentType = m.contentType;
  if (m.contentEncoding) p.contentEncoding = m.contentEncoding;
  const headers = headersToTable(m.headers ?? []);
  const deaths = m.deaths ?? [];
  if (deaths.length > 0) {
    headers["x-death"] = {
      type: "A",
      value: deaths.map((d) => {
        const death: FieldTable = Object.create(null);
        death.count = { type: "l", value: Number(d.count ?? 0) };
        death.reason = { type: "S", value: d.reason ?? "" };
        death.queue = { type: "S", value: d.queue ?? "" };
        death.time = { type: "T", value: Math.floor(Number(d.timeMs ?? 0) / 1000) };
        death.exchange = { type: "S", value: d.exchange ?? "" };
        death["routing-keys"] = { type: "A", value: (d.routingKeys ?? []).map((k) => ({ type: "S", value: k }) as FieldValue) };
        if (d.originalExpiration) death["original-expiration"] = { type: "S", value: d.originalExpiration };
        return { type: "F", value: death } as FieldValue;
      }),
    };
    const first = deaths[deaths.length - 1];
    const last = deaths[0];
    if (first !== undefined && headers["x-first-death-queue"] === undefined) {
      headers["x-first-death-queue"] = { type: "S", value: first.queue ?? "" };
      headers["x-first-death-reason"] = { type: "S", value: first.reason ?? "" };
      headers["x-first-death-exchange"] = { type: "S", value: first.exchange ?? "" };
    }
    if (last !== undefined) {
      headers["x-last-death-queue"] = { type: "S", value: last.queue ?? "" };
      headers["x-last-death-reason"] = { type: "S", value: last.reason ?? "" };
      headers["x-last-death-exchange"] = { type: "S", value: last.exchange ?? "" };
    }
  }
  if (Object.keys(headers).length > 0) p.headers = headers;
  if (m.deliveryMode) p.deliveryMode = m.deliveryMode;
  if (m.priority) p.priority = m.priority;
  if (m.correlationId) p.correlationId = m.correlationId;
  if (m.replyTo) p.replyTo = m.replyTo;
  if (m.expiration) p.expiration = m.expiration;
  if (m.messageId) p.messageId = m.messageId;
  if (m.timestamp) p.timestamp = Number(m.timestamp);
  if (m.type) p.type = m.type;
  if (m.userId) p.userId = m.userId;
  if (m.appId) p.appId = m.appId;
  return p;
}

/** A string argument, or undefined when absent. */
export function stringArgument(table: FieldTable, key: string): string | undefined {
  const v = table[key];
  if (v === undefined) return undefined;
  if (v.type === "S") return v.value;
  if (v.type === "x") return v.value.toString("utf8");
  throw preconditionFailed(`invalid arg '${key}': a string is expected, got a value of type '${v.type}'`);
}

function integerArgument(table: FieldTable, key: string, min: number): number | undefined {
  const v = table[key];
  if (v === undefined) return undefined;
  const n = typeof v.value === "number" || typeof v.value === "bigint" ? Number(v.value) : Number.NaN;
  if (!["b", "B", "s", "u", "I", "i", "l", "L"].includes(v.type) || !Number.isSafeInteger(n) || n < min) {
    throw preconditionFailed(`invalid arg '${key}': an integer of at least ${min} is expected, got ${JSON.stringify(String(fromFieldValue(v)))}`);
  }
  return n;
}

function booleanArgument(table: FieldTable, key: string): boolean | undefined {
  const v = table[key];
  if (v === undefined) return undefined;
  if (v.type !== "t") throw preconditionFailed(`invalid arg '${key}': a boolean is expected`);
  return v.value;
}

/** A queue.declare's x-arguments as the broker's queue arguments. */
export function queueArguments(table: FieldTable): raftmq.v1.QueueArguments.$Properties {
  const out: raftmq.v1.QueueArguments.$Properties = {};
  const ttl = integerArgument(table, "x-message-ttl", 0);
  if (ttl !== undefined) out.messageTtlMs = ttl;
  const expires = integerArgument(table, "x-expires", 1);
  if (expires !== undefined) out.expiresMs = expires;
  const maxLength = integerArgument(table, "x-max-length", 0);
  if (maxLength !== undefined) out.maxLength = maxLength;
  const maxBytes = integerArgument(table, "x-max-length-bytes", 0);
  if (maxBytes !== undefined) out.maxLengthBytes = maxBytes;
  const overflow = stringArgument(table, "x-overflow");
  if (overflow !== undefined) {
    if (overflow === "drop-head") out.overflow = raftmq.v1.Overflow.OVERFLOW_DROP_HEAD;
    else if (overflow === "reject-publish") out.overflow = raftmq.v1.Overflow.OVERFLOW_REJECT_PUBLISH;
    else throw preconditionFailed(`invalid arg 'x-overflow': '${overflow}' is not supported (drop-head, reject-publish)`);
  }
  const dlx = stringArgument(table, "x-dead-letter-exchange");
  if (dlx !== undefined) out.deadLetterExchange = dlx;
  const dlrk = stringArgument(table, "x-dead-letter-routing-key");
  if (dlrk !== undefined) out.deadLetterRoutingKey = dlrk;
  const limit = integerArgument(table, "x-delivery-limit", 0);
  if (limit !== undefined) out.deliveryLimit = limit;
  const single = booleanArgument(table, "x-single-active-consumer");
  if (single !== undefined) out.singleActiveConsumer = single;
  // Every queue is replicated through the log: a program asking for RabbitMQ's classic type (its
  // default) gets one like any other; "quorum" is kept, as the broker reports it back.
  const type = stringArgument(table, "x-queue-type");
  if (type !== undefined && type !== "classic") out.queueType = type;
  return out;
}

/** A basic.consume's arguments, passed to the broker as the subscription's. */
export function consumeArguments(table: FieldTable): Header[] {
  return tableToHeaders(table);
}
