// AMQP on a node with TLS: logins against the cluster's users (PLAIN, AMQPLAIN, EXTERNAL with a
// client certificate over AMQPS), vhost access at connection.open, permissions on every method,
// and plain AMQP kept to the loopback interface.
import { readFileSync } from "node:fs";
import { connect as connectSdk, type RaftmqClient } from "@raftmq/client";
import amqp, { type ChannelModel } from "amqplib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rawAmqp } from "./amqp-raw.ts";
import { ADMIN_USER, ClusterHarness, freePorts } from "./cluster-harness.ts";

const harness = new ClusterHarness("amqp-security", undefined, undefined, "tls");
let sdk: RaftmqClient;
let amqpsPort = 0;
const open: ChannelModel[] = [];

beforeAll(async () => {
  await harness.plan(1);
  [amqpsPort] = (await freePorts(1)) as [number];
  await harness.start(1, { members: [1], flags: ["--amqps-port", String(amqpsPort)] });
  await harness.adminReady();
  const o = harness.clientOptions();
  sdk = await connectSdk([harness.clientAddress(1)], { credentials: o.credentials, tls: o.tls });
  await sdk.addUser("amqp-writer", "pw-writer");
  await sdk.setPermissions({ user: "amqp-writer", vhost: "/", configure: "^amqp-w\\.", write: "^(amqp-w\\..*|amq\\.default)$", read: "^amqp-w\\." });
  await sdk.addUser("amqp-nobody", "pw-nobody");
  await sdk.addVhost("elsewhere");
});

afterAll(async () => {
  for (const c of open) await c.close().catch(() => {});
  sdk?.close();
  await harness.cleanup();
});

function plainUrl(user: string, password: string, vhost = "/"): string {
  return `amqp://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${harness.spec(1).amqpPort}/${encodeURIComponent(vhost)}`;
}

/** How a PLAIN login and connection.open went: "opened", or the connection.close they drew. */
async function rawOpen(user: string, password: string, vhost: string): Promise<string> {
  const session = await rawAmqp(harness.spec(1).amqpPort, { user, password, vhost });
  session.socket.destroy();
  return session.outcome;
}

/** The reply code a refused connection attempt ended with. */
async function refusal(connecting: Promise<ChannelModel>): Promise<string> {
  try {
    open.push(await connecting);
    return "connected";
  } catch (err) {
    return String((err as Error).message);
  }
}

describe("AMQP with TLS on the node", () => {
  it("logs users in with PLAIN and AMQPLAIN, refuses a wrong password with 403 ACCESS_REFUSED", async () => {
    const admin = await amqp.connect(plainUrl(ADMIN_USER, harness.adminPassword));
    open.push(admin);
    expect(admin.connection.serverProperties?.product).toBe("raftmq");
    const amqplain = await amqp.connect(plainUrl("amqp-writer", "pw-writer"), { credentials: amqp.credentials.amqplain("amqp-writer", "pw-writer") });
    open.push(amqplain);
    expect(await refusal(amqp.connect(plainUrl("amqp-writer", "wrong")))).toMatch(/ACCESS_REFUSED|403/);
    expect(await refusal(amqp.connect(plainUrl("no-such-user", "x")))).toMatch(/ACCESS_REFUSED|403/);
    const metrics = await (await fetch(`http://127.0.0.1:${harness.spec(1).httpPort}/metrics`)).text();
    expect(Number(/^raftmq_amqp_connection_errors_total\{code="403"\} (\d+)/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(2);
    expect(Number(/^raftmq_amqp_connections (\d+)/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(2);
  });

  it("refuses connection.open on a vhost the user has no access to with 530 NOT_ALLOWED", async () => {
    expect(await rawOpen("amqp-nobody", "pw-nobody", "/")).toBe("530 NOT_ALLOWED - access to vhost '/' refused for user 'amqp-nobody'");
    expect(await rawOpen("amqp-writer", "pw-writer", "elsewhere")).toBe("530 NOT_ALLOWED - access to vhost 'elsewhere' refused for user 'amqp-writer'");
    expect(await rawOpen("amqp-writer", "pw-writer", "no-such-vhost")).toBe("530 NOT_ALLOWED - vhost 'no-such-vhost' not found");
    expect(await rawOpen("amqp-writer", "wrong", "/")).toBe("403 ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN");
    expect(await rawOpen("amqp-writer", "pw-writer", "/")).toBe("opened");
  });

  it("checks permissions on each method: a refused one closes the channel with 403", async () => {
    const conn = await amqp.connect(plainUrl("amqp-writer", "pw-writer"));
    open.push(conn);
    conn.on("error", () => {});
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue("amqp-w.orders", { durable: true });
    ch.sendToQueue("amqp-w.orders", Buffer.from("allowed"));
    await ch.waitForConfirms();
    const denied = await conn.createChannel();
    const code = new Promise<number>((resolve) => denied.once("error", (err: { code: number }) => resolve(err.code)));
    await denied.assertQueue("other.orders", { durable: true }).catch(() => {});
    expect(await code).toBe(403);
    // A message claiming another user's id is refused, as RabbitMQ refuses it.
    const liar = await conn.createConfirmChannel();
    const liarCode = new Promise<number>((resolve) => liar.once("error", (err: { code: number }) => resolve(err.code)));
    liar.sendToQueue("amqp-w.orders", Buffer.from("x"), { userId: ADMIN_USER });
    expect(await liarCode).toBe(406);
  });

  it("serves AMQPS with the node's certificate, and EXTERNAL with a client certificate", async () => {
    const certs = await harness.certificatesFor([1]);
    const ca = readFileSync(certs.ca.certPath);
    const tlsConn = await amqp.connect(`amqps://${ADMIN_USER}:${encodeURIComponent(harness.adminPassword)}@127.0.0.1:${amqpsPort}`, { ca: [ca], servername: "localhost" });
    open.push(tlsConn);
    const ch = await tlsConn.createChannel();
    expect((await ch.assertQueue("", { exclusive: true })).queue).toMatch(/^amq\.gen-/);
    const client = certs.clients.get(ADMIN_USER);
    if (client === undefined) throw new Error("no admin client certificate");
    const external = await amqp.connect(`amqps://127.0.0.1:${amqpsPort}`, {
      ca: [ca],
      cert: readFileSync(client.certPath),
      key: readFileSync(client.keyPath),
      credentials: amqp.credentials.external(),
      servername: "localhost",
    });
    open.push(external);
    expect((await (await external.createChannel()).checkQueue("amqp-w.orders")).queue).toBe("amqp-w.orders");
    // No client certificate: EXTERNAL is not offered.
    expect(await refusal(amqp.connect(`amqps://127.0.0.1:${amqpsPort}`, { ca: [ca], credentials: amqp.credentials.external(), servername: "localhost" }))).not.toBe("connected");
  });
});
