// The primitive wire types (octets, big-endian integers, short and long strings) read from and
// written to buffers. Every read is bounds-checked and every write range-checked, so that bad
// input and bad values surface as AmqpCodecError (502) and never as a RangeError from Buffer.
import { isUtf8 } from "node:buffer";
import { SYNTAX_ERROR } from "../gen/spec.ts";
import { AmqpCodecError } from "./errors.ts";

const TWO_32 = 2 ** 32;
const MAX_SHORTSTR_BYTES = 255;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

function syntaxError(detail: string): AmqpCodecError {
  return new AmqpCodecError(SYNTAX_ERROR, detail);
}

function checkInteger(value: unknown, min: number, max: number, what: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw syntaxError(`${what} must be an integer in [${min}, ${max}], got ${String(value)}`);
  }
  return value;
}

function checkBigInt(value: unknown, min: bigint, max: bigint, what: string): bigint {
  const n = typeof value === "number" && Number.isSafeInteger(value) ? BigInt(value) : value;
  if (typeof n !== "bigint" || n < min || n > max) {
    throw syntaxError(`${what} must be an integer in [${min}, ${max}], got ${String(value)}`);
  }
  return n;
}

/** A 64-bit value as a number when it is exactly representable, else as a bigint. */
export function narrow64(n: bigint): number | bigint {
  return n >= -Number.MAX_SAFE_INTEGER && n <= Number.MAX_SAFE_INTEGER ? Number(n) : n;
}

export class WireReader {
  private pos: number;

  constructor(
    private readonly buf: Buffer,
    start = 0,
    private readonly end = buf.length,
  ) {
    this.pos = start;
  }

  get offset(): number {
    return this.pos;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  private need(n: number, what: string): number {
    if (n > this.end - this.pos) {
      throw syntaxError(`truncated ${what}: needs ${n} bytes, ${this.end - this.pos} left`);
    }
    const at = this.pos;
    this.pos += n;
    return at;
  }

  /** Throws unless every byte was read: a payload longer than its fields is malformed. */
  expectEnd(what: string): void {
    if (this.pos !== this.end) throw syntaxError(`${this.end - this.pos} unexpected bytes after ${what}`);
  }

  u8(what = "octet"): number {
    return this.buf[this.need(1, what)]!;
  }
  i8(what = "int8"): number {
    return this.buf.readInt8(this.need(1, what));
  }
  u16(what = "short"): number {
    return this.buf.readUInt16BE(this.need(2, what));
  }
  i16(what = "int16"): number {
    return this.buf.readInt16BE(this.need(2, what));
  }
  u32(what = "long"): number {
    return this.buf.readUInt32BE(this.need(4, what));
  }
  i32(what = "int32"): number {
    return this.buf.readInt32BE(this.need(4, what));
  }
  u64(what = "longlong"): bigint {
    return this.buf.readBigUInt64BE(this.need(8, what));
  }
  i64(what = "int64"): bigint {
    return this.buf.readBigInt64BE(this.need(8, what));
  }
  /** An unsigned 64-bit value that must fit a JS number exactly (delivery tags, sizes, times). */
  safeU64(what = "longlong"): number {
    const at = this.need(8, what);
    const hi = this.buf.readUInt32BE(at);
    const lo = this.buf.readUInt32BE(at + 4);
    if (hi > 0x1fffff) throw syntaxError(`${what} ${this.buf.readBigUInt64BE(at)} exceeds 2^53 - 1`);
    return hi * TWO_32 + lo;
  }
  f32(what = "float"): number {
    return this.buf.readFloatBE(this.need(4, what));
  }
  f64(what = "double"): number {
    return this.buf.readDoubleBE(this.need(8, what));
  }
  /** A view of the next n bytes, sharing memory with the input. */
  bytes(n: number, what: string): Buffer {
    const at = this.need(n, what);
    return this.buf.subarray(at, at + n);
  }
  /**
   * A shortstr must be valid UTF-8: decoding invalid bytes would replace each with U+FFFD (three
   * bytes), and a name echoed back (a consumer tag, a queue name) could then exceed 255 bytes.
   */
  shortstr(what = "shortstr"): string {
    const n = this.u8(what);
    const at = this.need(n, what);
    const bytes = this.buf.subarray(at, at + n);
    if (!isUtf8(bytes)) throw syntaxError(`${what} is not valid UTF-8`);
    return bytes.toString("utf8");
  }
  longstr(what = "longstr"): Buffer {
    return this.bytes(this.u32(what), what);
  }
}

/** Appends to a buffer that doubles when full; finish() returns the bytes written. */
export class WireWriter {
  private buf: Buffer;
  private pos = 0;

  constructor(capacity = 256) {
    this.buf = Buffer.allocUnsafe(capacity);
  }

  get offset(): number {
    return this.pos;
  }

  private room(n: number): number {
    if (this.pos + n > this.buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
      this.buf.copy(grown, 0, 0, this.pos);
      this.buf = grown;
    }
    const at = this.pos;
    this.pos += n;
    return at;
  }

  u8(value: unknown, what = "octet"): void {
    const n = checkInteger(value, 0, 0xff, what);
    const at = this.room(1);
    this.buf[at] = n;
  }
  i8(value: unknown, what = "int8"): void {
    const v = checkInteger(value, -0x80, 0x7f, what);
    const at = this.room(1);
    this.buf.writeInt8(v, at);
  }
  u16(value: unknown, what = "short"): void {
    const v = checkInteger(value, 0, 0xffff, what);
    const at = this.room(2);
    this.buf.writeUInt16BE(v, at);
  }
  i16(value: unknown, what = "int16"): void {
    const v = checkInteger(value, -0x8000, 0x7fff, what);
    const at = this.room(2);
    this.buf.writeInt16BE(v, at);
  }
  u32(value: unknown, what = "long"): void {
    const v = checkInteger(value, 0, 0xffffffff, what);
    const at = this.room(4);
    this.buf.writeUInt32BE(v, at);
  }
  i32(value: unknown, what = "int32"): void {
    const v = checkInteger(value, -0x80000000, 0x7fffffff, what);
    const at = this.room(4);
    this.buf.writeInt32BE(v, at);
  }
  u64(value: unknown, what = "uint64"): void {
    const v = checkBigInt(value, 0n, UINT64_MAX, what);
    const at = this.room(8);
    this.buf.writeBigUInt64BE(v, at);
  }
  i64(value: unknown, what = "int64"): void {
    const v = checkBigInt(value, INT64_MIN, INT64_MAX, what);
    const at = this.room(8);
    this.buf.writeBigInt64BE(v, at);
  }
  safeU64(value: unknown, what = "longlong"): void {
    const n = checkInteger(value, 0, Number.MAX_SAFE_INTEGER, what);
    const at = this.room(8);
    this.buf.writeUInt32BE(Math.floor(n / TWO_32), at);
    this.buf.writeUInt32BE(n % TWO_32, at + 4);
  }
  f32(value: unknown, what = "float"): void {
    if (typeof value !== "number") throw syntaxError(`${what} must be a number, got ${typeof value}`);
    const at = this.room(4);
    this.buf.writeFloatBE(value, at);
  }
  f64(value: unknown, what = "double"): void {
    if (typeof value !== "number") throw syntaxError(`${what} must be a number, got ${typeof value}`);
    const at = this.room(8);
    this.buf.writeDoubleBE(value, at);
  }
  bytes(value: Uint8Array): void {
    const at = this.room(value.length);
    this.buf.set(value, at);
  }
  shortstr(value: unknown, what = "shortstr"): void {
    if (typeof value !== "string") throw syntaxError(`${what} must be a string, got ${typeof value}`);
    const n = Buffer.byteLength(value);
    if (n > MAX_SHORTSTR_BYTES) throw syntaxError(`${what} is ${n} bytes of UTF-8; a shortstr holds at most 255`);
    const at = this.room(1 + n);
    this.buf[at] = n;
    this.buf.write(value, at + 1, n, "utf8");
  }
  /** A longstr from bytes, or from a string as UTF-8. */
  longstr(value: unknown, what = "longstr"): void {
    if (typeof value === "string") {
      const n = Buffer.byteLength(value);
      this.u32(n, what);
      const at = this.room(n);
      this.buf.write(value, at, n, "utf8");
    } else if (value instanceof Uint8Array) {
      this.u32(value.length, what);
      this.bytes(value);
    } else {
      throw syntaxError(`${what} must be a Buffer or a string, got ${typeof value}`);
    }
  }

  /** Reserves a 32-bit length to fill in once what follows it is written. */
  reserveU32(): number {
    return this.room(4);
  }
  /** Writes, at a reserved offset, the number of bytes written since the end of the reservation. */
  fillLength(at: number, what: string): void {
    this.buf.writeUInt32BE(checkInteger(this.pos - at - 4, 0, 0xffffffff, what), at);
  }

  finish(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}
