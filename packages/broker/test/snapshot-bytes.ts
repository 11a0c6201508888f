// A snapshot in the piece format as test code reads and builds it: a zero byte, the format
// version, then length-prefixed BrokerSnapshot pieces.
import { lengthPrefix, Reader, raftmq } from "@raftmq/proto";

/** The BrokerSnapshot pieces of a snapshot in the piece format, decoded. */
export function decodePieces(bytes: Uint8Array): raftmq.v1.BrokerSnapshot[] {
  if (bytes[0] !== 0) throw new Error("not a snapshot in the piece format");
  const out: raftmq.v1.BrokerSnapshot[] = [];
  let at = 2;
  while (at < bytes.length) {
    const reader = Reader.create(bytes.subarray(at));
    const length = reader.uint32();
    at += reader.pos;
    out.push(raftmq.v1.BrokerSnapshot.decode(bytes.subarray(at, at + length)));
    at += length;
  }
  return out;
}

/** A snapshot in the piece format (version 1) made of these pieces. */
export function encodePieces(pieces: readonly raftmq.v1.BrokerSnapshot.$Properties[]): Uint8Array {
  const parts: Uint8Array[] = [Uint8Array.of(0, 1)];
  for (const p of pieces) {
    const bytes = raftmq.v1.BrokerSnapshot.encode(p).finish();
    parts.push(lengthPrefix(bytes.length), bytes);
  }
  return Buffer.concat(parts);
}
