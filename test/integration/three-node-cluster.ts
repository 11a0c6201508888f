// The fixture most integration files share: a 3-node cluster started before the file's tests, a
// TestClient per node, everything stopped after them. Nodes added later get clients through `clients`.
import { afterAll, beforeAll } from "vitest";
import { TestClient, waitForLeader } from "./broker-test-client.ts";
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
    for (const id of ids) clients.set(id, new TestClient(harness.clientAddress(id)));
    await waitForLeader([...clients.values()]);
  });
  afterAll(async () => {
    for (const c of clients.values()) c.close();
    await harness.cleanup();
  });
  return { harness, ids, clients, client: (id) => clients.get(id) as TestClient };
}
