import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { codeOf } from "./codec-helpers.ts";
import {
  AmqpCodecError,
  type AmqpMethod,
  BASIC_PROPERTIES,
  COMMAND_INVALID,
  decodeMethod,
  encodeMethod,
  FRAME_END,
  FRAME_METHOD,
  FrameReader,
  METHODS,
  type MethodArgs,
  type MethodDescriptor,
  methodDescriptor,
  SYNTAX_ERROR,
} from "../src/index.ts";
import { defs, frame, oracleName } from "./amqplib-oracle.ts";
import { argsArb, oracleDecodedArgs, toOracleArgs } from "./arbitraries.ts";

const RUNS = 40;
const oracleId = (d: MethodDescriptor) => d.classId * 0x10000 + d.methodId;

function payloadOf(frameBuf: Buffer): Buffer {
  const reader = new FrameReader({ maxFrameSize: frameBuf.length });
  reader.push(frameBuf);
  const f = reader.next();
  if (!f) throw new Error("no frame");
  expect(f.type).toBe(FRAME_METHOD);
  return f.payload;
}


const asMethod = (d: MethodDescriptor, args: Record<string, unknown>) => ({ name: d.name, args }) as AmqpMethod;

describe("descriptors generated from the XML", () => {
  it("describe the 64 methods of RabbitMQ's extended 0-9-1", () => {
    expect(METHODS).toHaveLength(64);
    expect(new Set(METHODS.map((m) => m.name)).size).toBe(64);
  });

  it("resolve domains to wire types and camelCase names (basic.publish)", () => {
    expect(methodDescriptor("basic.publish")).toEqual({
      classId: 60,
      methodId: 40,
      name: "basic.publish",
      synchronous: false,
      content: true,
      toServer: true,
      toClient: false,
      responses: [],
      fields: [
        { name: "ticket", type: "short", reserved: true },
        { name: "exchange", type: "shortstr", reserved: false },
        { name: "routingKey", type: "shortstr", reserved: false },
        { name: "mandatory", type: "bit", reserved: false },
        { name: "immediate", type: "bit", reserved: false },
      ],
    });
    expect(methodDescriptor("queue.declare").responses).toEqual(["queue.declare-ok"]);
    expect(methodDescriptor("basic.ack")).toMatchObject({ toServer: true, toClient: true, synchronous: false });
  });

  it("agree with amqplib's tables on every method's ids, field order, names and types", () => {
    for (const d of METHODS) {
      const info = defs.info(oracleId(d));
      expect(info, d.name).toBeDefined();
      expect(info.args.map((a) => [a.name, a.type]), d.name).toEqual(d.fields.map((f) => [oracleName(f.name), f.type]));
    }
  });

  it("list basic's 14 content properties in flag order", () => {
    expect(BASIC_PROPERTIES.map((p) => p.name)).toEqual([
      "contentType",
      "contentEncoding",
      "headers",
      "deliveryMode",
      "priority",
      "correlationId",
      "replyTo",
      "expiration",
      "messageId",
      "timestamp",
      "type",
      "userId",
      "appId",
      "clusterId",
    ]);
    const info = defs.info(60);
    expect(BASIC_PROPERTIES.map((p) => [p.name, p.type])).toEqual(info.args.map((a) => [a.name, a.type]));
  });
});

describe("method frames", () => {
  for (const d of METHODS) {
    it(`${d.name} round-trips, and amqplib decodes what we encode and vice versa`, () => {
      fc.assert(
        fc.property(argsArb(d, true), fc.integer({ min: 0, max: 65535 }), (args, channel) => {
          const ours = encodeMethod(channel, asMethod(d, args));
          // Ours → ours.
          const decoded = decodeMethod(payloadOf(ours));
          expect(decoded).toEqual({ classId: d.classId, methodId: d.methodId, name: d.name, args });
          // Ours → amqplib.
          const parsed = frame.parseFrame(ours, 0);
          if (!parsed) throw new Error("amqplib found no frame");
          expect(parsed.rest.length).toBe(0);
          const theirs = frame.decodeFrame(parsed);
          expect(theirs.id).toBe(oracleId(d));
          expect(theirs.channel).toBe(channel);
          expect(theirs.fields).toEqual(oracleDecodedArgs(d, args));
          // amqplib → ours: the same bytes, and the same arguments back.
          const fromOracle = defs.encodeMethod(oracleId(d), channel, toOracleArgs(d, args));
          expect(fromOracle).toEqual(ours);
          expect(decodeMethod(payloadOf(fromOracle)).args).toEqual(args);
        }),
        { numRuns: RUNS },
      );
    });
  }

  it("packs consecutive bits into one octet, lowest bit first (queue.declare)", () => {
    const args: MethodArgs<"queue.declare"> = {
      ticket: 0,
      queue: "q",
      passive: true,
      durable: false,
      exclusive: true,
      autoDelete: false,
      noWait: true,
      arguments: {},
    };
    const buf = encodeMethod(1, { name: "queue.declare", args });
    // header(7) class(2) method(2) ticket(2) "q"(2) bits(1) table(4) end(1)
    expect(buf.length).toBe(21);
    expect(buf[15]).toBe(0b10101);
    expect(buf.readUInt32BE(16)).toBe(0);
    expect(buf[20]).toBe(FRAME_END);
  });

  it("starts a new octet for bits after a non-bit field (connection.open's insist)", () => {
    const buf = encodeMethod(0, {
      name: "connection.open",
      args: { virtualHost: "/", capabilities: "", insist: true },
    });
    expect([...buf.subarray(11, buf.length - 1)]).toEqual([1, 0x2f, 0, 1]);
  });

  it("returns a frame whose size field counts the payload", () => {
    const buf = encodeMethod(7, { name: "basic.qos", args: { prefetchSize: 0, prefetchCount: 10, global: false } });
    expect(buf.readUInt8(0)).toBe(FRAME_METHOD);
    expect(buf.readUInt16BE(1)).toBe(7);
    expect(buf.readUInt32BE(3)).toBe(buf.length - 8);
  });
});

describe("method decoding errors", () => {
  const valid = payloadOf(
    encodeMethod(1, {
      name: "basic.publish",
      args: { ticket: 0, exchange: "ex", routingKey: "rk", mandatory: true, immediate: false },
    }),
  );

  it("refuses a class and method pair 0-9-1 does not define with 503 COMMAND_INVALID", () => {
    const unknownMethod = Buffer.from([0, 60, 0, 99]);
    const unknownClass = Buffer.from([0, 30, 0, 10]); // access.request, dropped in 0-9-1
    for (const p of [unknownMethod, unknownClass]) {
      expect(codeOf(() => decodeMethod(p))).toBe(COMMAND_INVALID);
    }
    try {
      decodeMethod(unknownMethod);
    } catch (e) {
      expect(e).toMatchObject({ classId: 60, methodId: 99 });
    }
  });

  it("refuses every truncation with 502 SYNTAX_ERROR", () => {
    for (let n = 0; n < valid.length; n++) {
      expect(codeOf(() => decodeMethod(valid.subarray(0, n))), `length ${n}`).toBe(SYNTAX_ERROR);
    }
  });

  it("refuses trailing bytes with 502 SYNTAX_ERROR, naming the method", () => {
    try {
      decodeMethod(Buffer.concat([valid, Buffer.from([0])]));
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(AmqpCodecError);
      expect(e).toMatchObject({ code: SYNTAX_ERROR, classId: 60, methodId: 40 });
      expect((e as AmqpCodecError).message).toMatch(/^SYNTAX_ERROR - basic\.publish: 1 unexpected bytes/);
    }
  });

  it("refuses a delivery tag above 2^53 - 1 with 502 rather than rounding it", () => {
    const ack = Buffer.from([0, 60, 0, 80, 0, 0x20, 0, 0, 0, 0, 0, 0, 0]);
    expect(codeOf(() => decodeMethod(ack))).toBe(SYNTAX_ERROR);
    ack[5] = 0x1f;
    ack.fill(0xff, 6, 12);
    expect(decodeMethod(ack).args).toEqual({ deliveryTag: Number.MAX_SAFE_INTEGER, multiple: false });
  });
});

describe("method encoding errors", () => {
  const publish = (args: Partial<MethodArgs<"basic.publish">>) =>
    encodeMethod(1, {
      name: "basic.publish",
      args: { ticket: 0, exchange: "", routingKey: "", mandatory: false, immediate: false, ...args },
    });

  it("refuses a shortstr over 255 bytes of UTF-8", () => {
    expect(() => publish({ routingKey: "k".repeat(255) })).not.toThrow();
    expect(codeOf(() => publish({ routingKey: "k".repeat(256) }))).toBe(SYNTAX_ERROR);
    expect(codeOf(() => publish({ routingKey: "é".repeat(128) }))).toBe(SYNTAX_ERROR);
  });

  it("refuses missing fields, wrong types and out-of-range integers", () => {
    const bad = [
      { ticket: undefined },
      { ticket: 65536 },
      { ticket: -1 },
      { ticket: 1.5 },
      { mandatory: 1 },
      { exchange: 5 },
    ] as unknown as Partial<MethodArgs<"basic.publish">>[];
    for (const args of bad) expect(codeOf(() => publish(args)), JSON.stringify(args)).toBe(SYNTAX_ERROR);
    expect(codeOf(() => encodeMethod(70000, { name: "basic.qos", args: { prefetchSize: 0, prefetchCount: 0, global: false } }))).toBe(
      SYNTAX_ERROR,
    );
  });

  it("refuses a method name 0-9-1 does not define with 503", () => {
    expect(codeOf(() => encodeMethod(0, { name: "access.request", args: {} } as unknown as AmqpMethod))).toBe(COMMAND_INVALID);
  });
});
