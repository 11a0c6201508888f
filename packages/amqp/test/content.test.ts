import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { codeOf } from "./codec-helpers.ts";
import {
  BASIC_PROPERTIES,
  type BasicProperties,
  decodeContentHeader,
  encodeBodyFrames,
  encodeContentHeader,
  FRAME_BODY,
  FRAME_END,
  FRAME_HEADER,
  type Frame,
  FrameReader,
  SYNTAX_ERROR,
  UNEXPECTED_FRAME,
} from "../src/index.ts";
import { defs, frame } from "./amqplib-oracle.ts";
import { fieldArb, oracleDecodedTable, toOracleTable } from "./arbitraries.ts";

function onlyFrame(buf: Buffer): Frame {
  const reader = new FrameReader({ maxFrameSize: buf.length });
  reader.push(buf);
  const f = reader.next();
  if (!f) throw new Error("no frame");
  expect(reader.bufferedBytes).toBe(0);
  return f;
}


/** Each property present or absent, generated from the descriptor. */
const propertiesArb: fc.Arbitrary<BasicProperties> = fc.record(
  Object.fromEntries(BASIC_PROPERTIES.map((p) => [p.name, fieldArb(p.type, true)])),
  { requiredKeys: [] },
) as fc.Arbitrary<BasicProperties>;

const ALL: BasicProperties = {
  contentType: "application/json",
  contentEncoding: "gzip",
  headers: { "x-n": { type: "I", value: 1 } },
  deliveryMode: 2,
  priority: 9,
  correlationId: "c",
  replyTo: "amq.rabbitmq.reply-to",
  expiration: "60000",
  messageId: "m",
  timestamp: 1_700_000_000,
  type: "t",
  userId: "guest",
  appId: "a",
  clusterId: "",
};

describe("content header frames", () => {
  it("set one flag per present property, contentType at bit 15", () => {
    const f = onlyFrame(encodeContentHeader(3, 60, 10, { contentType: "x" }));
    expect(f).toMatchObject({ type: FRAME_HEADER, channel: 3 });
    expect(f.payload.readUInt16BE(0)).toBe(60);
    expect(f.payload.readUInt16BE(2)).toBe(0);
    expect(Number(f.payload.readBigUInt64BE(4))).toBe(10);
    expect(f.payload.readUInt16BE(12)).toBe(0x8000);
    const all = onlyFrame(encodeContentHeader(3, 60, 10, ALL));
    expect(all.payload.readUInt16BE(12)).toBe(0xfffc);
    expect(decodeContentHeader(all.payload)).toEqual({ classId: 60, bodySize: 10, properties: ALL });
  });

  it("round-trip every combination of properties, and agree with amqplib both ways", () => {
    fc.assert(
      fc.property(propertiesArb, fc.maxSafeNat(), fc.integer({ min: 0, max: 65535 }), (properties, bodySize, channel) => {
        const ours = encodeContentHeader(channel, 60, bodySize, properties);
        expect(decodeContentHeader(onlyFrame(ours).payload)).toEqual({ classId: 60, bodySize, properties });

        const oracleProps = { ...properties, headers: properties.headers && toOracleTable(properties.headers) };
        const theirs = defs.encodeProperties(60, channel, bodySize, oracleProps);
        expect(theirs).toEqual(ours);

        const parsed = frame.parseFrame(ours, 0);
        if (!parsed) throw new Error("amqplib found no frame");
        const decoded = frame.decodeFrame(parsed);
        expect(decoded.size).toBe(bodySize);
        const expected = { ...properties, headers: properties.headers && oracleDecodedTable(properties.headers) };
        expect(decoded.fields).toEqual(expected);
      }),
      { numRuns: 300 },
    );
  });

  it("refuse a class other than basic with 505 UNEXPECTED_FRAME", () => {
    const payload = Buffer.from(onlyFrame(encodeContentHeader(1, 60, 0, {})).payload);
    payload.writeUInt16BE(50, 0);
    expect(codeOf(() => decodeContentHeader(payload))).toBe(UNEXPECTED_FRAME);
    expect(codeOf(() => encodeContentHeader(1, 50, 0, {}))).toBe(UNEXPECTED_FRAME);
  });

  it("refuse flags for properties basic does not have with 502", () => {
    const payload = Buffer.from(onlyFrame(encodeContentHeader(1, 60, 0, {})).payload);
    payload.writeUInt16BE(0x0002, 12); // the 15th property
    expect(codeOf(() => decodeContentHeader(payload))).toBe(SYNTAX_ERROR);
    const continued = Buffer.concat([payload.subarray(0, 12), Buffer.from([0, 1, 0x80, 0])]);
    expect(codeOf(() => decodeContentHeader(continued))).toBe(SYNTAX_ERROR);
    // A continuation word that sets nothing is harmless.
    const empty = Buffer.concat([payload.subarray(0, 12), Buffer.from([0, 1, 0, 0])]);
    expect(decodeContentHeader(empty)).toEqual({ classId: 60, bodySize: 0, properties: {} });
  });

  it("refuse a body size above 2^53 - 1, truncation and trailing bytes with 502", () => {
    const payload = Buffer.from(onlyFrame(encodeContentHeader(1, 60, 0, { priority: 1 })).payload);
    for (let n = 0; n < payload.length; n++) {
      expect(codeOf(() => decodeContentHeader(payload.subarray(0, n)))).toBe(SYNTAX_ERROR);
    }
    expect(codeOf(() => decodeContentHeader(Buffer.concat([payload, Buffer.from([0])])))).toBe(SYNTAX_ERROR);
    const huge = Buffer.from(payload);
    huge.writeBigUInt64BE(2n ** 53n, 4);
    expect(codeOf(() => decodeContentHeader(huge))).toBe(SYNTAX_ERROR);
    expect(codeOf(() => encodeContentHeader(1, 60, 2 ** 53, {}))).toBe(SYNTAX_ERROR);
    expect(codeOf(() => encodeContentHeader(1, 60, 0, { priority: 256 }))).toBe(SYNTAX_ERROR);
  });
});

describe("body frames", () => {
  it("split a body so that every frame, overhead included, fits frameMax", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 3000 }), fc.integer({ min: 9, max: 1200 }), (size, frameMax) => {
        const body = Buffer.alloc(size, 7);
        const frames = encodeBodyFrames(5, body, frameMax);
        expect(frames).toHaveLength(Math.ceil(size / (frameMax - 8)));
        const reader = new FrameReader({ maxFrameSize: frameMax });
        for (const f of frames) {
          expect(f.length).toBeLessThanOrEqual(frameMax);
          expect(f[f.length - 1]).toBe(FRAME_END);
          reader.push(f);
        }
        const payloads = [...reader].map((f) => {
          expect(f).toMatchObject({ type: FRAME_BODY, channel: 5 });
          return f.payload;
        });
        expect(Buffer.concat(payloads).equals(body)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it("match amqplib's body frames", () => {
    const body = Buffer.from("hello, world");
    expect(encodeBodyFrames(9, body, 4096)).toEqual([frame.makeBodyFrame(9, body)]);
  });

  it("treat frameMax 0 as no limit, and an empty body as no frames", () => {
    expect(encodeBodyFrames(1, Buffer.alloc(100_000), 0)).toHaveLength(1);
    expect(encodeBodyFrames(1, Buffer.alloc(0), 4096)).toEqual([]);
    expect(() => encodeBodyFrames(1, Buffer.alloc(1), 8)).toThrow(RangeError);
  });
});
