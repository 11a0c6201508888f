// A follower relays a stream to the leader. When the follower itself ends the client's stream
// with a status (its access gate refused a request), that status is what the client gets: the
// relay must not replace it with the "Cancelled on client" of the leader-side call it cancels.
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LeaderForwarder } from "../src/leader-forwarder.ts";

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
