// fast-check generators for field values, tables and method arguments, driven by the same
// descriptors as the codec, plus the conversions to and from amqplib's plain representation.
import fc from "fast-check";
import type { FieldTable, FieldType, FieldValue, MethodDescriptor } from "../src/index.ts";
import { oracleName, type OracleFields, type OracleValue } from "./amqplib-oracle.ts";

const narrow = (n: bigint): number | bigint =>
  n >= -Number.MAX_SAFE_INTEGER && n <= Number.MAX_SAFE_INTEGER ? Number(n) : n;

export const shortstrArb = fc.oneof(
  fc.string({ maxLength: 40, unit: "binary" }),
  fc.string({ maxLength: 255 }),
  fc.constant("é".repeat(127)), // 254 bytes
);

export const tableKeyArb = fc.string({ maxLength: 20, unit: "binary" }).filter((k) => k !== "__proto__");

export interface FieldArbOptions {
  /** Leave out `L`, which amqplib does not know. */
  oracle?: boolean;
  depth?: number;
}

export function fieldValueArb(options: FieldArbOptions = {}): fc.Arbitrary<FieldValue> {
  const { oracle = false, depth = 3 } = options;
  const int64 = fc.bigInt(-(2n ** 63n), 2n ** 63n - 1n).map(narrow);
  const scalars: fc.Arbitrary<FieldValue>[] = [
    fc.boolean().map((value) => ({ type: "t", value })),
    fc.integer({ min: -128, max: 127 }).map((value) => ({ type: "b", value })),
    fc.integer({ min: 0, max: 255 }).map((value) => ({ type: "B", value })),
    fc.integer({ min: -32768, max: 32767 }).map((value) => ({ type: "s", value })),
    fc.integer({ min: 0, max: 65535 }).map((value) => ({ type: "u", value })),
    fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }).map((value) => ({ type: "I", value })),
    fc.integer({ min: 0, max: 2 ** 32 - 1 }).map((value) => ({ type: "i", value })),
    fc.oneof(int64, fc.integer()).map((value) => ({ type: "l", value })),
    fc.float().map((value) => ({ type: "f", value })),
    fc.double().map((value) => ({ type: "d", value })),
    fc
      .record({ scale: fc.integer({ min: 0, max: 255 }), value: fc.integer({ min: 0, max: 2 ** 32 - 1 }) })
      .map((value) => ({ type: "D", value })),
    fc.string({ maxLength: 30, unit: "binary" }).map((value) => ({ type: "S", value })),
    fc.uint8Array({ maxLength: 30 }).map((b) => ({ type: "x", value: Buffer.from(b) })),
    fc.bigInt(0n, 2n ** 64n - 1n).map((n) => ({ type: "T", value: narrow(n) })),
    fc.constant({ type: "V", value: null }),
  ];
  if (!oracle) scalars.push(int64.map((value) => ({ type: "L", value })));
  const scalar = fc.oneof(...scalars);
  if (depth <= 0) return scalar;
  const inner = fieldValueArb({ oracle, depth: depth - 1 });
  return fc.oneof(
    { weight: 6, arbitrary: scalar },
    { weight: 1, arbitrary: fc.array(inner, { maxLength: 4 }).map((value): FieldValue => ({ type: "A", value })) },
    { weight: 1, arbitrary: fieldTableArb({ oracle, depth: depth - 1 }).map((value): FieldValue => ({ type: "F", value })) },
  );
}

export function fieldTableArb(options: FieldArbOptions = {}): fc.Arbitrary<FieldTable> {
  return fc
    .uniqueArray(fc.tuple(tableKeyArb, fieldValueArb(options)), { maxLength: 5, selector: ([k]) => k })
    .map((entries) => {
      const table: FieldTable = Object.create(null);
      for (const [k, v] of entries) table[k] = v;
      return table;
    });
}

export function fieldArb(type: FieldType, oracle = false): fc.Arbitrary<unknown> {
  switch (type) {
    case "bit":
      return fc.boolean();
    case "octet":
      return fc.integer({ min: 0, max: 255 });
    case "short":
      return fc.integer({ min: 0, max: 65535 });
    case "long":
      return fc.integer({ min: 0, max: 2 ** 32 - 1 });
    case "longlong":
    case "timestamp":
      return fc.maxSafeNat();
    case "shortstr":
      return shortstrArb;
    case "longstr":
      return fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b));
    case "table":
      return fieldTableArb({ oracle, depth: 2 });
  }
}

export function argsArb(d: MethodDescriptor, oracle = false): fc.Arbitrary<Record<string, unknown>> {
  const shape: Record<string, fc.Arbitrary<unknown>> = {};
  for (const f of d.fields) shape[f.name] = fieldArb(f.type, oracle);
  return fc.record(shape);
}

// --- amqplib's representation -----------------------------------------------------------------

const ORACLE_TYPES: Partial<Record<FieldValue["type"], string>> = {
  b: "int8",
  B: "uint8",
  s: "int16",
  u: "uint16",
  I: "int32",
  i: "uint32",
  l: "int64",
  f: "float",
  d: "double",
  T: "timestamp",
};

/** Our tagged value as amqplib's encoder input, its type forced with `{ "!": type }`. */
export function toOracleValue(v: FieldValue): OracleValue {
  switch (v.type) {
    case "t":
    case "S":
    case "x":
    case "V":
      return v.value;
    case "A":
      return v.value.map(toOracleValue);
    case "F":
      return toOracleTable(v.value);
    case "D":
      return { "!": "decimal", value: { places: v.value.scale, digits: v.value.value } };
    case "L":
      throw new Error("amqplib has no L");
    default:
      return { "!": ORACLE_TYPES[v.type], value: v.value };
  }
}

export function toOracleTable(t: FieldTable): OracleFields {
  const out: OracleFields = {};
  for (const k of Object.keys(t)) out[k] = toOracleValue(t[k]!);
  return out;
}

/** What amqplib's decoder returns for our tagged value: numbers lose their tag. */
export function oracleDecoded(v: FieldValue): OracleValue {
  switch (v.type) {
    case "t":
    case "S":
    case "x":
    case "V":
      return v.value;
    case "A":
      return v.value.map(oracleDecoded);
    case "F":
      return oracleDecodedTable(v.value);
    case "D":
      return { "!": "decimal", value: { places: v.value.scale, digits: v.value.value } };
    case "T":
      return { "!": "timestamp", value: Number(v.value) };
    default:
      return Number(v.value);
  }
}

export function oracleDecodedTable(t: FieldTable): OracleFields {
  const out: OracleFields = {};
  for (const k of Object.keys(t)) out[k] = oracleDecoded(t[k]!);
  return out;
}

/** Method arguments as amqplib names them and, for tables, as amqplib encodes them. */
export function toOracleArgs(d: MethodDescriptor, args: Record<string, unknown>): OracleFields {
  const out: OracleFields = {};
  for (const f of d.fields) {
    const v = args[f.name];
    out[oracleName(f.name)] = f.type === "table" ? toOracleTable(v as FieldTable) : v;
  }
  return out;
}

/** Method arguments as amqplib decodes them. */
export function oracleDecodedArgs(d: MethodDescriptor, args: Record<string, unknown>): OracleFields {
  const out: OracleFields = {};
  for (const f of d.fields) {
    const v = args[f.name];
    out[oracleName(f.name)] = f.type === "table" ? oracleDecodedTable(v as FieldTable) : v;
  }
  return out;
}
