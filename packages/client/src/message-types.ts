// The SDK's own types for what crosses the wire, and their conversion to and from the generated
// protobuf classes, so applications never touch enum numbers or Header lists.
import { raftmq } from "@raftmq/proto";

const v1 = raftmq.v1;

export type ExchangeType = "direct" | "fanout" | "topic" | "headers";
export const EXCHANGE_TYPES: readonly ExchangeType[] = ["direct", "fanout", "topic", "headers"];

export type HeaderValue = string | number | boolean | Uint8Array;
export type Headers = Record<string, HeaderValue>;

export interface QueueArguments {
  messageTtlMs?: number;
  expiresMs?: number;
  maxLength?: number;
  maxLengthBytes?: number;
  overflow?: "drop-head" | "reject-publish";
  deadLetterExchange?: string;
  deadLetterRoutingKey?: string;
  deliveryLimit?: number;
  singleActiveConsumer?: boolean;
}

export interface MessageProperties {
  contentType?: string;
  contentEncoding?: string;
  headers?: Headers;
  /** Stored as delivery mode 2 (persistent) or 1 (transient). */
  persistent?: boolean;
  priority?: number;
  correlationId?: string;
  replyTo?: string;
  /** Per-message TTL in milliseconds. */
  expirationMs?: number;
  messageId?: string;
  timestamp?: number;
  type?: string;
  userId?: string;
  appId?: string;
}

export interface DeclareExchangeOptions {
  durable?: boolean;
  autoDelete?: boolean;
  internal?: boolean;
  alternateExchange?: string;
  /** Only check that it exists. */
  passive?: boolean;
}

export interface DeclareQueueOptions {
  durable?: boolean;
  autoDelete?: boolean;
  arguments?: QueueArguments;
  passive?: boolean;
}

export interface QueueInfo {
  name: string;
  durable: boolean;
  exclusive: boolean;
  autoDelete: boolean;
  arguments: QueueArguments;
  messagesReady: number;
  messagesUnacked: number;
  bytesReady: number;
  consumers: number;
}

export interface ExchangeInfo {
  name: string;
  type: ExchangeType;
  durable: boolean;
  autoDelete: boolean;
  internal: boolean;
  alternateExchange: string;
}

export interface BindingInfo {
  /** The source. */
  exchange: string;
  /** The destination queue; "" when the destination is an exchange. */
  queue: string;
  /** The destination exchange; "" when the destination is a queue. */
  destinationExchange: string;
  routingKey: string;
  arguments: Headers;
}

/**
 * Where a binding delivers: a queue, by name, or another exchange (RabbitMQ's exchange.bind),
 * which routes what it receives by its own bindings.
 */
export type BindingDestination = string | { exchange: string };

/** The destination fields of a Bind or Unbind request. */
export function bindingDestinationToWire(destination: BindingDestination): { queue: string; destinationExchange?: string } {
  return typeof destination === "string" ? { queue: destination } : { queue: "", destinationExchange: destination.exchange };
}

export type Body = Uint8Array | string;

export function bodyBytes(body: Body): Uint8Array {
  return typeof body === "string" ? Buffer.from(body, "utf8") : body;
}

export function exchangeTypeToWire(type: ExchangeType): raftmq.v1.ExchangeType {
  switch (type) {
    case "direct":
      return v1.ExchangeType.EXCHANGE_TYPE_DIRECT;
    case "fanout":
      return v1.ExchangeType.EXCHANGE_TYPE_FANOUT;
    case "topic":
      return v1.ExchangeType.EXCHANGE_TYPE_TOPIC;
    case "headers":
      return v1.ExchangeType.EXCHANGE_TYPE_HEADERS;
    default: {
      const never: never = type;
      throw new RangeError(`unknown exchange type ${String(never)}`);
    }
  }
}

export function exchangeTypeFromWire(type: raftmq.v1.ExchangeType | null | undefined): ExchangeType {
  switch (type) {
    case v1.ExchangeType.EXCHANGE_TYPE_FANOUT:
      return "fanout";
    case v1.ExchangeType.EXCHANGE_TYPE_TOPIC:
      return "topic";
    case v1.ExchangeType.EXCHANGE_TYPE_HEADERS:
      return "headers";
    default:
      return "direct";
  }
}

export function headersToWire(headers: Headers | undefined): raftmq.v1.Header.$Properties[] {
  if (headers === undefined) return [];
  return Object.entries(headers).map(([key, value]) => {
    let wire: raftmq.v1.HeaderValue.$Properties;
    if (typeof value === "string") wire = { stringValue: value };
    else if (typeof value === "boolean") wire = { boolValue: value };
    else if (typeof value === "number") wire = Number.isSafeInteger(value) ? { intValue: value } : { doubleValue: value };
    else wire = { bytesValue: value };
    return { key, value: wire };
  });
}

export function headersFromWire(headers: readonly raftmq.v1.Header.$Properties[] | null | undefined): Headers {
  const out: Headers = {};
  for (const h of headers ?? []) {
    const v = h.value;
    const key = h.key ?? "";
    if (v == null) continue;
    if (v.stringValue != null) out[key] = v.stringValue;
    else if (v.intValue != null) out[key] = Number(v.intValue);
    else if (v.boolValue != null) out[key] = v.boolValue;
    else if (v.doubleValue != null) out[key] = v.doubleValue;
    else if (v.bytesValue != null) out[key] = v.bytesValue;
  }
  return out;
}

export function queueArgumentsToWire(a: QueueArguments | undefined): raftmq.v1.QueueArguments.$Properties | undefined {
  if (a === undefined) return undefined;
  return {
    messageTtlMs: a.messageTtlMs,
    expiresMs: a.expiresMs,
    maxLength: a.maxLength,
    maxLengthBytes: a.maxLengthBytes,
    overflow: a.overflow === "reject-publish" ? v1.Overflow.OVERFLOW_REJECT_PUBLISH : v1.Overflow.OVERFLOW_DROP_HEAD,
    deadLetterExchange: a.deadLetterExchange,
    deadLetterRoutingKey: a.deadLetterRoutingKey,
    deliveryLimit: a.deliveryLimit,
    singleActiveConsumer: a.singleActiveConsumer ?? false,
  };
}

export function queueArgumentsFromWire(a: raftmq.v1.QueueArguments.$Properties | null | undefined): QueueArguments {
  const out: QueueArguments = {};
  if (a == null) return out;
  if (a.messageTtlMs != null) out.messageTtlMs = Number(a.messageTtlMs);
  if (a.expiresMs != null) out.expiresMs = Number(a.expiresMs);
  if (a.maxLength != null) out.maxLength = Number(a.maxLength);
  if (a.maxLengthBytes != null) out.maxLengthBytes = Number(a.maxLengthBytes);
  if (a.overflow === v1.Overflow.OVERFLOW_REJECT_PUBLISH) out.overflow = "reject-publish";
  if (a.deadLetterExchange != null) out.deadLetterExchange = a.deadLetterExchange;
  if (a.deadLetterRoutingKey != null) out.deadLetterRoutingKey = a.deadLetterRoutingKey;
  if (a.deliveryLimit != null) out.deliveryLimit = Number(a.deliveryLimit);
  if (a.singleActiveConsumer === true) out.singleActiveConsumer = true;
  return out;
}

export function propertiesToWire(p: MessageProperties | undefined): raftmq.v1.MessageProperties.$Properties | undefined {
  if (p === undefined) return undefined;
  return {
    contentType: p.contentType,
    contentEncoding: p.contentEncoding,
    headers: headersToWire(p.headers),
    deliveryMode: p.persistent === undefined ? 0 : p.persistent ? 2 : 1,
    priority: p.priority,
    correlationId: p.correlationId,
    replyTo: p.replyTo,
    expiration: p.expirationMs === undefined ? undefined : String(p.expirationMs),
    messageId: p.messageId,
    timestamp: p.timestamp,
    type: p.type,
    userId: p.userId,
    appId: p.appId,
  };
}

export function propertiesFromWire(p: raftmq.v1.MessageProperties.$Properties | null | undefined): MessageProperties {
  const out: MessageProperties = {};
  if (p == null) return out;
  if (p.contentType) out.contentType = p.contentType;
  if (p.contentEncoding) out.contentEncoding = p.contentEncoding;
  if (p.headers != null && p.headers.length > 0) out.headers = headersFromWire(p.headers);
  if (p.deliveryMode === 2) out.persistent = true;
  else if (p.deliveryMode === 1) out.persistent = false;
  if (p.priority) out.priority = p.priority;
  if (p.correlationId) out.correlationId = p.correlationId;
  if (p.replyTo) out.replyTo = p.replyTo;
  if (p.expiration) out.expirationMs = Number(p.expiration);
  if (p.messageId) out.messageId = p.messageId;
  if (p.timestamp) out.timestamp = Number(p.timestamp);
  if (p.type) out.type = p.type;
  if (p.userId) out.userId = p.userId;
  if (p.appId) out.appId = p.appId;
  return out;
}

export function queueInfoFromWire(q: raftmq.v1.QueueInfo.$Properties | null | undefined): QueueInfo {
  return {
    name: q?.name ?? "",
    durable: q?.durable ?? false,
    exclusive: q?.exclusive ?? false,
    autoDelete: q?.autoDelete ?? false,
    arguments: queueArgumentsFromWire(q?.arguments),
    messagesReady: Number(q?.messagesReady ?? 0),
    messagesUnacked: Number(q?.messagesUnacked ?? 0),
    bytesReady: Number(q?.bytesReady ?? 0),
    consumers: q?.consumers ?? 0,
  };
}

export function exchangeInfoFromWire(e: raftmq.v1.ExchangeInfo.$Properties): ExchangeInfo {
  return {
    name: e.name ?? "",
    type: exchangeTypeFromWire(e.type),
    durable: e.durable ?? false,
    autoDelete: e.autoDelete ?? false,
    internal: e.internal ?? false,
    alternateExchange: e.alternateExchange ?? "",
  };
}

export function bindingInfoFromWire(b: raftmq.v1.BindingInfo.$Properties): BindingInfo {
  return { exchange: b.exchange ?? "", queue: b.queue ?? "", destinationExchange: b.destinationExchange ?? "", routingKey: b.routingKey ?? "", arguments: headersFromWire(b.arguments) };
}

/** One message as the broker receives it, stamped with its producer's id and sequence. */
export function outboundMessage(
  exchange: string,
  routingKey: string,
  body: Body,
  options: { mandatory?: boolean; properties?: MessageProperties },
  producerId: string,
  sequence: number,
): raftmq.v1.OutboundMessage.$Properties {
  return {
    exchange,
    routingKey,
    mandatory: options.mandatory ?? false,
    properties: propertiesToWire(options.properties),
    body: bodyBytes(body),
    producerId,
    sequence,
  };
}
