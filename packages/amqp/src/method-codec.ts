// Method frames, encoded and decoded by walking the generated descriptors (gen/spec.ts): one
// loop over a method's fields serves every method. Consecutive bit fields share an octet, the
// first in its lowest bit, as the specification packs them.
import {
  type AmqpMethod,
  COMMAND_INVALID,
  FRAME_METHOD,
  type FieldType,
  METHODS,
  type MethodDescriptor,
  type MethodName,
  SYNTAX_ERROR,
} from "../gen/spec.ts";
import { AmqpCodecError } from "./errors.ts";
import { readFieldTable, writeFieldTable, type FieldTable } from "./field-table.ts";
import { beginFrame, endFrame } from "./frames.ts";
import { WireReader, WireWriter } from "./wire.ts";

export type DecodedMethod = AmqpMethod & { classId: number; methodId: number };

const methodKey = (classId: number, methodId: number) => classId * 0x10000 + methodId;
const byId = new Map<number, MethodDescriptor>(METHODS.map((m) => [methodKey(m.classId, m.methodId), m]));
const byName = new Map<string, MethodDescriptor>(METHODS.map((m) => [m.name, m]));

export function methodDescriptor(name: MethodName): MethodDescriptor {
  const d = byName.get(name);
  if (!d) throw new AmqpCodecError(COMMAND_INVALID, `unknown method ${JSON.stringify(name)}`);
  return d;
}

/** The descriptor of a class and method id pair, or undefined when 0-9-1 has no such method. */
export function methodDescriptorById(classId: number, methodId: number): MethodDescriptor | undefined {
  return byId.get(methodKey(classId, methodId));
}

type FieldValueOf = number | boolean | string | Buffer | FieldTable;

function readField(r: WireReader, type: Exclude<FieldType, "bit">, name: string): FieldValueOf {
  switch (type) {
    case "octet":
      return r.u8(name);
    case "short":
      return r.u16(name);
    case "long":
      return r.u32(name);
    case "longlong":
    case "timestamp":
      return r.safeU64(name);
    case "shortstr":
      return r.shortstr(name);
    case "longstr":
      return r.longstr(name);
    case "table":
      return readFieldTable(r);
  }
}

function writeField(w: WireWriter, type: Exclude<FieldType, "bit">, value: unknown, name: string): void {
  switch (type) {
    case "octet":
      w.u8(value, name);
      return;
    case "short":
      w.u16(value, name);
      return;
    case "long":
      w.u32(value, name);
      return;
    case "longlong":
    case "timestamp":
      w.safeU64(value, name);
      return;
    case "shortstr":
      w.shortstr(value, name);
      return;
    case "longstr":
      w.longstr(value, name);
      return;
    case "table":
      writeFieldTable(w, value as FieldTable);
      return;
  }
}

/** Adds the class and method being decoded to an error from the field readers. */
function withMethod(e: unknown, classId: number, methodId: number, name: string): unknown {
  if (!(e instanceof AmqpCodecError) || e.classId !== 0) return e;
  return new AmqpCodecError(e.code, `${name}: ${e.detail}`, classId, methodId);
}

/**
 * Decodes a method frame's payload. Throws AmqpCodecError: 503 COMMAND_INVALID for a class and
 * method id pair that 0-9-1 does not define, 502 SYNTAX_ERROR for a payload too short or too long
 * for the method's fields, or a field value the codec cannot represent (a longlong above 2^53 - 1).
 */
export function decodeMethod(payload: Buffer): DecodedMethod {
  const r = new WireReader(payload);
  const classId = r.u16("class id");
  const methodId = r.u16("method id");
  const d = methodDescriptorById(classId, methodId);
  if (!d) {
    throw new AmqpCodecError(COMMAND_INVALID, `unknown method: class ${classId}, method ${methodId}`, classId, methodId);
  }
  const args: Record<string, FieldValueOf> = {};
  try {
    let bits = 0;
    let bitIndex = 8;
    for (const f of d.fields) {
      if (f.type === "bit") {
        if (bitIndex === 8) {
          bits = r.u8(f.name);
          bitIndex = 0;
        }
        args[f.name] = ((bits >> bitIndex) & 1) === 1;
        bitIndex++;
      } else {
        bitIndex = 8;
        args[f.name] = readField(r, f.type, f.name);
      }
    }
    r.expectEnd(`the fields of ${d.name}`);
  } catch (e) {
    throw withMethod(e, classId, methodId, d.name);
  }
  return { classId, methodId, name: d.name, args } as DecodedMethod;
}

/** Writes a method's class id, method id and arguments. */
function writeMethodPayload(w: WireWriter, method: AmqpMethod): MethodDescriptor {
  const d = methodDescriptor(method.name);
  try {
    const args = method.args as Record<string, unknown>;
    if (typeof args !== "object" || args === null) throw new AmqpCodecError(SYNTAX_ERROR, "args must be an object");
    w.u16(d.classId);
    w.u16(d.methodId);
    let bits = 0;
    let bitIndex = 0;
    for (const f of d.fields) {
      const value = args[f.name];
      if (value === undefined) throw new AmqpCodecError(SYNTAX_ERROR, `missing field ${f.name}`);
      if (f.type === "bit") {
        if (typeof value !== "boolean") throw new AmqpCodecError(SYNTAX_ERROR, `${f.name} must be a boolean`);
        if (value) bits |= 1 << bitIndex;
        if (++bitIndex === 8) {
          w.u8(bits);
          bits = 0;
          bitIndex = 0;
        }
        continue;
      }
      if (bitIndex > 0) {
        w.u8(bits);
        bits = 0;
        bitIndex = 0;
      }
      writeField(w, f.type, value, f.name);
    }
    if (bitIndex > 0) w.u8(bits);
  } catch (e) {
    throw withMethod(e, d.classId, d.methodId, d.name);
  }
  return d;
}

/**
 * Encodes a complete method frame: header, payload and frame-end. Throws AmqpCodecError 502 when
 * an argument is missing or does not fit its type (a shortstr over 255 bytes of UTF-8, an
 * integer out of range, a longlong above 2^53 - 1).
 */
export function encodeMethod(channel: number, method: AmqpMethod): Buffer {
  const w = new WireWriter(128);
  const at = beginFrame(w, FRAME_METHOD, channel);
  writeMethodPayload(w, method);
  return endFrame(w, at);
}
