// Random and mutated AMQP frames at a node's AMQP port after a valid handshake: every connection
// ends in connection.close with one of the spec's codes (or carries on, when the bytes happened to
// be a valid method), and the node keeps serving throughout.
import { connect, type Socket } from "node:net";
import { encodeContentHeader, encodeFrame, encodeMethod, FRAME_METHOD, PROTOCOL_HEADER, toFieldTable } from "@raftmq/amqp";
import amqp from "amqplib";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ClusterHarness } from "./cluster-harness.ts";

const harness = new ClusterHarness("amqp-fuzz");
const HARD_AND_SOFT_CODES = new Set([320, 403, 404, 405, 406, 501, 502, 503, 504, 505, 506, 530, 540, 541]);

beforeAll(async () => {
  await harness.plan(1);
  await harness.startAll(1);
});

afterAll(async () => {
  await harness.cleanup();
});

/** Protocol header, start-ok, tune-ok, open: what a client sends before its first channel. */
function handshake(): Buffer {
  const o = harness.clientOptions();
  const user = o.credentials?.username ?? "guest";
  const password = o.credentials?.password ?? "guest";
  return Buffer.concat([
    PROTOCOL_HEADER,
    encodeMethod(0, { name: "connection.start-ok", args: { clientProperties: toFieldTable({ product: "fuzz" }), mechanism: "PLAIN", response: Buffer.from(`\u0000${user}\u0000${password}`), locale: "en_US" } }),
    encodeMethod(0, { name: "connection.tune-ok", args: { channelMax: 16, frameMax: 8192, heartbeat: 0 } }),
    encodeMethod(0, { name: "connection.open", args: { virtualHost: "/", capabilities: "", insist: false } }),
    encodeMethod(1, { name: "channel.open", args: { outOfBand: "" } }),
  ]);
}

/** Valid frames to mutate: a declare, a publish with its content, an ack, a close. */
function seeds(): Buffer[] {
  return [
    encodeMethod(1, { name: "queue.declare", args: { ticket: 0, queue: "fuzz", passive: false, durable: true, exclusive: false, autoDelete: false, noWait: false, arguments: {} } }),
    Buffer.concat([
      encodeMethod(1, { name: "basic.publish", args: { ticket: 0, exchange: "", routingKey: "fuzz", mandatory: false, immediate: false } }),
      encodeContentHeader(1, 60, 5, { contentType: "text/plain", headers: toFieldTable({ a: 1, b: [1, "x"] }) }),
      encodeFrame(3, 1, Buffer.from("hello")),
    ]),
    encodeMethod(1, { name: "basic.ack", args: { deliveryTag: 1, multiple: false } }),
    encodeFrame(FRAME_METHOD, 1, Buffer.from([0, 60, 0, 10, 0, 0, 0, 5, 0])),
  ];
}

/** Sends `bytes` after a handshake; resolves to the reply code of the connection.close it got, or 0 if none within the window. */
function session(port: number, bytes: Buffer): Promise<number> {
  return new Promise((resolve) => {
    const socket: Socket = connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    let done = false;
    /** The reply code of a connection.close in what arrived: frame type 1, channel 0, class 10 method 50. */
    const closeCode = (): number => {
      const all = Buffer.concat(chunks);
      for (let i = 0; i + 13 <= all.length; i++) {
        if (all[i] === 1 && all.readUInt16BE(i + 1) === 0 && all.readUInt32BE(i + 7) === 0x000a0032) return all.readUInt16BE(i + 11);
      }
      return 0;
    };
    const finish = () => {
      if (done) return;
      done = true;
      socket.destroy();
      resolve(closeCode());
    };
    socket.on("data", (c: Buffer) => {
      chunks.push(c);
      if (closeCode() !== 0) finish();
    });
    socket.on("error", finish);
    socket.on("close", finish);
    socket.on("connect", () => {
      socket.write(handshake());
      socket.write(bytes);
    });
    setTimeout(finish, 500);
  });
}

describe("the AMQP port under random and mutated frames", () => {
  it("closes with a spec code or carries on, and keeps serving", async () => {
    const port = harness.spec(1).amqpPort;
    const frame = fc.oneof(
      fc.uint8Array({ minLength: 1, maxLength: 64 }).map((b) => Buffer.from(b)),
      fc.tuple(fc.constantFrom(...seeds()), fc.nat(), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 1, max: 4 })).map(([seed, at, value, count]) => {
        const copy = Buffer.from(seed);
        for (let i = 0; i < count; i++) copy[(at + i * 7) % copy.length] = value;
        return copy;
      }),
      fc.tuple(fc.constantFrom(...seeds()), fc.nat()).map(([seed, cut]) => seed.subarray(0, cut % seed.length)),
    );
    const codes: number[] = [];
    await fc.assert(
      fc.asyncProperty(fc.array(frame, { minLength: 1, maxLength: 4 }), async (frames) => {
        const code = await session(port, Buffer.concat(frames));
        codes.push(code);
        return code === 0 || HARD_AND_SOFT_CODES.has(code);
      }),
      { numRuns: 300 },
    );
    expect(codes.some((c) => c !== 0)).toBe(true);
    // Still serving: a real client declares and round-trips a message.
    const conn = await amqp.connect(`amqp://guest:guest@127.0.0.1:${port}`);
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue("after-fuzz", { durable: true });
    ch.sendToQueue("after-fuzz", Buffer.from("alive"));
    await ch.waitForConfirms();
    const got = await ch.get("after-fuzz", { noAck: true });
    expect(got === false ? null : got.content.toString()).toBe("alive");
    await conn.close();
    expect(harness.processes.has(1)).toBe(true);
  });
});
