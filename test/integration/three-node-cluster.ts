// The fixture most integration files share: a 3-node cluster started before the file's tests, a
// TestClient per node, everything stopped after them. Nodes added later get clients through `clients`.
import { afterAll, beforeAll } from "vitest";
import { basicAuth, type TestAuth, TestClient, waitForLeader } from "./broker-test-client.ts";
import { tlsCredentials } from "@raftmq/server";
import { ClusterHarness } from "./cluster-harness.ts";

export interface ThreeNodeCluster {
  readonly harness: ClusterHarness;
  readonly ids: number[];
  readonly clients: Map<number, TestClient>;
  client(id: number): TestClient;
}

export function useThreeNodeCluster(name: string, flags?: string[]): ThreeNodeCluster {
  const harness = new ClusterHarness(name, flags);
  const clients = new Map<number, TestClient>();
  const ids = [1, 2, 3];
  beforeAll(async () => {
    await harness.plan(3);
    await harness.startAll(3);
    for (const id of ids) clients.set(id, new TestClient(harness.clientAddress(id), testAuth(harness)));
    await waitForLeader([...clients.values()]);
  });
  afterAll(async () => {
    for (const c of clients.values()) c.close();
    await harness.cleanup();
  });
  return { harness, ids, clients, client: (id) => clients.get(id) as TestClient };
}

/** The TestClient credentials of a harness: none when insecure; TLS and the administrator otherwise. */
export function testAuth(harness: ClusterHarness): TestAuth {
  const o = harness.clientOptions();
  if (o.credentials === undefined || o.tls === undefined) return {};
  return { channel: tlsCredentials(o.tls.ca), metadata: basicAuth(o.credentials.username, o.credentials.password) };
}
