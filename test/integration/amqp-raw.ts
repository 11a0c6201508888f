// A bare AMQP 0-9-1 client made of the codec, for tests that must send what no real client
// would: it does the handshake as the spec orders it, then lets a test write any bytes and read
// how the server answered.
import { connect, type Socket } from "node:net";
import { decodeMethod, encodeMethod, FrameReader, PROTOCOL_HEADER } from "@raftmq/amqp";

export interface RawOptions {
  user: string;
  password: string;
  vhost?: string;
  /** Seconds; 0 turns heartbeats off. */
  heartbeat?: number;
  frameMax?: number;
}

export interface RawSession {
  socket: Socket;
  /** How the handshake ended: "opened", or the connection.close it drew ("403 ACCESS_REFUSED - ..."). */
  outcome: string;
  /** After the handshake: the connection.close the server sent (as soon as it arrives), or code 0 when the socket closed without one. */
  closed: Promise<{ code: number; text: string; at: number }>;
}

/** Connects, logs in with PLAIN and opens the vhost; resolves once connection.open is answered. */
export function rawAmqp(port: number, options: RawOptions): Promise<RawSession> {
  const socket = connect(port, "127.0.0.1");
  const reader = new FrameReader({ maxFrameSize: 1 << 20 });
  let broken = false;
  let opened = false;
  let closedResolve: (v: { code: number; text: string; at: number }) => void = () => {};
  const closed = new Promise<{ code: number; text: string; at: number }>((resolve) => {
    closedResolve = resolve;
    socket.once("close", () => resolve({ code: 0, text: "", at: Date.now() }));
  });
  socket.on("error", () => {});
  return new Promise((resolve, reject) => {
    const settle = (outcome: string) => resolve({ socket, outcome, closed });
    socket.on("connect", () => socket.write(PROTOCOL_HEADER));
    socket.on("data", (chunk: Buffer) => {
      if (broken) return;
      try {
        reader.push(chunk);
        for (const frame of reader) {
          if (frame.type !== 1) continue;
          const m = decodeMethod(frame.payload);
          if (m.name === "connection.start") {
            const response = Buffer.from(`\u0000${options.user}\u0000${options.password}`);
            socket.write(encodeMethod(0, { name: "connection.start-ok", args: { clientProperties: {}, mechanism: "PLAIN", response, locale: "en_US" } }));
          } else if (m.name === "connection.tune") {
            socket.write(encodeMethod(0, { name: "connection.tune-ok", args: { channelMax: 64, frameMax: options.frameMax ?? 131_072, heartbeat: options.heartbeat ?? 0 } }));
            socket.write(encodeMethod(0, { name: "connection.open", args: { virtualHost: options.vhost ?? "/", capabilities: "", insist: false } }));
          } else if (m.name === "connection.open-ok") {
            opened = true;
            settle("opened");
          } else if (m.name === "connection.close") {
            settle(`${m.args.replyCode} ${m.args.replyText}`);
            if (opened) closedResolve({ code: m.args.replyCode, text: m.args.replyText, at: Date.now() });
          }
        }
      } catch {
        // Whatever the server sent after the test's bytes need not decode as frames of this reader.
        broken = true;
      }
    });
    socket.once("close", () => settle("closed"));
    setTimeout(() => reject(new Error("no answer to the AMQP handshake in 10 s")), 10_000).unref();
  });
}
