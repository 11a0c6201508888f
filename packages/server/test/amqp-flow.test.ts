// An AMQP connection stops reading while too much it published is unconfirmed, and reads again
// once confirms arrive: a fast publisher backs up into TCP instead of into the node's memory.
import { createServer, type Server, type Socket, connect } from "node:net";
import type * as grpc from "@grpc/grpc-js";
import { encodeBodyFrames, encodeContentHeader, encodeMethod, FrameReader, decodeMethod, PROTOCOL_HEADER } from "@raftmq/amqp";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { AmqpConnection } from "../src/amqp/amqp-connection.ts";

interface PublishCall {
  on(event: string, listener: (...args: unknown[]) => void): void;
  write(response: unknown): boolean;
}

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/** A node's side of one AMQP connection over real loopback TCP, with a PublishStream that confirms only when told. */
async function setup(maxUnconfirmed: number) {
  const requests: { messages: unknown[]; clientSequence: number }[] = [];
  let total = 0;
  let call: PublishCall | null = null;
  const handlers: grpc.UntypedServiceImplementation = {
    PublishStream: ((c: PublishCall) => {
      call = c;
      c.on("data", (r) => {
        const request = r as { messages: unknown[]; clientSequence: number };
        requests.push(request);
        total += request.messages.length;
      });
    }) as unknown as grpc.handleBidiStreamingCall<unknown, unknown>,
  };
  let serverSocket: Socket | null = null;
  const server: Server = createServer((socket) => {
    serverSocket = socket;
    new AmqpConnection(socket, {
      handlers,
      authenticate: async (_m, _r, remote) => ({ user: "", tags: ["administrator"], mechanism: "none", remote }),
      openVhost: () => {},
      mechanisms: ["PLAIN"],
      serverProperties: { product: "test" },
      frameMax: 131_072,
      channelMax: 16,
      heartbeatSeconds: 0,
      maxUnconfirmed,
      maxBodyBytes: () => 1 << 20,
      log: pino({ level: "silent" }),
      onClosed: () => {},
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  const client = connect(port, "127.0.0.1");
  cleanups.push(() => {
    client.destroy();
    server.close();
  });
  const reader = new FrameReader({ maxFrameSize: 1 << 20 });
  const opened = new Promise<void>((resolve) => {
    client.on("data", (chunk: Buffer) => {
      reader.push(chunk);
      for (const frame of reader) {
        if (frame.type !== 1) continue;
        const m = decodeMethod(frame.payload);
        if (m.name === "connection.start") {
          client.write(encodeMethod(0, { name: "connection.start-ok", args: { clientProperties: {}, mechanism: "PLAIN", response: Buffer.from("\u0000u\u0000p"), locale: "en_US" } }));
        } else if (m.name === "connection.tune") {
          client.write(encodeMethod(0, { name: "connection.tune-ok", args: { channelMax: 16, frameMax: 131_072, heartbeat: 0 } }));
          client.write(encodeMethod(0, { name: "connection.open", args: { virtualHost: "/", capabilities: "", insist: false } }));
          client.write(encodeMethod(1, { name: "channel.open", args: { outOfBand: "" } }));
        } else if (m.name === "channel.open-ok") resolve();
      }
    });
  });
  client.write(PROTOCOL_HEADER);
  await opened;
  const publish = (count: number) => {
    const frames: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      frames.push(encodeMethod(1, { name: "basic.publish", args: { ticket: 0, exchange: "", routingKey: "q", mandatory: false, immediate: false } }));
      frames.push(encodeContentHeader(1, 60, 1024, {}));
      frames.push(...encodeBodyFrames(1, Buffer.alloc(1024, i & 0xff), 131_072));
    }
    client.write(Buffer.concat(frames));
  };
  /** Messages the connection read and sent on. */
  const published = () => total;
  const confirmAll = () => {
    for (const r of requests.splice(0)) call?.write({ confirms: r.messages.map(() => ({ status: 1 })), clientSequence: r.clientSequence });
  };
  return { publish, published, confirmAll, paused: () => serverSocket?.isPaused() ?? false };
}

async function until(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("AMQP publish flow control", () => {
  it("stops reading above the bound of unconfirmed publishes and reads again as confirms come", async () => {
    const c = await setup(100);
    // 2 MiB: many reads of the socket.
    c.publish(2000);
    await until("the connection to stop reading", c.paused);
    // It reads on to the end of the chunk it has, a little past the bound, never all of it.
    await new Promise((r) => setTimeout(r, 100));
    const first = c.published();
    expect(first).toBeGreaterThan(100);
    expect(first).toBeLessThan(1000);
    // Confirming what was sent lets it read the rest.
    await until("every publish read", () => {
      c.confirmAll();
      return c.published() === 2000;
    });
    c.confirmAll();
    await until("reading again", () => !c.paused());
  });

  it("keeps reading while confirms keep up", async () => {
    const c = await setup(10_000);
    c.publish(500);
    await until("all 500 read", () => c.published() === 500);
    expect(c.paused()).toBe(false);
  });
});
