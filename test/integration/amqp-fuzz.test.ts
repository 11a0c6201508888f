// Random and mutated AMQP frames at a node's AMQP port after a valid handshake: every connection
// ends in connection.close with one of the spec's codes (or carries on, when the bytes happened to
// be a valid method), and the node keeps serving throughout.
import { encodeContentHeader, encodeFrame, encodeMethod, FRAME_METHOD, toFieldTable } from "@raftmq/amqp";
import amqp from "amqplib";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rawAmqp } from "./amqp-raw.ts";
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

/** Opens a connection and channel 1, sends `bytes`; resolves to the reply code of the connection.close they drew, or 0 if none in the window. */
async function session(port: number, bytes: Buffer): Promise<number> {
  const o = harness.clientOptions();
  const raw = await rawAmqp(port, { user: o.credentials?.username ?? "guest", password: o.credentials?.password ?? "guest", frameMax: 8192 });
  if (raw.outcome !== "opened") throw new Error(`handshake: ${raw.outcome}`);
  raw.socket.write(encodeMethod(1, { name: "channel.open", args: { outOfBand: "" } }));
  raw.socket.write(bytes);
  const timer = setTimeout(() => raw.socket.destroy(), 200);
  const { code } = await raw.closed;
  clearTimeout(timer);
  return code;
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
      { numRuns: 200 },
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
