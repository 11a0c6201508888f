// The permission table, tested as documented: every row of PERMISSION_TABLE is called on a real
// 3-node TLS cluster without credentials, with a user lacking the vhost or the tag, with users
// lacking exactly one of its permissions, and with a user holding exactly what it needs. A row
// without a request builder here fails, so a new RPC cannot go untested. Then: vhost isolation,
// users across nodes, password changes, deleted users (and their open streams), user_id checks,
// forged forwarding headers, client certificates, and last the login rate limit. Calls meant to
// fail authentication come from addresses of their own (FailureSources), so the rate limit of
// 127.0.0.1 is never spent by accident.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  AUTHENTICATED_USER_METADATA_KEY,
  accessServiceDefinition,
  brokerServiceDefinition,
  caPaths,
  clientCertificatePaths,
  clusterServiceDefinition,
  createClientCertificate,
  GrpcStatus,
  readCertificateFiles,
  tlsCredentials,
} from "@raftmq/server";
import { AUTHENTICATION_FAILED_MESSAGE, PERMISSION_TABLE, type PermissionRow, type ResolvedRequirement, requirementsFor } from "../../packages/server/src/access/index.ts";
import {
  type AnyMethod,
  type Credentials,
  callMetadata,
  describeOutcome,
  exactly,
  FailureSources,
  type Outcome,
  settle,
  streamOutcome,
  unaryOutcome,
} from "./access-fixtures.ts";
import { eventually, raftmq, sleep, TestClient, waitForLeader } from "./broker-test-client.ts";
import { ADMIN_USER, ClusterHarness, freePorts } from "./cluster-harness.ts";
import { TcpRelay } from "./tcp-relay.ts";
import { testAuth } from "./three-node-cluster.ts";

const harness = new ClusterHarness("permissions", undefined, undefined, "tls");
const NODES = [1, 2, 3];
/** One TLS channel per node; every call brings its own credentials. */
const plain = new Map<number, TestClient>();
/** The bootstrap administrator on each node, for Status and settling. */
const admins: TestClient[] = [];
let sources: FailureSources;

const SERVICES = { Broker: brokerServiceDefinition, Cluster: clusterServiceDefinition, Access: accessServiceDefinition } as const;
type ServiceName = keyof typeof SERVICES;

/** The vhost the Broker rows run in: made for this file, so "/" stays the administrator's. */
const TABLE_VHOST = "table";
const ADMIN = (): Credentials => ({ user: ADMIN_USER, password: harness.adminPassword });
/** Its permissions on TABLE_VHOST are set anew for each check. No tags. */
const TABLE_USER: Credentials = { user: "table-user", password: "pw-table-user" };
/** No tags, no permissions anywhere. */
const STRANGER: Credentials = { user: "stranger", password: "pw-stranger" };
const MONITOR: Credentials = { user: "watcher", password: "pw-watcher" };
/** The administrator tag and no vhost permissions at all. */
const OPERATOR: Credentials = { user: "operator", password: "pw-operator" };

const TOPOLOGY = {
  exchanges: [
    { name: "tx.direct", type: raftmq.v1.ExchangeType.EXCHANGE_TYPE_DIRECT },
    { name: "tx.fan", type: raftmq.v1.ExchangeType.EXCHANGE_TYPE_FANOUT },
    { name: "tx.alt", type: raftmq.v1.ExchangeType.EXCHANGE_TYPE_FANOUT },
    { name: "tx.dlx", type: raftmq.v1.ExchangeType.EXCHANGE_TYPE_FANOUT },
  ],
  queues: ["tq.main", "tq.side"],
  bindings: [
    { exchange: "tx.direct", queue: "tq.main", routingKey: "k" },
    { exchange: "tx.fan", queue: "tq.side", routingKey: "" },
  ],
};

function method(service: ServiceName, name: string): AnyMethod {
  const def = (SERVICES[service] as Record<string, AnyMethod | undefined>)[name];
  if (def === undefined) throw new Error(`${service}.${name} is in the permission table but not in the service definition`);
  return def;
}

function client(id: number): TestClient {
  const c = plain.get(id);
  if (c === undefined) throw new Error(`no client for node ${id}`);
  return c;
}

function rowKey(row: PermissionRow): string {
  return `${row.service}.${row.method}`;
}

function vhostOfRow(row: PermissionRow): string {
  return row.service === "Broker" ? TABLE_VHOST : "/";
}

function judgeStream(name: string): (response: unknown) => Outcome | undefined {
  if (name === "Consume") {
    return (response) => {
      const r = response as raftmq.v1.ConsumeResponse;
      switch (r.kind) {
        case "session":
          return undefined;
        case "error":
          return { code: Number(r.error?.code ?? GrpcStatus.UNKNOWN), details: r.error?.message ?? "" };
        default:
          return { code: GrpcStatus.OK, details: "", response: r };
      }
    };
  }
  return (response) => ({ code: GrpcStatus.OK, details: "", response });
}

/** Calls `service.name` on `via` with these credentials in `vhost`, whether unary or a stream. */
function callOn(via: TestClient, service: ServiceName, name: string, request: unknown, credentials: Credentials | null, vhost = "/"): Promise<Outcome> {
  const def = method(service, name);
  const metadata = callMetadata(credentials, vhost);
  if (def.requestStream) return streamOutcome(via.client, def, request, metadata, judgeStream(name), 8_000);
  return unaryOutcome(via.client, def, request, metadata, 8_000);
}

function call(node: number, service: ServiceName, name: string, request: unknown, credentials: Credentials | null, vhost = "/"): Promise<Outcome> {
  return callOn(client(node), service, name, request, credentials, vhost);
}

/** A call as the administrator that must succeed (setup and teardown). */
async function asAdmin(service: ServiceName, name: string, request: unknown, vhost = "/", node = 1): Promise<Outcome> {
  const o = await call(node, service, name, request, ADMIN(), vhost);
  if (o.code !== GrpcStatus.OK) throw new Error(`setup: ${service}.${name} ${JSON.stringify(request)} as the administrator answered ${describeOutcome(o)}`);
  return o;
}

/** Compared as text, so a failure shows the details the node answered with. */
function expectOutcome(o: Outcome, code: GrpcStatus, where: string): void {
  expect(describeOutcome(o), where).toBe(describeOutcome({ code, details: o.code === code ? o.details : "<any>" }));
}

const granted = new Map<string, string>();

/** Sets `who`'s permissions on `vhost` (through the Access service) and waits for every node to apply them. */
async function grant(who: Credentials, vhost: string, p: { configure: string; write: string; read: string }): Promise<void> {
  const key = `${who.user}@${vhost}`;
  const value = JSON.stringify(p);
  if (granted.get(key) === value) return;
  await asAdmin("Access", "SetPermissions", { permissions: { user: who.user, vhost, ...p } });
  granted.set(key, value);
  await settle(admins);
}

async function addUser(who: Credentials, tags: string[] = []): Promise<void> {
  await asAdmin("Access", "AddUser", { name: who.user, password: who.password, tags });
}

// ---- what each row is called with ----

interface Case {
  /** Tells the cases of a row apart in failure messages. */
  label: string;
  /** As the administrator, before the row's checks: what the request needs to exist. */
  setup?: () => Promise<void>;
  request: () => object | Promise<object>;
  /** What a user holding exactly the row's needs gets; OK unless said. */
  allowed?: GrpcStatus;
  check?: (o: Outcome, who: Credentials) => void;
  /** As the administrator, after the allowed call: undo what it changed that later tests rely on. */
  teardown?: () => Promise<void>;
}

type Rows<S extends ServiceName> = { [M in keyof (typeof SERVICES)[S] & string as `${S}.${M}`]: readonly Case[] };
/** Typed as the service definitions' methods, so a new RPC does not compile without cases. */
type CaseTable = Rows<"Broker"> & Rows<"Cluster"> & Rows<"Access">;

const body = (s: string) => new TextEncoder().encode(s);
const ghost = { addPorts: [0, 0], removePorts: [0, 0] };

function responseOf<T>(o: Outcome): T {
  return o.response as T;
}

const PUBLISH_CASES: readonly Case[] = [
  { label: "named exchange", request: () => ({ clientSequence: 1, messages: [{ exchange: "tx.direct", routingKey: "k", body: body("a") }] }) },
  { label: "default exchange (amq.default)", request: () => ({ clientSequence: 1, messages: [{ exchange: "", routingKey: "tq.side", body: body("b") }] }) },
  {
    label: "two exchanges in one request",
    request: () => ({
      clientSequence: 1,
      messages: [
        { exchange: "tx.direct", routingKey: "k", body: body("c") },
        { exchange: "tx.fan", routingKey: "", body: body("d") },
      ],
    }),
  },
].map((c) => ({
  ...c,
  check: (o: Outcome) => {
    const confirms = responseOf<raftmq.v1.PublishResponse>(o).confirms;
    expect(confirms.map((x) => x.status)).toEqual(confirms.map(() => raftmq.v1.ConfirmStatus.CONFIRM_STATUS_ACK));
    expect(confirms.map((x) => (x.routedQueues ?? []).length)).toEqual(confirms.map(() => 1));
  },
}));

const CASES: CaseTable = {
  "Broker.DeclareExchange": [
    { label: "plain", request: () => ({ name: "tx.declared", type: raftmq.v1.ExchangeType.EXCHANGE_TYPE_DIRECT, durable: true }) },
    { label: "with an alternate exchange", request: () => ({ name: "tx.with-ae", type: raftmq.v1.ExchangeType.EXCHANGE_TYPE_FANOUT, alternateExchange: "tx.alt" }) },
    { label: "passive", request: () => ({ name: "tx.direct", type: raftmq.v1.ExchangeType.EXCHANGE_TYPE_DIRECT, passive: true }) },
  ],
  "Broker.DeleteExchange": [
    {
      label: "",
      setup: async () => {
        await asAdmin("Broker", "DeclareExchange", { name: "tx.doomed", type: raftmq.v1.ExchangeType.EXCHANGE_TYPE_TOPIC }, TABLE_VHOST);
      },
      request: () => ({ name: "tx.doomed" }),
    },
  ],
  "Broker.DeclareQueue": [
    { label: "plain", request: () => ({ name: "tq.declared", durable: true }), check: (o) => expect(responseOf<raftmq.v1.DeclareQueueResponse>(o).name).toBe("tq.declared") },
    { label: "with a dead-letter exchange", request: () => ({ name: "tq.with-dlx", arguments: { deadLetterExchange: "tx.dlx" } }) },
    { label: "server-named", request: () => ({ name: "" }), check: (o) => expect(responseOf<raftmq.v1.DeclareQueueResponse>(o).name).toMatch(/^amq\.gen-./) },
    { label: "passive", request: () => ({ name: "tq.main", passive: true }) },
  ],
  "Broker.DeleteQueue": [
    {
      label: "",
      setup: async () => {
        await asAdmin("Broker", "DeclareQueue", { name: "tq.doomed" }, TABLE_VHOST);
      },
      request: () => ({ name: "tq.doomed" }),
    },
  ],
  "Broker.PurgeQueue": [{ label: "", request: () => ({ name: "tq.main" }) }],
  "Broker.Bind": [
    { label: "to a queue", request: () => ({ exchange: "tx.direct", queue: "tq.side", routingKey: "bound-by-test" }) },
    { label: "to an exchange", request: () => ({ exchange: "tx.direct", destinationExchange: "tx.fan", routingKey: "bound-by-test" }) },
  ],
  "Broker.Unbind": [
    {
      label: "from a queue",
      setup: async () => {
        await asAdmin("Broker", "Bind", { exchange: "tx.direct", queue: "tq.side", routingKey: "unbind-me" }, TABLE_VHOST);
      },
      request: () => ({ exchange: "tx.direct", queue: "tq.side", routingKey: "unbind-me" }),
    },
    {
      label: "from an exchange",
      setup: async () => {
        await asAdmin("Broker", "Bind", { exchange: "tx.direct", destinationExchange: "tx.fan", routingKey: "unbind-me" }, TABLE_VHOST);
      },
      request: () => ({ exchange: "tx.direct", destinationExchange: "tx.fan", routingKey: "unbind-me" }),
    },
  ],
  "Broker.Publish": PUBLISH_CASES,
  "Broker.PublishStream": PUBLISH_CASES,
  "Broker.Consume": [
    {
      label: "subscribe",
      request: () => ({ subscribe: { queue: "tq.main", prefetch: 1, consumerTag: "perm-c" } }),
      check: (o) => expect(responseOf<raftmq.v1.ConsumeResponse>(o).kind).toBe("subscribed"),
      // The stream was cancelled: wait for its session to go down, so later snapshots hold still.
      teardown: async () => {
        await eventually("the cancelled consumer to go", async () => {
          const o = await call(1, "Broker", "QueueInfo", { name: "tq.main" }, ADMIN(), TABLE_VHOST);
          return Number(responseOf<raftmq.v1.QueueInfoResponse>(o).queue?.consumers) === 0 ? true : undefined;
        });
      },
    },
    // Settlements act on the stream's own consumers: vhost access is all they need. This one names
    // no consumer of the stream, so the broker answers NOT_FOUND on the stream.
    { label: "ack", request: () => ({ ack: { consumerTag: "not-subscribed", deliveryTag: 1 } }), allowed: GrpcStatus.NOT_FOUND },
  ],
  "Broker.Get": [{ label: "", request: () => ({ queue: "tq.main" }) }],
  "Broker.QueueInfo": [{ label: "", request: () => ({ name: "tq.main" }), check: (o) => expect(responseOf<raftmq.v1.QueueInfoResponse>(o).queue?.name).toBe("tq.main") }],
  "Broker.ListQueues": [{ label: "", request: () => ({}), check: (o) => expect(responseOf<raftmq.v1.ListQueuesResponse>(o).queues.map((q) => q.name)).toContain("tq.main") }],
  "Broker.ListExchanges": [
    { label: "", request: () => ({}), check: (o) => expect(responseOf<raftmq.v1.ListExchangesResponse>(o).exchanges.map((e) => e.name)).toContain("tx.direct") },
  ],
  "Broker.ListBindings": [
    { label: "all", request: () => ({}) },
    { label: "of one exchange", request: () => ({ exchange: "tx.direct" }), check: (o) => expect(responseOf<raftmq.v1.ListBindingsResponse>(o).bindings.length).toBeGreaterThan(0) },
  ],
  "Cluster.Status": [{ label: "", request: () => ({}), check: (o) => expect(Number(responseOf<raftmq.v1.StatusResponse>(o).leaderId)).toBeGreaterThan(0) }],
  "Cluster.AddMember": [
    {
      label: "a learner that never starts",
      request: () => ({ id: 9, peerAddress: `127.0.0.1:${ghost.addPorts[0]}`, clientAddress: `127.0.0.1:${ghost.addPorts[1]}` }),
      check: (o) => expect(responseOf<raftmq.v1.AddMemberResponse>(o).members.map((m) => Number(m.id))).toContain(9),
      teardown: async () => {
        await asAdmin("Cluster", "RemoveMember", { id: 9 });
      },
    },
  ],
  "Cluster.RemoveMember": [
    {
      label: "a learner that never started",
      setup: async () => {
        await asAdmin("Cluster", "AddMember", { id: 10, peerAddress: `127.0.0.1:${ghost.removePorts[0]}`, clientAddress: `127.0.0.1:${ghost.removePorts[1]}` });
      },
      request: () => ({ id: 10 }),
      check: (o) => expect(responseOf<raftmq.v1.RemoveMemberResponse>(o).members.map((m) => Number(m.id))).toEqual([1, 2, 3]),
    },
  ],
  "Cluster.TransferLeadership": [
    {
      label: "",
      request: () => ({ to: 0 }),
      teardown: async () => {
        await waitForLeader(admins);
      },
    },
  ],
  "Cluster.TriggerSnapshot": [{ label: "", request: () => ({}) }],
  "Cluster.SetSettings": [
    {
      label: "the settings in force",
      request: async () => ({ machineVersion: (await admins[0]?.call("Status", {}))?.machineVersion ?? 0 }),
    },
  ],
  "Access.AddUser": [{ label: "", request: () => ({ name: "added-user", password: "pw-added", tags: ["monitoring"] }) }],
  "Access.DeleteUser": [{ label: "", setup: () => addUser({ user: "doomed-user", password: "pw-doomed" }), request: () => ({ name: "doomed-user" }) }],
  "Access.ChangePassword": [{ label: "", setup: () => addUser({ user: "pw-user", password: "pw-before" }), request: () => ({ name: "pw-user", password: "pw-after" }) }],
  "Access.SetUserTags": [{ label: "", setup: () => addUser({ user: "tagged-user", password: "pw-tagged" }), request: () => ({ name: "tagged-user", tags: ["monitoring"] }) }],
  "Access.ListUsers": [{ label: "", request: () => ({}), check: (o) => expect(responseOf<raftmq.v1.ListUsersResponse>(o).users.map((u) => u.name)).toContain(ADMIN_USER) }],
  "Access.AddVhost": [{ label: "", request: () => ({ name: "added-vhost" }) }],
  "Access.DeleteVhost": [
    {
      label: "",
      setup: async () => {
        await asAdmin("Access", "AddVhost", { name: "doomed-vhost" });
      },
      request: () => ({ name: "doomed-vhost" }),
    },
  ],
  "Access.ListVhosts": [{ label: "", request: () => ({}), check: (o) => expect(responseOf<raftmq.v1.ListVhostsResponse>(o).names).toEqual(expect.arrayContaining(["/", TABLE_VHOST])) }],
  "Access.SetPermissions": [
    {
      label: "",
      setup: () => addUser({ user: "granted-user", password: "pw-granted" }),
      request: () => ({ permissions: { user: "granted-user", vhost: TABLE_VHOST, configure: "^tq\\.", write: "", read: ".*" } }),
    },
  ],
  "Access.ClearPermissions": [
    {
      label: "",
      setup: async () => {
        await addUser({ user: "cleared-user", password: "pw-cleared" });
        await asAdmin("Access", "SetPermissions", { permissions: { user: "cleared-user", vhost: TABLE_VHOST, configure: ".*", write: ".*", read: ".*" } });
      },
      request: () => ({ user: "cleared-user", vhost: TABLE_VHOST }),
    },
  ],
  "Access.ListPermissions": [
    {
      label: "",
      request: () => ({}),
      check: (o) =>
        expect(responseOf<raftmq.v1.ListPermissionsResponse>(o).permissions.map((p) => `${p.user}@${p.vhost}`)).toEqual(expect.arrayContaining([`${ADMIN_USER}@/`, `${TABLE_USER.user}@${TABLE_VHOST}`])),
    },
  ],
  "Access.WhoAmI": [
    {
      label: "",
      request: () => ({}),
      check: (o, who) => expect(responseOf<raftmq.v1.WhoAmIResponse>(o)).toMatchObject({ user: who.user, mechanism: "password" }),
    },
  ],
};

/** Rows where a wrong password and an unknown user are tried too (kept few: each is a failed login). */
const WRONG_PASSWORD_ROWS = new Set(["Broker.DeclareQueue", "Broker.PublishStream", "Cluster.Status", "Access.AddUser", "Access.WhoAmI"]);

function casesOf(row: PermissionRow): readonly Case[] {
  const cases = (CASES as Record<string, readonly Case[] | undefined>)[rowKey(row)];
  if (cases === undefined || cases.length === 0) throw new Error(`no request builder for ${rowKey(row)}: add its cases to CASES in permissions.test.ts`);
  return cases;
}

/** The requirements the node resolves for `request`: it decodes the same bytes we send. */
function requirementsOf(row: PermissionRow, request: object): ResolvedRequirement[] {
  const def = method(row.service, row.method);
  return requirementsFor(def.path, def.requestDeserialize(def.requestSerialize(request)));
}

type PermissionReq = Extract<ResolvedRequirement, { kind: "permission" }>;

/** Patterns granting every permission requirement in `reqs` except `without`, by exact names. */
function patternsFor(reqs: readonly PermissionReq[], without?: PermissionReq): { configure: string; write: string; read: string } {
  const keep = reqs.filter((r) => r !== without);
  if (without !== undefined && keep.some((r) => r.permission === without.permission && r.name === without.name)) {
    throw new Error(`two requirements name "${without.name}" for ${without.permission}: give exchanges and queues distinct names in the builder`);
  }
  const names = (p: PermissionReq["permission"]) => keep.filter((r) => r.permission === p).map((r) => r.name);
  return { configure: exactly(names("configure")), write: exactly(names("write")), read: exactly(names("read")) };
}

/** What a refused call must not have changed, as the administrator sees it. */
async function observable(): Promise<string> {
  const read = async (service: ServiceName, name: string, vhost = "/") => {
    const o = await call(1, service, name, {}, ADMIN(), vhost);
    if (o.code !== GrpcStatus.OK) throw new Error(`${service}.${name}: ${describeOutcome(o)}`);
    return JSON.parse(JSON.stringify(o.response)) as unknown;
  };
  const status = (await read("Cluster", "Status")) as { leaderId?: number; members?: { id: number; role: string }[] };
  const permissions = (await read("Access", "ListPermissions")) as { permissions?: { user: string }[] };
  return JSON.stringify({
    queues: await read("Broker", "ListQueues", TABLE_VHOST),
    exchanges: await read("Broker", "ListExchanges", TABLE_VHOST),
    bindings: await read("Broker", "ListBindings", TABLE_VHOST),
    users: await read("Access", "ListUsers"),
    vhosts: await read("Access", "ListVhosts"),
    // The table user's own entry is what the checks change.
    permissions: (permissions.permissions ?? []).filter((p) => p.user !== TABLE_USER.user),
    leader: status.leaderId,
    members: (status.members ?? []).map((m) => [m.id, m.role]),
  });
}

async function checkCase(row: PermissionRow, c: Case, node: number): Promise<void> {
  const key = rowKey(row);
  const vhost = vhostOfRow(row);
  const where = (what: string) => `${key}${c.label === "" ? "" : ` (${c.label})`} on node ${node}: ${what}`;
  await c.setup?.();
  await settle(admins);
  const request = await c.request();
  const reqs = requirementsOf(row, request);
  const before = await observable();

  // (a) No credentials.
  const anonymous = await callOn(await sources.client(node), row.service, row.method, request, null, vhost);
  expectOutcome(anonymous, GrpcStatus.UNAUTHENTICATED, where("no credentials"));
  expect(anonymous.details, where("no credentials")).toBe(AUTHENTICATION_FAILED_MESSAGE);

  // (b) A wrong password, and a user who does not exist: the same answer.
  if (WRONG_PASSWORD_ROWS.has(key)) {
    const wrong = await callOn(await sources.client(node), row.service, row.method, request, { user: ADMIN_USER, password: `${harness.adminPassword}x` }, vhost);
    const unknown = await callOn(await sources.client(node), row.service, row.method, request, { user: "nobody-at-all", password: "pw" }, vhost);
    expectOutcome(wrong, GrpcStatus.UNAUTHENTICATED, where("wrong password"));
    expectOutcome(unknown, GrpcStatus.UNAUTHENTICATED, where("unknown user"));
    expect([wrong.details, unknown.details], where("wrong password vs unknown user")).toEqual([AUTHENTICATION_FAILED_MESSAGE, AUTHENTICATION_FAILED_MESSAGE]);
  }

  // (c) No access to the vhost, or without the tag.
  for (const req of reqs) {
    if (req.kind === "vhost-access") {
      const o = await call(node, row.service, row.method, request, STRANGER, vhost);
      expectOutcome(o, GrpcStatus.PERMISSION_DENIED, where("a user without permissions on the vhost"));
      expect(o.details).toContain(`access to vhost '${vhost}' refused for user '${STRANGER.user}'`);
    } else if (req.kind === "tag") {
      const without = [STRANGER, ...(req.anyOf.includes("monitoring") ? [] : [MONITOR])];
      for (const who of without) {
        const o = await call(node, row.service, row.method, request, who, vhost);
        expectOutcome(o, GrpcStatus.PERMISSION_DENIED, where(`${who.user}, without the ${req.anyOf.join(" or ")} tag`));
        expect(o.details).toBe(`user '${who.user}' lacks the ${req.anyOf.join(" or ")} tag needed for ${key}`);
      }
    }
  }

  // (d) Everything but exactly one permission.
  const perms = reqs.filter((r): r is PermissionReq => r.kind === "permission");
  for (const missing of perms) {
    await grant(TABLE_USER, vhost, patternsFor(perms, missing));
    const o = await call(node, row.service, row.method, request, TABLE_USER, vhost);
    const what = where(`all but ${missing.permission} on ${missing.resource} '${missing.name}'`);
    expectOutcome(o, GrpcStatus.PERMISSION_DENIED, what);
    expect(o.details, what).toBe(`access to ${missing.resource} '${missing.name}' in vhost '${vhost}' refused for user '${TABLE_USER.user}': ${missing.permission} permission needed`);
  }

  expect(await observable(), where("what the refused calls changed")).toBe(before);

  // (e) Exactly what the row needs.
  const tag = reqs.find((r) => r.kind === "tag");
  let who: Credentials;
  if (tag !== undefined) who = tag.anyOf.includes("monitoring") ? MONITOR : OPERATOR;
  else if (reqs.length === 0) who = STRANGER;
  else {
    who = TABLE_USER;
    await grant(TABLE_USER, vhost, patternsFor(perms));
  }
  const o = await call(node, row.service, row.method, request, who, vhost);
  expectOutcome(o, c.allowed ?? GrpcStatus.OK, where(`${who.user}, holding exactly ${JSON.stringify(reqs)}`));
  c.check?.(o, who);
  await c.teardown?.();
}

beforeAll(async () => {
  await harness.plan(3);
  await harness.startAll(3);
  const auth = testAuth(harness);
  const channel = auth.channel;
  if (channel === undefined) throw new Error("the harness is not in TLS mode");
  for (const id of NODES) {
    plain.set(id, new TestClient(harness.clientAddress(id), { channel }));
    admins.push(new TestClient(harness.clientAddress(id), auth));
  }
  await waitForLeader(admins);
  sources = new FailureSources((id) => ({ host: harness.host(id), port: harness.spec(id).clientPort }), tlsCredentials(harness.clientOptions().tls?.ca ?? Buffer.alloc(0)));
  ghost.addPorts = await freePorts(2);
  ghost.removePorts = await freePorts(2);

  await asAdmin("Access", "AddVhost", { name: TABLE_VHOST });
  await asAdmin("Access", "SetPermissions", { permissions: { user: ADMIN_USER, vhost: TABLE_VHOST, configure: ".*", write: ".*", read: ".*" } });
  await addUser(TABLE_USER);
  await addUser(STRANGER);
  await addUser(MONITOR, ["monitoring"]);
  await addUser(OPERATOR, ["administrator"]);
  for (const e of TOPOLOGY.exchanges) await asAdmin("Broker", "DeclareExchange", { ...e, durable: true }, TABLE_VHOST);
  for (const q of TOPOLOGY.queues) await asAdmin("Broker", "DeclareQueue", { name: q, durable: true }, TABLE_VHOST);
  for (const b of TOPOLOGY.bindings) await asAdmin("Broker", "Bind", b, TABLE_VHOST);
  await settle(admins);
});

afterAll(async () => {
  await sources?.close();
  for (const c of [...plain.values(), ...admins]) c.close();
  await harness.cleanup();
});

describe("the permission table, on a 3-node TLS cluster", () => {
  it("has request builders for exactly its rows, and a row for every method of Broker, Cluster and Access", () => {
    const rows = PERMISSION_TABLE.map(rowKey);
    const methods = (Object.keys(SERVICES) as ServiceName[]).flatMap((s) => Object.keys(SERVICES[s]).map((m) => `${s}.${m}`));
    const built = Object.keys(CASES);
    expect({ rowsWithoutBuilder: rows.filter((r) => !built.includes(r)), buildersWithoutRow: built.filter((b) => !rows.includes(b)), methodsWithoutRow: methods.filter((m) => !rows.includes(m)) }).toEqual({
      rowsWithoutBuilder: [],
      buildersWithoutRow: [],
      methodsWithoutRow: [],
    });
  });

  it("exercises every requirement of every row with at least one request (conditional ones included)", async () => {
    const missed: string[] = [];
    for (const row of PERMISSION_TABLE) {
      const resolved = await Promise.all(casesOf(row).map(async (c) => requirementsOf(row, await c.request())));
      for (const need of row.needs) {
        const hit = resolved.some((reqs) =>
          reqs.some((r) => {
            if (need.kind !== r.kind) return false;
            if (need.kind === "permission" && r.kind === "permission") return need.permission === r.permission && need.resource === r.resource;
            return true;
          }),
        );
        // A permission need is identified by permission and resource; rows never repeat a pair on two fields.
        if (!hit) missed.push(`${rowKey(row)}: ${JSON.stringify(need)}`);
      }
    }
    expect(missed).toEqual([]);
  });

  for (const [index, row] of PERMISSION_TABLE.entries()) {
    const node = NODES[index % NODES.length] ?? 1;
    it(`${rowKey(row)} on node ${node}: refused without credentials, without each need, allowed with exactly its needs`, async () => {
      for (const c of casesOf(row)) await checkCase(row, c, node);
    });
  }
});

describe("vhosts, users and messages across the cluster", () => {
  it("keeps vhosts apart: queues of one are not seen in another, and permissions on one do not open another", async () => {
    const A = "iso-a";
    const aUser: Credentials = { user: "iso-user", password: "pw-iso" };
    await asAdmin("Access", "AddVhost", { name: A });
    await settle(admins);
    // The administrator tag is not vhost access: a new vhost is closed until permissions are set.
    const closed = await call(2, "Broker", "DeclareQueue", { name: "iso-q" }, ADMIN(), A);
    expectOutcome(closed, GrpcStatus.PERMISSION_DENIED, "the administrator on a vhost without permissions");
    expect(closed.details).toContain(`access to vhost '${A}' refused for user '${ADMIN_USER}'`);

    await addUser(aUser);
    await asAdmin("Access", "SetPermissions", { permissions: { user: aUser.user, vhost: A, configure: ".*", write: ".*", read: ".*" } });
    await settle(admins);
    expectOutcome(await call(2, "Broker", "DeclareQueue", { name: "iso-q", durable: true }, aUser, A), GrpcStatus.OK, "iso-user declares in iso-a");
    // The same name in "/" is another queue (different properties do not conflict).
    expectOutcome(await call(3, "Broker", "DeclareQueue", { name: "iso-q", durable: false, autoDelete: false }, ADMIN(), "/"), GrpcStatus.OK, "admin declares iso-q in /");
    expectOutcome(await call(3, "Broker", "Publish", { messages: [{ exchange: "", routingKey: "iso-q", body: body("to /") }] }, ADMIN(), "/"), GrpcStatus.OK, "publish in /");

    const inRoot = await call(1, "Broker", "ListQueues", {}, ADMIN(), "/");
    const inA = await call(1, "Broker", "ListQueues", {}, aUser, A);
    const queues = (o: Outcome) => responseOf<raftmq.v1.ListQueuesResponse>(o).queues.map((q) => [q.name, q.durable, Number(q.messagesReady)]);
    expect(queues(inA)).toEqual([["iso-q", true, 0]]);
    expect(queues(inRoot).filter(([name]) => name === "iso-q")).toEqual([["iso-q", false, 1]]);

    for (const node of NODES) {
      const refused = await call(node, "Broker", "ListQueues", {}, aUser, "/");
      expectOutcome(refused, GrpcStatus.PERMISSION_DENIED, `iso-user on / via node ${node}`);
      expect(refused.details).toBe(`access to vhost '/' refused for user '${aUser.user}'`);
    }
    const nowhere = await call(1, "Broker", "ListQueues", {}, aUser, "no-such-vhost");
    expectOutcome(nowhere, GrpcStatus.PERMISSION_DENIED, "a vhost that does not exist");
    expect(nowhere.details).toContain("the vhost does not exist");
  });

  it("lets a user added through node 1 log in on nodes 2 and 3", async () => {
    // Colons and non-ASCII in a password: the user name ends at the first colon of Basic credentials.
    const u: Credentials = { user: "roaming-user", password: "pä:ss wörd:" };
    await asAdmin("Access", "AddUser", { name: u.user, password: u.password, tags: [] }, "/", 1);
    await settle(admins);
    for (const node of NODES) {
      const o = await call(node, "Access", "WhoAmI", {}, u);
      expectOutcome(o, GrpcStatus.OK, `WhoAmI on node ${node}`);
      expect(responseOf<raftmq.v1.WhoAmIResponse>(o)).toMatchObject({ user: u.user, mechanism: "password" });
    }
  });

  it("refuses the old password after ChangePassword, on every node, and takes the new one", async () => {
    const u: Credentials = { user: "rotating-user", password: "pw-old" };
    await addUser(u);
    await settle(admins);
    // Logged in once everywhere first, so a cached verification of the old password exists.
    for (const node of NODES) expectOutcome(await call(node, "Access", "WhoAmI", {}, u), GrpcStatus.OK, `old password on node ${node} before the change`);
    await asAdmin("Access", "ChangePassword", { name: u.user, password: "pw-new" }, "/", 2);
    await settle(admins);
    for (const node of NODES) {
      const old = await callOn(await sources.client(node), "Access", "WhoAmI", {}, u);
      expectOutcome(old, GrpcStatus.UNAUTHENTICATED, `old password on node ${node}`);
      expect(old.details).toBe(AUTHENTICATION_FAILED_MESSAGE);
      expectOutcome(await call(node, "Access", "WhoAmI", {}, { ...u, password: "pw-new" }), GrpcStatus.OK, `new password on node ${node}`);
    }
  });

  it("refuses every login of a deleted user, on every node", async () => {
    const u: Credentials = { user: "leaving-user", password: "pw-leaving" };
    await addUser(u);
    await grant(u, "/", { configure: ".*", write: ".*", read: ".*" });
    for (const node of NODES) expectOutcome(await call(node, "Broker", "ListQueues", {}, u), GrpcStatus.OK, `before DeleteUser on node ${node}`);
    await asAdmin("Access", "DeleteUser", { name: u.user }, "/", 3);
    await settle(admins);
    for (const node of NODES) {
      const o = await callOn(await sources.client(node), "Broker", "ListQueues", {}, u);
      expectOutcome(o, GrpcStatus.UNAUTHENTICATED, `deleted user on node ${node}`);
      expect(o.details).toBe(AUTHENTICATION_FAILED_MESSAGE);
    }
    const left = responseOf<raftmq.v1.ListPermissionsResponse>(await asAdmin("Access", "ListPermissions", { user: u.user })).permissions;
    expect(left).toEqual([]);
  });

  it("stops an open stream of a deleted user: no more deliveries to it, no more publishes from it", async () => {
    const u: Credentials = { user: "streaming-user", password: "pw-streaming" };
    await addUser(u);
    await grant(u, "/", { configure: "", write: "^amq\\.default$", read: "^gone-q$" });
    await asAdmin("Broker", "DeclareQueue", { name: "gone-q" });
    const leader = await waitForLeader(admins);
    const node = NODES.find((id) => id !== leader) ?? 1;
    const consume = client(node).client.makeBidiStreamRequest(
      method("Broker", "Consume").path,
      method("Broker", "Consume").requestSerialize,
      method("Broker", "Consume").responseDeserialize,
      callMetadata(u, "/"),
    );
    const publish = client(node).client.makeBidiStreamRequest(
      method("Broker", "PublishStream").path,
      method("Broker", "PublishStream").requestSerialize,
      method("Broker", "PublishStream").responseDeserialize,
      callMetadata(u, "/"),
    );
    const deliveries: string[] = [];
    const ends: Record<string, Outcome | undefined> = {};
    let subscribed = false;
    let confirms = 0;
    consume.on("data", (r: raftmq.v1.ConsumeResponse) => {
      if (r.kind === "subscribed") subscribed = true;
      if (r.kind === "delivery") deliveries.push(new TextDecoder().decode(r.delivery?.body ?? new Uint8Array()));
    });
    publish.on("data", () => confirms++);
    for (const [name, stream] of [["consume", consume], ["publish", publish]] as const) {
      stream.on("error", () => {});
      stream.on("status", (st: { code: GrpcStatus; details: string }) => {
        ends[name] = { code: st.code, details: st.details };
      });
    }
    try {
      const m = (text: string, seq: number) => ({ clientSequence: seq, messages: [{ exchange: "", routingKey: "gone-q", body: body(text) }] });
      consume.write({ subscribe: { queue: "gone-q", prefetch: 10, consumerTag: "gone-c" } });
      publish.write(m("before", 1));
      await eventually("subscribed, one delivery, one confirm", async () => (subscribed && deliveries.length === 1 && confirms === 1 ? true : undefined), 10_000);

      await asAdmin("Access", "DeleteUser", { name: u.user });
      await settle(admins);
      await asAdmin("Broker", "Publish", { messages: [{ exchange: "", routingKey: "gone-q", body: body("after") }] });
      publish.write(m("from a deleted user", 2));
      // Both streams end as the deletion is applied, before anything else reaches them.
      await eventually("the publish stream ended", async () => (ends.publish !== undefined ? true : undefined), 10_000);
      expectOutcome(ends.publish as Outcome, GrpcStatus.UNAUTHENTICATED, "a deleted user's open publish stream");
      expect(ends.publish?.details).toBe(`user "${u.user}" was deleted`);
      expect(confirms).toBe(1);

      // RabbitMQ closes a deleted user's connections; a stream still delivering would hand the
      // queue's messages to someone who no longer exists.
      await sleep(1_500);
      const consumeState = ends.consume === undefined ? "still open" : `ended ${describeOutcome(ends.consume)}`;
      expect(deliveries, `deliveries to the deleted user's Consume stream (${consumeState})`).toEqual(["before"]);
      const info = responseOf<raftmq.v1.QueueInfoResponse>(await asAdmin("Broker", "QueueInfo", { name: "gone-q" })).queue;
      expect(Number(info?.messagesReady) + Number(info?.messagesUnacked), "the message published after the deletion stays in the queue").toBeGreaterThanOrEqual(1);
    } finally {
      consume.cancel();
      publish.cancel();
    }
  });

  it("refuses a message whose user_id is not the publishing user (FAILED_PRECONDITION), on Publish and PublishStream", async () => {
    const u: Credentials = { user: "publisher", password: "pw-publisher" };
    await addUser(u);
    await grant(u, "/", { configure: "^uid-q$", write: "^amq\\.default$", read: "^uid-q$" });
    expectOutcome(await call(1, "Broker", "DeclareQueue", { name: "uid-q" }, u), GrpcStatus.OK, "declare uid-q");
    const message = (userId: string) => ({ clientSequence: 1, messages: [{ exchange: "", routingKey: "uid-q", properties: { userId }, body: body(userId) }] });
    for (const node of NODES) {
      for (const name of ["Publish", "PublishStream"]) {
        const o = await call(node, "Broker", name, message(ADMIN_USER), u);
        expectOutcome(o, GrpcStatus.FAILED_PRECONDITION, `${name} with user_id "${ADMIN_USER}" by ${u.user} on node ${node}`);
        expect(o.details).toContain(`user_id property set to "${ADMIN_USER}" but the authenticated user is "${u.user}"`);
      }
    }
    const info = async () => Number(responseOf<raftmq.v1.QueueInfoResponse>(await call(1, "Broker", "QueueInfo", { name: "uid-q" }, u)).queue?.messagesReady);
    expect(await info()).toBe(0);
    // Its own name, or none, is accepted.
    expectOutcome(await call(2, "Broker", "Publish", message(u.user), u), GrpcStatus.OK, "user_id naming the publisher");
    expectOutcome(await call(3, "Broker", "PublishStream", message(""), u), GrpcStatus.OK, "no user_id");
    expect(await info()).toBe(2);
  });

  it("does not let a client name its user through the header followers use towards the leader", async () => {
    for (const node of NODES) {
      for (const who of [null, STRANGER]) {
        const metadata = callMetadata(who, "/");
        metadata.set(AUTHENTICATED_USER_METADATA_KEY, ADMIN_USER);
        const via = who === null ? await sources.client(node) : client(node);
        // A write, so a follower forwards it, and an administrator's read.
        const declare = await unaryOutcome(via.client, method("Broker", "DeclareQueue"), { name: "forged-q" }, metadata);
        const users = await unaryOutcome((who === null ? await sources.client(node) : client(node)).client, method("Access", "ListUsers"), {}, metadata);
        const expected = who === null ? GrpcStatus.UNAUTHENTICATED : GrpcStatus.PERMISSION_DENIED;
        expectOutcome(declare, expected, `DeclareQueue as ${who?.user ?? "nobody"} claiming ${ADMIN_USER} on node ${node}`);
        expectOutcome(users, expected, `ListUsers as ${who?.user ?? "nobody"} claiming ${ADMIN_USER} on node ${node}`);
        if (who !== null) expect(declare.details).toContain(`refused for user '${who.user}'`);
      }
    }
    const queues = responseOf<raftmq.v1.ListQueuesResponse>(await asAdmin("Broker", "ListQueues", {})).queues.map((q) => q.name);
    expect(queues).not.toContain("forged-q");
  });

  it("takes a client certificate as its user's credential, and a password, when given, as the only one", async () => {
    const ca = harness.clientOptions().tls?.ca ?? Buffer.alloc(0);
    const dir = harness.certificateDir;
    const channelFor = async (user: string, make: boolean) => {
      const paths = clientCertificatePaths(dir, user);
      const pair = make ? await createClientCertificate(await readCertificateFiles(caPaths(dir)), { user }) : await readCertificateFiles(paths);
      return tlsCredentials(ca, Buffer.from(pair.keyPem), Buffer.from(pair.certPem));
    };
    const certOnly: Credentials = { user: "cert-only", password: "" };
    await asAdmin("Access", "AddUser", { name: certOnly.user, password: "", tags: [] });
    await settle(admins);
    const adminCert = await channelFor(ADMIN_USER, false);
    const certOnlyCert = await channelFor(certOnly.user, true);
    const ghostCert = await channelFor("no-such-user", true);
    const opened: TestClient[] = [];
    const proxies: TcpRelay[] = [];
    const via = async (node: number, channel: typeof adminCert, failing = false) => {
      let address = harness.clientAddress(node);
      if (failing) {
        // Failed logins come from an address of their own, as everywhere in this file.
        const proxy = await TcpRelay.start({ target: { host: harness.host(node), port: harness.spec(node).clientPort }, sourceAddress: sources.freshAddress() });
        proxies.push(proxy);
        address = proxy.address;
      }
      const c = new TestClient(address, { channel });
      opened.push(c);
      return c;
    };
    const whoAmI = (o: Outcome) => responseOf<raftmq.v1.WhoAmIResponse>(o);
    try {
      for (const node of NODES) {
        const asAdminCert = await via(node, adminCert);
        const mine = await callOn(asAdminCert, "Access", "WhoAmI", {}, null);
        expectOutcome(mine, GrpcStatus.OK, `the administrator's certificate on node ${node}`);
        expect(whoAmI(mine)).toMatchObject({ user: ADMIN_USER, mechanism: "certificate" });
        expectOutcome(await callOn(asAdminCert, "Broker", "ListQueues", {}, null), GrpcStatus.OK, `a Broker call with the administrator's certificate on node ${node}`);
        // A password names the user, whatever the certificate says.
        const stranger = await callOn(asAdminCert, "Access", "WhoAmI", {}, STRANGER);
        expect(whoAmI(stranger)).toMatchObject({ user: STRANGER.user, mechanism: "password" });
        expectOutcome(await callOn(asAdminCert, "Access", "ListUsers", {}, STRANGER), GrpcStatus.PERMISSION_DENIED, `the administrator's certificate with the stranger's password on node ${node}`);

        const certOnlyClient = await via(node, certOnlyCert);
        expect(whoAmI(await callOn(certOnlyClient, "Access", "WhoAmI", {}, null))).toMatchObject({ user: certOnly.user, mechanism: "certificate" });

        const failing = [
          ["the administrator's certificate with a wrong password", await via(node, adminCert, true), { user: ADMIN_USER, password: "wrong" }],
          ["a passwordless user's certificate with a password", await via(node, certOnlyCert, true), { user: certOnly.user, password: "anything" }],
          ["a certificate of a user who does not exist", await via(node, ghostCert, true), null],
        ] as const;
        for (const [what, c, credentials] of failing) {
          const o = await callOn(c, "Access", "WhoAmI", {}, credentials);
          expectOutcome(o, GrpcStatus.UNAUTHENTICATED, `${what} on node ${node}`);
          expect(o.details).toBe(AUTHENTICATION_FAILED_MESSAGE);
        }
      }
    } finally {
      for (const c of opened) c.close();
      await Promise.all(proxies.map((p) => p.close()));
    }
  });

  // Last: it blocks an address on purpose (its own, so nothing else is affected).
  it("refuses an address after 10 failed logins in 10 s, even with the right password, and only that address on that node", async () => {
    const { client: blocked, sourceAddress } = await sources.dedicated(1);
    const wrong = { user: ADMIN_USER, password: "definitely-wrong" };
    for (let i = 1; i <= 10; i++) {
      const o = await callOn(blocked, "Access", "WhoAmI", {}, wrong);
      expectOutcome(o, GrpcStatus.UNAUTHENTICATED, `failed login ${i}`);
      expect(o.details).toBe(AUTHENTICATION_FAILED_MESSAGE);
    }
    const refused = await callOn(blocked, "Access", "WhoAmI", {}, ADMIN());
    expectOutcome(refused, GrpcStatus.UNAUTHENTICATED, "the right password from the blocked address");
    expect(refused.details).toBe("too many failed attempts from this address; retry later");
    // 127.0.0.1 is another address; and node 2 counts its own failures.
    expectOutcome(await call(1, "Access", "WhoAmI", {}, ADMIN()), GrpcStatus.OK, "the administrator from 127.0.0.1 on node 1");
    const sameAddressOtherNode = await TcpRelay.start({ target: { host: harness.host(2), port: harness.spec(2).clientPort }, sourceAddress });
    const other = new TestClient(sameAddressOtherNode.address, { channel: tlsCredentials(harness.clientOptions().tls?.ca ?? Buffer.alloc(0)) });
    try {
      expectOutcome(await callOn(other, "Access", "WhoAmI", {}, ADMIN()), GrpcStatus.OK, `the administrator from ${sourceAddress} on node 2`);
    } finally {
      other.close();
      await sameAddressOtherNode.close();
    }
  });
});
