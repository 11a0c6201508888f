// Automatic snapshots by size: with large entries the log is snapshotted and compacted after a
// number of bytes, long before the entry count, and keeps only a bounded number of bytes below
// the snapshot; nothing confirmed is lost across a restart from it. The members of a cluster,
// which apply the same entries, take their snapshots at different indexes.
import { afterAll, describe, expect, it } from "vitest";
import { eventually, publishRange, TestClient, waitForLeader } from "./broker-test-client.ts";
import { ClusterHarness } from "./cluster-harness.ts";
import { testAuth } from "./three-node-cluster.ts";

const FLAGS = ["--tick-ms", "50", "--log-level", "info", "--snapshot-entries", "1000000", "--snapshot-bytes", "1000000", "--snapshot-keep-entries", "1000", "--snapshot-keep-bytes", "150000"];
const harness = new ClusterHarness("snapshot-policy", FLAGS);
const SPREAD_ENTRIES = 1_000;
const spreadHarness = new ClusterHarness("snapshot-spread", ["--tick-ms", "50", "--log-level", "info", "--snapshot-entries", String(SPREAD_ENTRIES), "--snapshot-keep-entries", "10"]);
let client: TestClient | null = null;
let spreadClients: TestClient[] = [];

afterAll(async () => {
  client?.close();
  for (const c of spreadClients) c.close();
  await harness.cleanup();
  await spreadHarness.cleanup();
});

interface SnapshotLine {
  index: number;
  keptEntries: number;
  logStart: number;
}

function snapshotLines(h: ClusterHarness = harness, id = 1): SnapshotLine[] {
  return h
    .logs(id)
    .split("\n")
    .filter((line) => line.includes('"event":"snapshot"'))
    .map((line) => JSON.parse(line) as SnapshotLine);
}

describe("automatic snapshots", () => {
  it("are taken after --snapshot-bytes of log and keep at most --snapshot-keep-bytes below them", async () => {
    await harness.plan(1);
    await harness.start(1, { members: [1] });
    await harness.adminReady();
    client = new TestClient(harness.clientAddress(1), testAuth(harness));
    const c = client;
    await c.callRetrying("DeclareQueue", { name: "big", durable: true });
    // 5,000 messages of 1 KiB, 50 to a request: about 100 entries of about 55 KB, 5 MB of log;
    // snapshots are due after 1 MB, then after twice the size of the last one.
    const body = (seq: number) => new Uint8Array(1024).fill(seq % 251);
    const total = 5_000;
    const published = await publishRange(c, { exchange: "", routingKey: "big", producerId: "p-snap", from: 0, to: total, perRequest: 50, window: 4, body });
    expect(published.confirmed.length).toBe(total);

    const lines = await eventually("two snapshots", async () => {
      const found = snapshotLines();
      return found.length >= 2 ? found : undefined;
    });
    const status = await c.call("Status", {});
    expect(Number(status.snapshotIndex)).toBeGreaterThan(0);
    for (const line of lines) {
      // 150,000 bytes hold two of these entries, not the thousand the count allows.
      expect(line.keptEntries).toBeLessThanOrEqual(2);
      expect(line.logStart).toBeGreaterThanOrEqual(line.index - 2);
    }

    // Restarted from the snapshot and the short log after it, the queue holds every message.
    await harness.stop(1);
    await harness.start(1, { members: [1] });
    const info = await eventually("the queue after restart", async () => {
      try {
        return await c.call("QueueInfo", { name: "big" });
      } catch {
        return undefined;
      }
    });
    expect(Number(info.queue?.messagesReady)).toBe(total);
  });
});

describe("automatic snapshots in a cluster", () => {
  it("are taken by each member at an index of its own, between --snapshot-entries and a quarter more", async () => {
    await spreadHarness.plan(3);
    await spreadHarness.startAll(3);
    spreadClients = [1, 2, 3].map((id) => new TestClient(spreadHarness.clientAddress(id), testAuth(spreadHarness)));
    // Every member answers, so with TLS every member has applied the bootstrap administrator.
    const leader = await waitForLeader(spreadClients);
    const c = spreadClients[leader - 1] as TestClient;
    await c.callRetrying("DeclareQueue", { name: "spread" });
    // One message per request, one request at a time: about one entry each, applied one by one.
    const published = await publishRange(c, { exchange: "", routingKey: "spread", producerId: "p-spread", from: 0, to: 1_300, perRequest: 1, window: 1 });
    expect(published.confirmed.length).toBe(1_300);
    const firsts = await eventually("a snapshot on every member", async () => {
      const found = [1, 2, 3].map((id) => snapshotLines(spreadHarness, id)[0]?.index);
      return found.every((index) => index !== undefined) ? (found as number[]) : undefined;
    });
    for (const index of firsts) {
      expect(index).toBeGreaterThanOrEqual(SPREAD_ENTRIES);
      expect(index).toBeLessThanOrEqual(SPREAD_ENTRIES * 1.25 + 10);
    }
    // Each member drew its own stretch (in 250 steps): all three alike would be a 1 in 62,500 chance.
    expect(new Set(firsts).size).toBeGreaterThan(1);
  });
});
