import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { codeOf, cutAt } from "./codec-helpers.ts";
import {
  encodeFrame,
  encodeMethod,
  FRAME_ERROR,
  FRAME_HEARTBEAT,
  FRAME_METHOD,
  FRAME_MIN_SIZE,
  type Frame,
  FrameReader,
  heartbeatFrame,
  PROTOCOL_HEADER,
  readProtocolHeader,
} from "../src/index.ts";
import { frame as oracleFrame } from "./amqplib-oracle.ts";


const frames = [
  encodeMethod(0, { name: "connection.tune-ok", args: { channelMax: 2047, frameMax: 131072, heartbeat: 60 } }),
  heartbeatFrame(),
  encodeFrame(3, 1, Buffer.alloc(1000, 0xab)),
  encodeFrame(3, 1, Buffer.alloc(0)),
  encodeMethod(1, { name: "basic.ack", args: { deliveryTag: 42, multiple: true } }),
];
const stream = Buffer.concat(frames);


function readAll(chunks: Buffer[], maxFrameSize = FRAME_MIN_SIZE): Frame[] {
  const reader = new FrameReader({ maxFrameSize });
  const out: Frame[] = [];
  for (const c of chunks) {
    reader.push(c);
    out.push(...reader);
  }
  expect(reader.bufferedBytes).toBe(0);
  expect(reader.next()).toBeUndefined();
  return out;
}

describe("FrameReader", () => {
  it("returns the frames amqplib's parser finds, however the stream is cut", () => {
    const expected: Omit<Frame, "payload">[] = [];
    let rest: Buffer = stream;
    while (rest.length > 0) {
      const f = oracleFrame.parseFrame(rest, 0);
      if (!f) throw new Error("amqplib found no frame");
      expected.push({ type: f.type, channel: f.channel, payload: Buffer.from(f.payload) } as Frame);
      rest = f.rest;
    }
    expect(expected).toHaveLength(frames.length);
    fc.assert(
      fc.property(fc.array(fc.nat(), { maxLength: 30 }), (at) => {
        expect(readAll(cutAt(stream, at))).toEqual(expected);
      }),
      { numRuns: 300 },
    );
    expect(readAll([...stream].map((b) => Buffer.from([b])))).toEqual(expected);
  });

  it("returns nothing until a whole frame is in, and a heartbeat as an empty channel-0 frame", () => {
    const reader = new FrameReader({ maxFrameSize: FRAME_MIN_SIZE });
    reader.push(heartbeatFrame().subarray(0, 7));
    expect(reader.next()).toBeUndefined();
    reader.push(heartbeatFrame().subarray(7));
    expect(reader.next()).toEqual({ type: FRAME_HEARTBEAT, channel: 0, payload: Buffer.alloc(0) });
    expect([...heartbeatFrame()]).toEqual([8, 0, 0, 0, 0, 0, 0, 0xce]);
    // The same buffer object pushed twice is two frames.
    reader.push(heartbeatFrame());
    reader.push(heartbeatFrame());
    expect([...reader]).toHaveLength(2);
  });

  it("refuses a frame larger than maxFrameSize from its header alone, before buffering it", () => {
    const big = encodeFrame(3, 1, Buffer.alloc(FRAME_MIN_SIZE - 8 + 1));
    const reader = new FrameReader({ maxFrameSize: FRAME_MIN_SIZE });
    reader.push(big.subarray(0, 7));
    expect(codeOf(() => reader.next())).toBe(FRAME_ERROR);
    // The stream has no frame boundaries left: the error sticks.
    expect(codeOf(() => reader.next())).toBe(FRAME_ERROR);
    expect(readAll([encodeFrame(3, 1, Buffer.alloc(FRAME_MIN_SIZE - 8))])).toHaveLength(1);
  });

  it("follows a changed maxFrameSize, as after connection.tune-ok", () => {
    const reader = new FrameReader({ maxFrameSize: FRAME_MIN_SIZE });
    reader.maxFrameSize = 131072;
    reader.push(encodeFrame(3, 1, Buffer.alloc(100_000)));
    expect(reader.next()?.payload.length).toBe(100_000);
    expect(() => new FrameReader({ maxFrameSize: 7 })).toThrow(RangeError);
  });

  it("refuses a missing frame-end octet and an unknown frame type with 501 FRAME_ERROR", () => {
    const noEnd = Buffer.from(heartbeatFrame());
    noEnd[7] = 0;
    const unknownType = Buffer.from(heartbeatFrame());
    unknownType[0] = 4;
    for (const buf of [noEnd, unknownType]) {
      const reader = new FrameReader({ maxFrameSize: FRAME_MIN_SIZE });
      reader.push(buf);
      expect(codeOf(() => reader.next())).toBe(FRAME_ERROR);
    }
  });

  it("copies only frames that straddle chunks, and views the rest", () => {
    const chunk = Buffer.concat([encodeFrame(FRAME_METHOD, 1, Buffer.from([1, 2, 3])), Buffer.alloc(4)]);
    const reader = new FrameReader({ maxFrameSize: FRAME_MIN_SIZE });
    reader.push(chunk);
    const f = reader.next();
    expect(f?.payload.buffer).toBe(chunk.buffer);
    expect(reader.bufferedBytes).toBe(4);
  });

  it("reads many small chunks in linear time", () => {
    const reader = new FrameReader({ maxFrameSize: 2_000_000 });
    const payload = Buffer.alloc(1_000_000, 1);
    const big = encodeFrame(3, 1, payload);
    const started = performance.now();
    const got: Frame[] = [];
    for (let i = 0; i < big.length; i += 10) {
      reader.push(big.subarray(i, i + 10));
      got.push(...reader);
    }
    expect(got).toHaveLength(1);
    expect(got[0]?.payload.equals(payload)).toBe(true);
    expect(performance.now() - started).toBeLessThan(5_000);
  });
});

describe("protocol header", () => {
  it("accepts AMQP 0-9-1 and reads nothing past its 8 bytes", () => {
    expect([...PROTOCOL_HEADER]).toEqual([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1]);
    expect(readProtocolHeader(PROTOCOL_HEADER)).toEqual({ ok: true });
    expect(readProtocolHeader(Buffer.concat([PROTOCOL_HEADER, heartbeatFrame()]))).toEqual({ ok: true });
  });

  it("waits for more on a prefix of the header", () => {
    for (let n = 0; n < 8; n++) {
      expect(readProtocolHeader(PROTOCOL_HEADER.subarray(0, n))).toEqual({ ok: false, reason: "incomplete" });
    }
  });

  it("tells another protocol from another AMQP version", () => {
    expect(readProtocolHeader(Buffer.from("GET / HTTP/1.1\r\n"))).toEqual({ ok: false, reason: "not-amqp" });
    expect(readProtocolHeader(Buffer.from([0x16, 3, 1]))).toEqual({ ok: false, reason: "not-amqp" });
    expect(readProtocolHeader(Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 1, 0, 0]))).toEqual({
      ok: false,
      reason: "unsupported-version",
      version: [0, 1, 0, 0],
    });
    expect(readProtocolHeader(Buffer.from([0x41, 0x4d, 0x51, 0x50, 1, 1]))).toEqual({ ok: false, reason: "incomplete" });
    expect(readProtocolHeader(Buffer.from([0x41, 0x4d, 0x51, 0x50, 1, 1, 0, 9]))).toMatchObject({
      reason: "unsupported-version",
      version: [1, 1, 0, 9],
    });
  });
});
