import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { codeOf } from "./codec-helpers.ts";
import {
  decodeFieldTable,
  decodeFieldValue,
  encodeFieldTable,
  encodeFieldValue,
  type FieldTable,
  type FieldValue,
  fromFieldTable,
  MAX_FIELD_NESTING,
  SYNTAX_ERROR,
  toFieldTable,
  toFieldValue,
} from "../src/index.ts";
import { codec, oracleEncodeTable } from "./amqplib-oracle.ts";
import { fieldTableArb, fieldValueArb, oracleDecodedTable, toOracleTable } from "./arbitraries.ts";

function table(entries: Record<string, FieldValue>): FieldTable {
  return Object.assign(Object.create(null), entries);
}


/** One value of every tag, with its exact wire bytes (tag, then value). */
const EVERY_TYPE: [FieldValue, number[]][] = [
  [{ type: "t", value: true }, [0x74, 1]],
  [{ type: "b", value: -2 }, [0x62, 0xfe]],
  [{ type: "B", value: 254 }, [0x42, 0xfe]],
  [{ type: "s", value: -2 }, [0x73, 0xff, 0xfe]],
  [{ type: "u", value: 65534 }, [0x75, 0xff, 0xfe]],
  [{ type: "I", value: -2 }, [0x49, 0xff, 0xff, 0xff, 0xfe]],
  [{ type: "i", value: 0xfffffffe }, [0x69, 0xff, 0xff, 0xff, 0xfe]],
  [{ type: "l", value: -2 }, [0x6c, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]],
  [{ type: "l", value: -(2n ** 63n) }, [0x6c, 0x80, 0, 0, 0, 0, 0, 0, 0]],
  [{ type: "L", value: 2n ** 62n }, [0x4c, 0x40, 0, 0, 0, 0, 0, 0, 0]],
  [{ type: "f", value: 1.5 }, [0x66, 0x3f, 0xc0, 0, 0]],
  [{ type: "d", value: 1.5 }, [0x64, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0]],
  [{ type: "D", value: { scale: 2, value: 314 } }, [0x44, 2, 0, 0, 1, 0x3a]],
  [{ type: "S", value: "hé" }, [0x53, 0, 0, 0, 3, 0x68, 0xc3, 0xa9]],
  [{ type: "x", value: Buffer.from([0, 0xff]) }, [0x78, 0, 0, 0, 2, 0, 0xff]],
  [{ type: "A", value: [{ type: "t", value: false }, { type: "V", value: null }] }, [0x41, 0, 0, 0, 3, 0x74, 0, 0x56]],
  [{ type: "T", value: 1_700_000_000 }, [0x54, 0, 0, 0, 0, 0x65, 0x53, 0xf1, 0x00]],
  [{ type: "F", value: table({ a: { type: "V", value: null } }) }, [0x46, 0, 0, 0, 3, 1, 0x61, 0x56]],
  [{ type: "V", value: null }, [0x56]],
];

describe("field values", () => {
  for (const [value, bytes] of EVERY_TYPE) {
    it(`${value.type} encodes to its bytes and decodes back with the same tag`, () => {
      expect([...encodeFieldValue(value)]).toEqual(bytes);
      expect(decodeFieldValue(Buffer.from(bytes))).toEqual(value);
    });
  }

  it("decode 64-bit integers to numbers when safe and to bigints otherwise", () => {
    const big = decodeFieldValue(Buffer.from([0x6c, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]));
    expect(big).toEqual({ type: "l", value: 2n ** 63n - 1n });
    const safe = decodeFieldValue(Buffer.from([0x6c, 0, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]));
    expect(safe).toEqual({ type: "l", value: Number.MAX_SAFE_INTEGER });
    const ts = decodeFieldValue(Buffer.from([0x54, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]));
    expect(ts).toEqual({ type: "T", value: 2n ** 64n - 1n });
  });

  it("refuse an unknown tag (the 0-9-1 grammar's U) with 502", () => {
    expect(codeOf(() => decodeFieldValue(Buffer.from([0x55, 0, 1])))).toBe(SYNTAX_ERROR);
  });

  it("refuse values out of their tag's range on encode with 502", () => {
    const bad = [
      { type: "b", value: 128 },
      { type: "B", value: -1 },
      { type: "u", value: 65536 },
      { type: "i", value: 2 ** 32 },
      { type: "l", value: 2n ** 63n },
      { type: "T", value: -1 },
      { type: "I", value: 1.5 },
      { type: "t", value: 1 },
      { type: "S", value: Buffer.from("x") },
      { type: "D", value: { scale: 256, value: 0 } },
      { type: "?", value: null },
    ] as unknown as FieldValue[];
    for (const v of bad) expect(codeOf(() => encodeFieldValue(v)), JSON.stringify(String(v.value))).toBe(SYNTAX_ERROR);
  });

  it("round-trip: decode(encode(v)) is v for every generated value", () => {
    fc.assert(
      fc.property(fieldValueArb(), (v) => {
        expect(decodeFieldValue(encodeFieldValue(v))).toEqual(v);
      }),
      { numRuns: 500 },
    );
  });

  it("round-trip: encode(decode(bytes)) is the same bytes, tags included", () => {
    fc.assert(
      fc.property(fieldValueArb(), (v) => {
        const bytes = encodeFieldValue(v);
        expect(encodeFieldValue(decodeFieldValue(bytes))).toEqual(bytes);
      }),
      { numRuns: 300 },
    );
  });
});

describe("field tables", () => {
  it("hold a key named __proto__ as data", () => {
    const t = table({ ["__proto__"]: { type: "S", value: "x" } });
    const back = decodeFieldTable(encodeFieldTable(t));
    expect(Object.keys(back)).toEqual(["__proto__"]);
    expect(Object.getPrototypeOf(back)).toBeNull();
  });

  it("keep the first value of a duplicated key", () => {
    const bytes = Buffer.from([0, 0, 0, 8, 1, 0x6b, 0x42, 1, 1, 0x6b, 0x42, 2]);
    expect(decodeFieldTable(bytes)).toEqual({ k: { type: "B", value: 1 } });
  });

  it("refuse an entry that runs past the table's size, and trailing bytes, with 502", () => {
    expect(codeOf(() => decodeFieldTable(Buffer.from([0, 0, 0, 3, 1, 0x6b, 0x42, 1])))).toBe(SYNTAX_ERROR);
    expect(codeOf(() => decodeFieldTable(Buffer.from([0, 0, 0, 0, 0])))).toBe(SYNTAX_ERROR);
    expect(codeOf(() => decodeFieldTable(Buffer.from([0, 0, 0, 9])))).toBe(SYNTAX_ERROR);
  });

  it(`refuse nesting deeper than ${MAX_FIELD_NESTING} with 502, not a stack overflow`, () => {
    /** A table holding a table holding ... depth levels below the outer one. */
    const nested = (depth: number) => {
      const level = 6; // key "" (1 byte), tag F (1), size (4)
      const buf = Buffer.alloc(4 + depth * level);
      buf.writeUInt32BE(buf.length - 4, 0);
      for (let i = 0; i < depth; i++) {
        const at = 4 + i * level;
        buf[at] = 0;
        buf[at + 1] = 0x46;
        buf.writeUInt32BE(buf.length - at - level, at + 2);
      }
      return buf;
    };
    expect(() => decodeFieldTable(nested(MAX_FIELD_NESTING))).not.toThrow();
    expect(codeOf(() => decodeFieldTable(nested(MAX_FIELD_NESTING + 1)))).toBe(SYNTAX_ERROR);
    expect(codeOf(() => decodeFieldTable(nested(100_000)))).toBe(SYNTAX_ERROR);
    const deep = decodeFieldTable(nested(MAX_FIELD_NESTING));
    expect(encodeFieldTable(deep)).toEqual(nested(MAX_FIELD_NESTING));
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(codeOf(() => toFieldTable(cyclic as never))).toBe(SYNTAX_ERROR);
  });

  it("round-trip through amqplib: it decodes what we encode, and we decode what it encodes, tags intact", () => {
    fc.assert(
      fc.property(fieldTableArb({ oracle: true }), (t) => {
        const ours = encodeFieldTable(t);
        expect(codec.decodeFields(ours.subarray(4))).toEqual(oracleDecodedTable(t));
        const theirs = oracleEncodeTable(toOracleTable(t));
        expect(theirs).toEqual(ours);
        expect(decodeFieldTable(theirs)).toEqual(t);
      }),
      { numRuns: 300 },
    );
  });
});

describe("plain JS values", () => {
  it("are tagged by their JS type", () => {
    const date = new Date(1_700_000_000_999);
    const t = toFieldTable({
      s: "x",
      yes: true,
      small: -5,
      int32: 2 ** 31 - 1,
      big: 2 ** 31,
      float: 0.5,
      huge: 1e300,
      nan: Number.NaN,
      bigint: -(2n ** 60n),
      bytes: Buffer.from([1]),
      u8: new Uint8Array([2]),
      date,
      list: [1, "a"],
      nested: { k: null },
      none: null,
      skipped: undefined,
    });
    expect(t).toEqual({
      s: { type: "S", value: "x" },
      yes: { type: "t", value: true },
      small: { type: "I", value: -5 },
      int32: { type: "I", value: 2 ** 31 - 1 },
      big: { type: "l", value: 2 ** 31 },
      float: { type: "d", value: 0.5 },
      huge: { type: "d", value: 1e300 },
      nan: { type: "d", value: Number.NaN },
      bigint: { type: "l", value: -(2n ** 60n) },
      bytes: { type: "x", value: Buffer.from([1]) },
      u8: { type: "x", value: Buffer.from([2]) },
      date: { type: "T", value: 1_700_000_000 },
      list: { type: "A", value: [{ type: "I", value: 1 }, { type: "S", value: "a" }] },
      nested: { type: "F", value: { k: { type: "V", value: null } } },
      none: { type: "V", value: null },
    });
    expect(codeOf(() => toFieldValue(2n ** 63n))).toBe(SYNTAX_ERROR);
    expect(codeOf(() => toFieldValue((() => 1) as never))).toBe(SYNTAX_ERROR);
  });

  it("come back from tagged values, numbers untagged", () => {
    const t = decodeFieldTable(
      encodeFieldTable(
        table({
          n: { type: "u", value: 7 },
          ts: { type: "T", value: 1 },
          dec: { type: "D", value: { scale: 2, value: 314 } },
          arr: { type: "A", value: [{ type: "S", value: "a" }] },
        }),
      ),
    );
    expect(fromFieldTable(t)).toEqual({ n: 7, ts: new Date(1000), dec: 3.14, arr: ["a"] });
  });
});
