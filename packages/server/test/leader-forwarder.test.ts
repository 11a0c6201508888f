// A follower relays a stream to the leader. When the follower itself ends the client's stream
// with a status (its access gate refused a request), that status is what the client gets: the
// relay must not replace it with the "Cancelled on client" of the leader-side call it cancels.
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePorts } from "../../../test/integration/cluster-harness.ts";
import { statusDetailsOf } from "@raftmq/proto";
import { LEADER_METADATA_KEY, relayedFailure, toGrpcFailure } from "../src/grpc-status.ts";
import { LeaderForwarder } from "../src/leader-forwarder.ts";
import { NodeUnavailableError } from "../src/node-errors.ts";

const method: grpc.MethodDefinition<Buffer, Buffer> = {
  path: "/test.Relay/Chat",
  requestStream: true,
  responseStream: true,
  requestSerialize: (b) => b,
  requestDeserialize: (b) => b,
  responseSerialize: (b) => b,
  responseDeserialize: (b) => b,
};
const service: grpc.ServiceDefinition = { Chat: method };

function listen(server: grpc.Server): Promise<number> {
  return new Promise((resolve, reject) => server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))));
}

const leader = new grpc.Server();
const follower = new grpc.Server();
const forwarder = new LeaderForwarder({ selfId: 2 });
let client: grpc.Client;

beforeAll(async () => {
  // The leader announces the stream at once and keeps sending, as a Consume session does.
  leader.addService(service, {
    Chat: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      call.write(Buffer.alloc(64 * 1024, 1));
      const timer = setInterval(() => call.write(Buffer.alloc(64 * 1024, 2)), 1);
      for (const event of ["cancelled", "error", "finish"]) call.on(event, () => clearInterval(timer));
    },
  });
  const leaderPort = await listen(leader);
  // The follower relays, and refuses the first request it reads, as its access gate does.
  follower.addService(service, {
    Chat: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      forwarder.duplex(`127.0.0.1:${leaderPort}`, method, call);
      call.once("data", () => call.emit("error", { code: grpc.status.PERMISSION_DENIED, details: "refused by the follower" }));
    },
  });
  client = new grpc.Client(`127.0.0.1:${await listen(follower)}`, grpc.credentials.createInsecure());
});

afterAll(() => {
  client.close();
  forwarder.close();
  leader.forceShutdown();
  follower.forceShutdown();
});

function once(): Promise<grpc.StatusObject> {
  return new Promise((resolve) => {
    const call = client.makeBidiStreamRequest(method.path, method.requestSerialize, method.responseDeserialize, new grpc.Metadata(), { deadline: Date.now() + 10_000 });
    call.on("data", () => {});
    call.on("error", () => {});
    call.on("status", resolve);
    // Some relayed messages first, so the follower has writes in flight when it refuses.
    setTimeout(() => call.write(Buffer.from("request")), 5);
  });
}

describe("LeaderForwarder.duplex", () => {
  it("keeps the follower's own status when the follower ends a relayed stream", async () => {
    const statuses = [];
    for (let i = 0; i < 30; i++) statuses.push(await once());
    expect(statuses.map((s) => `${grpc.status[s.code]}: ${s.details}`)).toEqual(Array.from({ length: 30 }, () => "PERMISSION_DENIED: refused by the follower"));
  });
});

const unaryMethod: grpc.MethodDefinition<Buffer, Buffer> = { ...method, path: "/test.Relay/Ask", requestStream: false, responseStream: false };

describe("failures on the way to the leader", () => {
  it("a refused connection reaches the client as UNAVAILABLE of unknown outcome, with the leader's address, not as the transport's words alone", async () => {
    const relay = new LeaderForwarder({ selfId: 2, leaderClientAddress: () => "127.0.0.1:7601" });
    const [closed] = await freePorts(1);
    try {
      const err = await relay.unary(`127.0.0.1:${closed}`, unaryMethod, Buffer.from("x"), new grpc.Metadata(), Date.now() + 5_000).then(
        () => null,
        (e: unknown) => e as grpc.ServiceError,
      );
      expect(err?.code).toBe(grpc.status.UNAVAILABLE);
      expect(err?.details).toMatch(/^this node could not relay the call to the leader \(client address 127\.0\.0\.1:7601\): .*; the outcome is unknown; retry$/);
      expect(statusDetailsOf(err?.metadata)).toEqual({ reason: "LEADER_UNREACHABLE", outcome: "unknown", leader: "127.0.0.1:7601", retryDelayMs: 100 });
      expect(err?.metadata.get(LEADER_METADATA_KEY)).toEqual(["127.0.0.1:7601"]);
    } finally {
      relay.close();
    }
  });

  it("a stream the leader's side resets reaches the client as UNAVAILABLE, never INTERNAL", async () => {
    const resetting = new grpc.Server();
    resetting.addService(service, {
      // The leader's HTTP/2 stream ends without a gRPC status: grpc-js calls that INTERNAL.
      Chat: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
        call.write(Buffer.from("hello"));
        setTimeout(() => (call as unknown as { call: { stream: { close(code: number): void } } }).call.stream.close(0), 20);
      },
    });
    const port = await listen(resetting);
    const relay = new LeaderForwarder({ selfId: 2 });
    const relaying = new grpc.Server();
    relaying.addService(service, { Chat: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => relay.duplex(`127.0.0.1:${port}`, method, call) });
    const c = new grpc.Client(`127.0.0.1:${await listen(relaying)}`, grpc.credentials.createInsecure());
    try {
      const status = await new Promise<grpc.StatusObject>((resolve) => {
        const call = c.makeBidiStreamRequest(method.path, method.requestSerialize, method.responseDeserialize, new grpc.Metadata(), { deadline: Date.now() + 10_000 });
        call.on("data", () => {});
        call.on("error", () => {});
        call.on("status", resolve);
      });
      expect(status.code).toBe(grpc.status.UNAVAILABLE);
      expect(statusDetailsOf(status.metadata)).toMatchObject({ reason: "LEADER_UNREACHABLE", outcome: "unknown" });
    } finally {
      c.close();
      relay.close();
      relaying.forceShutdown();
      resetting.forceShutdown();
    }
  });

  it("the leader's own failure passes as it is", () => {
    const own = toGrpcFailure(new NodeUnavailableError("not the leader", "127.0.0.1:7602"));
    expect(relayedFailure(own, "127.0.0.1:7601")).toEqual(own);
    const tooLarge = relayedFailure({ code: grpc.status.RESOURCE_EXHAUSTED, details: "Received message larger than max", metadata: new grpc.Metadata() }, "");
    expect([tooLarge.code, statusDetailsOf(tooLarge.metadata)]).toEqual([grpc.status.RESOURCE_EXHAUSTED, { reason: "RESOURCE_EXHAUSTED", outcome: "refused" }]);
  });
});
