// Stateless checks of a command: the node runs them before proposing so nothing invalid enters the
// log, and apply runs them again so a bad entry is answered with an error, never applied.
import { int64 } from "./proto-int.ts";
import { raftmq } from "@raftmq/proto";
import { type BrokerError, invalidArgument } from "./broker-error.ts";
import { settingsError } from "./cluster-settings.ts";
import { parseXMatch } from "./headers-match.ts";
import { accessLimits, type BrokerLimits } from "./limits.ts";
import { MACHINE_VERSION } from "./machine-version.ts";

export type Command = raftmq.v1.Command.$Properties;
type Header = raftmq.v1.Header.$Properties;

export type CommandKind = NonNullable<raftmq.v1.Command["kind"]>;

/** The commands of users, vhosts and permissions (state-machine version 2). */
export const accessCommandKinds: readonly CommandKind[] = [
  "addUser",
  "deleteUser",
  "setPasswordHash",
  "setUserTags",
  "addVhost",
  "deleteVhost",
  "setPermissions",
  "clearPermissions",
];

const kinds: readonly CommandKind[] = [
  "declareExchange",
  "deleteExchange",
  "declareQueue",
  "deleteQueue",
  "purgeQueue",
  "bind",
  "unbind",
  "publish",
  "subscribe",
  "cancel",
  "setPrefetch",
  "ack",
  "nack",
  "reject",
  "get",
  "consumerDown",
  "sessionDown",
  "tick",
  "leaderTookOffice",
  "setClusterSettings",
  ...accessCommandKinds,
  "ackTags",
];

const kindSet: ReadonlySet<string> = new Set(kinds);

/**
 * The operation a command carries, or null when it carries none or more than one. Only own
 * properties count: a decoded command holds just the fields on the wire (the defaults live on
 * its prototype), and one built in code just those it names, so this looks at one key, not at
 * every kind, on each of the several checks a command goes through.
 */
export function commandKind(command: Command): CommandKind | null {
  let found: CommandKind | null = null;
  for (const k of Object.keys(command)) {
    if (!kindSet.has(k) || command[k as CommandKind] == null) continue;
    if (found !== null) return null;
    found = k as CommandKind;
  }
  return found;
}

/** The vhost field of a command that has one ("" when unset), or "" for kinds without one. */
export function commandVhostField(kind: CommandKind, command: Command): string {
  switch (kind) {
    case "declareExchange":
    case "deleteExchange":
    case "declareQueue":
    case "deleteQueue":
    case "purgeQueue":
    case "bind":
    case "unbind":
    case "publish":
    case "subscribe":
    case "get":
      return command[kind]?.vhost ?? "";
    default:
      return "";
  }
}

const utf8 = new TextEncoder();
const MAX_INT32 = 2 ** 31 - 1;
/** Delivery tags in one AckTags command at most. */
export const MAX_ACK_TAGS = 4096;

function nameError(what: string, value: string | null | undefined, limits: BrokerLimits, required: boolean): BrokerError | null {
  const v = value ?? "";
  if (required && v === "") return invalidArgument(`${what} must not be empty`);
  // Byte length, like AMQP's shortstr; only long strings need the exact count.
  if (v.length > limits.maxNameLength / 3 && utf8.encode(v).byteLength > limits.maxNameLength) {
    return invalidArgument(`${what} "${v.slice(0, 32)}…" is longer than ${limits.maxNameLength} bytes`);
  }
  return null;
}

/** Position of the first control character (U+0000 to U+001F, U+007F), or -1. */
function controlCharacterAt(v: string): number {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return i;
  }
  return -1;
}

function codePoint(v: string, at: number): string {
  return `U+${(v.codePointAt(at) ?? 0).toString(16).toUpperCase().padStart(4, "0")}`;
}

function shown(v: string): string {
  return JSON.stringify(v.length > 32 ? `${v.slice(0, 32)}…` : v);
}

/** User and vhost names: 1 to 255 UTF-8 bytes, no control characters. "" passes unless required. */
function accessNameError(what: string, value: string | null | undefined, required: boolean): BrokerError | null {
  const v = value ?? "";
  if (v === "") return required ? invalidArgument(`${what} must not be empty`) : null;
  const bytes = utf8.encode(v).byteLength;
  if (bytes > accessLimits.maxNameBytes) return invalidArgument(`${what} ${shown(v)} must be at most ${accessLimits.maxNameBytes} UTF-8 bytes, got ${bytes}`);
  const at = controlCharacterAt(v);
  if (at >= 0) return invalidArgument(`${what} ${shown(v)} must not contain control characters (U+0000 to U+001F, U+007F): ${codePoint(v, at)} at position ${at}`);
  return null;
}

function passwordHashError(value: string | null | undefined): BrokerError | null {
  const v = value ?? "";
  if (v.length > accessLimits.maxPasswordHashBytes) {
    return invalidArgument(`password hash must be at most ${accessLimits.maxPasswordHashBytes} bytes, got ${utf8.encode(v).byteLength}`);
  }
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return invalidArgument(`password hash must be printable ASCII (U+0020 to U+007E): ${codePoint(v, i)} at position ${i}`);
  }
  return null;
}

function tagsError(tags: readonly string[] | null | undefined): BrokerError | null {
  const ts = tags ?? [];
  if (ts.length > accessLimits.maxTags) return invalidArgument(`a user has at most ${accessLimits.maxTags} tags, got ${ts.length}`);
  for (const t of ts) {
    const bytes = utf8.encode(t).byteLength;
    if (bytes < 1 || bytes > accessLimits.maxTagBytes) return invalidArgument(`user tag ${shown(t)} must be 1 to ${accessLimits.maxTagBytes} UTF-8 bytes, got ${bytes}`);
    const at = controlCharacterAt(t);
    if (at >= 0) return invalidArgument(`user tag ${shown(t)} must not contain control characters: ${codePoint(t, at)} at position ${at}`);
  }
  return null;
}

/** A permission must compile as a JavaScript regular expression (no flags); "" matches nothing. */
function patternError(what: string, value: string | null | undefined): BrokerError | null {
  const v = value ?? "";
  const bytes = utf8.encode(v).byteLength;
  if (bytes > accessLimits.maxPatternBytes) return invalidArgument(`${what} pattern must be at most ${accessLimits.maxPatternBytes} UTF-8 bytes, got ${bytes}`);
  try {
    new RegExp(v);
  } catch (err) {
    return invalidArgument(`${what} pattern ${shown(v)} is not a JavaScript regular expression: ${err instanceof Error ? err.message : String(err)}`);
  }
  return null;
}

function headersError(what: string, headers: readonly Header[] | null | undefined, limits: BrokerLimits): BrokerError | null {
  const hs = headers ?? [];
  if (hs.length > limits.maxHeaders) {
    return invalidArgument(`${what} has ${hs.length} entries; the limit is ${limits.maxHeaders}`);
  }
  for (const h of hs) {
    const e = nameError(`${what} key`, h.key, limits, true);
    if (e !== null) return e;
  }
  return null;
}

function optionalNonNegative(what: string, v: number | null | undefined, max = Number.MAX_SAFE_INTEGER): BrokerError | null {
  if (v == null) return null;
  if (!Number.isSafeInteger(v) || v < 0 || v > max) return invalidArgument(`${what} must be an integer in [0, ${max}], got ${v}`);
  return null;
}

/** Parses an AMQP expiration property: a non-negative integer of milliseconds as a string. */
export function parseExpiration(expiration: string | null | undefined): number | null {
  if (expiration == null || expiration === "") return null;
  if (!/^\d{1,10}$/.test(expiration)) return Number.NaN;
  return Number(expiration);
}

function settleTargetError(c: { consumerId?: string | null; sessionId?: string | null; deliveryTag?: number | null }, limits: BrokerLimits): BrokerError | null {
  const byConsumer = (c.consumerId ?? "") !== "";
  const bySession = (c.sessionId ?? "") !== "";
  if (byConsumer === bySession) return invalidArgument("exactly one of consumer_id and session_id must be set");
  return (
    nameError("consumer_id", c.consumerId, limits, false) ??
    nameError("session_id", c.sessionId, limits, false) ??
    optionalNonNegative("delivery_tag", int64(c.deliveryTag))
  );
}

/**
 * A binding's destination is exactly one of a queue (a non-empty `queue`) and an exchange (a
 * `destination_exchange` that is set; set to "" it names the default exchange, which apply
 * refuses as RabbitMQ does).
 */
function bindingDestinationError(kind: "bind" | "unbind", queue: string | null | undefined, destinationExchange: string | null | undefined): BrokerError | null {
  const toQueue = (queue ?? "") !== "";
  const toExchange = destinationExchange != null;
  if (toQueue && toExchange) {
    return invalidArgument(`${kind} names both queue "${queue}" and destination_exchange "${destinationExchange}": a binding has exactly one destination, a queue or an exchange`);
  }
  if (!toQueue && !toExchange) return invalidArgument(`${kind} needs a destination: a queue name, or a destination_exchange for a binding to an exchange`);
  return null;
}

export function validateCommand(command: Command, limits: BrokerLimits): BrokerError | null {
  const kind = commandKind(command);
  return kind === null ? noOperationError() : validateCommandOfKind(kind, command, limits);
}

/** The error for a command whose oneof carries no operation (or, in code-built objects, several). */
export function noOperationError(): BrokerError {
  return invalidArgument("a command must carry exactly one operation");
}

/** validateCommand for a caller that already knows the command's kind. */
export function validateCommandOfKind(kind: CommandKind, command: Command, limits: BrokerLimits): BrokerError | null {
  switch (kind) {
    case "declareExchange": {
      const c = command.declareExchange ?? {};
      const t = c.type ?? 0;
      if (!c.passive && (t < 1 || t > 4)) return invalidArgument(`exchange "${c.name ?? ""}" needs a type: direct, fanout, topic or headers`);
      return (
        nameError("exchange name", c.name, limits, false) ??
        nameError("alternate exchange", c.alternateExchange, limits, false) ??
        accessNameError("vhost", c.vhost, false)
      );
    }
    case "deleteExchange":
      return nameError("exchange name", command.deleteExchange?.name, limits, true) ?? accessNameError("vhost", command.deleteExchange?.vhost, false);
    case "declareQueue": {
      const c = command.declareQueue ?? {};
      const a = c.arguments ?? {};
      if (c.exclusive && (c.ownerSessionId ?? "") === "") return invalidArgument(`exclusive queue "${c.name ?? ""}" needs an owner session id`);
      const qt = a.queueType ?? "";
      if (qt !== "" && qt !== "quorum") return invalidArgument(`x-queue-type "${qt}" is not supported: only "quorum"`);
      const ov = a.overflow ?? 0;
      if (ov !== raftmq.v1.Overflow.OVERFLOW_DROP_HEAD && ov !== raftmq.v1.Overflow.OVERFLOW_REJECT_PUBLISH) {
        return invalidArgument(`x-overflow ${ov} is not supported: drop-head or reject-publish`);
      }
      if (a.expiresMs != null && a.expiresMs < 1) return invalidArgument("x-expires must be at least 1 ms");
      return (
        nameError("queue name", c.name, limits, false) ??
        nameError("owner session id", c.ownerSessionId, limits, false) ??
        optionalNonNegative("x-message-ttl", a.messageTtlMs, 2 ** 32 - 1) ??
        optionalNonNegative("x-expires", a.expiresMs, 2 ** 32 - 1) ??
        optionalNonNegative("x-max-length", a.maxLength) ??
        optionalNonNegative("x-max-length-bytes", a.maxLengthBytes) ??
        optionalNonNegative("x-delivery-limit", a.deliveryLimit) ??
        nameError("x-dead-letter-exchange", a.deadLetterExchange, limits, false) ??
        nameError("x-dead-letter-routing-key", a.deadLetterRoutingKey, limits, false) ??
        accessNameError("vhost", c.vhost, false)
      );
    }
    case "deleteQueue":
      return nameError("queue name", command.deleteQueue?.name, limits, true) ?? accessNameError("vhost", command.deleteQueue?.vhost, false);
    case "purgeQueue":
      return nameError("queue name", command.purgeQueue?.name, limits, true) ?? accessNameError("vhost", command.purgeQueue?.vhost, false);
    case "bind":
    case "unbind": {
      const c = (kind === "bind" ? command.bind : command.unbind) ?? {};
      const destinationError = bindingDestinationError(kind, c.queue, c.destinationExchange);
      if (destinationError !== null) return destinationError;
      const e =
        nameError("exchange name", c.exchange, limits, true) ??
        nameError("queue name", c.queue, limits, false) ??
        nameError("destination exchange name", c.destinationExchange, limits, false) ??
        nameError("routing key", c.routingKey, limits, false) ??
        headersError("binding arguments", c.arguments, limits) ??
        accessNameError("vhost", c.vhost, false);
      if (e !== null) return e;
      if (parseXMatch(c.arguments ?? []) === null) return invalidArgument("x-match must be one of all, any, all-with-x, any-with-x");
      return null;
    }
    case "publish": {
      const c = command.publish ?? {};
      const size = c.body?.byteLength ?? 0;
      if (size > limits.maxMessageBytes) {
        return invalidArgument(`message body of ${size} bytes exceeds the limit of ${limits.maxMessageBytes} bytes`);
      }
      const p = c.properties ?? {};
      const exp = parseExpiration(p.expiration);
      if (exp !== null && Number.isNaN(exp)) return invalidArgument(`expiration "${p.expiration}" must be a non-negative integer of milliseconds`);
      if ((p.deliveryMode ?? 0) > 2) return invalidArgument(`delivery_mode ${p.deliveryMode} must be 1 (transient) or 2 (persistent)`);
      if ((p.priority ?? 0) > 255) return invalidArgument(`priority ${p.priority} must be at most 255`);
      return (
        nameError("exchange name", c.exchange, limits, false) ??
        nameError("routing key", c.routingKey, limits, false) ??
        nameError("producer id", c.producerId, limits, false) ??
        optionalNonNegative("sequence", int64(c.sequence)) ??
        headersError("message headers", p.headers, limits) ??
        accessNameError("vhost", c.vhost, false)
      );
    }
    case "subscribe": {
      const c = command.subscribe ?? {};
      return (
        nameError("consumer id", c.consumerId, limits, true) ??
        nameError("session id", c.sessionId, limits, true) ??
        nameError("queue name", c.queue, limits, true) ??
        nameError("consumer tag", c.consumerTag, limits, false) ??
        optionalNonNegative("prefetch", c.prefetch, MAX_INT32) ??
        headersError("consumer arguments", c.arguments, limits) ??
        accessNameError("vhost", c.vhost, false)
      );
    }
    case "cancel":
      return nameError("consumer id", command.cancel?.consumerId, limits, true);
    case "setPrefetch":
      return nameError("consumer id", command.setPrefetch?.consumerId, limits, true) ?? optionalNonNegative("prefetch", command.setPrefetch?.prefetch, MAX_INT32);
    case "ack":
      return settleTargetError(command.ack ?? {}, limits);
    case "nack":
      return settleTargetError(command.nack ?? {}, limits);
    case "ackTags": {
      const c = command.ackTags ?? {};
      const tags = c.deliveryTags ?? [];
      if (tags.length === 0) return invalidArgument("ack_tags needs at least one delivery tag");
      if (tags.length > MAX_ACK_TAGS) return invalidArgument(`ack_tags carries ${tags.length} delivery tags; at most ${MAX_ACK_TAGS}`);
      for (const t of tags) if (int64(t) === 0) return invalidArgument("ack_tags names delivery tag 0; tags start at 1");
      return nameError("consumer id", c.consumerId, limits, true);
    }
    case "reject": {
      const c = command.reject ?? {};
      if (int64(c.deliveryTag) === 0) return invalidArgument("reject needs a delivery tag");
      return settleTargetError(c, limits);
    }
    case "get": {
      const c = command.get ?? {};
      return nameError("queue name", c.queue, limits, true) ?? nameError("session id", c.sessionId, limits, !c.noAck) ?? accessNameError("vhost", c.vhost, false);
    }
    case "consumerDown":
      return nameError("consumer id", command.consumerDown?.consumerId, limits, true);
    case "sessionDown":
      return nameError("session id", command.sessionDown?.sessionId, limits, true);
    case "tick":
    case "leaderTookOffice":
      return null;
    case "setClusterSettings": {
      const c = command.setClusterSettings ?? {};
      const version = c.machineVersion ?? 0;
      if (version < 1) return invalidArgument("set_cluster_settings needs a machine_version: the state-machine version the settings are meant under");
      // Apply stops the node on such an entry (Broker.apply) before it gets here; this refuses it at the edge.
      if (version > MACHINE_VERSION) {
        return invalidArgument(`machine_version ${version} is newer than this node applies (up to ${MACHINE_VERSION}): upgrade every node first`);
      }
      return settingsError(c.settings, version);
    }
    case "addUser": {
      const c = command.addUser ?? {};
      // Basic credentials are "name:password": a name with a colon could never log in with one.
      if ((c.name ?? "").includes(":")) return invalidArgument(`user name ${JSON.stringify(c.name)} contains ":", which separates the name from the password in Basic credentials`);
      return accessNameError("user name", c.name, true) ?? passwordHashError(c.passwordHash) ?? tagsError(c.tags);
    }
    case "deleteUser":
      return accessNameError("user name", command.deleteUser?.name, true);
    case "setPasswordHash":
      return accessNameError("user name", command.setPasswordHash?.name, true) ?? passwordHashError(command.setPasswordHash?.passwordHash);
    case "setUserTags":
      return accessNameError("user name", command.setUserTags?.name, true) ?? tagsError(command.setUserTags?.tags);
    case "addVhost":
      return accessNameError("vhost name", command.addVhost?.name, true);
    case "deleteVhost":
      return accessNameError("vhost name", command.deleteVhost?.name, true);
    case "setPermissions": {
      const c = command.setPermissions ?? {};
      return (
        accessNameError("user name", c.user, true) ??
        accessNameError("vhost name", c.vhost, true) ??
        patternError("configure", c.configure) ??
        patternError("write", c.write) ??
        patternError("read", c.read)
      );
    }
    case "clearPermissions":
      return accessNameError("user name", command.clearPermissions?.user, true) ?? accessNameError("vhost name", command.clearPermissions?.vhost, true);
    default: {
      const never: never = kind;
      return invalidArgument(`unknown command ${String(never)}`);
    }
  }
}
