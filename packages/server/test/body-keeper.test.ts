// Which bodies leave the store, and when: a body goes once a stored snapshot no longer refers to
// it; after a restore the stored keys are walked once; a received snapshot's missing bodies are
// fetched from peers.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { liveBodiesOfKeys } from "@raftmq/broker";
import { BodyStore } from "@raftmq/storage";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { fetchBodies } from "../src/body-fetch.ts";
import { BodyKeeper } from "../src/body-keeper.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const log = pino({ level: "silent" });
const body = (key: number) => new Uint8Array([key % 256, 1, 2]);

async function openStore(segmentBytes?: number): Promise<BodyStore> {
  const dir = mkdtempSync(join(tmpdir(), "raftmq-bodies-"));
  dirs.push(dir);
  return BodyStore.open({ dir: join(dir, "bodies"), ...(segmentBytes === undefined ? {} : { segmentBytes }) }, (e) => {
    throw e;
  });
}

async function keysOf(store: BodyStore): Promise<number[]> {
  const out: number[] = [];
  for await (const batch of store.keys(Number.MAX_SAFE_INTEGER)) out.push(...batch);
  return out;
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
const live = (keys: number[], frontier: number) => liveBodiesOfKeys(keys, frontier);

describe("body keeper", () => {
  it("deletes what a stored snapshot no longer refers to, and keeps what came after it", async () => {
    const store = await openStore();
    const keeper = new BodyKeeper({ store, log });
    store.put(range(1, 1001).map((key) => ({ key, bytes: body(key) })));
    // The first snapshot refers to 1-10 and 500-999 (a long gap goes as a range).
    await keeper.snapshotStored(live([...range(1, 11), ...range(500, 1000)], 1000));
    expect(await keysOf(store)).toEqual([...range(1, 11), ...range(500, 1001)]);
    // Later: 1-10 were acked, 1000 is still queued, 1001-1004 were published and 1002 acked.
    store.put(range(1001, 1005).map((key) => ({ key, bytes: body(key) })));
    await keeper.snapshotStored(live([...range(500, 1000), 1000, 1001, 1003, 1004], 1005));
    expect(await keysOf(store)).toEqual([...range(500, 1002), 1003, 1004]);
    await store.close();
  });

  it("deletes a consumed head as a range, which frees its disk space, and a scattered few key by key", async () => {
    const store = await openStore();
    const keeper = new BodyKeeper({ store, log });
    store.put(range(1, 20_001).map((key) => ({ key, bytes: body(key) })));
    await keeper.snapshotStored(live(range(1, 20_001), 20_001));
    // The head (1-9,999) was consumed, and so were 12,000 and 15,000 further on; 10,000 is still
    // queued between them, so the range stops before it.
    const kept = range(10_000, 20_001).filter((k) => k !== 12_000 && k !== 15_000);
    await keeper.snapshotStored(live(kept, 20_001));
    expect(await keysOf(store)).toEqual(kept);
    expect(store.deleted).toBe(9_999 + 2);
    await store.whenCompacted();
    expect(store.compactions).toBe(1);
    await store.close();
  });

  it("a restart from the snapshot the store last matched does not walk it; any other restart does", async () => {
    const store = await openStore();
    const keeper = new BodyKeeper({ store, log });
    store.put(range(1, 101).map((key) => ({ key, bytes: body(key) })));
    await keeper.snapshotStored(live(range(50, 101), 101));
    expect(store.matchedAt()).toBe(101);
    await keeper.stop();
    // A body below the frontier that no snapshot refers to: only a walk would delete it.
    store.put([{ key: 7, bytes: body(7) }]);
    await store.sync();
    const restarted = new BodyKeeper({ store, log });
    await restarted.restored(live(range(50, 101), 101), "start");
    expect((await keysOf(store)).includes(7)).toBe(true);
    // Restored from another snapshot (an older one, say, after the newest was lost): walked.
    const other = new BodyKeeper({ store, log });
    await other.restored(live(range(50, 100), 100), "start");
    expect((await keysOf(store)).includes(7)).toBe(false);
    expect(store.matchedAt()).toBe(100);
    // A received snapshot is always walked, whatever the store last matched.
    store.put([{ key: 8, bytes: body(8) }]);
    await store.sync();
    await new BodyKeeper({ store, log }).restored(live(range(50, 100), 100), "received");
    expect((await keysOf(store)).includes(8)).toBe(false);
    await store.close();
  });

  it("drops whole the segments a snapshot refers to none of, and deletes key by key only in the others", async () => {
    // Three 3-byte bodies per segment: segments begin at 1, 4, 7, ..., 28.
    const store = await openStore(9);
    const keeper = new BodyKeeper({ store, log });
    store.put(range(1, 31).map((key) => ({ key, bytes: body(key) })));
    await keeper.snapshotStored(live(range(1, 31), 31));
    expect(store.segmentCount).toBe(10);
    // 5 is still queued; 20 and on too. The segments of 1, 7, 10, 13 and 16 hold nothing live.
    await keeper.snapshotStored(live([5, ...range(20, 31)], 31));
    await store.whenCompacted();
    expect(store.segmentsDropped).toBe(5);
    expect(store.segmentCount).toBe(5);
    // 15 keys went with their segments; 4 and 6 beside 5, 19 beside 20, are deleted one by one.
    expect(store.keysDropped).toBe(15);
    expect(store.deleted).toBe(18);
    expect(await keysOf(store)).toEqual([5, ...range(20, 31)]);
    await store.close();
  });

  it("after a restore, drops the segments the snapshot refers to none of before it walks the rest", async () => {
    const store = await openStore(9);
    store.put(range(1, 31).map((key) => ({ key, bytes: body(key) })));
    await store.sync();
    await new BodyKeeper({ store, log }).restored(live([5, ...range(20, 31)], 31), "received");
    await store.whenCompacted();
    expect(store.segmentsDropped).toBe(5);
    expect(store.deleted).toBe(3);
    expect(await keysOf(store)).toEqual([5, ...range(20, 31)]);
    await store.close();
  });

  it("after a restore, deletes stored bodies the snapshot does not refer to and fetches the missing ones", async () => {
    const store = await openStore();
    store.put([1, 2, 3, 7, 9, 20].map((key) => ({ key, bytes: body(key) })));
    await store.sync();
    const asked: number[][] = [];
    const keeper = new BodyKeeper({
      store,
      log,
      fetchMissing: async (keys) => {
        asked.push(keys);
        store.put(keys.map((key) => ({ key, bytes: body(key) })));
      },
    });
    // The snapshot refers to 2, 4, 7 and 8 below its frontier 10; 20 is past it (applied after).
    await keeper.restored(live([2, 4, 7, 8], 10), "received");
    expect(asked).toEqual([[4, 8]]);
    await store.sync();
    expect(await keysOf(store)).toEqual([2, 4, 7, 8, 20]);
    expect(Buffer.from(store.read(8, 3))).toEqual(Buffer.from(body(8)));
    await store.close();
  });
});

describe("fetching bodies from peers", () => {
  const noPause = { pause: async () => undefined, stopped: () => false };

  it("asks the first peer, then the next for what the first lacks; a body no peer holds counts as absent", async () => {
    const held: Record<number, Set<number>> = { 1: new Set([1, 2]), 2: new Set([3]) };
    const calls: [number, number[]][] = [];
    const stored: number[] = [];
    const out = await fetchBodies([1, 2, 3, 4], {
      ...noPause,
      peers: () => [1, 2],
      fetch: async (peer, keys) => {
        calls.push([peer, [...keys]]);
        // Peer 1 answers one key per call, as a peer whose answer is full does.
        const asked = peer === 1 ? keys.slice(0, 1) : keys;
        return asked.map((key) => ({ key, found: held[peer]?.has(key) ?? false, body: body(key) }));
      },
      store: (bodies) => stored.push(...bodies.map((b) => b.key)),
    });
    expect(stored.sort()).toEqual([1, 2, 3]);
    expect(out).toEqual({ fetched: 3, absent: 1, unreachable: 0 });
    expect(calls[0]).toEqual([1, [1, 2, 3, 4]]);
    expect(calls.at(-1)).toEqual([2, [3, 4]]);
  });

  it("keeps asking in later rounds while a peer that may hold a body does not answer", async () => {
    let round = 0;
    const out = await fetchBodies([5], {
      ...noPause,
      pause: async () => {
        round++;
      },
      peers: () => [1, 2],
      fetch: async (peer, keys) => {
        if (peer === 2 && round < 2) throw new Error("unavailable");
        return keys.map((key) => ({ key, found: peer === 2, body: body(key) }));
      },
      store: () => undefined,
      rounds: 5,
    });
    expect(out).toEqual({ fetched: 1, absent: 0, unreachable: 0 });
    expect(round).toBe(2);
  });
});
