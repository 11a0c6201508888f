// What each RPC needs, as data: RabbitMQ's authorization model (vhost access, configure / write /
// read patterns on exchange and queue names, user tags) mapped onto our three services. The
// checks, the docs (permissionTableMarkdown) and the tests are all driven by PERMISSION_TABLE.
import type { AccessView } from "./access-view.ts";
import { PermissionDeniedError, UnmappedMethodError } from "./access-errors.ts";
import type { Principal } from "./authenticator.ts";
import { PatternMatcher } from "./permission-patterns.ts";

export { type DenialReason, PermissionDeniedError, UnmappedMethodError } from "./access-errors.ts";

export type ServiceName = "Broker" | "Cluster" | "Access";
export type Tag = "administrator" | "monitoring";
export type Permission = "configure" | "write" | "read";
export type ResourceKind = "exchange" | "queue";

/**
 * A path into the decoded request (protobufjs field names, camelCase): "name",
 * "subscribe.queue", "messages[].exchange" (each element), "arguments.deadLetterExchange".
 */
export type FieldPath = string;

/** When a conditional requirement applies: the field is set (not null) or a non-empty string. */
export interface Condition {
  field: FieldPath;
  present: "set" | "non-empty";
}

export type Requirement =
  /** The vhost exists and the user has a permission entry on it (any patterns). */
  | { kind: "vhost-access" }
  /** The user has one of these tags. */
  | { kind: "tag"; anyOf: readonly Tag[] }
  /**
   * The user's `permission` pattern on the vhost matches the name found at `field`. An exchange
   * named "" is matched as "amq.default", as RabbitMQ does; `emptyAs` names an empty value otherwise.
   */
  | { kind: "permission"; permission: Permission; resource: ResourceKind; field: FieldPath; when?: Condition; emptyAs?: string };

export interface PermissionRow {
  service: ServiceName;
  method: string;
  /** All must hold. Empty: any authenticated user. */
  needs: readonly Requirement[];
  note: string;
}

export type ResolvedRequirement =
  | { kind: "vhost-access" }
  | { kind: "tag"; anyOf: readonly Tag[]; action: string }
  | { kind: "permission"; permission: Permission; resource: ResourceKind; name: string };

/** How the default exchange ("") is named when matched against permission patterns. */
export const DEFAULT_EXCHANGE_PERMISSION_NAME = "amq.default";
/** What a server-named queue (declared with name "") is checked as: the prefix of its name. */
export const SERVER_NAMED_QUEUE_PREFIX = "amq.gen-";

const VHOST: Requirement = { kind: "vhost-access" };
const ADMIN: Requirement = { kind: "tag", anyOf: ["administrator"] };
const MONITOR: Requirement = { kind: "tag", anyOf: ["monitoring", "administrator"] };

function on(permission: Permission, resource: ResourceKind, field: FieldPath, extra: { when?: Condition; emptyAs?: string } = {}): Requirement {
  return { kind: "permission", permission, resource, field, ...extra };
}

const DLX_SET: Condition = { field: "arguments.deadLetterExchange", present: "set" };
const AE_SET: Condition = { field: "alternateExchange", present: "non-empty" };
const QUEUE_SET: Condition = { field: "queue", present: "non-empty" };
/** Set to "" it names the default exchange, matched as amq.default (and refused by the broker). */
const DESTINATION_EXCHANGE_SET: Condition = { field: "destinationExchange", present: "set" };
const SERVER_NAMED = { emptyAs: SERVER_NAMED_QUEUE_PREFIX };

function admin(service: ServiceName, method: string, note = ""): PermissionRow {
  return { service, method, needs: [ADMIN], note };
}

export const PERMISSION_TABLE: readonly PermissionRow[] = [
  {
    service: "Broker",
    method: "DeclareExchange",
    needs: [VHOST, on("configure", "exchange", "name"), on("read", "exchange", "name", { when: AE_SET }), on("write", "exchange", "alternateExchange", { when: AE_SET })],
    note: "Passive too, as in RabbitMQ. An alternate exchange receives this exchange's messages, so it also needs read here and write on the alternate (RabbitMQ checks that on creation only; here on every declare).",
  },
  { service: "Broker", method: "DeleteExchange", needs: [VHOST, on("configure", "exchange", "name")], note: "" },
  {
    service: "Broker",
    method: "DeclareQueue",
    needs: [
      VHOST,
      on("configure", "queue", "name", SERVER_NAMED),
      on("read", "queue", "name", { when: DLX_SET, ...SERVER_NAMED }),
      on("write", "exchange", "arguments.deadLetterExchange", { when: DLX_SET }),
    ],
    note: `Passive too, as in RabbitMQ. Dead-lettering moves messages out of the queue into the exchange, hence read and write. A server-named queue (name "") is checked as "${SERVER_NAMED_QUEUE_PREFIX}", the prefix of the name it gets.`,
  },
  { service: "Broker", method: "DeleteQueue", needs: [VHOST, on("configure", "queue", "name")], note: "" },
  { service: "Broker", method: "PurgeQueue", needs: [VHOST, on("read", "queue", "name")], note: "" },
  {
    service: "Broker",
    method: "Bind",
    needs: [VHOST, on("write", "queue", "queue", { when: QUEUE_SET }), on("write", "exchange", "destinationExchange", { when: DESTINATION_EXCHANGE_SET }), on("read", "exchange", "exchange")],
    note: "Messages flow from the exchange (read) into the queue or the destination exchange (write), as RabbitMQ's queue.bind and exchange.bind.",
  },
  {
    service: "Broker",
    method: "Unbind",
    needs: [VHOST, on("write", "queue", "queue", { when: QUEUE_SET }), on("write", "exchange", "destinationExchange", { when: DESTINATION_EXCHANGE_SET }), on("read", "exchange", "exchange")],
    note: "As Bind.",
  },
  { service: "Broker", method: "Publish", needs: [VHOST, on("write", "exchange", "messages[].exchange")], note: `Each message's exchange; the default exchange is matched as "${DEFAULT_EXCHANGE_PERMISSION_NAME}".` },
  {
    service: "Broker",
    method: "PublishStream",
    needs: [VHOST, on("write", "exchange", "messages[].exchange")],
    note: "Checked for each request on the stream, as Publish.",
  },
  {
    service: "Broker",
    method: "Consume",
    needs: [VHOST, on("read", "queue", "subscribe.queue", { when: { field: "subscribe", present: "set" } })],
    note: "Checked for each request on the stream. Acks, nacks, rejects, cancel and set_prefetch act on the stream's own consumers and need only vhost access.",
  },
  { service: "Broker", method: "Get", needs: [VHOST, on("read", "queue", "queue")], note: "" },
  {
    service: "Broker",
    method: "QueueInfo",
    needs: [VHOST, on("read", "queue", "name")],
    note: "RabbitMQ's nearest call, a passive queue.declare, needs configure; inspecting a queue is reading it, so read here.",
  },
  { service: "Broker", method: "ListQueues", needs: [VHOST], note: "Lists every queue of the vhost, whatever the patterns." },
  { service: "Broker", method: "ListExchanges", needs: [VHOST], note: "Lists every exchange of the vhost, whatever the patterns." },
  { service: "Broker", method: "ListBindings", needs: [VHOST], note: "Lists every binding of the vhost, whatever the patterns." },
  { service: "Cluster", method: "Status", needs: [MONITOR], note: "" },
  admin("Cluster", "AddMember"),
  admin("Cluster", "RemoveMember"),
  admin("Cluster", "TransferLeadership"),
  admin("Cluster", "TriggerSnapshot"),
  admin("Cluster", "SetSettings"),
  admin("Access", "AddUser"),
  admin("Access", "DeleteUser"),
  admin("Access", "ChangePassword", "Also for one's own password, as in RabbitMQ."),
  admin("Access", "SetUserTags"),
  admin("Access", "ListUsers"),
  admin("Access", "AddVhost"),
  admin("Access", "DeleteVhost"),
  admin("Access", "ListVhosts"),
  admin("Access", "SetPermissions"),
  admin("Access", "ClearPermissions"),
  admin("Access", "ListPermissions"),
  { service: "Access", method: "WhoAmI", needs: [], note: "Any authenticated user." },
];

const ROWS = new Map(PERMISSION_TABLE.map((row) => [`${row.service}.${row.method}`, row]));

/** The row of a method named "/raftmq.v1.Broker/Bind", "raftmq.v1.Broker/Bind", "Broker/Bind" or "Broker.Bind". */
export function permissionRow(method: string): PermissionRow | undefined {
  const known = ROWS_BY_METHOD.get(method);
  if (known !== undefined) return known;
  const m = /^\/?(?:raftmq\.v1\.)?([A-Za-z]+)[/.]([A-Za-z]+)$/.exec(method);
  const row = m === null ? undefined : ROWS.get(`${m[1]}.${m[2]}`);
  // Callers name methods in a few spellings; remember those that name a row (a bounded set).
  if (row !== undefined && ROWS_BY_METHOD.size < 4 * ROWS.size) ROWS_BY_METHOD.set(method, row);
  return row;
}

/** Rows by the method strings callers used, so the hot path does not parse them again. */
const ROWS_BY_METHOD = new Map<string, PermissionRow>();

/**
 * The checks a call must pass, with names taken from its decoded request (for streams, call it
 * for each request). Throws UnmappedMethodError for a method without a row.
 */
export function requirementsFor(method: string, request: unknown): ResolvedRequirement[] {
  const row = permissionRow(method);
  if (row === undefined) throw new UnmappedMethodError(method);
  const out: ResolvedRequirement[] = [];
  const seen = new Set<string>();
  for (const need of row.needs) {
    switch (need.kind) {
      case "vhost-access":
        out.push({ kind: "vhost-access" });
        break;
      case "tag":
        out.push({ kind: "tag", anyOf: need.anyOf, action: `${row.service}.${row.method}` });
        break;
      case "permission": {
        if (need.when !== undefined && !holds(need.when, request)) break;
        const values = valuesAt(request, need.field);
        // A missing scalar field decodes as "" in proto3; only an empty repeated field has none.
        if (values.length === 0 && !need.field.includes("[]")) values.push("");
        for (const value of values) {
          const name = permissionName(need.resource, typeof value === "string" ? value : "", need.emptyAs);
          const key = `${need.permission}\u0000${need.resource}\u0000${name}`;
          if (seen.has(key)) continue;
          seen.add(key);
          out.push({ kind: "permission", permission: need.permission, resource: need.resource, name });
        }
        break;
      }
      default: {
        const never: never = need;
        throw new Error(`unknown requirement ${JSON.stringify(never)}`);
      }
    }
  }
  return out;
}

/** The name a resource is matched as: "" is the default exchange, or `emptyAs` when given. */
export function permissionName(resource: ResourceKind, name: string, emptyAs?: string): string {
  if (name !== "") return name;
  if (emptyAs !== undefined) return emptyAs;
  return resource === "exchange" ? DEFAULT_EXCHANGE_PERMISSION_NAME : "";
}

/**
 * Checks resolved requirements against the current access state; throws PermissionDeniedError
 * naming the first one that fails. Tags are read from the view, not the principal, so a change
 * of tags applies to calls on streams opened before it.
 */
export function authorize(principal: Principal, vhost: string, requirements: readonly ResolvedRequirement[], view: AccessView, matcher: PatternMatcher = defaultMatcher): void {
  const user = principal.user;
  const record = view.user(user);
  if (record === undefined) throw new PermissionDeniedError(user, { kind: "user-gone" });
  for (const req of requirements) {
    switch (req.kind) {
      case "vhost-access":
        if (!view.hasVhost(vhost)) throw new PermissionDeniedError(user, { kind: "vhost", vhost, vhostExists: false });
        if (view.permissions(user, vhost) === undefined) throw new PermissionDeniedError(user, { kind: "vhost", vhost, vhostExists: true });
        break;
      case "tag":
        if (!req.anyOf.some((t) => record.tags.includes(t))) throw new PermissionDeniedError(user, { kind: "tag", anyOf: req.anyOf, action: req.action });
        break;
      case "permission": {
        const perms = view.hasVhost(vhost) ? view.permissions(user, vhost) : undefined;
        if (perms === undefined) throw new PermissionDeniedError(user, { kind: "vhost", vhost, vhostExists: view.hasVhost(vhost) });
        if (!matcher.matches(perms[req.permission], req.name)) {
          throw new PermissionDeniedError(user, { kind: "permission", permission: req.permission, resource: req.resource, name: req.name, vhost });
        }
        break;
      }
      default: {
        const never: never = req;
        throw new Error(`unknown requirement ${JSON.stringify(never)}`);
      }
    }
  }
}

const defaultMatcher = new PatternMatcher();

/** The table as Markdown, for the docs. */
export function permissionTableMarkdown(): string {
  const lines = ["| Call | Needs | Note |", "| --- | --- | --- |"];
  for (const row of PERMISSION_TABLE) {
    const needs = row.needs.length === 0 ? "any authenticated user" : row.needs.map(describe).join("; ");
    lines.push(`| \`${row.service}.${row.method}\` | ${cell(needs)} | ${cell(row.note)} |`);
  }
  return `${lines.join("\n")}\n`;
}

function describe(need: Requirement): string {
  switch (need.kind) {
    case "vhost-access":
      return "vhost access";
    case "tag":
      return `tag ${need.anyOf.join(" or ")}`;
    case "permission": {
      const when = need.when === undefined ? "" : ` when \`${protoPath(need.when.field)}\` is ${need.when.present === "set" ? "set" : "non-empty"}`;
      return `${need.permission} on the ${need.resource} named by \`${protoPath(need.field)}\`${when}`;
    }
    default: {
      const never: never = need;
      return String(never);
    }
  }
}

/** The path as the .proto spells it: "arguments.deadLetterExchange" → "arguments.dead_letter_exchange". */
function protoPath(path: FieldPath): string {
  return path.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

function cell(text: string): string {
  return text.replaceAll("|", "\\|").replaceAll("\n", " ");
}

function holds(cond: Condition, request: unknown): boolean {
  const values = valuesAt(request, cond.field);
  return cond.present === "set" ? values.length > 0 : values.some((v) => typeof v === "string" && v !== "");
}

/** The non-null values at `path`; "[]" after a segment fans out over its elements. */
function valuesAt(root: unknown, path: FieldPath): unknown[] {
  let current: unknown[] = [root];
  for (const segment of path.split(".")) {
    const each = segment.endsWith("[]");
    const key = each ? segment.slice(0, -2) : segment;
    const next: unknown[] = [];
    for (const value of current) {
      if (typeof value !== "object" || value === null) continue;
      // Reads through the prototype: decoded protobufjs messages keep defaults there.
      const field = (value as Record<string, unknown>)[key];
      if (field === null || field === undefined) continue;
      if (each) {
        if (Array.isArray(field)) for (const item of field) if (item !== null && item !== undefined) next.push(item);
      } else {
        next.push(field);
      }
    }
    current = next;
  }
  return current;
}
