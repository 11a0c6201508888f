// Field tables and field arrays (the `table` type of method arguments and of the headers property).
//
// A decoded value keeps its wire tag, `{ type: "I", value: 5 }`, so that encoding what was decoded
// writes the same tags: a broker passes message headers through to consumers, and a client that
// sent an unsigned 16-bit `u` must get one back, not whatever a guess from a JS number would pick.
// toFieldTable / toFieldValue build tagged values from plain JS; fromFieldTable / fromFieldValue
// go the other way, for reading arguments and client properties.
//
// The tags are RabbitMQ's (its 0-9-1 errata), which all current clients use; they differ from the
// 0-9-1 grammar in `s` (int16, not shortstr) and `l` (signed int64). `L`, signed int64 in the
// 0-9-1 grammar, is never sent by RabbitMQ; it decodes and round-trips as its own tag.
import { SYNTAX_ERROR } from "../gen/spec.ts";
import { AmqpCodecError } from "./errors.ts";
import { narrow64, WireReader, WireWriter } from "./wire.ts";

export type FieldValue =
  | { type: "t"; value: boolean }
  /** int8 */
  | { type: "b"; value: number }
  /** uint8 */
  | { type: "B"; value: number }
  /** int16 */
  | { type: "s"; value: number }
  /** uint16 */
  | { type: "u"; value: number }
  /** int32 */
  | { type: "I"; value: number }
  /** uint32 */
  | { type: "i"; value: number }
  /** int64: a number when it is a safe integer, else a bigint. */
  | { type: "l"; value: number | bigint }
  /** int64 in the 0-9-1 grammar's tag; as `l`. */
  | { type: "L"; value: number | bigint }
  /** float32 */
  | { type: "f"; value: number }
  /** float64 */
  | { type: "d"; value: number }
  /** value / 10^scale; scale is an octet, value a uint32. */
  | { type: "D"; value: Decimal }
  /** Long string, decoded as UTF-8 (invalid sequences become U+FFFD). */
  | { type: "S"; value: string }
  /** Byte array. */
  | { type: "x"; value: Buffer }
  | { type: "A"; value: FieldValue[] }
  /** Seconds since the epoch (uint64): a number when safe, else a bigint. */
  | { type: "T"; value: number | bigint }
  | { type: "F"; value: FieldTable }
  | { type: "V"; value: null };

export type FieldTag = FieldValue["type"];

export interface Decimal {
  scale: number;
  value: number;
}

/** Keys map to tagged values. Decoded tables have no prototype, so any key ("__proto__") is data. */
export type FieldTable = { [key: string]: FieldValue };

/** What toFieldValue accepts, and fromFieldValue returns (less Uint8Array and undefined). */
export type PlainFieldValue =
  | string
  | number
  | bigint
  | boolean
  | null
  | undefined
  | Date
  | Uint8Array
  | PlainFieldValue[]
  | { [key: string]: PlainFieldValue };

/** Tables nest inside tables and arrays; recursion deeper than this is refused, not a stack overflow. */
export const MAX_FIELD_NESTING = 64;

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function syntaxError(detail: string): AmqpCodecError {
  return new AmqpCodecError(SYNTAX_ERROR, detail);
}

function emptyTable(): FieldTable {
  return Object.create(null) as FieldTable;
}

// --- decoding -------------------------------------------------------------------------------

export function readFieldTable(r: WireReader, depth = 0): FieldTable {
  if (depth > MAX_FIELD_NESTING) throw syntaxError(`field tables nested deeper than ${MAX_FIELD_NESTING}`);
  const size = r.u32("table size");
  if (size > r.remaining) throw syntaxError(`truncated table: size ${size}, ${r.remaining} bytes left`);
  const end = r.offset + size;
  const table = emptyTable();
  while (r.offset < end) {
    const key = r.shortstr("table key");
    const value = readFieldValue(r, depth);
    // A duplicate key keeps its first value, the one RabbitMQ's lookups find.
    if (!Object.hasOwn(table, key)) table[key] = value;
  }
  if (r.offset !== end) throw syntaxError("a table entry runs past the table's size");
  return table;
}

function readFieldArray(r: WireReader, depth: number): FieldValue[] {
  if (depth > MAX_FIELD_NESTING) throw syntaxError(`field arrays nested deeper than ${MAX_FIELD_NESTING}`);
  const size = r.u32("array size");
  if (size > r.remaining) throw syntaxError(`truncated array: size ${size}, ${r.remaining} bytes left`);
  const end = r.offset + size;
  const values: FieldValue[] = [];
  while (r.offset < end) values.push(readFieldValue(r, depth));
  if (r.offset !== end) throw syntaxError("an array element runs past the array's size");
  return values;
}

export function readFieldValue(r: WireReader, depth = 0): FieldValue {
  const tag = String.fromCharCode(r.u8("field type"));
  switch (tag) {
    case "t":
      return { type: "t", value: r.u8("boolean") !== 0 };
    case "b":
      return { type: "b", value: r.i8() };
    case "B":
      return { type: "B", value: r.u8() };
    case "s":
      return { type: "s", value: r.i16() };
    case "u":
      return { type: "u", value: r.u16() };
    case "I":
      return { type: "I", value: r.i32() };
    case "i":
      return { type: "i", value: r.u32() };
    case "l":
      return { type: "l", value: narrow64(r.i64()) };
    case "L":
      return { type: "L", value: narrow64(r.i64()) };
    case "f":
      return { type: "f", value: r.f32() };
    case "d":
      return { type: "d", value: r.f64() };
    case "D": {
      const scale = r.u8("decimal scale");
      return { type: "D", value: { scale, value: r.u32("decimal value") } };
    }
    case "S": {
      const bytes = r.longstr("long string");
      return { type: "S", value: bytes.toString("utf8") };
    }
    case "x":
      return { type: "x", value: r.longstr("byte array") };
    case "A":
      return { type: "A", value: readFieldArray(r, depth + 1) };
    case "T":
      return { type: "T", value: narrow64(r.u64("timestamp")) };
    case "F":
      return { type: "F", value: readFieldTable(r, depth + 1) };
    case "V":
      return { type: "V", value: null };
    default:
      throw syntaxError(`unknown field type 0x${tag.charCodeAt(0).toString(16).padStart(2, "0")}`);
  }
}

/** Decodes a table as it appears on the wire: a 32-bit size, then the entries; nothing may follow. */
export function decodeFieldTable(buf: Buffer): FieldTable {
  const r = new WireReader(buf);
  const table = readFieldTable(r);
  r.expectEnd("field table");
  return table;
}

/** Decodes one tagged value (tag octet, then the value); nothing may follow. */
export function decodeFieldValue(buf: Buffer): FieldValue {
  const r = new WireReader(buf);
  const value = readFieldValue(r);
  r.expectEnd("field value");
  return value;
}

// --- encoding -------------------------------------------------------------------------------

export function writeFieldTable(w: WireWriter, table: FieldTable, depth = 0): void {
  if (depth > MAX_FIELD_NESTING) throw syntaxError(`field tables nested deeper than ${MAX_FIELD_NESTING}`);
  if (typeof table !== "object" || table === null || Array.isArray(table)) {
    throw syntaxError(`a field table must be an object, got ${table === null ? "null" : typeof table}`);
  }
  const at = w.reserveU32();
  for (const key of Object.keys(table)) {
    w.shortstr(key, "table key");
    writeFieldValue(w, table[key]!, depth);
  }
  w.fillLength(at, "field table size");
}

export function writeFieldValue(w: WireWriter, v: FieldValue, depth = 0): void {
  if (typeof v !== "object" || v === null) throw syntaxError(`a field value must be a tagged object, got ${String(v)}`);
  const tag: string = v.type;
  if (typeof tag !== "string" || tag.length !== 1) throw syntaxError(`unknown field type ${String(tag)}`);
  w.u8(tag.charCodeAt(0), "field type");
  // Values come from callers' code as often as from the decoder: check them before writing.
  const raw: unknown = v.value;
  switch (v.type) {
    case "t":
      if (typeof v.value !== "boolean") throw syntaxError(`field type t needs a boolean, got ${typeof raw}`);
      w.u8(v.value ? 1 : 0);
      return;
    case "b":
      w.i8(v.value, "int8 (b)");
      return;
    case "B":
      w.u8(v.value, "uint8 (B)");
      return;
    case "s":
      w.i16(v.value, "int16 (s)");
      return;
    case "u":
      w.u16(v.value, "uint16 (u)");
      return;
    case "I":
      w.i32(v.value, "int32 (I)");
      return;
    case "i":
      w.u32(v.value, "uint32 (i)");
      return;
    case "l":
    case "L":
      w.i64(v.value, `int64 (${v.type})`);
      return;
    case "f":
      w.f32(v.value, "float (f)");
      return;
    case "d":
      w.f64(v.value, "double (d)");
      return;
    case "D":
      if (typeof v.value !== "object" || v.value === null) throw syntaxError("field type D needs { scale, value }");
      w.u8(v.value.scale, "decimal scale");
      w.u32(v.value.value, "decimal value");
      return;
    case "S":
      if (typeof v.value !== "string") throw syntaxError(`field type S needs a string, got ${typeof raw}`);
      w.longstr(v.value, "long string (S)");
      return;
    case "x":
      if (!(v.value instanceof Uint8Array)) throw syntaxError("field type x needs a Buffer");
      w.longstr(v.value, "byte array (x)");
      return;
    case "A": {
      if (!Array.isArray(v.value)) throw syntaxError("field type A needs an array");
      if (depth >= MAX_FIELD_NESTING) throw syntaxError(`field arrays nested deeper than ${MAX_FIELD_NESTING}`);
      const at = w.reserveU32();
      for (const item of v.value) writeFieldValue(w, item, depth + 1);
      w.fillLength(at, "field array size");
      return;
    }
    case "T":
      w.u64(v.value, "timestamp (T)");
      return;
    case "F":
      writeFieldTable(w, v.value, depth + 1);
      return;
    case "V":
      return;
    default:
      throw syntaxError(`unknown field type ${JSON.stringify(tag)}`);
  }
}

/** Encodes a table as it appears on the wire: a 32-bit size, then the entries. */
export function encodeFieldTable(table: FieldTable): Buffer {
  const w = new WireWriter();
  writeFieldTable(w, table);
  return w.finish();
}

/** Encodes one tagged value: its tag octet, then the value. */
export function encodeFieldValue(value: FieldValue): Buffer {
  const w = new WireWriter(16);
  writeFieldValue(w, value);
  return w.finish();
}

// --- plain JS ---------------------------------------------------------------------------------

/**
 * Tags a plain JS value: string → S, boolean → t, integer → I (int32 range) or l (safe integer),
 * other number → d, bigint → l, Buffer/Uint8Array → x, Date → T (whole seconds), array → A,
 * object → F, null and undefined → V. Keys whose value is undefined are left out of tables.
 */
export function toFieldValue(value: PlainFieldValue, depth = 0): FieldValue {
  if (depth > MAX_FIELD_NESTING) throw syntaxError(`values nested deeper than ${MAX_FIELD_NESTING}`);
  switch (typeof value) {
    case "string":
      return { type: "S", value };
    case "boolean":
      return { type: "t", value };
    case "number":
      if (Number.isInteger(value) && value >= INT32_MIN && value <= INT32_MAX) return { type: "I", value };
      if (Number.isSafeInteger(value)) return { type: "l", value };
      return { type: "d", value };
    case "bigint":
      if (value < INT64_MIN || value > INT64_MAX) throw syntaxError(`bigint ${value} does not fit a signed 64-bit field`);
      return { type: "l", value: narrow64(value) };
    case "undefined":
      return { type: "V", value: null };
    case "object":
      if (value === null) return { type: "V", value: null };
      if (value instanceof Uint8Array) {
        return { type: "x", value: Buffer.from(value.buffer, value.byteOffset, value.byteLength) };
      }
      if (value instanceof Date) {
        const ms = value.getTime();
        if (Number.isNaN(ms) || ms < 0) throw syntaxError(`date ${String(value)} is not a timestamp`);
        return { type: "T", value: Math.floor(ms / 1000) };
      }
      if (Array.isArray(value)) return { type: "A", value: value.map((v) => toFieldValue(v, depth + 1)) };
      return { type: "F", value: toFieldTable(value, depth + 1) };
    default:
      throw syntaxError(`a ${typeof value} has no field type`);
  }
}

/** Tags each value of a plain object with toFieldValue; keys whose value is undefined are left out. */
export function toFieldTable(obj: { [key: string]: PlainFieldValue }, depth = 0): FieldTable {
  const table = emptyTable();
  for (const key of Object.keys(obj)) {
    const v = obj[key];
    if (v !== undefined) table[key] = toFieldValue(v, depth);
  }
  return table;
}

/**
 * The plain JS value of a tagged one: integers and floats → number, l/L → number or bigint,
 * T → Date, D → number (value / 10^scale), S → string, x → Buffer, A → array, F → object, V → null.
 */
export function fromFieldValue(v: FieldValue): PlainFieldValue {
  switch (v.type) {
    case "A":
      return v.value.map(fromFieldValue);
    case "F":
      return fromFieldTable(v.value);
    case "T":
      return new Date(Number(v.value) * 1000);
    case "D":
      return v.value.value / 10 ** v.value.scale;
    default:
      return v.value;
  }
}

export function fromFieldTable(table: FieldTable): { [key: string]: PlainFieldValue } {
  const obj: { [key: string]: PlainFieldValue } = Object.create(null);
  for (const key of Object.keys(table)) obj[key] = fromFieldValue(table[key]!);
  return obj;
}
