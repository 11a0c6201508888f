// Every limit on what comes into a node, in one table: docs/input-limits.md shows it, generated
// from here, and each row takes its default from the code that enforces it.
import { accessLimits, type BrokerLimits, defaultLimits, limitRanges } from "@raftmq/broker";
import { MAX_AUTHORIZATION_LENGTH } from "./access/basic-authorization.ts";
import { MAX_PASSWORD_BYTES } from "./access-service.ts";
import { NODE_OPTIONS, type NodeConfig } from "./node-config.ts";
import { MAX_GRPC_MESSAGE_BYTES, MAX_SESSIONS } from "./raftmq-node.ts";
import { REQUEST_LIMITS, type RequestLimitRow } from "./request-limits.ts";

/** HPACK (nghttp2) refuses any one header field larger than this, whatever the header-list limit. */
export const HPACK_MAX_FIELD_BYTES = 64 * 1024;

/** Levels of message nesting in the deepest request of the schema (proto/raftmq/v1), counting the request itself; no message contains itself. */
export const SCHEMA_MAX_DEPTH = 5;

type Unit = "bytes" | "UTF-8 bytes" | "entries" | "messages" | "calls" | "requests" | "streams" | "commands" | "ms" | "levels" | "users" | "vhosts" | "rule";

export interface LimitTableRow {
  readonly name: string;
  readonly default: number | string;
  readonly unit: Unit;
  readonly setBy: { readonly setting: keyof BrokerLimits } | { readonly option: string } | "fixed";
  readonly bounds: string;
  readonly checkedBy: "front end" | "broker" | "HTTP/2 layer" | "gRPC layer" | "node";
  /** The status and text a client gets, or what happens instead. */
  readonly error: string;
}

function requestRow(r: RequestLimitRow): LimitTableRow {
  return { name: r.name, default: r.default, unit: r.unit, setBy: r.setting === undefined ? "fixed" : { setting: r.setting }, bounds: r.bounds, checkedBy: r.checkedBy, error: `INVALID_ARGUMENT: \`${r.error}\`` };
}

type SettingRow = Omit<LimitTableRow, "name" | "default" | "setBy"> & { setting: keyof BrokerLimits };

// The cluster settings no request row above covers; their values in force are applied by the broker.
const SETTING_ROWS: readonly SettingRow[] = [
  { setting: "maxQueues", unit: "entries", bounds: "Queues across all vhosts.", checkedBy: "broker", error: 'RESOURCE_EXHAUSTED: `cannot declare queue "{name}": the broker holds its limit of {limit} queues`' },
  {
    setting: "maxExchanges",
    unit: "entries",
    bounds: "Exchanges across all vhosts, the predeclared ones included.",
    checkedBy: "broker",
    error: 'RESOURCE_EXHAUSTED: `cannot declare exchange "{name}": the broker holds its limit of {limit} exchanges`',
  },
  {
    setting: "maxBindings",
    unit: "entries",
    bounds: "Bindings across all exchanges.",
    checkedBy: "broker",
    error: 'RESOURCE_EXHAUSTED: `cannot bind queue "{queue}" to exchange "{exchange}": the broker holds its limit of {limit} bindings` (`exchange "{destination}"` instead of the queue for a binding to an exchange)',
  },
  { setting: "maxConsumersPerQueue", unit: "entries", bounds: "Consumers of one queue.", checkedBy: "broker", error: 'RESOURCE_EXHAUSTED: `queue "{queue}" has its limit of {limit} consumers`' },
  {
    setting: "maxUnackedPerConsumer",
    unit: "messages",
    bounds: "Unacknowledged deliveries of a consumer with prefetch 0, and unsettled gets of one session.",
    checkedBy: "broker",
    error: 'none for deliveries (they wait); RESOURCE_EXHAUSTED `session "{id}" holds {n} unsettled gets, its limit` for a get',
  },
  { setting: "maxNoAckDeliveriesPerApply", unit: "messages", bounds: "Deliveries one apply makes to one no_ack consumer.", checkedBy: "broker", error: "none: the rest follow on later applies" },
  {
    setting: "dedupWindow",
    unit: "entries",
    bounds: "Sequences remembered per idempotent producer.",
    checkedBy: "broker",
    error: "confirm status OUTCOME_UNKNOWN (not enqueued now; whether an earlier attempt was cannot be known) for a retry older than the window",
  },
  {
    setting: "maxProducers",
    unit: "entries",
    bounds: "Idempotent producers remembered at once.",
    checkedBy: "broker",
    error: "none: the least recently seen is forgotten; a later resend of it marked `retry` gets confirm status OUTCOME_UNKNOWN, an unmarked one is enqueued as new",
  },
  {
    setting: "producerIdleMs",
    unit: "ms",
    bounds: "Log time after which an unseen producer is forgotten.",
    checkedBy: "broker",
    error: "none: the producer is forgotten; a later resend of it marked `retry` gets confirm status OUTCOME_UNKNOWN, an unmarked one is enqueued as new",
  },
  { setting: "timerIntervalMs", unit: "ms", bounds: "Log time between sweeps of every queue for TTL and x-expires.", checkedBy: "broker", error: "none" },
];

function settingRow(r: SettingRow): LimitTableRow {
  const { setting, ...rest } = r;
  return { name: setting, default: defaultLimits[setting], setBy: { setting }, ...rest };
}

type OptionRow = Omit<LimitTableRow, "default" | "setBy" | "bounds" | "name"> & { option: keyof NodeConfig; bounds?: string };

// Node options: each node's own, read at start. Their defaults and descriptions are the options' own.
const OPTION_ROWS: readonly OptionRow[] = [
  {
    option: "maxMetadataBytes",
    unit: "bytes",
    checkedBy: "HTTP/2 layer",
    error: 'RESOURCE_EXHAUSTED with grpc-js\' generic text `Bandwidth exhausted or memory limit exceeded` (RST_STREAM ENHANCE_YOUR_CALM): the node refuses the header block unread, so no gRPC status of its own can be sent',
  },
  { option: "maxStreamsPerConnection", unit: "calls", checkedBy: "HTTP/2 layer", error: "none: further calls wait in the client until one ends (a deadline then gives DEADLINE_EXCEEDED)" },
  {
    option: "publishStreamWindow",
    unit: "requests",
    checkedBy: "node",
    error: "RESOURCE_EXHAUSTED: `more than {limit} publish requests awaiting confirms on one stream; wait for confirms before sending more`",
  },
  {
    option: "consumeMaxPendingBytes",
    unit: "bytes",
    checkedBy: "node",
    error: "RESOURCE_EXHAUSTED: `slow consumer: {n} bytes of deliveries wait to be sent on this stream, over its limit of {limit} (consume-max-pending-bytes); …`",
  },
  {
    option: "maxPendingCommands",
    unit: "commands",
    checkedBy: "node",
    error: "RESOURCE_EXHAUSTED: `the leader has {n} commands waiting for commit (limit {limit}); slow down and retry`",
  },
  { option: "clientKeepaliveMs", unit: "ms", checkedBy: "HTTP/2 layer", error: "none: a ping" },
  { option: "clientKeepaliveTimeoutMs", unit: "ms", checkedBy: "HTTP/2 layer", error: "the connection is closed: its calls end UNAVAILABLE" },
  { option: "consumerTimeoutMs", unit: "ms", checkedBy: "node", error: "FAILED_PRECONDITION ends the Consume stream; what it held is requeued" },
];

function optionRow(r: OptionRow): LimitTableRow {
  const spec = NODE_OPTIONS.find((s) => s.key === r.option);
  if (spec === undefined) throw new Error(`limits table: no node option ${r.option}`);
  const { option, bounds, ...rest } = r;
  const n = Number(spec.defaultText);
  return { name: option, default: spec.defaultText !== "" && Number.isSafeInteger(n) ? n : spec.defaultText, setBy: { option: spec.name }, bounds: bounds ?? `${spec.description.charAt(0).toUpperCase()}${spec.description.slice(1)}.`, ...rest };
}

// Fixed in code: a change is a new release (and, for the broker's, a new machine version).
const FIXED_ROWS: readonly LimitTableRow[] = [
  {
    name: "hpackFieldBytes",
    default: HPACK_MAX_FIELD_BYTES,
    unit: "bytes",
    setBy: "fixed",
    bounds: "One metadata entry (name and value), by HTTP/2's header compression (nghttp2) in Node, before maxMetadataBytes is looked at.",
    checkedBy: "HTTP/2 layer",
    error: "the client's connection is closed with COMPRESSION_ERROR; grpc-js reports INTERNAL `Received RST_STREAM with code 9` (or code 2) for its calls",
  },
  {
    name: "maxGrpcMessageBytes",
    default: MAX_GRPC_MESSAGE_BYTES,
    unit: "bytes",
    setBy: "fixed",
    bounds: "One request message (a Publish request with all its messages, one stream message) on the client port.",
    checkedBy: "gRPC layer",
    error: "RESOURCE_EXHAUSTED: `Received message larger than max ({got} vs {limit})`",
  },
  {
    name: "schemaDepth",
    default: SCHEMA_MAX_DEPTH,
    unit: "levels",
    setBy: "fixed",
    bounds: "Nesting of a request: fixed by the schema, in which no message type contains itself, so decoding needs no depth limit.",
    checkedBy: "gRPC layer",
    error: "none: deeper input does not decode (INVALID_ARGUMENT, malformed request)",
  },
  {
    name: "maxAuthorizationBytes",
    default: MAX_AUTHORIZATION_LENGTH,
    unit: "bytes",
    setBy: "fixed",
    bounds: "The `authorization` metadata value (Basic credentials).",
    checkedBy: "node",
    error: "UNAUTHENTICATED (malformed authorization)",
  },
  {
    name: "maxPasswordBytes",
    default: MAX_PASSWORD_BYTES,
    unit: "bytes",
    setBy: "fixed",
    bounds: "A password given to AddUser or ChangePassword.",
    checkedBy: "front end",
    error: "INVALID_ARGUMENT: `a password is at most {limit} bytes`",
  },
  { name: "maxUsers", default: accessLimits.maxUsers, unit: "users", setBy: "fixed", bounds: "Users of the cluster.", checkedBy: "broker", error: 'RESOURCE_EXHAUSTED: `cannot add user "{name}": the broker holds its limit of {limit} users`' },
  { name: "maxVhosts", default: accessLimits.maxVhosts, unit: "vhosts", setBy: "fixed", bounds: "Virtual hosts of the cluster.", checkedBy: "broker", error: 'RESOURCE_EXHAUSTED: `cannot add vhost "{name}": the broker holds its limit of {limit} vhosts`' },
  { name: "maxTags", default: accessLimits.maxTags, unit: "entries", setBy: "fixed", bounds: "Tags of one user.", checkedBy: "broker", error: "INVALID_ARGUMENT: `a user has at most {limit} tags, got {got}`" },
  { name: "maxTagBytes", default: accessLimits.maxTagBytes, unit: "UTF-8 bytes", setBy: "fixed", bounds: "One user tag.", checkedBy: "broker", error: "INVALID_ARGUMENT: `user tag {tag} must be 1 to {limit} UTF-8 bytes, got {got}`" },
  {
    name: "maxPatternBytes",
    default: accessLimits.maxPatternBytes,
    unit: "UTF-8 bytes",
    setBy: "fixed",
    bounds: "One permission pattern (configure, write, read).",
    checkedBy: "broker",
    error: "INVALID_ARGUMENT: `{what} pattern must be at most {limit} UTF-8 bytes, got {got}`",
  },
  {
    name: "maxConsumeSessions",
    default: MAX_SESSIONS,
    unit: "streams",
    setBy: "fixed",
    bounds: "Consume streams one node serves at once.",
    checkedBy: "node",
    error: "RESOURCE_EXHAUSTED: `this node has its limit of consuming sessions; retry later or on another cluster`",
  },
];

/** Every limit, one row each: a request's content, the other cluster settings, node options, fixed ones. */
export function limitsTable(): LimitTableRow[] {
  return [...REQUEST_LIMITS.map(requestRow), ...SETTING_ROWS.map(settingRow), ...OPTION_ROWS.map(optionRow), ...FIXED_ROWS];
}

/** The cluster settings every row names: each must appear once (limits-table tests). */
export function settingsInTable(): (keyof BrokerLimits)[] {
  return limitsTable().flatMap((r) => (typeof r.setBy === "object" && "setting" in r.setBy ? [r.setBy.setting] : []));
}

const KiB = 1024;

function cell(s: string): string {
  return s.replaceAll("|", "\\|").replaceAll("\n", " ");
}

function defaultCell(r: LimitTableRow): string {
  if (typeof r.default === "string") return r.default;
  const bytes = r.unit.endsWith("bytes") && r.default >= KiB && r.default % KiB === 0;
  const shown = bytes ? ` (${r.default % (KiB * KiB) === 0 ? `${r.default / KiB / KiB} MiB` : `${r.default / KiB} KiB`})` : "";
  return `${r.default} ${r.unit}${shown}`;
}

function setByCell(r: LimitTableRow): string {
  if (r.setBy === "fixed") return "fixed";
  if ("option" in r.setBy) return `node option \`--${r.setBy.option}\``;
  const { min, max } = limitRanges[r.setBy.setting];
  return `cluster setting \`${r.setBy.setting}\` (${min} to ${max})`;
}

/** The table as Markdown, for docs/input-limits.md. */
export function limitsMarkdown(): string {
  const lines = ["| Limit | Default | Set by | Bounds | Checked by | Error |", "| --- | --- | --- | --- | --- | --- |"];
  for (const r of limitsTable()) lines.push(`| \`${r.name}\` | ${cell(defaultCell(r))} | ${cell(setByCell(r))} | ${cell(r.bounds)} | ${r.checkedBy} | ${cell(r.error)} |`);
  return `${lines.join("\n")}\n`;
}
