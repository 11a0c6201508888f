import { raftmq } from "@raftmq/proto";
import { ConfChangeType } from "@raftmq/raft";
import { describe, expect, it } from "vitest";
import { NodeState } from "../src/node-state.ts";

const initial = [
  { id: 1, peerAddress: "h1:7700", clientAddress: "h1:7600" },
  { id: 2, peerAddress: "h2:7700", clientAddress: "h2:7600" },
];

function batch(commands: raftmq.v1.Command.$Properties[], timestampMs = 1000): Uint8Array {
  return raftmq.v1.CommandBatch.encode({ timestampMs, commands }).finish();
}

describe("node state", () => {
  it("applies a command batch to the broker and answers one result per command", () => {
    const s = NodeState.create(initial);
    const out = s.applyEntry(3, batch([{ declareQueue: { name: "q" } }, { publish: { routingKey: "q", body: new Uint8Array([1]) } }, { publish: { exchange: "nope" } }]));
    expect(out.results.map((r) => (r.ok ? r.kind : r.error.code))).toEqual(["declareQueue", "publish", "NOT_FOUND"]);
    expect(s.broker.queueInfo("q")?.messagesReady).toBe(1);
    expect(s.applyEntry(4, new Uint8Array(0)).results).toEqual([]);
  });

  it("a new leader's LeaderTookOffice downs every session of earlier leaders; later ones stay", () => {
    const s = NodeState.create(initial);
    s.applyEntry(1, batch([{ declareQueue: { name: "q" } }, { publish: { routingKey: "q", body: new Uint8Array([1]) } }]));
    s.applyEntry(2, batch([{ subscribe: { consumerId: "a/1", sessionId: "a", queue: "q", consumerTag: "1" } }]));
    s.applyEntry(3, batch([{ declareQueue: { name: "ex", exclusive: true, ownerSessionId: "b" } }]));
    expect(s.broker.queueInfo("q")).toMatchObject({ messagesUnacknowledged: 1, consumers: 1 });
    const out = s.applyEntry(4, batch([{ leaderTookOffice: {} }, { subscribe: { consumerId: "c/1", sessionId: "c", queue: "q", consumerTag: "1" } }]));
    expect(out.results[0]).toEqual({ ok: true, kind: "leaderTookOffice", sessionsDown: 2 });
    // a's delivery went back to the queue and on to c, marked redelivered; b's exclusive queue is gone.
    expect(s.broker.queueInfo("ex")).toBeUndefined();
    expect(s.broker.consumersOfSession("a")).toEqual([]);
    expect(s.broker.consumersOfSession("c")).toEqual(["c/1"]);
    expect(out.effects.filter((e) => e.kind === "deliver")).toMatchObject([{ kind: "deliver", redelivered: true }]);
  });

  it("keeps the address book from conf changes, and carries broker, addresses and sessions in its snapshot", () => {
    const s = NodeState.create(initial);
    const member = raftmq.v1.Member.encode({ id: 3, peerAddress: "h3:7700", clientAddress: "h3:7600" }).finish();
    expect(s.applyConfChange({ type: ConfChangeType.CONF_CHANGE_TYPE_ADD_LEARNER, nodeId: 3, context: member })).toMatchObject({ kind: "added", learner: true });
    expect(s.applyConfChange({ type: ConfChangeType.CONF_CHANGE_TYPE_ADD_VOTER, nodeId: 3, context: member })).toEqual({ kind: "promoted", id: 3 });
    expect(s.applyConfChange({ type: ConfChangeType.CONF_CHANGE_TYPE_REMOVE_NODE, nodeId: 1, context: new Uint8Array(0) })).toEqual({ kind: "removed", id: 1 });
    s.applyEntry(5, batch([{ declareQueue: { name: "q", durable: true } }, { publish: { routingKey: "q", body: new Uint8Array([9]) } }, { subscribe: { consumerId: "c/1", sessionId: "c", queue: "q", consumerTag: "1" } }]));

    const restored = NodeState.restore(s.snapshot(), [{ id: 9, peerAddress: "h9:1", clientAddress: "h9:2" }]);
    expect(restored.members().map((m) => m.id)).toEqual([2, 3, 9]);
    expect(restored.address(3)?.clientAddress).toBe("h3:7600");
    expect(restored.broker.consumersOfSession("c")).toEqual(["c/1"]);
    expect(restored.broker.queueInfo("q")).toMatchObject({ messagesUnacknowledged: 1, consumers: 1 });
    // A round trip through a snapshot changes nothing.
    expect(Buffer.from(NodeState.restore(s.snapshot(), []).snapshot()).equals(Buffer.from(s.snapshot()))).toBe(true);
  });
});
