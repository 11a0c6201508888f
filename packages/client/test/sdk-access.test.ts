// The SDK against a stand-in node (fake-node.ts): every kind of call carries the credentials and
// the vhost, refusals come back typed and are not retried, and TLS works with the cluster's CA.
import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { createCa, createClientCertificate, createNodeCertificate } from "../../server/src/tls/index.ts";
import { AuthenticationError, connect, PermissionDeniedError, type RaftmqClient, UnavailableError } from "../src/index.ts";
import { FakeNode } from "./fake-node.ts";

const ALICE = `Basic ${Buffer.from("alice:secret").toString("base64")}`;
const cleanups: (() => void)[] = [];

afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

async function node(credentials?: grpc.ServerCredentials, host?: string): Promise<FakeNode> {
  const n = new FakeNode();
  await n.start(credentials, host);
  cleanups.push(() => n.stop());
  return n;
}

function keep(client: RaftmqClient): RaftmqClient {
  cleanups.push(() => client.close());
  return client;
}

describe("credentials and vhost on every call", () => {
  it("unary calls of Cluster, Broker and Access, and both streams carry them", async () => {
    const n = await node();
    const client = keep(await connect([n.address], { credentials: { username: "alice", password: "secret" }, vhost: "prod" }));
    expect(client.vhost).toBe("prod");
    await client.declareQueue("q");
    const publisher = client.createPublisher();
    expect((await publisher.publish("", "q", "hello")).routedQueues).toEqual(["q"]);
    await publisher.close();
    const consumer = await client.consume("q");
    await consumer.close();
    expect(await client.whoAmI()).toEqual({ user: "alice", tags: ["administrator"], mechanism: "password" });
    await client.status();

    const methods = new Set(n.calls.map((c) => c.method));
    expect(methods).toEqual(new Set(["Cluster/Status", "Broker/DeclareQueue", "Broker/PublishStream", "Broker/Consume", "Access/WhoAmI"]));
    for (const c of n.calls) {
      expect(c.authorization, c.method).toBe(ALICE);
      expect(c.vhost, c.method).toBe("prod");
    }
  });

  it("without options: no authorization and no vhost, as before", async () => {
    const n = await node();
    const client = keep(await connect([n.address]));
    await client.declareQueue("q");
    expect(client.vhost).toBe("/");
    for (const c of n.calls) expect([c.authorization, c.vhost]).toEqual([undefined, undefined]);
  });
});

describe("refusals", () => {
  it("refused credentials fail connect with an AuthenticationError, asking each node once", async () => {
    const n = await node();
    n.gate = (c) => (c.authorization === ALICE ? null : { code: grpc.status.UNAUTHENTICATED, details: "invalid credentials" });
    const err = await connect([n.address], { credentials: { username: "alice", password: "wrong" }, retryTimeoutMs: 5000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthenticationError);
    expect((err as AuthenticationError).details).toBe("invalid credentials");
    expect((err as AuthenticationError).code).toBe(grpc.status.UNAUTHENTICATED);
    expect(n.count("Cluster/Status")).toBe(1);
  });

  it("a call the user may not make fails with a PermissionDeniedError, without a retry", async () => {
    const n = await node();
    n.gate = (c) => (c.method === "Cluster/Status" ? null : { code: grpc.status.PERMISSION_DENIED, details: "no configure permission on queue 'q' in vhost 'prod'" });
    const client = keep(await connect([n.address], { credentials: { username: "bob", password: "pw" }, vhost: "prod", retryTimeoutMs: 5000 }));
    await expect(client.declareQueue("q")).rejects.toBeInstanceOf(PermissionDeniedError);
    expect(n.count("Broker/DeclareQueue")).toBe(1);
    await expect(client.addUser("carol", "pw")).rejects.toThrow(/no configure permission/);
    expect(n.count("Access/AddUser")).toBe(1);

    // Streams: a publish and a subscription are refused once, not retried until the retry timeout.
    const started = Date.now();
    const publisher = client.createPublisher();
    const outcomes = await Promise.all([publisher.publish("", "q", "1"), publisher.publish("", "q", "2")].map((p) => p.catch((e: unknown) => e)));
    for (const o of outcomes) expect(o).toBeInstanceOf(PermissionDeniedError);
    await expect(client.consume("q")).rejects.toBeInstanceOf(PermissionDeniedError);
    expect(n.count("Broker/PublishStream")).toBe(1);
    expect(n.count("Broker/Consume")).toBe(1);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it("an unreachable cluster is still an UnavailableError", async () => {
    const n = await node();
    const address = n.address;
    n.stop();
    await expect(connect([address], { credentials: { username: "alice", password: "secret" }, discoveryTimeoutMs: 500 })).rejects.toBeInstanceOf(UnavailableError);
  });
});

describe("access calls", () => {
  it("turn answers into plain objects and requests into the wire's", async () => {
    const n = await node();
    const client = keep(await connect([n.address]));
    expect(await client.listUsers()).toEqual([
      { name: "alice", tags: ["administrator"], hasPassword: true },
      { name: "svc", tags: [], hasPassword: false },
    ]);
    expect(await client.listVhosts()).toEqual(["/", "prod"]);
    expect(await client.listPermissions({ vhost: "prod" })).toEqual([{ user: "alice", vhost: "prod", configure: ".*", write: ".*", read: "" }]);
    await client.setPermissions({ user: "bob", vhost: "prod", configure: "", write: "^logs$", read: ".*" });
    expect(n.count("Access/SetPermissions")).toBe(1);
  });
});

describe("TLS", () => {
  it("talks to a node whose certificate the CA signed, as the user its certificate names", async () => {
    const ca = await createCa();
    const server = await createNodeCertificate(ca, { nodeId: 1, hosts: ["127.0.0.1", "localhost"] });
    const alice = await createClientCertificate(ca, { user: "alice" });
    const credentials = grpc.ServerCredentials.createSsl(Buffer.from(ca.certPem), [{ cert_chain: Buffer.from(server.certPem), private_key: Buffer.from(server.keyPem) }], true);
    const n = await node(credentials);
    const client = keep(await connect([n.address], { tls: { ca: ca.certPem, cert: alice.certPem, key: alice.keyPem } }));
    expect(await client.whoAmI()).toEqual({ user: "alice", tags: ["administrator"], mechanism: "certificate" });
    expect(n.calls.every((c) => c.peerCommonName === "alice")).toBe(true);

    // serverName: the name checked when the address is not in the certificate.
    const byName = keep(await connect([n.address], { tls: { ca: Buffer.from(ca.certPem), cert: alice.certPem, key: alice.keyPem, serverName: "localhost" } }));
    await byName.whoAmI();
    await expect(connect([n.address], { tls: { ca: ca.certPem, cert: alice.certPem, key: alice.keyPem, serverName: "elsewhere.example" }, discoveryTimeoutMs: 1000 })).rejects.toBeInstanceOf(
      UnavailableError,
    );
  });

  it("fails without a client certificate the node asks for, or against a CA it does not trust", async () => {
    const ca = await createCa();
    const server = await createNodeCertificate(ca, { nodeId: 1, hosts: ["127.0.0.1"] });
    const credentials = grpc.ServerCredentials.createSsl(Buffer.from(ca.certPem), [{ cert_chain: Buffer.from(server.certPem), private_key: Buffer.from(server.keyPem) }], true);
    const n = await node(credentials);
    await expect(connect([n.address], { tls: { ca: ca.certPem }, discoveryTimeoutMs: 1000 })).rejects.toBeInstanceOf(UnavailableError);
    const other = await createCa();
    const stranger = await createClientCertificate(other, { user: "alice" });
    await expect(connect([n.address], { tls: { ca: other.certPem, cert: stranger.certPem, key: stranger.keyPem }, discoveryTimeoutMs: 1000 })).rejects.toBeInstanceOf(UnavailableError);
    expect(n.calls).toEqual([]);
  });
});
