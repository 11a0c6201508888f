// A server given a metadata limit refuses calls whose metadata exceeds it with RESOURCE_EXHAUSTED
// (HTTP/2 ENHANCE_YOUR_CALM) and goes on serving; a grpc-js that keeps its http2 options elsewhere
// makes the limit fail loudly instead of doing nothing.
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { limitMetadataBytes } from "../src/http2-limits.ts";

const KiB = 1024;
const LIMIT = 16 * KiB;
const METHOD = "/test.Echo/Call";
const bytes = (b: Buffer) => b;

async function serve(limit: number | null, options: grpc.ServerOptions = {}): Promise<{ server: grpc.Server; client: grpc.Client }> {
  const server = new grpc.Server(options);
  if (limit !== null) limitMetadataBytes(server, limit);
  server.register(METHOD, (_call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => callback(null, Buffer.from("ok")), bytes, bytes, "unary");
  const port = await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  return { server, client: new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) };
}

/** Calls with `entries` metadata values of `size` bytes; resolves to "OK" or the status and details. */
function call(client: grpc.Client, size: number, entries = 1): Promise<string> {
  const metadata = new grpc.Metadata();
  for (let i = 0; i < entries; i++) metadata.set(`x-pad-${i}`, "v".repeat(size));
  return new Promise((resolve) =>
    client.makeUnaryRequest(METHOD, bytes, bytes, Buffer.alloc(0), metadata, { deadline: Date.now() + 5000 }, (err) =>
      resolve(err === null ? "OK" : `${grpc.status[err.code]}: ${err.details}`),
    ),
  );
}

describe("a server with a metadata limit", () => {
  let limited: { server: grpc.Server; client: grpc.Client };
  let unlimited: { server: grpc.Server; client: grpc.Client };
  beforeAll(async () => {
    limited = await serve(LIMIT);
    unlimited = await serve(null);
  });
  afterAll(() => {
    for (const s of [limited, unlimited]) {
      s.client.close();
      s.server.forceShutdown();
    }
  });

  it("refuses 1 MiB of metadata with RESOURCE_EXHAUSTED, where a server without it fails the call with INTERNAL", async () => {
    expect(await call(limited.client, 8 * KiB, 128)).toBe("RESOURCE_EXHAUSTED: Bandwidth exhausted or memory limit exceeded");
    expect(await call(unlimited.client, 8 * KiB, 128)).toMatch(/^INTERNAL: Received RST_STREAM with code 2/);
  });

  it("refuses metadata of the limit itself (the call's own headers come on top), and serves metadata 1 KiB under it", async () => {
    expect(await call(limited.client, LIMIT)).toBe("RESOURCE_EXHAUSTED: Bandwidth exhausted or memory limit exceeded");
    expect(await call(unlimited.client, LIMIT)).toBe("OK");
    expect(await call(limited.client, LIMIT - KiB)).toBe("OK");
    expect(await call(limited.client, 1 * KiB, 14)).toBe("OK");
    expect(await call(limited.client, 1 * KiB, 16)).toMatch(/^RESOURCE_EXHAUSTED/);
  });

  it("serves the next call on the same connection after refusing metadata somewhat over the limit", async () => {
    expect(await call(limited.client, 8 * KiB, 4)).toMatch(/^RESOURCE_EXHAUSTED/);
    expect(await call(limited.client, 10)).toBe("OK");
  });

  it("after 1 MiB, whose header block has more CONTINUATION frames than Node allows, closes that connection too, and serves the client's next one", async () => {
    expect(await call(limited.client, 8 * KiB, 128)).toMatch(/^RESOURCE_EXHAUSTED/);
    let answer = await call(limited.client, 10);
    // A call made as the connection closes fails with it; the client then connects again.
    for (let i = 0; answer !== "OK" && i < 20; i++) {
      expect(answer).toMatch(/^INTERNAL: .*Session closed with error code 2/);
      await new Promise((r) => setTimeout(r, 50));
      answer = await call(limited.client, 10);
    }
    expect(answer).toBe("OK");
  });

  it("keeps the other HTTP/2 settings grpc-js made", async () => {
    const s = new grpc.Server({ "grpc.max_concurrent_streams": 7 });
    limitMetadataBytes(s, LIMIT);
    expect((s as unknown as { commonServerOptions: { settings: object } }).commonServerOptions.settings).toEqual({ maxConcurrentStreams: 7, maxHeaderListSize: LIMIT });
  });
});

describe("a grpc-js that keeps its http2 options elsewhere", () => {
  it("fails at once, naming what to adapt", () => {
    expect(() => limitMetadataBytes({} as grpc.Server, LIMIT)).toThrow(/cannot bound request metadata: this grpc-js keeps no http2 server options in Server\.commonServerOptions .*http2-limits\.ts/);
    expect(() => limitMetadataBytes({ commonServerOptions: {} } as unknown as grpc.Server, LIMIT)).toThrow(/cannot bound request metadata/);
    expect(() => limitMetadataBytes({ commonServerOptions: { maxSendHeaderBlockLength: 1, settings: 5 } } as unknown as grpc.Server, LIMIT)).toThrow(/cannot bound request metadata/);
  });

  it("refuses a limit that is no HTTP/2 setting value", () => {
    expect(() => limitMetadataBytes(new grpc.Server(), 0)).toThrow(RangeError);
    expect(() => limitMetadataBytes(new grpc.Server(), 2 ** 32)).toThrow(RangeError);
  });
});
