// The publisher's window is bounded by the cluster's dedup window, as Cluster.Status reports it,
// not by a constant: a window the cluster cannot deduplicate is refused, the default fits itself,
// and a lowered setting found by a later discovery narrows a running publisher. Against stand-in
// nodes that answer only Cluster.Status.
import * as grpc from "@grpc/grpc-js";
import type { raftmq } from "@raftmq/proto";
import { clusterServiceDefinition } from "@raftmq/proto/grpc";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resolveClientOptions } from "../src/client-options.ts";
import { ClusterConnection, UNREPORTED_DEDUP_WINDOW } from "../src/cluster-connection.ts";
import { connect, DEFAULT_PUBLISHER_OPTIONS, Publisher } from "../src/index.ts";

interface StandIn {
  address: string;
  status: raftmq.v1.StatusResponse.$Properties;
  server: grpc.Server;
}

const nodes: StandIn[] = [];

async function standIn(status: raftmq.v1.StatusResponse.$Properties): Promise<StandIn> {
  const server = new grpc.Server();
  const node: StandIn = { address: "", status, server };
  server.addService(clusterServiceDefinition, {
    Status: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => callback(null, node.status),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err === null ? resolve(p) : reject(err))),
  );
  node.address = `127.0.0.1:${port}`;
  nodes.push(node);
  return node;
}

function leader(dedupWindow?: number): raftmq.v1.StatusResponse.$Properties {
  return { nodeId: 1, role: "leader", leaderId: 1, ready: true, ...(dedupWindow !== undefined && { settings: { dedupWindow } }) };
}

async function connectionTo(...addresses: string[]): Promise<ClusterConnection> {
  const connection = new ClusterConnection(addresses, resolveClientOptions({ retryTimeoutMs: 1000 }));
  expect(await connection.refresh()).toEqual([]);
  return connection;
}

let small: StandIn;
let old: StandIn;

beforeAll(async () => {
  small = await standIn(leader(64));
  old = await standIn(leader());
});

afterAll(() => {
  for (const n of nodes) n.server.forceShutdown();
});

describe("the publisher window and the cluster's dedup window", () => {
  it("refuses a window larger than the cluster's dedup window, naming both", async () => {
    const client = await connect([small.address]);
    try {
      expect(() => client.createPublisher({ window: 65 })).toThrow(/publisher window 65 exceeds the cluster's dedup window of 64/);
      expect(client.createPublisher({ window: 64 }).window).toBe(64);
    } finally {
      client.close();
    }
  });

  it("fits the default window to a cluster that remembers less", async () => {
    const connection = await connectionTo(small.address);
    expect(DEFAULT_PUBLISHER_OPTIONS.window).toBeGreaterThan(64);
    expect(new Publisher(connection).window).toBe(64);
    connection.close();
  });

  it("takes the smallest window any node reports: a node that applied a lowered setting deduplicates only that far", async () => {
    const larger = await standIn({ ...leader(1000), role: "follower", nodeId: 2 });
    const connection = await connectionTo(larger.address, small.address);
    expect(connection.dedupWindow).toBe(64);
    connection.close();
  });

  it("assumes the window of releases before the setting when the cluster does not report one", async () => {
    const connection = await connectionTo(old.address);
    expect(connection.dedupWindow).toBe(UNREPORTED_DEDUP_WINDOW);
    expect(new Publisher(connection, { window: UNREPORTED_DEDUP_WINDOW }).window).toBe(UNREPORTED_DEDUP_WINDOW);
    expect(() => new Publisher(connection, { window: UNREPORTED_DEDUP_WINDOW + 1 })).toThrow(RangeError);
    connection.close();
  });

  it("narrows a running publisher when a later discovery finds the setting lowered", async () => {
    const node = await standIn(leader(128));
    const connection = await connectionTo(node.address);
    const publisher = new Publisher(connection, { window: 100 });
    expect(publisher.window).toBe(100);
    node.status = leader(10);
    await connection.refresh();
    expect(publisher.window).toBe(10);
    connection.close();
  });
});
