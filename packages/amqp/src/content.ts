// Content header frames (class, body size, properties) and body frames. Properties are present
// or absent by flag: each 16-bit flag word holds 15 properties from bit 15 down, and its bit 0
// says another flag word follows. Only the basic class has content in 0-9-1.
import {
  BASIC_PROPERTIES,
  type BasicProperties,
  CLASS_IDS,
  FRAME_BODY,
  FRAME_HEADER,
  type FieldType,
  SYNTAX_ERROR,
  UNEXPECTED_FRAME,
} from "../gen/spec.ts";
import { AmqpCodecError } from "./errors.ts";
import { type FieldTable, readFieldTable, writeFieldTable } from "./field-table.ts";
import { beginFrame, encodeFrame, endFrame, FRAME_OVERHEAD } from "./frames.ts";
import { WireReader, WireWriter } from "./wire.ts";

export interface ContentHeader {
  classId: number;
  /** At most 2^53 - 1: larger sizes are refused on decode. */
  bodySize: number;
  properties: BasicProperties;
}

const FLAGS_PER_WORD = 15;
const CONTINUATION = 1;

type PropertyValue = string | number | FieldTable;

function readProperty(r: WireReader, type: FieldType, name: string): PropertyValue {
  switch (type) {
    case "shortstr":
      return r.shortstr(name);
    case "octet":
      return r.u8(name);
    case "timestamp":
      return r.safeU64(name);
    case "table":
      return readFieldTable(r);
    default:
      throw new Error(`property ${name} has type ${type}, which the content header codec does not handle`);
  }
}

function writeProperty(w: WireWriter, type: FieldType, value: unknown, name: string): void {
  switch (type) {
    case "shortstr":
      w.shortstr(value, name);
      return;
    case "octet":
      w.u8(value, name);
      return;
    case "timestamp":
      w.safeU64(value, name);
      return;
    case "table":
      writeFieldTable(w, value as FieldTable);
      return;
    default:
      throw new Error(`property ${name} has type ${type}, which the content header codec does not handle`);
  }
}

// Every property type is one the codec handles; checked at load, not on a client's frame.
for (const p of BASIC_PROPERTIES) {
  if (!["shortstr", "octet", "timestamp", "table"].includes(p.type)) {
    throw new Error(`property ${p.name} has type ${p.type}, which the content header codec does not handle`);
  }
}

function checkClass(classId: number): void {
  if (classId !== CLASS_IDS.basic) {
    throw new AmqpCodecError(UNEXPECTED_FRAME, `content header for class ${classId}: only basic (60) has content`);
  }
}

/**
 * Decodes a content header frame's payload. Throws AmqpCodecError: 505 UNEXPECTED_FRAME for a
 * class other than basic, 502 SYNTAX_ERROR for a body size above 2^53 - 1, a flag for a property
 * basic does not have, or a payload too short or too long for the flagged properties.
 */
export function decodeContentHeader(payload: Buffer): ContentHeader {
  const r = new WireReader(payload);
  const classId = r.u16("class id");
  checkClass(classId);
  r.u16("weight"); // always 0; unused by 0-9-1
  const bodySize = r.safeU64("body size");
  const present: boolean[] = [];
  for (let word = 0; ; word++) {
    const flags = r.u16("property flags");
    for (let bit = FLAGS_PER_WORD; bit >= 1; bit--) {
      const index = word * FLAGS_PER_WORD + (FLAGS_PER_WORD - bit);
      const set = (flags & (1 << bit)) !== 0;
      if (set && index >= BASIC_PROPERTIES.length) {
        throw new AmqpCodecError(SYNTAX_ERROR, `property flag ${index} is set; basic has ${BASIC_PROPERTIES.length}`);
      }
      if (index < BASIC_PROPERTIES.length) present[index] = set;
    }
    if ((flags & CONTINUATION) === 0) break;
  }
  const properties: Record<string, PropertyValue> = {};
  for (const [i, p] of BASIC_PROPERTIES.entries()) {
    if (present[i]) properties[p.name] = readProperty(r, p.type, p.name);
  }
  r.expectEnd("the content header's properties");
  return { classId, bodySize, properties: properties as BasicProperties };
}

/**
 * Encodes a complete content header frame. Properties that are undefined (or null) are absent.
 * Throws AmqpCodecError 505 for a class other than basic, 502 for a value that does not fit
 * its type.
 */
export function encodeContentHeader(
  channel: number,
  classId: number,
  bodySize: number,
  properties: BasicProperties,
): Buffer {
  checkClass(classId);
  const values = properties as Record<string, unknown>;
  const w = new WireWriter(64);
  const at = beginFrame(w, FRAME_HEADER, channel);
  w.u16(classId, "class id");
  w.u16(0, "weight");
  w.safeU64(bodySize, "body size");
  const words = Math.max(1, Math.ceil(BASIC_PROPERTIES.length / FLAGS_PER_WORD));
  for (let word = 0; word < words; word++) {
    let flags = word < words - 1 ? CONTINUATION : 0;
    for (let bit = FLAGS_PER_WORD; bit >= 1; bit--) {
      const p = BASIC_PROPERTIES[word * FLAGS_PER_WORD + (FLAGS_PER_WORD - bit)];
      if (p && values[p.name] != null) flags |= 1 << bit;
    }
    w.u16(flags, "property flags");
  }
  for (const p of BASIC_PROPERTIES) {
    const value = values[p.name];
    if (value != null) writeProperty(w, p.type, value, p.name);
  }
  return endFrame(w, at);
}

/**
 * Splits a body into body frames of at most frameMax bytes each, frame overhead included
 * (payload ≤ frameMax - 8). frameMax 0 means no limit, as in connection.tune. An empty body has
 * no body frames.
 */
export function encodeBodyFrames(channel: number, body: Buffer, frameMax: number): Buffer[] {
  if (frameMax !== 0 && (!Number.isInteger(frameMax) || frameMax <= FRAME_OVERHEAD)) {
    throw new RangeError(`frameMax must be 0 (no limit) or an integer above ${FRAME_OVERHEAD}, got ${frameMax}`);
  }
  const chunk = frameMax === 0 ? Math.max(body.length, 1) : frameMax - FRAME_OVERHEAD;
  const frames: Buffer[] = [];
  for (let at = 0; at < body.length; at += chunk) {
    frames.push(encodeFrame(FRAME_BODY, channel, body.subarray(at, at + chunk)));
  }
  return frames;
}
