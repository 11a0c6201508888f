// Bounds on what one client request may carry, checked by the front end before a command is
// proposed. The values in force are cluster settings (RequestLimitSettings, replicated through the
// log) so every node accepts and refuses alike; but only this module reads them, never apply,
// which must answer old log entries exactly as before: a message accepted then still applies.
import type { BrokerError, BrokerLimits, Command, RequestLimitSettings } from "@raftmq/broker";
import { accessLimits, commandKind, defaultLimits } from "@raftmq/broker";
import type { raftmq } from "@raftmq/proto";

type Header = raftmq.v1.Header.$Properties;
type HeaderValue = raftmq.v1.HeaderValue.$Properties;
type Death = raftmq.v1.Death.$Properties;
type Publish = raftmq.v1.Publish.$Properties;

export type RequestLimitName = keyof RequestLimitSettings;

export interface RequestLimitRow {
  readonly name: RequestLimitName | "maxNameBytes" | "nameCharacters" | "maxBodyBytes" | "maxHeaders" | "maxAccessNameBytes";
  /** A number in `unit`, or for a rule the rule in words. */
  readonly default: number | string;
  readonly unit: "bytes" | "UTF-8 bytes" | "entries" | "messages" | "rule";
  readonly bounds: string;
  /** "front end": here, before proposing. "broker": validateCommand, before proposing and again in apply. */
  readonly checkedBy: "front end" | "broker";
  /** The cluster setting whose value in force decides; none for a fixed limit. */
  readonly setting?: keyof BrokerLimits;
  /** The error's text; {field}, {got} and {limit} stand for the values of one refusal. */
  readonly error: string;
}

/**
 * Every bound on a request's content, one row each, front end and broker alike; the defaults are
 * the cluster settings' defaults, and the values in force decide. limits-table.ts adds the rest.
 */
export const REQUEST_LIMITS: readonly RequestLimitRow[] = Object.freeze([
  {
    name: "maxNameBytes",
    default: defaultLimits.maxNameLength,
    unit: "UTF-8 bytes",
    bounds:
      "An exchange, queue, routing key, consumer tag, producer id, header or argument key, alternate exchange, x-dead-letter-exchange or x-dead-letter-routing-key (AMQP's shortstr).",
    checkedBy: "broker",
    setting: "maxNameLength",
    error: '{field} "{got}…" is longer than {limit} bytes',
  },
  {
    name: "nameCharacters",
    default: "none of U+0000–U+001F, U+007F",
    unit: "rule",
    bounds:
      "Names a request creates or stores: declared exchange and queue names, alternate exchange, x-dead-letter-exchange and -routing-key, binding routing keys, consumer tags, producer ids. " +
      "Names that only refer (delete, unbind, purge, get, passive declare, a publish's exchange and routing key) are not checked, so what older versions accepted can still be used and removed.",
    checkedBy: "front end",
    error: "{field} {got} must not contain control characters (U+0000 to U+001F, U+007F): {limit} (rule nameCharacters)",
  },
  {
    name: "maxAccessNameBytes",
    default: accessLimits.maxNameBytes,
    unit: "UTF-8 bytes",
    bounds: "A vhost or user name; these also refuse control characters.",
    checkedBy: "broker",
    error: "{field} {got} must be at most {limit} UTF-8 bytes",
  },
  {
    name: "maxMessagesPerPublish",
    default: defaultLimits.maxMessagesPerPublish,
    setting: "maxMessagesPerPublish",
    unit: "messages",
    bounds: "Messages in one Publish or PublishStream request.",
    checkedBy: "front end",
    error: "a publish request carries {got} messages; the limit is {limit} (maxMessagesPerPublish): split it",
  },
  {
    name: "maxBodyBytes",
    default: defaultLimits.maxMessageBytes,
    unit: "bytes",
    bounds: "The body of one message.",
    checkedBy: "broker",
    setting: "maxMessageBytes",
    error: "message body of {got} bytes exceeds the limit of {limit} bytes",
  },
  {
    name: "maxPropertyStringBytes",
    default: defaultLimits.maxPropertyStringBytes,
    setting: "maxPropertyStringBytes",
    unit: "UTF-8 bytes",
    bounds:
      "Each string property of a message (content_type, content_encoding, correlation_id, reply_to, expiration, message_id, type, user_id, app_id; AMQP's shortstr) and each string of a death entry (queue, reason, exchange, each routing key, original_expiration).",
    checkedBy: "front end",
    error: "{field} is {got} UTF-8 bytes; the limit is {limit} (maxPropertyStringBytes)",
  },
  {
    name: "maxHeaders",
    default: defaultLimits.maxHeaders,
    unit: "entries",
    bounds: "Headers of one message, arguments of one binding or of one subscription.",
    checkedBy: "broker",
    setting: "maxHeaders",
    error: "{field} has {got} entries; the limit is {limit}",
  },
  {
    name: "maxHeaderValueBytes",
    default: defaultLimits.maxHeaderValueBytes,
    setting: "maxHeaderValueBytes",
    unit: "bytes",
    bounds: "The string (UTF-8) or bytes value of one message header, binding argument or subscription argument.",
    checkedBy: "front end",
    error: "{field} value is {got} bytes; the limit is {limit} (maxHeaderValueBytes)",
  },
  {
    name: "maxArgumentsBytes",
    default: defaultLimits.maxArgumentsBytes,
    setting: "maxArgumentsBytes",
    unit: "bytes",
    bounds:
      "Keys and values of one binding's or one subscription's arguments together. Every node holds them as long as the binding or consumer lives, and a headers exchange matches them on every publish.",
    checkedBy: "front end",
    error: "{field} are {got} bytes in all; the limit is {limit} (maxArgumentsBytes)",
  },
  {
    name: "messageOverheadBytes",
    default: defaultLimits.messageOverheadBytes,
    setting: "messageOverheadBytes",
    unit: "bytes",
    bounds:
      "What a whole message may carry beyond the cluster's maxMessageBytes in force: body + properties + headers + deaths + exchange, routing key and producer id ≤ maxMessageBytes + this. " +
      "Estimated by summing the bytes of every string (UTF-8) and bytes field and 8 per number in headers and deaths; protobuf framing is not counted.",
    checkedBy: "front end",
    error: "{field} is {got} bytes in all (body, properties, headers and deaths); the limit is {limit} (maxMessageBytes in force + messageOverheadBytes)",
  },
  {
    name: "maxDeaths",
    default: defaultLimits.maxDeaths,
    setting: "maxDeaths",
    unit: "entries",
    bounds:
      "Death entries (x-death) a client may publish with a message. Re-publishing a dead-lettered message with its history is allowed, as in RabbitMQ; only longer histories are refused.",
    checkedBy: "front end",
    error: "{field} has {got} entries; the limit is {limit} (maxDeaths)",
  },
  {
    name: "maxDeathRoutingKeys",
    default: defaultLimits.maxDeathRoutingKeys,
    setting: "maxDeathRoutingKeys",
    unit: "entries",
    bounds: "Routing keys of one published death entry.",
    checkedBy: "front end",
    error: "{field} has {got} entries; the limit is {limit} (maxDeathRoutingKeys)",
  },
] satisfies RequestLimitRow[]);

function row(name: RequestLimitRow["name"]): RequestLimitRow {
  const r = REQUEST_LIMITS.find((x) => x.name === name);
  if (r === undefined) throw new Error(`request limit ${name} has no row in REQUEST_LIMITS`);
  return r;
}

/** The error text of `name` with one refusal's values filled in. */
export function limitMessage(name: RequestLimitRow["name"], field: string, got: string | number, limit: string | number): string {
  return row(name)
    .error.replace("{field}", field)
    .replace("{got}", String(got))
    .replace("{limit}", String(limit));
}

function refuse(name: RequestLimitRow["name"], field: string, got: string | number, limit: string | number): BrokerError {
  return { code: "INVALID_ARGUMENT", message: limitMessage(name, field, got, limit) };
}

function utf8Bytes(s: string): number {
  return Buffer.byteLength(s, "utf8");
}

/** `v` quoted and cut short, control characters escaped (JSON leaves U+007F raw). */
function shown(v: string): string {
  return JSON.stringify(v.length > 32 ? `${v.slice(0, 32)}…` : v).replaceAll("\u007f", "\\u007f");
}

/** The name rule's part that is checked here: no control characters (the broker checks the length). */
export function nameCharactersError(field: string, value: string | null | undefined): BrokerError | null {
  const v = value ?? "";
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return refuse("nameCharacters", field, shown(v), `U+${c.toString(16).toUpperCase().padStart(4, "0")} at position ${i}`);
  }
  return null;
}

function stringBytesError(field: string, value: string | null | undefined, limit: number): BrokerError | null {
  const v = value ?? "";
  // A UTF-16 unit is at most 3 UTF-8 bytes: short strings need no count.
  if (v.length * 3 <= limit) return null;
  const bytes = utf8Bytes(v);
  return bytes > limit ? refuse("maxPropertyStringBytes", field, bytes, limit) : null;
}

function valueBytes(v: HeaderValue | null | undefined): number {
  if (v == null) return 0;
  if (v.stringValue != null) return utf8Bytes(v.stringValue);
  if (v.bytesValue != null) return v.bytesValue.byteLength + utf8Bytes(v.amqpType ?? "");
  if (v.amqpField != null) return v.amqpField.byteLength;
  if (v.boolValue != null) return 1;
  return v.intValue != null || v.doubleValue != null ? 8 : 0;
}

/** Bytes a table of headers or arguments carries: keys and values, numbers at 8. */
function headersBytes(hs: readonly Header[]): number {
  let n = 0;
  for (const h of hs) n += utf8Bytes(h.key ?? "") + valueBytes(h.value);
  return n;
}

function headerValuesError(field: string, hs: readonly Header[], limits: Readonly<RequestLimitSettings>): BrokerError | null {
  for (let i = 0; i < hs.length; i++) {
    const h = hs[i] as Header;
    const bytes = valueBytes(h.value);
    if (bytes > limits.maxHeaderValueBytes) return refuse("maxHeaderValueBytes", `${field}[${i}] ${shown(h.key ?? "")}`, bytes, limits.maxHeaderValueBytes);
  }
  return null;
}

function argumentsError(field: string, args: readonly Header[] | null | undefined, limits: Readonly<RequestLimitSettings>): BrokerError | null {
  const hs = args ?? [];
  const e = headerValuesError(field, hs, limits);
  if (e !== null) return e;
  const bytes = headersBytes(hs);
  return bytes > limits.maxArgumentsBytes ? refuse("maxArgumentsBytes", field, bytes, limits.maxArgumentsBytes) : null;
}

const propertyStrings = [
  ["contentType", "content_type"],
  ["contentEncoding", "content_encoding"],
  ["correlationId", "correlation_id"],
  ["replyTo", "reply_to"],
  ["expiration", "expiration"],
  ["messageId", "message_id"],
  ["type", "type"],
  ["userId", "user_id"],
  ["appId", "app_id"],
] as const;

function deathsError(deaths: readonly Death[], limits: Readonly<RequestLimitSettings>): BrokerError | null {
  if (deaths.length > limits.maxDeaths) return refuse("maxDeaths", "properties.deaths", deaths.length, limits.maxDeaths);
  for (let i = 0; i < deaths.length; i++) {
    const d = deaths[i] as Death;
    const at = `properties.deaths[${i}]`;
    const keys = d.routingKeys ?? [];
    if (keys.length > limits.maxDeathRoutingKeys) return refuse("maxDeathRoutingKeys", `${at}.routing_keys`, keys.length, limits.maxDeathRoutingKeys);
    const e =
      stringBytesError(`${at}.queue`, d.queue, limits.maxPropertyStringBytes) ??
      stringBytesError(`${at}.reason`, d.reason, limits.maxPropertyStringBytes) ??
      stringBytesError(`${at}.exchange`, d.exchange, limits.maxPropertyStringBytes) ??
      stringBytesError(`${at}.original_expiration`, d.originalExpiration, limits.maxPropertyStringBytes);
    if (e !== null) return e;
    for (let k = 0; k < keys.length; k++) {
      const ke = stringBytesError(`${at}.routing_keys[${k}]`, keys[k], limits.maxPropertyStringBytes);
      if (ke !== null) return ke;
    }
  }
  return null;
}

/** The whole message's size as messageOverheadBytes counts it (see its row). */
export function messageBytes(p: Publish): number {
  const props = p.properties ?? {};
  let n = (p.body?.byteLength ?? 0) + utf8Bytes(p.exchange ?? "") + utf8Bytes(p.routingKey ?? "") + utf8Bytes(p.producerId ?? "");
  for (const [key] of propertyStrings) n += utf8Bytes(props[key] ?? "");
  n += headersBytes(props.headers ?? []);
  for (const d of props.deaths ?? []) {
    n += utf8Bytes(d.queue ?? "") + utf8Bytes(d.reason ?? "") + utf8Bytes(d.exchange ?? "") + utf8Bytes(d.originalExpiration ?? "") + 16;
    for (const k of d.routingKeys ?? []) n += utf8Bytes(k);
  }
  return n;
}

function publishError(p: Publish, limits: Readonly<BrokerLimits>): BrokerError | null {
  const props = p.properties ?? {};
  // Counts first: they bound the work of the loops below.
  const e = nameCharactersError("producer id", p.producerId) ?? deathsError(props.deaths ?? [], limits);
  if (e !== null) return e;
  for (const [key, field] of propertyStrings) {
    const pe = stringBytesError(`properties.${field}`, props[key], limits.maxPropertyStringBytes);
    if (pe !== null) return pe;
  }
  const he = headerValuesError("properties.headers", props.headers ?? [], limits);
  if (he !== null) return he;
  const limit = limits.maxMessageBytes + limits.messageOverheadBytes;
  const bytes = messageBytes(p);
  return bytes > limit ? refuse("messageOverheadBytes", "the message", bytes, limit) : null;
}

/**
 * Why `command` goes beyond what a client request may carry, or null. Runs before validateCommand,
 * which checks the broker's rows of the table; `limits` are the cluster's settings in force.
 */
export function requestLimitError(command: Command, limits: Readonly<BrokerLimits>): BrokerError | null {
  const kind = commandKind(command);
  switch (kind) {
    case "declareExchange": {
      const c = command.declareExchange ?? {};
      if (c.passive) return null;
      return nameCharactersError("exchange name", c.name) ?? nameCharactersError("alternate exchange", c.alternateExchange);
    }
    case "declareQueue": {
      const c = command.declareQueue ?? {};
      if (c.passive) return null;
      const a = c.arguments ?? {};
      return (
        nameCharactersError("queue name", c.name) ??
        nameCharactersError("x-dead-letter-exchange", a.deadLetterExchange) ??
        nameCharactersError("x-dead-letter-routing-key", a.deadLetterRoutingKey)
      );
    }
    case "bind": {
      const c = command.bind ?? {};
      return nameCharactersError("routing key", c.routingKey) ?? argumentsError("binding arguments", c.arguments, limits);
    }
    case "publish":
      return publishError(command.publish ?? {}, limits);
    case "subscribe": {
      const c = command.subscribe ?? {};
      return nameCharactersError("consumer tag", c.consumerTag) ?? argumentsError("consumer arguments", c.arguments, limits);
    }
    default:
      // References to what exists (unbind, delete, cancel, settle, ...) and commands the node makes.
      return null;
  }
}
