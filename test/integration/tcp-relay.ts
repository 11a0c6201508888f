// A TCP relay for tests, on loopback: its connections reach `target`, optionally from a source
// address of their own (any address of 127.0.0.0/8 works on Linux), and what the target sends
// can be held back, in order, to stand for answers that do not arrive. TLS passes through
// untouched: the client still verifies the node.
import { createServer, type Server, type Socket, connect } from "node:net";

export interface TcpRelayOptions {
  target: { host: string; port: number };
  /** Where the relay listens; default 127.0.0.1 on a free port. */
  listen?: { host: string; port: number };
  /** The address the relay's connections to the target come from. */
  sourceAddress?: string;
}

export class TcpRelay {
  private readonly sockets = new Set<Socket>();
  private readonly held: { socket: Socket; chunk: Buffer }[] = [];
  /** While true, the target's bytes wait, in order, until release(). */
  holding = false;

  private constructor(
    private readonly server: Server,
    /** host:port to connect to. */
    readonly address: string,
    readonly sourceAddress: string,
  ) {}

  static start(options: TcpRelayOptions): Promise<TcpRelay> {
    const listen = options.listen ?? { host: "127.0.0.1", port: 0 };
    return new Promise((resolve, reject) => {
      let relay: TcpRelay | undefined;
      const server = createServer((inbound) => {
        const outbound = connect({ ...options.target, ...(options.sourceAddress === undefined ? {} : { localAddress: options.sourceAddress }) });
        for (const s of [inbound, outbound]) {
          relay?.sockets.add(s);
          s.on("close", () => {
            relay?.sockets.delete(s);
            inbound.destroy();
            outbound.destroy();
          });
          s.on("error", () => {
            inbound.destroy();
            outbound.destroy();
          });
        }
        inbound.pipe(outbound);
        outbound.on("data", (chunk: Buffer) => {
          if (relay?.holding === true) relay.held.push({ socket: inbound, chunk });
          else inbound.write(chunk);
        });
      });
      server.once("error", reject);
      server.listen(listen.port, listen.host, () => {
        const a = server.address();
        if (a === null || typeof a === "string") {
          reject(new Error("the relay has no port"));
          return;
        }
        relay = new TcpRelay(server, `${listen.host}:${a.port}`, options.sourceAddress ?? "");
        resolve(relay);
      });
    });
  }

  /** Stops holding and passes on what was held, in order. */
  release(): void {
    this.holding = false;
    for (const { socket, chunk } of this.held.splice(0)) if (!socket.destroyed) socket.write(chunk);
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
