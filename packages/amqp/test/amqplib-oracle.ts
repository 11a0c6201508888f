// amqplib's generated codec (lib/defs.js, lib/frame.js), loaded as an independent oracle for the
// tests: amqplib does not export these files, so they are required by path. Test-only.
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

const require = createRequire(import.meta.url);
// The package main (channel_api.js) sits at the package root.
const root = dirname(require.resolve("amqplib"));

/** amqplib's plain field values; `{ "!": type, value }` forces a type on encode. */
export type OracleValue = unknown;
export type OracleFields = Record<string, OracleValue>;

interface Defs {
  decode(id: number, buf: Buffer): OracleFields;
  encodeMethod(id: number, channel: number, fields: OracleFields): Buffer;
  encodeProperties(id: number, channel: number, size: number, fields: OracleFields): Buffer;
  info(id: number): { id: number; name: string; args: { name: string; type: string }[] };
}

interface Codec {
  encodeTable(buf: Buffer, value: OracleFields, offset: number): number;
  decodeFields(buf: Buffer): OracleFields;
}

interface FrameModule {
  parseFrame(bin: Buffer, max: number): { type: number; channel: number; size: number; payload: Buffer; rest: Buffer } | false;
  decodeFrame(frame: { type: number; channel: number; payload: Buffer }): {
    id?: number;
    channel: number;
    size?: number;
    fields?: OracleFields;
    content?: Buffer;
  };
  makeBodyFrame(channel: number, payload: Buffer): Buffer;
}

export const defs = require(join(root, "lib/defs.js")) as Defs;
export const codec = require(join(root, "lib/codec.js")) as Codec;
export const frame = require(join(root, "lib/frame.js")) as FrameModule;

/** amqplib's field names differ from ours only where the XML says "no-wait": amqplib writes "nowait". */
export function oracleName(ours: string): string {
  return ours === "noWait" ? "nowait" : ours;
}

export function oracleEncodeTable(value: OracleFields): Buffer {
  const buf = Buffer.alloc(1 << 20);
  const n = codec.encodeTable(buf, value, 0);
  return Buffer.from(buf.subarray(0, n));
}
