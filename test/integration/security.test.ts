// A secure cluster (mutual TLS between the nodes, TLS and authentication on the client ports)
// under the attacks that owned an open one: forged Raft traffic on the peer port from processes
// without a certificate of the cluster's CA, with another CA's, with a user's, and with a
// member's certificate claiming another member's id. Each is refused and logged with the remote
// address, and the cluster keeps its leader, its term and its data. Then: users replicate and
// survive restarts and snapshots, and no password reaches a data file or a log line.
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { connect as tlsConnect } from "node:tls";
import { join } from "node:path";
import { raftmq } from "@raftmq/proto";
import {
  accessServiceDefinition,
  type ChannelCredentials,
  type Client,
  connectClient,
  createCa,
  createNodeCertificate,
  GrpcStatus,
  readCertificateFiles,
  caPaths,
  insecureCredentials,
  Metadata,
  type MethodDefinition,
  tlsCredentials,
} from "@raftmq/server";
import { connect } from "@raftmq/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { basicAuth, eventually, isServiceError, TestClient, waitForLeader } from "./broker-test-client.ts";
import { ADMIN_USER, ClusterHarness } from "./cluster-harness.ts";
import { testAuth } from "./three-node-cluster.ts";

const harness = new ClusterHarness("security", ["--tick-ms", "50", "--log-level", "info"], undefined, "tls");
const admins = new Map<number, TestClient>();
const admin = (id: number) => admins.get(id) as TestClient;
let ca: Buffer;

const T = raftmq.v1.MessageType;
const TRANSFER = new TextEncoder().encode("raftmq-leader-transfer");
const STREAM_PATH = "/raftmq.v1.Raft/Stream";

beforeAll(async () => {
  await harness.plan(3);
  await harness.startAll(3);
  ca = readFileSync(join(harness.certificateDir, "ca.crt"));
  for (const s of harness.specs) admins.set(s.id, new TestClient(harness.clientAddress(s.id), testAuth(harness)));
  await waitForLeader([...admins.values()]);
});

afterAll(async () => {
  for (const c of admins.values()) c.close();
  await harness.cleanup();
});

async function status(): Promise<{ leader: number; term: number }> {
  const s = await admin(1).callRetrying("Status", {});
  return { leader: Number(s.leaderId), term: Number(s.term) };
}

/** The certificate files of the run (node-N, client-admin). */
function certFile(name: string): Buffer {
  return readFileSync(join(harness.certificateDir, name));
}

/** Opens a Raft stream to `address` and writes `frames`; resolves with how it ended. */
function rawStream(address: string, channel: ChannelCredentials, claimedId: number, frames: Uint8Array[]): Promise<{ code: number; details: string }> {
  const client: Client = connectClient(address, {}, channel);
  const metadata = new Metadata();
  if (claimedId !== 0) metadata.set("raftmq-peer-id", String(claimedId));
  return new Promise((resolve) => {
    const call = client.makeBidiStreamRequest(
      STREAM_PATH,
      (b: Uint8Array) => Buffer.from(b),
      (b: Buffer) => b,
      metadata,
      { deadline: Date.now() + 5000 },
    );
    call.on("data", () => {});
    call.on("error", () => {});
    call.on("status", (s: { code: number; details: string }) => {
      client.close();
      resolve({ code: s.code, details: s.details });
    });
    for (const f of frames) call.write(f);
    setTimeout(() => call.end(), 300);
  });
}

/** TLS as an attacker would: the cluster's (public) CA, and any server name accepted. */
function attackerTls(key?: Buffer, cert?: Buffer): ChannelCredentials {
  return tlsCredentials(ca, key, cert, { checkServerIdentity: () => undefined });
}

function frame(messages: raftmq.v1.Message.$Properties[]): Uint8Array {
  return raftmq.v1.MessageBatch.encode({ groupId: 1, messages }).finish();
}

/** The attacks of the field report, aimed at node `to` from a process claiming to be `from`. */
function forgedFrames(from: number, to: number, term: number): Uint8Array[] {
  const deleteQueue = raftmq.v1.CommandBatch.encode({ timestampMs: Date.now(), commands: [{ deleteQueue: { name: "orders" } }] }).finish();
  return [
    frame([{ type: T.MESSAGE_TYPE_APPEND_ENTRIES, from, to, term: term + 1, logIndex: 1_000_000, logTerm: term + 1, commit: 1_000_001, entries: [{ term: term + 1, index: 1_000_001, data: deleteQueue }] }]),
    frame([{ type: T.MESSAGE_TYPE_REQUEST_VOTE, from, to, term: term + 1000, logIndex: 1_000_000_000, logTerm: term + 1000, context: TRANSFER }]),
    frame([{ type: T.MESSAGE_TYPE_TIMEOUT_NOW, from, to, term }]),
  ];
}

function nodeLines(id: number): string[] {
  return harness.processes.get(id)?.lines ?? [];
}

describe("the peer port", () => {
  it("refuses every forged Raft stream, logs each with its remote address, and keeps leader, term and data", async () => {
    await admin(1).callRetrying("DeclareQueue", { name: "orders", durable: true });
    const body = new TextEncoder().encode("order");
    for (let i = 0; i < 100; i++) await admin(1).callRetrying("Publish", { messages: [{ exchange: "", routingKey: "orders", body }] });
    const before = await status();
    const target = before.leader;
    const victim = target === 3 ? 2 : 3;
    const address = harness.peerAddress(target);
    const refusedBefore = harness.eventCount(target, "peer-refused");

    const foreignCa = await createCa({ commonName: "another CA" });
    const foreignNode = await createNodeCertificate(foreignCa, { nodeId: victim, hosts: ["127.0.0.1"] });
    const member = target === 1 ? 2 : 1;
    const attempts: { name: string; channel: ChannelCredentials; claimed: number; from: number }[] = [
      { name: "no client certificate", channel: attackerTls(), claimed: victim, from: victim },
      { name: "another CA's certificate", channel: attackerTls(Buffer.from(foreignNode.keyPem), Buffer.from(foreignNode.certPem)), claimed: victim, from: victim },
      { name: "a user's certificate", channel: attackerTls(certFile(`client-${ADMIN_USER}.key`), certFile(`client-${ADMIN_USER}.crt`)), claimed: victim, from: victim },
      { name: "a member's certificate claiming another id", channel: attackerTls(certFile(`node-${member}.key`), certFile(`node-${member}.crt`)), claimed: victim, from: victim },
      { name: "a member's stream carrying another member's messages", channel: attackerTls(certFile(`node-${member}.key`), certFile(`node-${member}.crt`)), claimed: member, from: victim },
    ];
    for (const a of attempts) {
      const ended = await rawStream(address, a.channel, a.claimed, forgedFrames(a.from, target, before.term));
      expect(ended.code, a.name).toBe(GrpcStatus.PERMISSION_DENIED);
    }
    // Plain TCP (no TLS at all) does not get a stream either.
    const plain = await rawStream(address, insecureCredentials(), victim, forgedFrames(victim, target, before.term));
    expect(plain.code).toBe(GrpcStatus.UNAVAILABLE);
    // Fake peer ids by the hundred: each stream refused, nothing linked to (3,000 cost an open
    // cluster its leader; fifty show the refusal without flooding the kept log lines).
    const fakes = await Promise.all(Array.from({ length: 50 }, (_, i) => rawStream(address, attackerTls(), 1000 + i, [])));
    expect(fakes.every((f) => f.code === GrpcStatus.PERMISSION_DENIED)).toBe(true);

    const refusals = nodeLines(target).filter((l) => l.includes('"event":"peer-refused"'));
    // Log lines arrive through the node's stdout, a little after the refusals.
    await eventually("a log line for every refusal", async () => (harness.eventCount(target, "peer-refused") - refusedBefore >= attempts.length + 50 ? true : undefined));
    expect(refusals.every((l) => /"remote":"127\.0\.0\.1:\d+"/.test(l))).toBe(true);
    expect(nodeLines(target).some((l) => l.includes("peer-found") || l.includes("peer-introduced"))).toBe(false);

    // Nothing moved: one election timeout later the same leader leads in the same term, and the
    // queue holds every confirmed message.
    await new Promise((r) => setTimeout(r, 1500));
    expect(await status()).toEqual(before);
    for (const id of [1, 2, 3]) {
      const info = await eventually(`queue on node ${id}`, async () => (await admin(id).call("QueueInfo", { name: "orders" })).queue ?? undefined);
      expect(Number(info.messagesReady)).toBe(100);
    }
  });

  it("serves forwarded calls to nodes of the cluster only", async () => {
    const leader = (await status()).leader;
    const userOnPeer = new TestClient(harness.peerAddress(leader), {
      channel: attackerTls(certFile(`client-${ADMIN_USER}.key`), certFile(`client-${ADMIN_USER}.crt`)),
      metadata: { ...basicAuth(ADMIN_USER, harness.adminPassword), "raftmq-authenticated-user": ADMIN_USER },
    });
    try {
      await userOnPeer.call("DeleteQueue", { name: "orders" });
      throw new Error("the peer port served a user's certificate");
    } catch (err) {
      expect(isServiceError(err) && err.code).toBe(GrpcStatus.UNAUTHENTICATED);
    } finally {
      userOnPeer.close();
    }
    expect(Number((await admin(1).call("QueueInfo", { name: "orders" })).queue?.messagesReady)).toBe(100);
  });
});

function access<Q>(client: TestClient, method: keyof typeof accessServiceDefinition, request: Q, metadata: Record<string, string>): Promise<unknown> {
  const def = accessServiceDefinition[method] as unknown as MethodDefinition<Q, unknown>;
  const m = new Metadata();
  for (const [k, v] of Object.entries(metadata)) m.set(k, v);
  return new Promise((resolve, reject) => {
    client.client.makeUnaryRequest(def.path, def.requestSerialize, def.responseDeserialize, request, m, { deadline: Date.now() + 10_000 }, (err, value) => (err ? reject(err) : resolve(value)));
  });
}

describe("users", () => {
  const password = `s3cret-${process.pid}-pass`;

  it("are replicated: a user added on one node logs in on every node", async () => {
    const adminAuth = basicAuth(ADMIN_USER, harness.adminPassword);
    await access(admin(2), "AddUser", { name: "alice", password, tags: [] }, adminAuth);
    await access(admin(2), "SetPermissions", { permissions: { user: "alice", vhost: "/", configure: "^alice\\.", write: "^(alice\\..*|amq\\.default)$", read: "^alice\\." } }, adminAuth);
    for (const id of [1, 2, 3]) {
      const alice = new TestClient(harness.clientAddress(id), { channel: tlsCredentials(ca), metadata: basicAuth("alice", password) });
      try {
        const me = (await eventually(`alice on node ${id}`, () => access(alice, "WhoAmI", {}, basicAuth("alice", password)))) as { user: string };
        expect(me.user).toBe("alice");
        await alice.callRetrying("DeclareQueue", { name: `alice.q${id}` });
        await expect(alice.call("DeclareQueue", { name: "bob.q" })).rejects.toMatchObject({ code: GrpcStatus.PERMISSION_DENIED, details: expect.stringMatching(/configure/) });
      } finally {
        alice.close();
      }
    }
  });

  it("connect through the SDK without the monitoring tag, and publish and consume what they may", async () => {
    const client = await connect([harness.clientAddress(1), harness.clientAddress(2)], { credentials: { username: "alice", password }, tls: { ca } });
    try {
      await client.declareQueue("alice.sdk");
      await client.createPublisher({ window: 4 }).publish("", "alice.sdk", "hello");
      const consumer = await client.consume("alice.sdk", { prefetch: 1 });
      for await (const d of consumer) {
        expect(d.text()).toBe("hello");
        d.ack();
        break;
      }
      await expect(client.declareQueue("bob.sdk")).rejects.toThrow(/configure/);
    } finally {
      client.close();
    }
  });

  it("answers a wrong password and an unknown user alike", async () => {
    const c = new TestClient(harness.clientAddress(1), { channel: tlsCredentials(ca), metadata: basicAuth("alice", "wrong") });
    const u = new TestClient(harness.clientAddress(1), { channel: tlsCredentials(ca), metadata: basicAuth("nobody", "wrong") });
    try {
      const a = await c.call("ListQueues", {}).catch((e: unknown) => e);
      const b = await u.call("ListQueues", {}).catch((e: unknown) => e);
      expect(a).toMatchObject({ code: GrpcStatus.UNAUTHENTICATED });
      expect(b).toMatchObject({ code: GrpcStatus.UNAUTHENTICATED, details: (a as { details: string }).details });
    } finally {
      c.close();
      u.close();
    }
  });

  it("audits logins, failures, denials and changes, one JSON line each", async () => {
    const audit = [1, 2, 3].flatMap((id) => nodeLines(id).filter((l) => l.includes('"event":"audit"')).map((l) => (JSON.parse(l) as { audit: Record<string, unknown> }).audit));
    const events = new Set(audit.map((a) => a.event));
    for (const e of ["auth.success", "auth.failure", "access.denied", "user.add", "permissions.set", "queue.declare"]) expect(events.has(e), e).toBe(true);
    const userAdd = audit.find((a) => a.event === "user.add");
    expect(userAdd).toMatchObject({ user: ADMIN_USER, resource: "alice", result: "ok" });
    expect(JSON.stringify(audit)).not.toContain(password);
  });
  it("survive a snapshot and a restart of every node, and no password is in a data file or a log line", async () => {
    for (const id of [1, 2, 3]) await admin(id).callRetrying("TriggerSnapshot", {});
    for (const id of [1, 2, 3]) {
      await harness.stop(id);
      await harness.start(id, { members: [1, 2, 3] });
    }
    const alice = new TestClient(harness.clientAddress(3), { channel: tlsCredentials(ca), metadata: basicAuth("alice", password) });
    try {
      await eventually("alice after restarts", () => alice.call("QueueInfo", { name: "alice.q1" }));
    } finally {
      alice.close();
    }
    const secrets = [password, harness.adminPassword];
    const files: string[] = [];
    const walk = (dir: string) => {
      for (const name of readdirSync(dir)) {
        const p = join(dir, name);
        if (statSync(p).isDirectory()) walk(p);
        else files.push(p);
      }
    };
    for (const s of harness.specs) walk(s.dataDir);
    expect(files.length).toBeGreaterThan(3);
    for (const f of files) {
      const bytes = readFileSync(f);
      for (const secret of secrets) expect(bytes.includes(Buffer.from(secret)), `${secret} in ${f}`).toBe(false);
    }
    for (const id of [1, 2, 3]) for (const secret of secrets) expect(nodeLines(id).some((l) => l.includes(secret))).toBe(false);
  });

});

/** The serial number of the certificate a TLS port presents now. */
function servedSerial(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: "127.0.0.1", port, ca, ALPNProtocols: ["h2"], checkServerIdentity: () => undefined }, () => {
      const serial = socket.getPeerCertificate().serialNumber;
      socket.destroy();
      resolve(serial);
    });
    socket.once("error", reject);
  });
}

describe("certificate rotation", () => {
  it("serves a renewed certificate on new connections without a restart", async () => {
    const spec = harness.spec(1);
    const before = await servedSerial(spec.clientPort);
    const caPair = await readCertificateFiles(caPaths(harness.certificateDir));
    const renewed = await createNodeCertificate(caPair, { nodeId: 1, hosts: ["127.0.0.1", "localhost"] });
    writeFileSync(join(harness.certificateDir, "node-1.key"), renewed.keyPem);
    writeFileSync(join(harness.certificateDir, "node-1.crt"), renewed.certPem);
    // The harness runs its nodes with --tls-refresh-ms 1000.
    const after = await eventually("the renewed certificate served", async () => {
      const serial = await servedSerial(spec.clientPort);
      return serial !== before ? serial : undefined;
    });
    expect(after).not.toBe(before);
    const pid = harness.processes.get(1)?.child.pid;
    expect(pid).toBeDefined();
    // The same process keeps serving (a linearizable read goes through the leader).
    await eventually("node 1 serves after the renewal", () => admin(1).call("ListQueues", {}));
    expect(harness.processes.get(1)?.child.pid).toBe(pid);
  });
});

