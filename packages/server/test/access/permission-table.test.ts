import { readFileSync } from "node:fs";
import { raftmq } from "@raftmq/proto";
import { describe, expect, it } from "vitest";
import type { PermissionRecord } from "../../src/access/access-view.ts";
import type { Principal } from "../../src/access/authenticator.ts";
import { PatternMatcher } from "../../src/access/permission-patterns.ts";
import {
  authorize,
  PERMISSION_TABLE,
  PermissionDeniedError,
  permissionRow,
  permissionTableMarkdown,
  type ResolvedRequirement,
  requirementsFor,
  UnmappedMethodError,
} from "../../src/access/permission-table.ts";
import { FakeAccessView } from "./fake-access-view.ts";

const PROTO_DIR = new URL("../../../../proto/raftmq/v1/", import.meta.url);

/** "Service.Method" for every rpc of the services in the contract's .proto files. */
function rpcsInProto(file: string): string[] {
  const text = readFileSync(new URL(file, PROTO_DIR), "utf8").replace(/\/\/.*$/gm, "");
  const out: string[] = [];
  for (const service of text.matchAll(/\bservice\s+(\w+)\s*\{([^}]*)\}/g)) {
    for (const rpc of (service[2] ?? "").matchAll(/\brpc\s+(\w+)\s*\(/g)) out.push(`${service[1]}.${rpc[1]}`);
  }
  return out;
}

const CONTRACT_RPCS = ["broker.proto", "cluster.proto", "access.proto"].flatMap(rpcsInProto);
const TABLE_RPCS = PERMISSION_TABLE.map((r) => `${r.service}.${r.method}`);

function perm(permission: "configure" | "write" | "read", resource: "exchange" | "queue", name: string): ResolvedRequirement {
  return { kind: "permission", permission, resource, name };
}
const VHOST: ResolvedRequirement = { kind: "vhost-access" };

describe("the permission table covers the contract", () => {
  it("finds the services' rpcs in the .proto files (the parse itself works)", () => {
    expect(CONTRACT_RPCS).toContain("Broker.Publish");
    expect(CONTRACT_RPCS).toContain("Cluster.Status");
    expect(CONTRACT_RPCS).toContain("Access.WhoAmI");
    expect(CONTRACT_RPCS.length).toBeGreaterThanOrEqual(33);
  });

  it("has exactly one row for every rpc of Broker, Cluster and Access, and none for anything else", () => {
    const missing = CONTRACT_RPCS.filter((m) => !TABLE_RPCS.includes(m));
    const stale = TABLE_RPCS.filter((m) => !CONTRACT_RPCS.includes(m));
    expect({ missing, stale }).toEqual({ missing: [], stale: [] });
    expect(new Set(TABLE_RPCS).size).toBe(TABLE_RPCS.length);
  });

  it("requires vhost access for every Broker call, and leaves only WhoAmI open to any authenticated user", () => {
    for (const row of PERMISSION_TABLE) {
      if (row.service === "Broker") expect(row.needs[0], row.method).toEqual({ kind: "vhost-access" });
      if (row.needs.length === 0) expect(`${row.service}.${row.method}`).toBe("Access.WhoAmI");
    }
  });

  it("asks administrator for every Cluster call but Status (monitoring or administrator) and every Access call but WhoAmI", () => {
    for (const row of PERMISSION_TABLE.filter((r) => r.service !== "Broker")) {
      const name = `${row.service}.${row.method}`;
      const expected = name === "Cluster.Status" ? [{ kind: "tag", anyOf: ["monitoring", "administrator"] }] : name === "Access.WhoAmI" ? [] : [{ kind: "tag", anyOf: ["administrator"] }];
      expect(row.needs, name).toEqual(expected);
    }
  });

  it("finds rows by every spelling of a method, and refuses a method without a row", () => {
    for (const m of ["/raftmq.v1.Broker/Bind", "raftmq.v1.Broker/Bind", "Broker/Bind", "Broker.Bind"]) expect(permissionRow(m)?.method, m).toBe("Bind");
    expect(() => requirementsFor("/raftmq.v1.Broker/Teleport", {})).toThrow(UnmappedMethodError);
    expect(() => requirementsFor("/other.v1.Broker/Bind", {})).toThrow(UnmappedMethodError);
  });

  it("renders one Markdown line per row", () => {
    const md = permissionTableMarkdown();
    const lines = md.trim().split("\n");
    expect(lines).toHaveLength(PERMISSION_TABLE.length + 2);
    expect(md).toContain("| `Broker.DeclareQueue` | vhost access; configure on the queue named by `name`;");
    expect(md).toContain("write on the exchange named by `arguments.dead_letter_exchange` when `arguments.dead_letter_exchange` is set");
    expect(md).toContain("| `Access.WhoAmI` | any authenticated user |");
  });
});

describe("requirementsFor resolves names from decoded requests (RabbitMQ's mapping)", () => {
  const v1 = raftmq.v1;
  const decode = <T>(type: { encode(m: never): { finish(): Uint8Array }; decode(b: Uint8Array): T }, props: object): T => type.decode(type.encode(props as never).finish());
  const req = (method: string, request: unknown) => requirementsFor(`/raftmq.v1.Broker/${method}`, request);

  it("DeclareExchange: configure; with an alternate exchange also read on it and write on the alternate", () => {
    expect(req("DeclareExchange", decode(v1.DeclareExchangeRequest, { name: "x" }))).toEqual([VHOST, perm("configure", "exchange", "x")]);
    expect(req("DeclareExchange", decode(v1.DeclareExchangeRequest, { name: "x", alternateExchange: "ae" }))).toEqual([
      VHOST,
      perm("configure", "exchange", "x"),
      perm("read", "exchange", "x"),
      perm("write", "exchange", "ae"),
    ]);
  });

  it("DeleteExchange: configure on the exchange", () => {
    expect(req("DeleteExchange", decode(v1.DeleteExchangeRequest, { name: "x" }))).toEqual([VHOST, perm("configure", "exchange", "x")]);
  });

  it("DeclareQueue: configure; with a dead-letter exchange also read on the queue and write on the DLX", () => {
    expect(req("DeclareQueue", decode(v1.DeclareQueueRequest, { name: "q", arguments: { messageTtlMs: 5 } }))).toEqual([VHOST, perm("configure", "queue", "q")]);
    expect(req("DeclareQueue", decode(v1.DeclareQueueRequest, { name: "q", arguments: { deadLetterExchange: "dlx" } }))).toEqual([
      VHOST,
      perm("configure", "queue", "q"),
      perm("read", "queue", "q"),
      perm("write", "exchange", "dlx"),
    ]);
    // A DLX set to "" is the default exchange.
    expect(req("DeclareQueue", decode(v1.DeclareQueueRequest, { name: "q", arguments: { deadLetterExchange: "" } }))).toContainEqual(perm("write", "exchange", "amq.default"));
    // A server-named queue is checked as the prefix of the name it will get.
    expect(req("DeclareQueue", decode(v1.DeclareQueueRequest, {}))).toEqual([VHOST, perm("configure", "queue", "amq.gen-")]);
  });

  it("DeleteQueue: configure; PurgeQueue, Get, QueueInfo: read", () => {
    expect(req("DeleteQueue", decode(v1.DeleteQueueRequest, { name: "q" }))).toEqual([VHOST, perm("configure", "queue", "q")]);
    expect(req("PurgeQueue", decode(v1.PurgeQueueRequest, { name: "q" }))).toEqual([VHOST, perm("read", "queue", "q")]);
    expect(req("Get", decode(v1.GetRequest, { queue: "q" }))).toEqual([VHOST, perm("read", "queue", "q")]);
    expect(req("QueueInfo", decode(v1.QueueInfoRequest, { name: "q" }))).toEqual([VHOST, perm("read", "queue", "q")]);
  });

  it("Bind and Unbind: write on the queue or on the destination exchange, read on the (source) exchange", () => {
    for (const [m, type] of [
      ["Bind", v1.BindRequest],
      ["Unbind", v1.UnbindRequest],
    ] as const) {
      expect(req(m, decode(type, { exchange: "x", queue: "q", routingKey: "k" }))).toEqual([VHOST, perm("write", "queue", "q"), perm("read", "exchange", "x")]);
      // RabbitMQ's exchange.bind: write on the destination, read on the source.
      expect(req(m, decode(type, { exchange: "x", destinationExchange: "d" }))).toEqual([VHOST, perm("write", "exchange", "d"), perm("read", "exchange", "x")]);
      // Set to "", the destination is the default exchange (refused by the broker once authorized).
      expect(req(m, decode(type, { exchange: "x", destinationExchange: "" }))).toEqual([VHOST, perm("write", "exchange", "amq.default"), perm("read", "exchange", "x")]);
      // Both set is INVALID_ARGUMENT later; every permission is asked first.
      expect(req(m, decode(type, { exchange: "x", queue: "q", destinationExchange: "d" }))).toEqual([VHOST, perm("write", "queue", "q"), perm("write", "exchange", "d"), perm("read", "exchange", "x")]);
    }
  });

  it("Publish and PublishStream: write on each message's exchange, once per name; the default exchange is amq.default", () => {
    const request = decode(v1.PublishRequest, { messages: [{ exchange: "a" }, { exchange: "" }, { exchange: "a" }, { exchange: "b", routingKey: "k" }] });
    for (const m of ["Publish", "PublishStream"]) {
      expect(req(m, request)).toEqual([VHOST, perm("write", "exchange", "a"), perm("write", "exchange", "amq.default"), perm("write", "exchange", "b")]);
    }
    expect(req("Publish", decode(v1.PublishRequest, {}))).toEqual([VHOST]);
  });

  it("Consume: read on the queue of a subscribe; other requests on the stream need only vhost access", () => {
    expect(req("Consume", decode(v1.ConsumeRequest, { subscribe: { queue: "q", prefetch: 10 } }))).toEqual([VHOST, perm("read", "queue", "q")]);
    expect(req("Consume", decode(v1.ConsumeRequest, { ack: { consumerTag: "c", deliveryTag: 1 } }))).toEqual([VHOST]);
    expect(req("Consume", decode(v1.ConsumeRequest, { cancel: "c" }))).toEqual([VHOST]);
  });

  it("ListQueues, ListExchanges, ListBindings: vhost access", () => {
    expect(req("ListQueues", decode(v1.ListQueuesRequest, {}))).toEqual([VHOST]);
    expect(req("ListExchanges", decode(v1.ListExchangesRequest, {}))).toEqual([VHOST]);
    expect(req("ListBindings", decode(v1.ListBindingsRequest, { queue: "q" }))).toEqual([VHOST]);
  });

  it("resolves a row for every Broker method (none is left out of this suite)", () => {
    const covered = ["DeclareExchange", "DeleteExchange", "DeclareQueue", "DeleteQueue", "PurgeQueue", "Get", "QueueInfo", "Bind", "Unbind", "Publish", "PublishStream", "Consume", "ListQueues", "ListExchanges", "ListBindings"];
    expect(CONTRACT_RPCS.filter((m) => m.startsWith("Broker.")).map((m) => m.slice(7)).sort()).toEqual([...covered].sort());
  });

  it("names the action for tag requirements", () => {
    expect(requirementsFor("/raftmq.v1.Cluster/RemoveMember", {})).toEqual([{ kind: "tag", anyOf: ["administrator"], action: "Cluster.RemoveMember" }]);
  });
});

describe("authorize", () => {
  const alice: Principal = { user: "alice", tags: [], mechanism: "password" };
  const all: PermissionRecord = { configure: ".*", write: ".*", read: ".*" };

  function view() {
    return new FakeAccessView().addUser("alice", "h").addUser("root", "h", ["administrator"]).addUser("watcher", "h", ["monitoring"]).addVhost("prod");
  }

  function denial(fn: () => void): PermissionDeniedError {
    try {
      fn();
    } catch (err) {
      if (err instanceof PermissionDeniedError) return err;
      throw err;
    }
    throw new Error("expected PermissionDeniedError, the call was allowed");
  }

  it("allows and denies by pattern, per permission kind, with RabbitMQ's message", () => {
    const v = view().setPermissions("alice", "/", { configure: "^alice\\.", write: "^(alice\\..*|amq\\.default)$", read: "" });
    authorize(alice, "/", [VHOST, perm("configure", "queue", "alice.q1")], v);
    authorize(alice, "/", [perm("write", "exchange", "amq.default")], v);
    expect(denial(() => authorize(alice, "/", [perm("configure", "queue", "bob.q")], v)).message).toBe("access to queue 'bob.q' in vhost '/' refused for user 'alice': configure permission needed");
    // The pattern is searched, not anchored: "^alice\." matches only at the start; "" matches nothing.
    expect(denial(() => authorize(alice, "/", [perm("configure", "queue", "x.alice.q")], v)).reason).toMatchObject({ kind: "permission", permission: "configure" });
    expect(denial(() => authorize(alice, "/", [perm("read", "queue", "alice.q1")], v)).message).toBe("access to queue 'alice.q1' in vhost '/' refused for user 'alice': read permission needed");
    expect(denial(() => authorize(alice, "/", [perm("write", "exchange", "alice.x"), perm("write", "exchange", "other")], v)).message).toBe(
      "access to exchange 'other' in vhost '/' refused for user 'alice': write permission needed",
    );
  });

  it("searches unanchored patterns anywhere in the name, as RabbitMQ does", () => {
    const v = view().setPermissions("alice", "/", { configure: "tmp", write: "", read: "" });
    authorize(alice, "/", [perm("configure", "queue", "my.tmp.q")], v);
    denial(() => authorize(alice, "/", [perm("configure", "queue", "my.q")], v));
  });

  it("refuses a vhost without a permission entry, and a vhost that does not exist", () => {
    const v = view().setPermissions("alice", "/", all);
    authorize(alice, "/", [VHOST], v);
    expect(denial(() => authorize(alice, "prod", [VHOST], v)).message).toBe("access to vhost 'prod' refused for user 'alice'");
    expect(denial(() => authorize(alice, "prod", [perm("read", "queue", "q")], v)).message).toBe("access to vhost 'prod' refused for user 'alice'");
    expect(denial(() => authorize(alice, "nope", [VHOST], v)).message).toBe("access to vhost 'nope' refused for user 'alice': the vhost does not exist");
  });

  it("checks tags from the current records, naming the tag and the action", () => {
    const v = view();
    const removeMember = requirementsFor("/raftmq.v1.Cluster/RemoveMember", {});
    const status = requirementsFor("/raftmq.v1.Cluster/Status", {});
    authorize({ user: "root", tags: [], mechanism: "password" }, "/", removeMember, v);
    authorize({ user: "watcher", tags: [], mechanism: "password" }, "/", status, v);
    expect(denial(() => authorize({ user: "watcher", tags: ["administrator"], mechanism: "password" }, "/", removeMember, v)).message).toBe(
      "user 'watcher' lacks the administrator tag needed for Cluster.RemoveMember",
    );
    expect(denial(() => authorize(alice, "/", status, v)).message).toBe("user 'alice' lacks the monitoring or administrator tag needed for Cluster.Status");
  });

  it("refuses a user deleted since it authenticated", () => {
    const v = view().setPermissions("alice", "/", all).deleteUser("alice");
    denial(() => authorize(alice, "/", [VHOST], v));
    denial(() => authorize(alice, "/", [], v));
  });

  it("end to end: a publish to the default exchange and to a forbidden one", () => {
    const v = view().setPermissions("alice", "/", { configure: "", write: "^amq\\.default$", read: "" });
    const ok = raftmq.v1.PublishRequest.decode(raftmq.v1.PublishRequest.encode({ messages: [{ exchange: "", routingKey: "q" }] }).finish());
    authorize(alice, "/", requirementsFor("/raftmq.v1.Broker/Publish", ok), v);
    const bad = raftmq.v1.PublishRequest.decode(raftmq.v1.PublishRequest.encode({ messages: [{ exchange: "" }, { exchange: "x" }] }).finish());
    expect(denial(() => authorize(alice, "/", requirementsFor("/raftmq.v1.Broker/Publish", bad), v)).reason).toMatchObject({ name: "x" });
  });

  it("treats a pattern that does not compile as matching nothing, and bounds its cache", () => {
    const m = new PatternMatcher(2);
    expect(m.matches("(", "(")).toBe(false);
    expect(m.matches("", "")).toBe(false);
    expect(m.matches("a", "a")).toBe(true);
    expect(m.matches("b", "b")).toBe(true);
    expect(m.size).toBeLessThanOrEqual(2);
    expect(m.matches("^a$", "a")).toBe(true);
    expect(m.size).toBeLessThanOrEqual(2);
  });
});
