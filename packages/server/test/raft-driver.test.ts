import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CommandResult } from "@raftmq/broker";
import type { raftmq } from "@raftmq/proto";
import { BodyStore, RaftStorage } from "@raftmq/storage";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { resolveNodeConfig } from "../src/node-config.ts";
import { ManualClock } from "./manual-clock.ts";
import { NodeState } from "../src/node-state.ts";
import { PeerTransport } from "../src/peer-transport.ts";
import { RaftDriver } from "../src/raft-driver.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Lets pending I/O and deferred work run. */
const turn = () => new Promise((r) => setImmediate(r));

async function startDriver(dir: string, overrides: string[] = [], clock?: ManualClock) {
  const config = resolveNodeConfig(["--insecure", "--tick-ms", "10", "--idle-tick-ms", "50", "--data-dir", dir, ...overrides], {});
  const storage = await RaftStorage.open({ dir });
  const bodies = await BodyStore.open({ dir: join(dir, "bodies") }, (e) => {
    throw e;
  });
  const leaders: number[] = [];
  const transport = new PeerTransport({ selfId: config.nodeId, onMessages: (messages) => driver.receive(messages) });
  const driver: RaftDriver = new RaftDriver({
    config,
    storage,
    bodies,
    transport,
    ...(clock && { clock }),
    logger: pino({ level: "silent" }),
    hooks: { leaderChanged: (id) => leaders.push(id), effects: () => undefined, removed: () => undefined, fatal: (e) => { throw e; } },
  });
  driver.start();
  const until = Date.now() + 5000;
  while (!driver.isLeader) {
    if (Date.now() > until) throw new Error("no leader");
    if (clock === undefined) await new Promise((r) => setTimeout(r, 5));
    else {
      clock.advance(config.tickMs);
      await turn();
    }
  }
  return { driver, storage, leaders, stop: async () => {
    await driver.stop();
    await storage.close();
    await driver.bodyKeeper.idle();
    await bodies.close();
  } };
}

function submit(driver: RaftDriver, commands: raftmq.v1.Command.$Properties[]): Promise<CommandResult[]> {
  return new Promise((resolve, reject) => {
    const out: CommandResult[] = [];
    let left = commands.length;
    driver.submit(commands, (i, o) => {
      if (!o.ok) return reject(o.error);
      out[i] = o.result;
      if (--left === 0) resolve(out);
    });
  });
}

describe("raft driver (single node)", () => {
  it("answers concurrent commands in order from few batched entries (group commit)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "raftmq-driver-"));
    dirs.push(dir);
    const { driver, stop } = await startDriver(dir);
    await submit(driver, [{ declareQueue: { name: "q" } }]);
    const proposalsBefore = driver.pipeline.proposals;
    const calls = Array.from({ length: 200 }, (_, i) => submit(driver, [{ publish: { routingKey: "q", body: new Uint8Array([i]) } }]));
    const results = (await Promise.all(calls)).flat();
    expect(results.every((r) => r.ok && r.kind === "publish")).toBe(true);
    expect(driver.pipeline.proposals - proposalsBefore).toBeLessThan(20);
    await driver.linearizableRead();
    expect(driver.broker.queueInfo("q")?.messagesReady).toBe(200);
    await stop();
  });

  it("writes a large snapshot in pieces while commands go on being applied and answered", async () => {
    const dir = mkdtempSync(join(tmpdir(), "raftmq-driver-"));
    dirs.push(dir);
    const { driver, storage, stop } = await startDriver(dir);
    await submit(driver, [{ declareQueue: { name: "big" } }]);
    // Enough messages that encoding takes many turns, even next to a slow disk's sync (bodies
    // are not in the snapshot: its size is the messages' count).
    const body = new Uint8Array(16).fill(7);
    for (let i = 0; i < 100; i++) await submit(driver, Array.from({ length: 2000 }, () => ({ publish: { routingKey: "big", body } })));
    const before = driver.appliedIndex;
    const snapshot = driver.triggerSnapshot();
    // Commands submitted while the pieces are encoded are answered before the encoding ends.
    let submittedDuringEncoding = 0;
    let answeredDuringEncoding = 0;
    const late: Promise<CommandResult[]>[] = [];
    let finished = false;
    void snapshot.finally(() => {
      finished = true;
    });
    await new Promise<void>((resolve) => {
      const turn = () => {
        if (finished || (!driver.encodingSnapshotPieces && submittedDuringEncoding > 0)) return resolve();
        if (driver.encodingSnapshotPieces && late.length < 20) {
          submittedDuringEncoding++;
          late.push(
            submit(driver, [{ publish: { routingKey: "big", body: new Uint8Array([1]) } }]).then((r) => {
              if (driver.encodingSnapshotPieces) answeredDuringEncoding++;
              return r;
            }),
          );
        }
        setImmediate(turn);
      };
      setImmediate(turn);
    });
    const index = await snapshot;
    const results = (await Promise.all(late)).flat();
    expect(submittedDuringEncoding).toBeGreaterThan(0);
    expect(answeredDuringEncoding).toBeGreaterThan(0);
    expect(results.every((r) => r.ok)).toBe(true);
    // The snapshot holds the state at the index it was taken at, not what was applied after.
    expect(index).toBe(before);
    expect(driver.appliedIndex).toBeGreaterThan(index);
    expect(driver.broker.queueInfo("big")?.messagesReady).toBe(200_000 + late.length);
    const stored = storage.snapshot();
    expect(stored.meta.index).toBe(index);
    expect(NodeState.restore(stored.data, []).broker.queueInfo("big")?.messagesReady).toBe(200_000);
    await stop();
  });

  it("restores its state from snapshot and log after a restart", async () => {
    const dir = mkdtempSync(join(tmpdir(), "raftmq-driver-"));
    dirs.push(dir);
    const first = await startDriver(dir);
    await submit(first.driver, [{ declareQueue: { name: "kept", durable: true } }, { publish: { routingKey: "kept", body: new Uint8Array([1]) } }]);
    const snapshotIndex = await first.driver.triggerSnapshot();
    expect(snapshotIndex).toBe(first.driver.appliedIndex);
    // Entries after the snapshot are replayed from the log.
    await submit(first.driver, [{ publish: { routingKey: "kept", body: new Uint8Array([2]) } }]);
    await first.stop();

    const second = await startDriver(dir);
    expect(second.driver.snapshotIndex).toBe(snapshotIndex);
    await second.driver.linearizableRead();
    expect(second.driver.broker.queueInfo("kept")?.messagesReady).toBe(2);
    await second.stop();
  });

  it("proposes a Tick when idle only once an expiry is due, and nothing while none is", async () => {
    const dir = mkdtempSync(join(tmpdir(), "raftmq-driver-"));
    dirs.push(dir);
    const clock = new ManualClock();
    const { driver, stop } = await startDriver(dir, [], clock);
    await submit(driver, [{ declareQueue: { name: "t" } }]);
    const idle = driver.appliedIndex;
    // Four idle intervals (50 ms each) with nothing that expires: the log stays as it is.
    for (let i = 0; i < 4; i++) {
      clock.advance(50);
      for (let j = 0; j < 10; j++) await turn();
    }
    expect(driver.appliedIndex).toBe(idle);

    await submit(driver, [{ publish: { routingKey: "t", body: new Uint8Array([1]), properties: { expiration: "100" } } }]);
    const published = driver.appliedIndex;
    const at = driver.broker.lastTimestamp();
    expect(driver.broker.nextDeadline()).toBe(at + 101);
    // Idle for longer than the interval, but the message expires only at +101 ms.
    clock.advance(60);
    for (let i = 0; i < 20; i++) await turn();
    expect(driver.appliedIndex).toBe(published);
    clock.advance(50);
    const until = Date.now() + 5000;
    while (driver.appliedIndex === published && Date.now() < until) await turn();
    expect(driver.broker.lastTimestamp()).toBe(at + 110);
    expect(driver.broker.queueInfo("t")?.messagesReady).toBe(0);
    expect(driver.broker.nextDeadline()).toBe(Number.POSITIVE_INFINITY);
    await stop();
  });

  it("refuses commands once stopped", async () => {
    const dir = mkdtempSync(join(tmpdir(), "raftmq-driver-"));
    dirs.push(dir);
    const { driver, stop } = await startDriver(dir);
    await stop();
    expect(() => driver.submit([{ tick: {} }], null)).toThrow(/stopping/);
    await expect(driver.linearizableRead()).rejects.toThrow(/stopping/);
  });
});
