// A Consume stream counts the bytes its client has not taken yet: past a bound the stream ends as a
// slow consumer (RESOURCE_EXHAUSTED) and its session goes down; a paused no_ack consumer is
// resumed only once its stream took what it was given.
import { Duplex } from "node:stream";
import * as grpc from "@grpc/grpc-js";
import type { DeliverEffect } from "@raftmq/broker";
import type { raftmq } from "@raftmq/proto";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { BoundedStreamWriter, DEFAULT_CONSUME_MAX_PENDING_BYTES, responseBytes } from "../src/bounded-stream-writer.ts";
import type { BrokerServiceContext } from "../src/broker-service.ts";
import { CommandBuilder } from "../src/command-builder.ts";
import { consumeStream } from "../src/consume-session.ts";
import { ConsumerSessions } from "../src/consumer-sessions.ts";
import { toGrpcFailure } from "../src/grpc-status.ts";
import { ConfigError, resolveNodeConfig } from "../src/node-config.ts";

type Response = raftmq.v1.ConsumeResponse.$Properties;
type Command = raftmq.v1.Command.$Properties;

/** A server stream whose client takes nothing until told to: writes complete on release(). */
class HeldStream extends Duplex {
  readonly written: Response[] = [];
  /** The call's metadata, as a Consume call has it: none asked for. */
  readonly metadata = new grpc.Metadata();
  private held: (() => void)[] = [];
  failure: { code: number; details: string } | null = null;

  constructor() {
    super({ objectMode: true });
    this.on("error", (e: { code: number; details: string }) => {
      this.failure = e;
    });
  }

  override _read(): void {}

  override _write(chunk: Response, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.written.push(chunk);
    this.held.push(() => callback());
  }

  /** The client reads everything written so far. */
  release(): void {
    // Each completion lets the stream hand over the next buffered response, which is held again.
    while (this.held.length > 0) {
      const held = this.held;
      this.held = [];
      for (const f of held) f();
    }
  }
}

const body = (bytes: number) => new Uint8Array(bytes);
const delivery = (bytes: number): Response => ({ delivery: { consumerTag: "t", deliveryTag: 1, queue: "q", body: body(bytes) } });
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe("bounded stream writer", () => {
  it("counts a response's bytes until the transport takes it", async () => {
    const stream = new HeldStream();
    const writer = new BoundedStreamWriter(stream, 10_000);
    expect(writer.write(delivery(1000))).toBeNull();
    expect(writer.write(delivery(2000))).toBeNull();
    expect(writer.pendingBytes).toBe(responseBytes(delivery(1000)) + responseBytes(delivery(2000)));
    stream.release();
    await settle();
    stream.release();
    await settle();
    expect(writer.pendingBytes).toBe(0);
  });

  it("refuses a write past the bound with a RESOURCE_EXHAUSTED error naming it", () => {
    const writer = new BoundedStreamWriter(new HeldStream(), 10_000);
    expect(writer.write(delivery(6000))).toBeNull();
    const slow = writer.write(delivery(6000));
    expect(slow).not.toBeNull();
    expect(slow?.maxPendingBytes).toBe(10_000);
    const f = toGrpcFailure(slow);
    expect(f.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(f.details).toContain("slow consumer");
    expect(f.details).toContain("limit of 10000 (consume-max-pending-bytes)");
  });

  it("lets one response larger than the bound through an idle stream", () => {
    const writer = new BoundedStreamWriter(new HeldStream(), 1000);
    expect(writer.write(delivery(5000))).toBeNull();
    expect(writer.write(delivery(1))).not.toBeNull();
  });

  it("runs flush waiters once everything written has been taken, never synchronously", async () => {
    const stream = new HeldStream();
    const writer = new BoundedStreamWriter(stream, 10_000);
    const calls: string[] = [];
    writer.whenFlushed(() => calls.push("idle"));
    expect(calls).toEqual([]);
    await settle();
    expect(calls).toEqual(["idle"]);
    writer.write(delivery(10));
    writer.whenFlushed(() => calls.push("after write"));
    await settle();
    expect(calls).toEqual(["idle"]);
    stream.release();
    await settle();
    expect(calls).toEqual(["idle", "after write"]);
  });
});

function consumeOn(maxPendingBytes: number) {
  const submitted: Command[] = [];
  const sessions = new ConsumerSessions("1.test", 10, (ref) => body(ref.bodySize), maxPendingBytes);
  const driver = {
    isLeader: true,
    submit: (commands: readonly Command[]) => {
      submitted.push(...commands);
    },
  };
  const ctx = { driver, builder: new CommandBuilder(), sessions, log: pino({ level: "silent" }) } as unknown as BrokerServiceContext;
  const call = new HeldStream();
  consumeStream(ctx, call as unknown as Parameters<typeof consumeStream>[1]);
  const announced = call.written[0]?.session?.sessionId;
  if (announced == null) throw new Error("the stream announced no session");
  return { sessions, call, submitted, sessionId: announced };
}

function deliverTo(sessionId: string, tag: number, bytes: number): DeliverEffect {
  return {
    kind: "deliver",
    consumer: { id: `${sessionId}/t`, sessionId, consumerTag: "t" },
    deliveryTag: tag,
    queue: "q",
    message: { exchange: "", routingKey: "q", properties: {}, bodyKey: tag, bodySize: bytes },
    redelivered: false,
    deliveryCount: 1,
  };
}

describe("consume stream backpressure", () => {
  it("ends a stream whose client falls behind by more than the bound, and downs its session", async () => {
    const { sessions, call, submitted, sessionId } = consumeOn(64 * 1024);
    sessions.route([1, 2, 3].map((tag) => deliverTo(sessionId, tag, 16 * 1024)));
    expect(call.failure).toBeNull();
    sessions.route([4, 5, 6].map((tag) => deliverTo(sessionId, tag, 16 * 1024)));
    expect(call.failure?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(call.failure?.details).toContain("65536");
    expect(sessions.has(sessionId)).toBe(false);
    expect(submitted).toEqual([{ sessionDown: { sessionId } }]);
    await settle();
  });

  it("a client that keeps up is never cut off", async () => {
    const { sessions, call, submitted, sessionId } = consumeOn(64 * 1024);
    for (let round = 0; round < 20; round++) {
      sessions.route([1, 2, 3].map((tag) => deliverTo(sessionId, tag, 16 * 1024)));
      call.release();
      await settle();
      call.release();
    }
    expect(call.failure).toBeNull();
    expect(sessions.has(sessionId)).toBe(true);
    expect(submitted).toEqual([]);
  });

  it("asks for more for a paused no_ack consumer once its stream took the last deliveries, once", async () => {
    const { sessions, call, submitted, sessionId } = consumeOn(64 * 1024);
    const consumer = { id: `${sessionId}/t`, sessionId, consumerTag: "t" };
    sessions.route([deliverTo(sessionId, 1, 100), { kind: "deliveryPaused", consumer, queue: "q" }]);
    sessions.route([{ kind: "deliveryPaused", consumer, queue: "q" }]);
    await settle();
    expect(submitted).toEqual([]);
    call.release();
    await settle();
    expect(submitted).toEqual([{ tick: {} }]);
  });
});

describe("consume-max-pending-bytes", () => {
  it("defaults to 16 MiB, comes from flag or environment, and refuses a bound too small to be useful", () => {
    expect(DEFAULT_CONSUME_MAX_PENDING_BYTES).toBe(16 * 1024 * 1024);
    expect(resolveNodeConfig(["--insecure"], {}).consumeMaxPendingBytes).toBe(DEFAULT_CONSUME_MAX_PENDING_BYTES);
    expect(resolveNodeConfig(["--insecure", "--consume-max-pending-bytes", "1048576"], {}).consumeMaxPendingBytes).toBe(1024 * 1024);
    expect(resolveNodeConfig(["--insecure"], { RAFTMQ_CONSUME_MAX_PENDING_BYTES: "2097152" }).consumeMaxPendingBytes).toBe(2 * 1024 * 1024);
    expect(() => resolveNodeConfig(["--insecure", "--consume-max-pending-bytes", "100"], {})).toThrow(ConfigError);
  });
});
