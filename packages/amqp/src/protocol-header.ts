// The 8 bytes a client sends before any frame. A server that does not speak the client's
// protocol answers with its own header and closes the socket, as the 0-9-1 specification prescribes.
export const PROTOCOL_HEADER = Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1]); // "AMQP" 0 0 9 1

export const PROTOCOL_HEADER_SIZE = 8;

export type ProtocolHeaderResult =
  | { ok: true }
  /** Fewer than 8 bytes, all agreeing with the header so far: read more. */
  | { ok: false; reason: "incomplete" }
  /** Not "AMQP": another protocol (HTTP, TLS to a plain port) or garbage. */
  | { ok: false; reason: "not-amqp" }
  /** "AMQP" and another protocol version: `version` is the four octets after it (1.0 is 0,1,0,0). */
  | { ok: false; reason: "unsupported-version"; version: [number, number, number, number] };

/**
 * Checks the first 8 bytes a client sent. Reads nothing past them: the bytes after the header
 * are the first frames. For any result but ok and incomplete, reply with PROTOCOL_HEADER and close.
 */
export function readProtocolHeader(buf: Uint8Array): ProtocolHeaderResult {
  const n = Math.min(buf.length, PROTOCOL_HEADER_SIZE);
  for (let i = 0; i < n; i++) {
    if (buf[i] === PROTOCOL_HEADER[i]) continue;
    if (i < 4) return { ok: false, reason: "not-amqp" };
    if (buf.length < PROTOCOL_HEADER_SIZE) return { ok: false, reason: "incomplete" };
    return { ok: false, reason: "unsupported-version", version: [buf[4]!, buf[5]!, buf[6]!, buf[7]!] };
  }
  return n < PROTOCOL_HEADER_SIZE ? { ok: false, reason: "incomplete" } : { ok: true };
}
