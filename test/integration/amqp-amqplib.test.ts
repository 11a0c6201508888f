// RabbitMQ's Node client, amqplib, unchanged against raftmq's AMQP 0-9-1 port: through a
// follower and the leader, with confirms, consumers and settlements, RabbitMQ's error codes, and
// a leader killed under a publisher and a consumer.
import { connect as rawConnect, type Socket } from "node:net";
import amqp, { type Channel, type ChannelModel, type ConsumeMessage } from "amqplib";
import { encodeFrame, encodeMethod } from "@raftmq/amqp";
import { afterAll, describe, expect, it } from "vitest";
import { rawAmqp } from "./amqp-raw.ts";
import { eventually, sleep, waitForLeader, waitForNewLeader } from "./broker-test-client.ts";
import { useThreeNodeCluster } from "./three-node-cluster.ts";

const cluster = useThreeNodeCluster("amqplib");
const { harness } = cluster;
const open: ChannelModel[] = [];

afterAll(async () => {
  for (const c of open) await c.close().catch(() => {});
});

function amqpUrl(id: number, query = ""): string {
  const o = harness.clientOptions();
  const user = o.credentials === undefined ? "guest:guest" : `${o.credentials.username}:${encodeURIComponent(o.credentials.password)}`;
  return `amqp://${user}@127.0.0.1:${harness.spec(id).amqpPort}${query}`;
}

async function connectTo(id: number, query = ""): Promise<ChannelModel> {
  const c = await amqp.connect(amqpUrl(id, query));
  c.on("error", () => {});
  open.push(c);
  return c;
}

async function leaderAndFollower(): Promise<{ leader: number; follower: number }> {
  const leader = await waitForLeader([...cluster.clients.values()]);
  const follower = cluster.ids.find((id) => id !== leader) ?? 0;
  return { leader, follower };
}

/** The close code of a channel the broker closed while `op` ran. */
async function channelErrorCode(ch: Channel, op: () => Promise<unknown>): Promise<number> {
  const closed = new Promise<number>((resolve) => ch.once("error", (err: { code: number }) => resolve(err.code)));
  await op().catch(() => {});
  return closed;
}

/** Deliveries of `queue` held unacknowledged, as the broker counts them. */
async function unacked(id: number, queue: string): Promise<number> {
  const r = await cluster.client(id).call("QueueInfo", { name: queue });
  return Number(r.queue?.messagesUnacked ?? 0);
}

function collect(ch: Channel, queue: string, count: number, options: amqp.Options.Consume = {}): Promise<ConsumeMessage[]> {
  const got: ConsumeMessage[] = [];
  return new Promise((resolve, reject) => {
    ch.consume(
      queue,
      (m) => {
        if (m === null) return reject(new Error("consumer cancelled by the broker"));
        got.push(m);
        if (got.length === count) resolve(got);
      },
      options,
    ).catch(reject);
  });
}

describe("amqplib against raftmq", () => {
  it("declares, publishes with confirms and consumes through a follower", async () => {
    const { follower } = await leaderAndFollower();
    const conn = await connectTo(follower);
    const ch = await conn.createConfirmChannel();
    const q = await ch.assertQueue("amqplib-orders", { durable: true });
    expect(q).toEqual({ queue: "amqplib-orders", messageCount: 0, consumerCount: 0 });
    const total = 1000;
    const acked: number[] = [];
    for (let i = 0; i < total; i++) ch.publish("", "amqplib-orders", Buffer.from(`order ${i}`), { persistent: true, messageId: `m${i}` }, (err) => (err ? null : acked.push(i)));
    await ch.waitForConfirms();
    expect(acked).toHaveLength(total);

    const consumer = await conn.createChannel();
    await consumer.prefetch(50);
    const got: ConsumeMessage[] = [];
    await new Promise<void>((resolve) => {
      void consumer.consume("amqplib-orders", (m) => {
        if (m === null) return;
        got.push(m);
        // Every 25th delivery settles the 25 before it with one multiple ack.
        if (got.length % 25 === 0) consumer.ack(m, true);
        if (got.length === total) resolve();
      });
    });
    expect(got.map((m) => m.content.toString())).toEqual(Array.from({ length: total }, (_, i) => `order ${i}`));
    expect(got.map((m) => m.fields.deliveryTag)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    expect(got.every((m) => m.properties.deliveryMode === 2 && m.properties.messageId === `m${got.indexOf(m)}`)).toBe(true);
    await eventually("the queue empty and nothing unacked", async () => {
      const q = await ch.checkQueue("amqplib-orders");
      return q.messageCount === 0 && (await unacked(follower, "amqplib-orders")) === 0 ? true : undefined;
    });
  });

  it("keeps every property and typed header a publisher sets", async () => {
    const { leader } = await leaderAndFollower();
    const conn = await connectTo(leader);
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue("amqplib-props", { durable: true });
    const headers = {
      str: "text",
      int8: { "!": "int8", value: -5 },
      int16: { "!": "int16", value: 1234 },
      int32: { "!": "int32", value: -70000 },
      int64: { "!": "int64", value: 2 ** 40 },
      float: { "!": "float", value: 1.5 },
      double: 2.25,
      bool: true,
      bytes: Buffer.from([0, 1, 2, 255]),
      decimal: { "!": "decimal", value: { places: 2, digits: 12345 } },
      time: { "!": "timestamp", value: 1_700_000_000 },
      nested: { a: [1, "two", { b: false }] },
      none: null,
    };
    const props = {
      contentType: "application/json",
      contentEncoding: "utf-8",
      headers,
      deliveryMode: 2,
      priority: 3,
      correlationId: "corr-1",
      replyTo: "replies",
      expiration: "600000",
      messageId: "id-1",
      timestamp: 1_700_000_001,
      type: "order.created",
      appId: "amqplib-test",
    };
    ch.publish("", "amqplib-props", Buffer.from("{}"), props);
    await ch.waitForConfirms();
    const [m] = await collect(ch, "amqplib-props", 1, { noAck: true });
    const p = (m as ConsumeMessage).properties;
    expect({ ...p, headers: undefined }).toEqual({ ...props, headers: undefined, userId: undefined, clusterId: undefined });
    expect(p.headers).toEqual({
      str: "text",
      int8: -5,
      int16: 1234,
      int32: -70000,
      int64: 2 ** 40,
      float: 1.5,
      double: 2.25,
      bool: true,
      bytes: Buffer.from([0, 1, 2, 255]),
      decimal: { "!": "decimal", value: { places: 2, digits: 12345 } },
      time: { "!": "timestamp", value: 1_700_000_000 },
      nested: { a: [1, "two", { b: false }] },
      none: null,
    });
  });

  it("returns an unroutable mandatory message, then confirms it; splits large bodies by frame_max", async () => {
    const { follower } = await leaderAndFollower();
    const conn = await connectTo(follower, "?frameMax=4096");
    const ch = await conn.createConfirmChannel();
    const returned = new Promise<ConsumeMessage>((resolve) => ch.once("return", resolve));
    await new Promise<void>((resolve, reject) => ch.publish("amq.direct", "nobody-listens", Buffer.from("lost?"), { mandatory: true }, (err) => (err ? reject(err) : resolve())));
    const r = await returned;
    expect(r.fields).toMatchObject({ replyCode: 312, replyText: "NO_ROUTE", exchange: "amq.direct", routingKey: "nobody-listens" });
    expect(r.content.toString()).toBe("lost?");

    await ch.assertQueue("amqplib-large", { durable: true });
    const body = Buffer.alloc(1024 * 1024 + 17);
    for (let i = 0; i < body.length; i++) body[i] = (i * 31) & 0xff;
    ch.publish("", "amqplib-large", body);
    await ch.waitForConfirms();
    const [m] = await collect(ch, "amqplib-large", 1, { noAck: true });
    expect((m as ConsumeMessage).content.equals(body)).toBe(true);
  });

  it("requeues, rejects into a dead-letter exchange, and gets messages one at a time", async () => {
    const { follower } = await leaderAndFollower();
    const conn = await connectTo(follower);
    const ch = await conn.createConfirmChannel();
    await ch.assertExchange("amqplib-dlx", "fanout", { durable: true });
    await ch.assertQueue("amqplib-dead", { durable: true });
    await ch.bindQueue("amqplib-dead", "amqplib-dlx", "");
    await ch.assertQueue("amqplib-work", { durable: true, arguments: { "x-dead-letter-exchange": "amqplib-dlx" } });
    for (const body of ["a", "b"]) ch.sendToQueue("amqplib-work", Buffer.from(body));
    await ch.waitForConfirms();

    const first = await ch.get("amqplib-work");
    expect(first === false ? null : [first.content.toString(), first.fields.messageCount]).toEqual(["a", 1]);
    const consumerCh = await conn.createChannel();
    const [b1] = await collect(consumerCh, "amqplib-work", 1);
    expect(b1?.fields.redelivered).toBe(false);
    // Settling after basic.cancel is allowed: the delivery stays the channel's until settled.
    await consumerCh.cancel(b1?.fields.consumerTag ?? "");
    consumerCh.nack(b1 as ConsumeMessage, false, true);
    await eventually("b back in the queue", async () => ((await ch.checkQueue("amqplib-work")).messageCount === 1 ? true : undefined));
    await consumerCh.close();
    const again = await ch.get("amqplib-work");
    expect(again === false ? null : [again.content.toString(), again.fields.redelivered]).toEqual(["b", true]);
    expect(await ch.get("amqplib-work")).toBe(false);

    ch.sendToQueue("amqplib-work", Buffer.from("c"));
    await ch.waitForConfirms();
    const rejectCh = await conn.createChannel();
    const [c] = await collect(rejectCh, "amqplib-work", 1);
    rejectCh.reject(c as ConsumeMessage, false);
    const [dead] = await collect(rejectCh, "amqplib-dead", 1, { noAck: true });
    expect(dead?.content.toString()).toBe("c");
    const deaths = dead?.properties.headers?.["x-death"] as unknown as Record<string, unknown>[] | undefined;
    const death = deaths?.[0];
    expect(death).toMatchObject({ queue: "amqplib-work", reason: "rejected", count: 1 });
  });

  it("runs the publish/subscribe tutorial: exclusive server-named queues bound to a fanout exchange", async () => {
    const { leader, follower } = await leaderAndFollower();
    const subscribers = await Promise.all([follower, leader].map(async (id) => (await connectTo(id)).createChannel()));
    const logs = subscribers.map(() => [] as string[]);
    for (const [i, ch] of subscribers.entries()) {
      await ch.assertExchange("amqplib-logs", "fanout", { durable: false });
      const { queue } = await ch.assertQueue("", { exclusive: true });
      await ch.bindQueue(queue, "amqplib-logs", "");
      await ch.consume(queue, (m) => m && logs[i]?.push(m.content.toString()), { noAck: true });
    }
    const emitter = await (await connectTo(follower)).createConfirmChannel();
    for (const line of ["info: one", "warn: two"]) emitter.publish("amqplib-logs", "", Buffer.from(line));
    await emitter.waitForConfirms();
    await eventually("both subscribers got both lines", async () => (logs.every((l) => l.length === 2) ? true : undefined));
    expect(logs).toEqual([
      ["info: one", "warn: two"],
      ["info: one", "warn: two"],
    ]);
  });

  it("answers a request through direct reply-to, requester and responder on different nodes", async () => {
    const { leader, follower } = await leaderAndFollower();
    const responder = await (await connectTo(leader)).createChannel();
    await responder.assertQueue("amqplib-rpc", { durable: true });
    await responder.consume("amqplib-rpc", (m) => {
      if (m === null) return;
      responder.sendToQueue(m.properties.replyTo, Buffer.from(`re: ${m.content.toString()}`), { correlationId: m.properties.correlationId });
      responder.ack(m);
    });
    const requester = await (await connectTo(follower)).createChannel();
    const replies: ConsumeMessage[] = [];
    const three = new Promise<void>((resolve) => {
      void requester.consume(
        "amq.rabbitmq.reply-to",
        (m) => {
          if (m === null) return;
          replies.push(m);
          if (replies.length === 3) resolve();
        },
        { noAck: true },
      );
    });
    for (const id of ["1", "2", "3"]) requester.sendToQueue("amqplib-rpc", Buffer.from(`q${id}`), { replyTo: "amq.rabbitmq.reply-to", correlationId: id });
    await three;
    expect(replies.map((m) => [m.properties.correlationId, m.content.toString()]).sort()).toEqual([
      ["1", "re: q1"],
      ["2", "re: q2"],
      ["3", "re: q3"],
    ]);
    expect(replies[0]?.fields.routingKey).toMatch(/^amq\.rabbitmq\.reply-to\./);
    // A request naming direct reply-to needs the channel's reply consumer first.
    const lonely = await (await connectTo(follower)).createChannel();
    expect(await channelErrorCode(lonely, async () => lonely.sendToQueue("amqplib-rpc", Buffer.from("q"), { replyTo: "amq.rabbitmq.reply-to" }))).toBe(406);
  });

  it("answers with RabbitMQ's channel and connection error codes", async () => {
    const { follower } = await leaderAndFollower();
    const conn = await connectTo(follower);
    let ch = await conn.createChannel();
    expect(await channelErrorCode(ch, () => ch.checkQueue("amqplib-nosuch"))).toBe(404);
    ch = await conn.createChannel();
    expect(await channelErrorCode(ch, () => ch.checkExchange("amqplib-nosuch"))).toBe(404);
    ch = await conn.createChannel();
    await ch.assertQueue("amqplib-durable", { durable: true });
    expect(await channelErrorCode(ch, () => ch.assertQueue("amqplib-durable", { durable: false }))).toBe(406);
    ch = await conn.createChannel();
    expect(await channelErrorCode(ch, () => ch.assertExchange("amq.reserved", "direct"))).toBe(403);

    const confirm = await conn.createConfirmChannel();
    expect(await channelErrorCode(confirm, () => new Promise((resolve) => confirm.publish("amqplib-nosuch", "k", Buffer.from("x"), {}, resolve)))).toBe(404);

    ch = await conn.createChannel();
    await ch.assertQueue("amqplib-unknown-tag", { durable: true });
    const unknownTag = channelErrorCode(ch, async () => ch.ack({ fields: { deliveryTag: 99 } } as ConsumeMessage));
    expect(await unknownTag).toBe(406);

    // An exclusive queue belongs to its connection.
    const owner = await (await connectTo(follower)).createChannel();
    await owner.assertQueue("amqplib-mine", { exclusive: true });
    ch = await conn.createChannel();
    expect(await channelErrorCode(ch, () => ch.consume("amqplib-mine", () => {}))).toBe(405);

    // Connection errors close the connection.
    const doomed = await connectTo(follower);
    const closed = new Promise<number>((resolve) => doomed.once("error", (err: { code: number }) => resolve(err.code)));
    const txCh = await doomed.createChannel();
    txCh.on("error", () => {});
    (txCh as unknown as { rpc(method: number, fields: object, expect: number): Promise<unknown> }).rpc(5898250, {}, 5898251).catch(() => {});
    expect(await closed).toBe(540);
  });

  it("keeps a follower's connection through a leader kill: nothing confirmed lost, unacked redelivered", async () => {
    const { leader, follower } = await leaderAndFollower();
    const other = cluster.ids.find((id) => id !== leader && id !== follower) ?? 0;
    const pubConn = await connectTo(other);
    const subConn = await connectTo(follower);
    const pub = await pubConn.createConfirmChannel();
    const sub = await subConn.createChannel();
    await pub.assertQueue("amqplib-failover", { durable: true });
    await sub.prefetch(20);
    const received = new Set<string>();
    let redelivered = 0;
    await sub.consume("amqplib-failover", (m) => {
      if (m === null) return;
      received.add(m.content.toString());
      if (m.fields.redelivered) redelivered++;
      sub.ack(m);
    });
    const confirmed = new Set<string>();
    let nacked = 0;
    let sent = 0;
    const publishSome = async (count: number) => {
      for (let i = 0; i < count; i++) {
        const body = `f-${sent++}`;
        pub.publish("", "amqplib-failover", Buffer.from(body), { persistent: true }, (err) => (err ? nacked++ : confirmed.add(body)));
      }
      await pub.waitForConfirms().catch(() => {});
    };
    // A connection with an exclusive queue loses it with the old leader's session: it is closed.
    const exclusiveConn = await connectTo(follower);
    const exclusiveCh = await exclusiveConn.createChannel();
    exclusiveCh.on("error", () => {});
    await exclusiveCh.assertQueue("", { exclusive: true });
    // amqplib reports a 320 CONNECTION_FORCED as a close with an error, not as an error event.
    const exclusiveClosed = new Promise<string>((resolve) => exclusiveConn.once("close", (err: unknown) => resolve(String(err))));
    await publishSome(300);
    await harness.stop(leader, "SIGKILL");
    await waitForNewLeader([cluster.client(follower), cluster.client(other)], leader);
    await sleep(200);
    await publishSome(300);
    expect(confirmed.size).toBeGreaterThan(300);
    await eventually("every confirmed message consumed", async () => ([...confirmed].every((b) => received.has(b)) ? true : undefined), 30_000);
    expect(subConn.connection.serverProperties?.product).toBe("raftmq");
    expect(nacked + confirmed.size).toBe(sent);
    expect(redelivered).toBeGreaterThanOrEqual(0);
    expect(await exclusiveClosed).toMatch(/320 \(CONNECTION-FORCED\).*exclusive queues/);
    await harness.start(leader, { members: cluster.ids });
  });
});

describe("the AMQP port against bad input", () => {
  async function rawSession(id: number): Promise<{ socket: Socket; received: () => Buffer; closed: Promise<void> }> {
    const socket = rawConnect(harness.spec(id).amqpPort, "127.0.0.1");
    const chunks: Buffer[] = [];
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("error", () => {});
    const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
    await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
    return { socket, received: () => Buffer.concat(chunks), closed };
  }

  it("answers a wrong protocol header with its own and closes", async () => {
    const s = await rawSession(1);
    s.socket.write("AMQP\x00\x01\x00\x00");
    await s.closed;
    expect(s.received()).toEqual(Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1]));
    const http = await rawSession(1);
    http.socket.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    await http.closed;
    expect(http.received()).toEqual(Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1]));
  });

  /** The reply code of the connection.close that `frames` draw after a full handshake (heartbeat in seconds), and how long it took. */
  async function closeCodeAfter(frames: Buffer[], heartbeat = 0): Promise<{ code: number; closedAfterMs: number }> {
    const o = harness.clientOptions();
    const session = await rawAmqp(harness.spec(3).amqpPort, { user: o.credentials?.username ?? "guest", password: o.credentials?.password ?? "guest", heartbeat });
    expect(session.outcome).toBe("opened");
    const started = Date.now();
    for (const f of frames) session.socket.write(f);
    const { code, at } = await session.closed;
    return { code, closedAfterMs: at - started };
  }

  it("closes with 502, 503, 504 and 505 as the spec's grammar says", async () => {
    const open1 = encodeMethod(1, { name: "channel.open", args: { outOfBand: "" } });
    // A queue.declare cut short inside its arguments.
    const declare = encodeMethod(1, { name: "queue.declare", args: { ticket: 0, queue: "q", passive: false, durable: false, exclusive: false, autoDelete: false, noWait: false, arguments: {} } });
    const truncated = encodeFrame(1, 1, declare.subarray(7, declare.length - 4));
    expect((await closeCodeAfter([open1, truncated])).code).toBe(502);
    // basic.deliver is the server's to send.
    const deliver = encodeMethod(1, { name: "basic.deliver", args: { consumerTag: "x", deliveryTag: 1, redelivered: false, exchange: "", routingKey: "q" } });
    expect((await closeCodeAfter([open1, deliver])).code).toBe(503);
    // A method on a channel that was never opened.
    expect((await closeCodeAfter([encodeMethod(5, { name: "basic.qos", args: { prefetchSize: 0, prefetchCount: 1, global: false } })])).code).toBe(504);
    // A body frame with no basic.publish before it.
    expect((await closeCodeAfter([open1, encodeFrame(3, 1, Buffer.from("stray"))])).code).toBe(505);
  });

  it("closes the socket of a client that stops sending heartbeats", async () => {
    const { code, closedAfterMs } = await closeCodeAfter([], 1);
    expect(code).toBe(0);
    expect(closedAfterMs).toBeGreaterThanOrEqual(1500);
    expect(closedAfterMs).toBeLessThan(10_000);
  });

  it("closes a connection that sends a malformed frame with 501, and serves the next one", async () => {
    const s = await rawSession(2);
    s.socket.write(Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1]));
    // A method frame whose frame-end octet is wrong.
    s.socket.write(Buffer.from([1, 0, 0, 0, 0, 0, 4, 0, 10, 0, 11, 0x00]));
    await s.closed;
    const got = s.received();
    // connection.start, then connection.close (class 10, method 50) with reply code 501.
    const close = got.indexOf(Buffer.from([0, 10, 0, 50]));
    expect(close).toBeGreaterThan(0);
    expect(got.readUInt16BE(close + 4)).toBe(501);
    const conn = await connectTo(2);
    const ch = await conn.createChannel();
    expect((await ch.assertQueue("", { exclusive: true })).queue).toMatch(/^amq\.gen-/);
  });
});
