// protobufjs's own wire-format reader and writer, for code that frames generated messages
// itself (length-prefixed pieces, a bytes field written around data that is never copied).
import protobuf from "protobufjs/minimal.js";

export const { Reader, Writer } = protobuf;

/** The wire bytes that open a length-delimited field: its tag, then the length. */
export function lengthDelimitedHeader(fieldNumber: number, byteLength: number): Uint8Array {
  return Writer.create()
    .uint32((fieldNumber << 3) | 2)
    .uint32(byteLength)
    .finish();
}

/** A varint length prefix. */
export function lengthPrefix(byteLength: number): Uint8Array {
  return Writer.create().uint32(byteLength).finish();
}
