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

/**
 * `bytes` in memory of its own. protobufjs encodes messages under 4 KiB into slices of Node's
 * shared 8 KiB buffer pool, and a slice kept alive keeps its whole pool buffer alive, with
 * whatever else was allocated there. Data kept for long (a log entry, which queued messages'
 * bodies point into) is copied out once, to its exact size.
 */
export function ownBytes(bytes: Uint8Array): Uint8Array {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : new Uint8Array(bytes);
}
