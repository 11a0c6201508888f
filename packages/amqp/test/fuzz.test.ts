// Whatever bytes a client sends, the codec either decodes them or throws AmqpCodecError with a
// connection-closing code; and whatever it decodes, it can encode again to the same value.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { cutAt } from "./codec-helpers.ts";
import {
  AmqpCodecError,
  type AmqpMethod,
  BASIC_PROPERTIES,
  type BasicProperties,
  decodeContentHeader,
  decodeFieldTable,
  decodeMethod,
  encodeBodyFrames,
  encodeContentHeader,
  encodeFieldTable,
  encodeMethod,
  FRAME_HEADER,
  FRAME_METHOD,
  FrameReader,
  METHODS,
} from "../src/index.ts";
import { argsArb, fieldArb } from "./arbitraries.ts";

const CODES = new Set([501, 502, 503, 505, 540]);
const RUNS = 2000;

/** Runs f; an AmqpCodecError with an allowed code counts as a clean refusal, anything else fails. */
function refusesCleanly<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch (e) {
    if (!(e instanceof AmqpCodecError)) throw new Error(`threw ${String(e)}, not AmqpCodecError`, { cause: e });
    if (!CODES.has(e.code)) throw new Error(`AmqpCodecError with code ${e.code}`);
    return undefined;
  }
}

/** Decodes a payload every way a server might; what decodes must re-encode to the same value. */
function decodeEveryWay(payload: Buffer): void {
  const m = refusesCleanly(() => decodeMethod(payload));
  if (m) {
    const { classId: _c, methodId: _m, ...method } = m;
    const again = decodeMethod(encodeMethod(1, method as AmqpMethod).subarray(7, -1));
    expect(again).toEqual(m);
  }
  const h = refusesCleanly(() => decodeContentHeader(payload));
  if (h) {
    const again = decodeContentHeader(encodeContentHeader(1, h.classId, h.bodySize, h.properties).subarray(7, -1));
    expect(again).toEqual(h);
  }
  const withSize = Buffer.alloc(4 + payload.length);
  withSize.writeUInt32BE(payload.length, 0);
  payload.copy(withSize, 4);
  const t = refusesCleanly(() => decodeFieldTable(withSize));
  if (t) expect(decodeFieldTable(encodeFieldTable(t))).toEqual(t);
}

/** Pushes chunks into a reader, decoding every frame, until it runs dry or refuses the stream. */
function readStream(chunks: Buffer[], maxFrameSize: number): void {
  const reader = new FrameReader({ maxFrameSize });
  for (const chunk of chunks) {
    reader.push(chunk);
    for (;;) {
      const frame = refusesCleanly(() => reader.next());
      if (!frame) break;
      expect(frame.payload.length + 8).toBeLessThanOrEqual(maxFrameSize);
      decodeEveryWay(frame.payload);
    }
  }
}


const methodFrameArb = fc
  .constantFrom(...METHODS)
  .chain((d) => argsArb(d).map((args) => encodeMethod(1, { name: d.name, args } as AmqpMethod)));

const propertiesArb = fc.record(
  Object.fromEntries(BASIC_PROPERTIES.map((p) => [p.name, fieldArb(p.type)])),
  { requiredKeys: [] },
) as fc.Arbitrary<BasicProperties>;

const contentFramesArb = fc
  .tuple(propertiesArb, fc.uint8Array({ maxLength: 300 }))
  .map(([props, body]) =>
    Buffer.concat([
      encodeContentHeader(1, 60, body.length, props),
      ...encodeBodyFrames(1, Buffer.from(body), 4096),
    ]),
  );

const validStreamArb = fc.array(fc.oneof(methodFrameArb, contentFramesArb), { minLength: 1, maxLength: 4 }).map((fs) => Buffer.concat(fs));

type Mutation =
  | { kind: "flip"; at: number; xor: number }
  | { kind: "set"; at: number; value: number }
  | { kind: "truncate"; at: number }
  | { kind: "insert"; at: number; bytes: Uint8Array }
  | { kind: "delete"; at: number; count: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ kind: fc.constant("set" as const), at: fc.nat(), value: fc.constantFrom(0, 1, 0x7f, 0x80, 0xce, 0xff) }),
  fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  fc.record({ kind: fc.constant("delete" as const), at: fc.nat(), count: fc.integer({ min: 1, max: 8 }) }),
);

function mutate(buf: Buffer, mutations: Mutation[]): Buffer {
  let out = Buffer.from(buf);
  for (const m of mutations) {
    if (out.length === 0) break;
    const at = m.at % out.length;
    switch (m.kind) {
      case "flip":
        out[at] = out[at]! ^ m.xor;
        break;
      case "set":
        out[at] = m.value;
        break;
      case "truncate":
        out = out.subarray(0, at);
        break;
      case "insert":
        out = Buffer.concat([out.subarray(0, at), m.bytes, out.subarray(at)]);
        break;
      case "delete":
        out = Buffer.concat([out.subarray(0, at), out.subarray(at + m.count)]);
        break;
    }
  }
  return out;
}

/** Frames whose payload is random bytes, so that decoding (not framing) is what gets fuzzed. */
function framed(type: number, payload: Uint8Array): Buffer {
  const buf = Buffer.alloc(payload.length + 8);
  buf[0] = type;
  buf.writeUInt16BE(1, 1);
  buf.writeUInt32BE(payload.length, 3);
  buf.set(payload, 7);
  buf[buf.length - 1] = 0xce;
  return buf;
}

describe("fuzzing", () => {
  it("random bytes into FrameReader, however chunked, with any frame limit", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 600 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        fc.integer({ min: 8, max: 70_000 }),
        (bytes, cuts, max) => readStream(cutAt(Buffer.from(bytes), cuts), max),
      ),
      { numRuns: RUNS },
    );
  });

  it("random payloads into decodeMethod, decodeContentHeader and decodeFieldTable", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => decodeEveryWay(Buffer.from(bytes))),
      { numRuns: RUNS },
    );
  });

  it("random arguments after a real class and method id", () => {
    const idArb = fc.constantFrom(...METHODS).map((d) => [d.classId >> 8, d.classId & 0xff, d.methodId >> 8, d.methodId & 0xff]);
    fc.assert(
      fc.property(idArb, fc.uint8Array({ maxLength: 200 }), (id, rest) => {
        readStream([framed(FRAME_METHOD, Uint8Array.from([...id, ...rest]))], 4096);
      }),
      { numRuns: RUNS },
    );
  });

  it("random properties after a basic content header's class, weight and size", () => {
    const prefix = [0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5];
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (rest) => {
        readStream([framed(FRAME_HEADER, Uint8Array.from([...prefix, ...rest]))], 4096);
      }),
      { numRuns: RUNS },
    );
  });

  it("mutated valid streams of method, header and body frames", () => {
    fc.assert(
      fc.property(
        validStreamArb,
        fc.array(mutationArb, { minLength: 1, maxLength: 4 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        fc.constantFrom(4096, 131_072, 64),
        (stream, mutations, cuts, max) => readStream(cutAt(mutate(stream, mutations), cuts), max),
      ),
      { numRuns: RUNS },
    );
  });

  it("mutated valid method and header payloads, framing kept intact", () => {
    fc.assert(
      fc.property(validStreamArb, fc.array(mutationArb, { minLength: 1, maxLength: 3 }), (stream, mutations) => {
        const reader = new FrameReader({ maxFrameSize: 1 << 20 });
        reader.push(stream);
        for (const f of reader) decodeEveryWay(mutate(f.payload, mutations));
      }),
      { numRuns: RUNS },
    );
  });
});
