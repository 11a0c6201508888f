// Every option of a node in one table: flag name, environment variable RAFTMQ_<NAME>, config-file
// key (the flag name), default, description and parser. Precedence: flag > env > file > default.
import { readFileSync } from "node:fs";
import { Command, Option } from "commander";
import { DEFAULT_CONSUME_MAX_PENDING_BYTES } from "./bounded-stream-writer.ts";
import { DEFAULT_MAX_METADATA_BYTES, FORWARDED_METADATA_HEADROOM_BYTES, MAX_METADATA_BYTES_RANGE } from "./http2-limits.ts";
import type { ClientCertAuth } from "./security/node-security.ts";
import {
  applyHostAlias,
  DEFAULT_INITIAL_CLUSTER_SIZE,
  MAX_INITIAL_CLUSTER_SIZE, parseHostAliases, resolveStatefulSetIdentity, type StatefulSetIdentity, StatefulSetIdentityError } from "./statefulset-identity.ts";

export class ConfigError extends Error {
  override name = "ConfigError";
}

export interface ClusterMemberAddress {
  id: number;
  peerAddress: string;
  clientAddress: string;
}

export type LogLevel = "trace" | "debug" | "info" | "warn" | "error" | "fatal" | "silent";

export interface NodeConfig {
  nodeId: number;
  dataDir: string;
  host: string;
  clientPort: number;
  peerPort: number;
  httpPort: number;
  advertiseHost: string;
  initialCluster: ClusterMemberAddress[];
  join: boolean;
  tickMs: number;
  electionTicks: number;
  heartbeatTicks: number;
  maxBatchBytes: number;
  maxBatchCommands: number;
  maxPendingCommands: number;
  snapshotEntries: number;
  snapshotBytes: number;
  snapshotKeepEntries: number;
  snapshotKeepBytes: number;
  /** Bytes of deliveries a Consume stream may have waiting to be sent; past it the stream is cut off. */
  consumeMaxPendingBytes: number;
  idleTickMs: number;
  learnerPromoteLag: number;
  shutdownTimeoutMs: number;
  logLevel: LogLevel;
  /** POD_NAME of a StatefulSet pod; when set, the node derives its id and cluster from it. */
  podName: string;
  podNamespace: string;
  initialClusterSize: number;
  peerHostTemplate: string;
  /** Host names dialed at another address instead (host -> IPv4), e.g. DNS names without DNS. */
  hostAlias: ReadonlyMap<string, string>;
  /**
   * Set when the node runs as a StatefulSet pod (pod-name given, node-id and initial-cluster not):
   * nodeId, initialCluster and join then hold the first-start values, which the startup decision
   * may still change.
   */
  statefulSet: StatefulSetIdentity | null;
  /** No TLS on any port and no authentication: only for development and tests. */
  insecure: boolean;
  tlsCaFile: string;
  tlsCertFile: string;
  tlsKeyFile: string;
  clientTlsCertFile: string;
  clientTlsKeyFile: string;
  clientTlsCaFile: string;
  clientCertAuth: ClientCertAuth;
  tlsRefreshMs: number;
  /** A plaintext client port on 127.0.0.1 beside the TLS one, or 0 for none. */
  clientPlaintextPort: number;
  /** AMQP 0-9-1 without TLS (on 127.0.0.1 only when TLS is on); 0 picks a free port, -1 serves none. */
  amqpPort: number;
  /** AMQP 0-9-1 over TLS; 0 picks a free port, -1 serves none (always with --insecure). */
  amqpsPort: number;
  bootstrapAdminUser: string;
  bootstrapAdminPasswordFile: string;
  /** Users who may log in only from a loopback address (RabbitMQ's loopback_users). */
  loopbackUsers: string[];
  /** Where audit events go: a file path, or "log" for the node's log. */
  auditLog: string;
  /** The node pings each client connection this often (HTTP/2 keepalive, as AMQP heartbeats). */
  clientKeepaliveMs: number;
  /** A client connection that does not answer a ping within this is closed and its streams end. */
  clientKeepaliveTimeoutMs: number;
  /** A delivery unacknowledged this long ends its consumer's stream (RabbitMQ's consumer_timeout); 0: never. */
  consumerTimeoutMs: number;
  /** The memory alarm is raised above this fraction of the container's (or machine's) memory. */
  memoryHighWatermark: number;
  /** The memory alarm's threshold in bytes when set (not 0), instead of a fraction of the limit. */
  memoryHighWatermarkBytes: number;
  /** The disk alarm is raised below this many free bytes on the data directory's filesystem. */
  diskFreeLimitBytes: number;
  /** How often the alarms' resources are read. */
  alarmCheckMs: number;
  /** Calls (streams) one client connection may have open at once (HTTP/2 max concurrent streams). */
  maxStreamsPerConnection: number;
  /** Bytes of metadata one call may carry on the client port, as HTTP/2 counts a header list. */
  maxMetadataBytes: number;
  /** Publish requests one PublishStream may have awaiting confirms. */
  publishStreamWindow: number;
}

/** The environment variable that holds the bootstrap administrator's password (never a flag). */
export const BOOTSTRAP_ADMIN_PASSWORD_ENV = "RAFTMQ_BOOTSTRAP_ADMIN_PASSWORD";

/** The default host template: pod `<set>-<n>` behind the headless Service `<set>-headless`. */
export const DEFAULT_PEER_HOST_TEMPLATE = "{statefulset}-{ordinal}.{statefulset}-headless.{namespace}.svc.cluster.local";

interface OptionSpec<K extends keyof NodeConfig> {
  key: K;
  name: string;
  description: string;
  /** As shown in --help and used when nothing else sets the option. */
  defaultText: string;
  parse: (raw: string) => NodeConfig[K];
  boolean?: boolean;
  /** Environment variables read after RAFTMQ_<NAME>, e.g. the downward API's POD_NAME. */
  alsoEnv?: readonly string[];
}

function integer(name: string, min: number, max = Number.MAX_SAFE_INTEGER): (raw: string) => number {
  return (raw) => {
    const trimmed = raw.trim();
    const value = Number(trimmed);
    if (trimmed === "" || !Number.isSafeInteger(value) || value < min || value > max) {
      throw new ConfigError(`${name} must be an integer in [${min}, ${max}], got ${JSON.stringify(raw)}`);
    }
    return value;
  };
}

/** A number in (0, 1]. */
function fraction(name: string): (raw: string) => number {
  return (raw) => {
    const trimmed = raw.trim();
    const value = Number(trimmed);
    if (trimmed === "" || !Number.isFinite(value) || value <= 0 || value > 1) throw new ConfigError(`${name} must be a fraction in (0, 1], got ${JSON.stringify(raw)}`);
    return value;
  };
}

function text(name: string): (raw: string) => string {
  return (raw) => {
    if (raw.trim() === "") throw new ConfigError(`${name} must not be empty`);
    return raw.trim();
  };
}

function boolean(name: string): (raw: string) => boolean {
  return (raw) => {
    const v = raw.trim().toLowerCase();
    if (v === "true" || v === "1" || v === "yes") return true;
    if (v === "false" || v === "0" || v === "no" || v === "") return false;
    throw new ConfigError(`${name} must be true or false, got ${JSON.stringify(raw)}`);
  };
}

const LOG_LEVELS: readonly LogLevel[] = ["trace", "debug", "info", "warn", "error", "fatal", "silent"];

function logLevel(raw: string): LogLevel {
  const v = raw.trim().toLowerCase();
  const found = LOG_LEVELS.find((l) => l === v);
  if (found === undefined) throw new ConfigError(`log-level must be one of ${LOG_LEVELS.join(", ")}, got ${JSON.stringify(raw)}`);
  return found;
}

const HOST_PORT = /^[A-Za-z0-9.\-_:[\]]+:\d{1,5}$/;

/** Parses `1=peerHost:peerPort/clientHost:clientPort,2=...`. */
export function parseInitialCluster(raw: string): ClusterMemberAddress[] {
  const trimmed = raw.trim();
  if (trimmed === "") return [];
  const members: ClusterMemberAddress[] = [];
  for (const part of trimmed.split(",")) {
    const match = /^\s*(\d+)\s*=\s*([^/\s]+)\/([^/\s]+)\s*$/.exec(part);
    if (match === null) {
      throw new ConfigError(`initial-cluster entry ${JSON.stringify(part)} must look like 1=peerHost:peerPort/clientHost:clientPort`);
    }
    const id = Number(match[1]);
    const peerAddress = match[2] ?? "";
    const clientAddress = match[3] ?? "";
    if (!Number.isSafeInteger(id) || id <= 0) throw new ConfigError(`initial-cluster: node id ${match[1]} must be a positive integer`);
    for (const address of [peerAddress, clientAddress]) {
      if (!HOST_PORT.test(address)) throw new ConfigError(`initial-cluster: ${JSON.stringify(address)} is not host:port`);
    }
    if (members.some((m) => m.id === id)) throw new ConfigError(`initial-cluster names node ${id} twice`);
    members.push({ id, peerAddress, clientAddress });
  }
  return members.sort((a, b) => a.id - b.id);
}

function formatInitialCluster(members: ClusterMemberAddress[]): string {
  return members.map((m) => `${m.id}=${m.peerAddress}/${m.clientAddress}`).join(",");
}

const MiB = 1024 * 1024;

type AnySpec = { [K in keyof NodeConfig]: OptionSpec<K> }[keyof NodeConfig];

export const NODE_OPTIONS: readonly AnySpec[] = [
  { key: "nodeId", name: "node-id", description: "this node's id, a positive integer unique in the cluster", defaultText: "1", parse: integer("node-id", 1) },
  { key: "dataDir", name: "data-dir", description: "directory of the Raft log and snapshots", defaultText: "data", parse: text("data-dir") },
  { key: "host", name: "host", description: "interface to listen on", defaultText: "127.0.0.1", parse: text("host") },
  { key: "clientPort", name: "client-port", description: "port of the client API (Broker, Cluster)", defaultText: "7600", parse: integer("client-port", 0, 65535) },
  { key: "peerPort", name: "peer-port", description: "port of the peer transport (Raft; also serves forwarded Broker/Cluster calls)", defaultText: "7700", parse: integer("peer-port", 0, 65535) },
  { key: "httpPort", name: "http-port", description: "port of /metrics, /healthz and /readyz", defaultText: "7800", parse: integer("http-port", 0, 65535) },
  { key: "advertiseHost", name: "advertise-host", description: "host other nodes and clients reach this node at (default: host)", defaultText: "", parse: (raw) => raw.trim() },
  {
    key: "initialCluster",
    name: "initial-cluster",
    description: "every member: 1=peerHost:peerPort/clientHost:clientPort,2=... (default: this node alone)",
    defaultText: "",
    parse: parseInitialCluster,
  },
  { key: "join", name: "join", description: "start empty as a new member, to be added with Cluster.AddMember", defaultText: "false", parse: boolean("join"), boolean: true },
  { key: "tickMs", name: "tick-ms", description: "length of one Raft tick in milliseconds", defaultText: "100", parse: integer("tick-ms", 1, 60_000) },
  { key: "electionTicks", name: "election-ticks", description: "ticks without a leader before an election", defaultText: "10", parse: integer("election-ticks", 2, 10_000) },
  { key: "heartbeatTicks", name: "heartbeat-ticks", description: "ticks between leader heartbeats", defaultText: "1", parse: integer("heartbeat-ticks", 1, 10_000) },
  { key: "maxBatchBytes", name: "max-batch-bytes", description: "bytes of commands in one log entry", defaultText: String(MiB), parse: integer("max-batch-bytes", 1024, 64 * MiB) },
  { key: "maxBatchCommands", name: "max-batch-commands", description: "commands in one log entry", defaultText: "1024", parse: integer("max-batch-commands", 1, 1_000_000) },
  {
    key: "maxPendingCommands",
    name: "max-pending-commands",
    description: "commands waiting for commit on the leader; past it calls answer RESOURCE_EXHAUSTED",
    defaultText: "100000",
    parse: integer("max-pending-commands", 1),
  },
  { key: "snapshotEntries", name: "snapshot-entries", description: "applied entries between automatic snapshots (each node waits 1 to 1.25 times this, drawn anew each time, so that members do not snapshot at once)", defaultText: "10000", parse: integer("snapshot-entries", 1) },
  {
    key: "snapshotBytes",
    name: "snapshot-bytes",
    description: "bytes of applied entries between automatic snapshots (or twice the last snapshot's size, if larger; stretched like snapshot-entries)",
    defaultText: "67108864",
    parse: integer("snapshot-bytes", 1),
  },
  {
    key: "snapshotKeepEntries",
    name: "snapshot-keep-entries",
    description: "entries kept below a snapshot for followers slightly behind",
    defaultText: "5000",
    parse: integer("snapshot-keep-entries", 0),
  },
  {
    key: "snapshotKeepBytes",
    name: "snapshot-keep-bytes",
    description: "at most this many bytes of those kept entries",
    defaultText: "33554432",
    parse: integer("snapshot-keep-bytes", 0),
  },
  {
    key: "consumeMaxPendingBytes",
    name: "consume-max-pending-bytes",
    description: "bytes of deliveries a Consume stream may have waiting for its client; past it the stream ends with RESOURCE_EXHAUSTED (slow consumer) and its unacked messages are requeued",
    defaultText: String(DEFAULT_CONSUME_MAX_PENDING_BYTES),
    parse: integer("consume-max-pending-bytes", 64 * 1024, 1024 * MiB),
  },
  { key: "idleTickMs", name: "idle-tick-ms", description: "while a message or queue expiry is due, an idle leader proposes a Tick at most this often, so it happens; with none due it proposes nothing", defaultText: "1000", parse: integer("idle-tick-ms", 10) },
  {
    key: "learnerPromoteLag",
    name: "learner-promote-lag",
    description: "a learner within this many entries of the leader's log is promoted to voter",
    defaultText: "100",
    parse: integer("learner-promote-lag", 0),
  },
  {
    key: "shutdownTimeoutMs",
    name: "shutdown-timeout-ms",
    description: "longest wait for leadership transfer and in-flight calls on SIGTERM",
    defaultText: "5000",
    parse: integer("shutdown-timeout-ms", 0),
  },
  { key: "logLevel", name: "log-level", description: `one of ${LOG_LEVELS.join(", ")}`, defaultText: "info", parse: logLevel },
  {
    key: "podName",
    name: "pod-name",
    description: "StatefulSet pod name (raftmq-2): derives node id, initial cluster and advertise host unless node-id and initial-cluster are set (env also POD_NAME)",
    defaultText: "",
    parse: (raw) => raw.trim(),
    alsoEnv: ["POD_NAME"],
  },
  { key: "podNamespace", name: "pod-namespace", description: "namespace filled into {namespace} of peer-host-template (env also POD_NAMESPACE)", defaultText: "", parse: (raw) => raw.trim(), alsoEnv: ["POD_NAMESPACE"] },
  {
    key: "initialClusterSize",
    name: "initial-cluster-size",
    description: "with pod-name: ordinals 0..N-1 found the cluster, higher ordinals join as learners",
    defaultText: String(DEFAULT_INITIAL_CLUSTER_SIZE),
    parse: integer("initial-cluster-size", 1, MAX_INITIAL_CLUSTER_SIZE),
  },
  {
    key: "peerHostTemplate",
    name: "peer-host-template",
    description: "with pod-name: DNS name of one member, with {ordinal}, {namespace} and {statefulset}",
    defaultText: DEFAULT_PEER_HOST_TEMPLATE,
    parse: text("peer-host-template"),
  },
  {
    key: "hostAlias",
    name: "host-alias",
    description: "host names to dial at another IPv4 address: name=ip,name=ip (applies to every peer and leader address)",
    defaultText: "",
    parse: hostAliases,
  },
  {
    key: "insecure",
    name: "insecure",
    description: "run without TLS on any port and without authentication (anyone who reaches a port may do anything); for development and tests only. Without it a node refuses to start without certificates",
    defaultText: "false",
    parse: boolean("insecure"),
    boolean: true,
  },
  { key: "tlsCaFile", name: "tls-ca-file", description: "PEM file of the cluster's CA: peers (and client certificates) must be signed by it", defaultText: "", parse: (raw) => raw.trim() },
  {
    key: "tlsCertFile",
    name: "tls-cert-file",
    description: "PEM certificate of this node, signed by the cluster CA and naming the node id as URI SAN urn:raftmq:node:<id> (`raftmq cert create-node` makes one); used on the peer port, for calls to other nodes and on the client port",
    defaultText: "",
    parse: (raw) => raw.trim(),
  },
  { key: "tlsKeyFile", name: "tls-key-file", description: "PEM private key of tls-cert-file", defaultText: "", parse: (raw) => raw.trim() },
  { key: "clientTlsCertFile", name: "client-tls-cert-file", description: "PEM certificate served on the client port instead of tls-cert-file", defaultText: "", parse: (raw) => raw.trim() },
  { key: "clientTlsKeyFile", name: "client-tls-key-file", description: "PEM private key of client-tls-cert-file", defaultText: "", parse: (raw) => raw.trim() },
  { key: "clientTlsCaFile", name: "client-tls-ca-file", description: "PEM CA that signs client certificates (default: tls-ca-file)", defaultText: "", parse: (raw) => raw.trim() },
  {
    key: "clientCertAuth",
    name: "client-cert-auth",
    description: "client certificates on the client port: none (not asked for), optional (verified when presented; the subject CN names the user), require (no connection without one)",
    defaultText: "optional",
    parse: clientCertAuth,
  },
  { key: "tlsRefreshMs", name: "tls-refresh-ms", description: "how often certificate files are re-read, so renewed ones take effect without a restart", defaultText: "30000", parse: integer("tls-refresh-ms", 100, 86_400_000) },
  {
    key: "clientPlaintextPort",
    name: "client-plaintext-port",
    description: "also serve the client API without TLS on this port of 127.0.0.1 only (local tools and development); empty for none",
    defaultText: "",
    parse: optionalPort("client-plaintext-port"),
  },
  {
    key: "amqpPort",
    name: "amqp-port",
    description: "port of AMQP 0-9-1 (RabbitMQ clients); with TLS on, served on loopback only (host when it is a loopback address, else 127.0.0.1); 0 picks a free port, empty for none",
    defaultText: "5672",
    parse: listenPort("amqp-port"),
  },
  {
    key: "amqpsPort",
    name: "amqps-port",
    description: "port of AMQP 0-9-1 over TLS, with the client port's certificate; none with --insecure, which refuses it set explicitly; 0 picks a free port, empty for none",
    defaultText: "5671",
    parse: listenPort("amqps-port"),
  },
  {
    key: "bootstrapAdminUser",
    name: "bootstrap-admin-user",
    description: `a cluster without users creates this administrator, with full permissions on vhost /; its password comes from bootstrap-admin-password-file or env ${BOOTSTRAP_ADMIN_PASSWORD_ENV}`,
    defaultText: "",
    parse: (raw) => raw.trim(),
  },
  { key: "bootstrapAdminPasswordFile", name: "bootstrap-admin-password-file", description: "file holding the bootstrap administrator's password (one line)", defaultText: "", parse: (raw) => raw.trim() },
  { key: "loopbackUsers", name: "loopback-users", description: "users who may log in only from a loopback address, comma-separated", defaultText: "guest", parse: nameList },
  {
    key: "clientKeepaliveMs",
    name: "client-keepalive-ms",
    description: "the node pings every client connection this often (HTTP/2 keepalive), so a client that vanished without closing is noticed",
    defaultText: "10000",
    parse: integer("client-keepalive-ms", 100, 3_600_000),
  },
  {
    key: "clientKeepaliveTimeoutMs",
    name: "client-keepalive-timeout-ms",
    description: "a client connection that does not answer a ping within this is closed: its streams end and its consumers' unacked messages are requeued",
    defaultText: "5000",
    parse: integer("client-keepalive-timeout-ms", 100, 3_600_000),
  },
  {
    key: "consumerTimeoutMs",
    name: "consumer-timeout-ms",
    description:
      "a delivery left unacknowledged this long ends its consumer's Consume stream with FAILED_PRECONDITION and requeues what the stream held (RabbitMQ's consumer_timeout); 0 turns it off",
    defaultText: "1800000",
    parse: integer("consumer-timeout-ms", 0),
  },
  {
    key: "memoryHighWatermark",
    name: "memory-high-watermark",
    description:
      "the memory alarm is raised while the node's resident memory is above this fraction of its container's memory limit (the machine's memory outside one); publishers are blocked while it is, consumers go on (RabbitMQ's vm_memory_high_watermark)",
    defaultText: "0.6",
    parse: fraction("memory-high-watermark"),
  },
  {
    key: "memoryHighWatermarkBytes",
    name: "memory-high-watermark-bytes",
    description: "when not 0, the memory alarm is raised above this many bytes of resident memory instead of --memory-high-watermark's fraction (RabbitMQ's vm_memory_high_watermark.absolute)",
    defaultText: "0",
    parse: integer("memory-high-watermark-bytes", 0),
  },
  {
    key: "diskFreeLimitBytes",
    name: "disk-free-limit-bytes",
    description: "the disk alarm is raised while the data directory's filesystem has fewer free bytes than this; publishers are blocked while it is (RabbitMQ's disk_free_limit)",
    defaultText: String(50 * 1024 * 1024),
    parse: integer("disk-free-limit-bytes", 0),
  },
  { key: "alarmCheckMs", name: "alarm-check-ms", description: "how often memory and free disk are read for the alarms", defaultText: "1000", parse: integer("alarm-check-ms", 10, 60_000) },
  {
    key: "maxStreamsPerConnection",
    name: "max-streams-per-connection",
    description: "calls one client connection may have open at once (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS); more wait in the client until one ends",
    defaultText: "1000",
    parse: integer("max-streams-per-connection", 1, 1_000_000),
  },
  {
    key: "maxMetadataBytes",
    name: "max-metadata-bytes",
    description:
      `bytes of metadata one call may carry on the client port, counted as HTTP/2 counts a header list (name + value + 32 per entry, pseudo-headers included); the peer port allows ${FORWARDED_METADATA_HEADROOM_BYTES} more for what a forwarded call adds. ` +
      "A call over it is refused by HTTP/2 before any handler runs (grpc-js clients see RESOURCE_EXHAUSTED); keep it the same on every node",
    defaultText: String(DEFAULT_MAX_METADATA_BYTES),
    parse: integer("max-metadata-bytes", MAX_METADATA_BYTES_RANGE.min, MAX_METADATA_BYTES_RANGE.max),
  },
  {
    key: "publishStreamWindow",
    name: "publish-stream-window",
    description: "publish requests one PublishStream may have awaiting confirms; one more ends the stream with RESOURCE_EXHAUSTED",
    defaultText: "4096",
    parse: integer("publish-stream-window", 1, 1_000_000),
  },
  { key: "auditLog", name: "audit-log", description: 'where audit events go, one JSON line each: a file path, or "log" for the node\'s log', defaultText: "log", parse: text("audit-log") },
];

function clientCertAuth(raw: string): ClientCertAuth {
  const v = raw.trim().toLowerCase();
  if (v === "none" || v === "optional" || v === "require") return v;
  throw new ConfigError(`client-cert-auth must be none, optional or require, got ${JSON.stringify(raw)}`);
}

function optionalPort(name: string): (raw: string) => number {
  const port = integer(name, 1, 65535);
  return (raw) => (raw.trim() === "" ? 0 : port(raw));
}

/** A port to listen on: "" for none (-1), 0 for any free one. */
function listenPort(name: string): (raw: string) => number {
  const port = integer(name, 0, 65535);
  return (raw) => (raw.trim() === "" ? -1 : port(raw));
}

function nameList(raw: string): string[] {
  return raw
    .split(",")
    .map((n) => n.trim())
    .filter((n) => n !== "");
}

function hostAliases(raw: string): Map<string, string> {
  try {
    return parseHostAliases(raw);
  } catch (err) {
    if (err instanceof StatefulSetIdentityError) throw new ConfigError(err.message);
    throw err;
  }
}

/** `host:port` with the host replaced by its alias, when it has one. */
export function aliasAddress(address: string, aliases: ReadonlyMap<string, string>): string {
  const colon = address.lastIndexOf(":");
  if (colon <= 0) return address;
  const target = aliases.get(address.slice(0, colon));
  return target === undefined ? address : `${target}${address.slice(colon)}`;
}

export function envName(optionName: string): string {
  return `RAFTMQ_${optionName.toUpperCase().replace(/-/g, "_")}`;
}

function camel(optionName: string): string {
  return optionName.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** The commander program: --help lists every option with its env var and default. */
export function buildCommand(): Command {
  const program = new Command("raftmq-node")
    .description("A raftmq node: one member of a Raft-replicated message broker cluster.")
    .option("--config <file>", `JSON file whose keys are the option names below (env ${envName("config")})`)
    .exitOverride()
    .allowExcessArguments(false);
  for (const spec of NODE_OPTIONS) {
    const flags = spec.boolean === true ? `--${spec.name}` : `--${spec.name} <value>`;
    const shownDefault = spec.defaultText === "" ? "" : `, default ${spec.defaultText}`;
    program.addOption(new Option(flags, `${spec.description} (env ${envName(spec.name)}${shownDefault})`));
  }
  return program;
}

/** Resolves the configuration from flags, environment and an optional file, in that order. */
export function resolveNodeConfig(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): NodeConfig {
  const program = buildCommand();
  program.parse([...argv], { from: "user" });
  const flags = program.opts<Record<string, string | boolean | undefined>>();
  const configPath = (flags.config as string | undefined) ?? env[envName("config")];
  let file: Record<string, unknown> = {};
  if (configPath !== undefined && configPath !== "") {
    let raw: string;
    try {
      raw = readFileSync(configPath, "utf8");
    } catch (err) {
      throw new ConfigError(`cannot read config file ${configPath}: ${err instanceof Error ? err.message : String(err)}`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch (err) {
      throw new ConfigError(`config file ${configPath} is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw new ConfigError(`config file ${configPath} must hold a JSON object`);
    file = parsed as Record<string, unknown>;
    const known = new Set(NODE_OPTIONS.map((s) => s.name));
    for (const key of Object.keys(file)) {
      if (!known.has(key)) throw new ConfigError(`config file ${configPath}: unknown option "${key}"`);
    }
  }
  const out: Record<string, unknown> = {};
  const explicit = new Set<string>();
  for (const spec of NODE_OPTIONS) {
    const flag = flags[camel(spec.name)];
    const fromEnv = [envName(spec.name), ...(spec.alsoEnv ?? [])].map((name) => env[name]).find((v) => v !== undefined);
    const fromFile = file[spec.name];
    let raw: string;
    if (flag !== undefined) raw = String(flag);
    else if (fromEnv !== undefined) raw = fromEnv;
    else if (fromFile !== undefined) raw = typeof fromFile === "string" ? fromFile : JSON.stringify(fromFile);
    else raw = spec.defaultText;
    if (flag !== undefined || fromEnv !== undefined || fromFile !== undefined) explicit.add(spec.name);
    out[spec.key] = spec.parse(raw);
  }
  out.statefulSet = null;
  const config = out as unknown as NodeConfig;
  return finishConfig(applyStatefulSet(config, explicit), explicit);
}

/**
 * With a pod name, the StatefulSet's identity replaces node-id, initial-cluster, advertise-host
 * and join. Setting node-id or initial-cluster as well is refused: two sources of a node's
 * identity would sooner or later disagree.
 */
function applyStatefulSet(config: NodeConfig, explicit: ReadonlySet<string>): NodeConfig {
  if (config.podName === "") return config;
  const conflicting = ["node-id", "initial-cluster", "join"].filter((name) => explicit.has(name));
  if (conflicting.length > 0) {
    throw new ConfigError(`pod-name (${config.podName}) derives the node's identity; do not set ${conflicting.join(", ")} as well`);
  }
  let identity: StatefulSetIdentity;
  try {
    identity = resolveStatefulSetIdentity({
      podName: config.podName,
      namespace: config.podNamespace,
      initialClusterSize: config.initialClusterSize,
      peerHostTemplate: config.peerHostTemplate,
      peerPort: config.peerPort,
      clientPort: config.clientPort,
      hostAliases: config.hostAlias,
    });
  } catch (err) {
    if (err instanceof StatefulSetIdentityError) throw new ConfigError(err.message);
    throw err;
  }
  const advertiseHost = explicit.has("advertise-host") && config.advertiseHost !== "" ? config.advertiseHost : identity.advertiseHost;
  return { ...config, nodeId: identity.nodeId, initialCluster: identity.initialCluster, join: identity.joinAsLearner, advertiseHost, statefulSet: identity };
}

/**
 * A node runs on TLS or, only when told so explicitly, on nothing (CockroachDB's model): a node
 * given neither certificates nor --insecure refuses to start.
 */
function checkSecurityOptions(config: NodeConfig, explicitAmqps: boolean): void {
  const tlsFiles = [config.tlsCaFile, config.tlsCertFile, config.tlsKeyFile];
  const clientFiles = [config.clientTlsCertFile, config.clientTlsKeyFile, config.clientTlsCaFile];
  if (config.insecure) {
    if ([...tlsFiles, ...clientFiles].some((f) => f !== "")) {
      throw new ConfigError("insecure and the tls-* options contradict each other: give certificates, or --insecure, not both");
    }
    if (config.clientPlaintextPort !== 0) throw new ConfigError("client-plaintext-port serves beside a TLS client port; with --insecure the client port is plaintext already");
    if (explicitAmqps && config.amqpsPort !== -1) throw new ConfigError("amqps-port serves AMQP over TLS, and --insecure has no TLS: drop one of them");
    return;
  }
  if (tlsFiles.every((f) => f === "")) {
    throw new ConfigError(
      "this node has no TLS certificates: give --tls-ca-file, --tls-cert-file and --tls-key-file (`raftmq cert` makes them), or start it with --insecure to run without TLS and authentication (development only)",
    );
  }
  const missing = (["tls-ca-file", "tls-cert-file", "tls-key-file"] as const).filter((_, i) => tlsFiles[i] === "");
  if (missing.length > 0) throw new ConfigError(`TLS needs ${missing.join(", ")} as well`);
}

/** Fills derived defaults and checks options against each other. */
export function finishConfig(config: NodeConfig, explicit: ReadonlySet<string> = new Set()): NodeConfig {
  const advertiseHost = config.advertiseHost === "" ? config.host : applyHostAlias(config.advertiseHost, config.hostAlias);
  // Aliases apply to every address the node dials; members' addresses travel in the log as given.
  let initialCluster = config.initialCluster.map((m) => ({ ...m, peerAddress: aliasAddress(m.peerAddress, config.hostAlias), clientAddress: aliasAddress(m.clientAddress, config.hostAlias) }));
  if (initialCluster.length === 0) {
    initialCluster = [{ id: config.nodeId, peerAddress: `${advertiseHost}:${config.peerPort}`, clientAddress: `${advertiseHost}:${config.clientPort}` }];
  }
  if (!config.join && !initialCluster.some((m) => m.id === config.nodeId)) {
    throw new ConfigError(`initial-cluster (${formatInitialCluster(initialCluster)}) does not name this node (${config.nodeId}); use --join to start as a new member`);
  }
  checkSecurityOptions(config, explicit.has("amqps-port"));
  if (config.heartbeatTicks >= config.electionTicks) {
    throw new ConfigError(`heartbeat-ticks (${config.heartbeatTicks}) must be smaller than election-ticks (${config.electionTicks})`);
  }
  // AMQPS by default only where there is TLS.
  const amqpsPort = config.insecure ? -1 : config.amqpsPort;
  return { ...config, advertiseHost, initialCluster, amqpsPort };
}
