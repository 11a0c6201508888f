import type { CommandResult } from "@raftmq/broker";
import { raftmq } from "@raftmq/proto";
import { NotLeaderError, type ProposalPosition, ProposalDroppedError } from "@raftmq/raft";
import { describe, expect, it } from "vitest";
import { NodeUnavailableError, OutcomeUnknownError, OverloadedError } from "../src/node-errors.ts";
import { type ProposalOutcome, ProposalPipeline } from "../src/proposal-pipeline.ts";

class FakeRaft {
  index = 10;
  term = 3;
  proposed: raftmq.v1.CommandBatch[] = [];
  proposedData: Uint8Array[] = [];
  failWith: Error | null = null;
  propose(data: Uint8Array): ProposalPosition {
    if (this.failWith !== null) throw this.failWith;
    this.proposed.push(raftmq.v1.CommandBatch.decode(data));
    this.proposedData.push(data);
    return { index: ++this.index, term: this.term };
  }
}

const tick = (): raftmq.v1.Command.$Properties => ({ tick: {} });
const publish = (bytes: number): raftmq.v1.Command.$Properties => ({ publish: { routingKey: "q", body: new Uint8Array(bytes) } });
const okTick: CommandResult = { ok: true, kind: "tick" };

function setup(limits = { maxBatchBytes: 64 * 1024, maxBatchCommands: 4, maxPendingCommands: 10 }) {
  const raft = new FakeRaft();
  const pipeline = new ProposalPipeline({ propose: (d) => raft.propose(d), now: () => 1234 }, limits);
  const outcomes: [number, ProposalOutcome][] = [];
  return { raft, pipeline, outcomes, record: (i: number, o: ProposalOutcome) => outcomes.push([i, o]) };
}

describe("proposal pipeline", () => {
  it("batches queued commands into one stamped entry and answers each with its own result", () => {
    const { raft, pipeline, outcomes, record } = setup();
    pipeline.submit([tick(), tick()], record);
    pipeline.submit([tick()], record);
    expect(raft.proposed).toHaveLength(0);
    pipeline.flush();
    expect(raft.proposed).toHaveLength(1);
    expect(raft.proposed[0]?.commands).toHaveLength(3);
    expect(Number(raft.proposed[0]?.timestampMs)).toBe(1234);
    pipeline.applied(11, 3, [okTick, { ok: true, kind: "cancel" }, okTick]);
    expect(outcomes.map(([i, o]) => [i, o.ok && o.result.ok ? o.result.kind : "failed"])).toEqual([
      [0, "tick"],
      [1, "cancel"],
      [0, "tick"],
    ]);
    expect(pipeline.pending).toBe(0);
  });

  it("proposes entry data in memory of its own, not in a slice of a shared buffer", () => {
    // Small encodings come out of Node's shared buffer pool; the log cache and queued messages
    // keep entry data for long, which would keep the whole pool buffer alive.
    const { raft, pipeline, record } = setup();
    pipeline.submit([publish(1000)], record);
    pipeline.submit([tick()], record);
    pipeline.flush();
    pipeline.submit([publish(10)], record);
    pipeline.flush();
    expect(raft.proposedData).toHaveLength(2);
    for (const data of raft.proposedData) {
      expect(data.byteOffset).toBe(0);
      expect(data.buffer.byteLength).toBe(data.byteLength);
    }
    expect(raft.proposed[0]?.commands[0]?.publish?.body).toHaveLength(1000);
  });

  it("proposes a full batch at once, without waiting for a flush", () => {
    const { raft, pipeline, record } = setup();
    pipeline.submit([tick(), tick(), tick(), tick(), tick()], record);
    expect(raft.proposed.map((b) => b.commands.length)).toEqual([4]);
    pipeline.flush();
    expect(raft.proposed.map((b) => b.commands.length)).toEqual([4, 1]);
  });

  it("splits batches by bytes", () => {
    const { raft, pipeline, record } = setup({ maxBatchBytes: 2048, maxBatchCommands: 100, maxPendingCommands: 100 });
    pipeline.submit([publish(900), publish(900), publish(900)], record);
    pipeline.flush();
    expect(raft.proposed.map((b) => b.commands.length)).toEqual([2, 1]);
  });

  it("fails the commands of an entry replaced by another term: outcome unknown", () => {
    const { pipeline, outcomes, record } = setup();
    pipeline.submit([tick()], record);
    pipeline.flush();
    pipeline.applied(11, 4, []);
    expect(outcomes[0]?.[1]).toMatchObject({ ok: false, error: expect.any(OutcomeUnknownError) });
    const outcome = outcomes[0]?.[1];
    expect(outcome !== undefined && !outcome.ok ? outcome.error.message : "").toMatch(/retry with the same producer id and sequence/);
  });

  it("answers RESOURCE_EXHAUSTED past the pending bound and keeps what it has", () => {
    const { pipeline, record } = setup({ maxBatchBytes: 65536, maxBatchCommands: 100, maxPendingCommands: 3 });
    pipeline.submit([tick(), tick()], record);
    expect(() => pipeline.submit([tick(), tick()], record)).toThrow(OverloadedError);
    expect(pipeline.pending).toBe(2);
  });

  it("keeps commands queued while the leader's uncommitted log is full, and fails them when it is not the leader", () => {
    const { raft, pipeline, outcomes, record } = setup();
    pipeline.submit([tick()], record);
    raft.failWith = new ProposalDroppedError("uncommitted-limit");
    pipeline.flush();
    expect(pipeline.hasQueued).toBe(true);
    raft.failWith = new NotLeaderError(2);
    pipeline.flush();
    expect(pipeline.hasQueued).toBe(false);
    expect(outcomes[0]?.[1]).toMatchObject({ ok: false, error: expect.any(NodeUnavailableError) });
  });

  it("fails queued and proposed commands when leadership is lost", () => {
    const { pipeline, outcomes, record } = setup();
    pipeline.submit([tick()], record);
    pipeline.flush();
    pipeline.submit([tick()], record);
    pipeline.failAll(new NodeUnavailableError("lost"), new OutcomeUnknownError("lost"));
    expect(outcomes.map(([, o]) => (o.ok ? "ok" : o.error.name))).toEqual(["NodeUnavailableError", "OutcomeUnknownError"]);
    expect(pipeline.pending).toBe(0);
  });

  it("fails what a snapshot skipped over", () => {
    const { pipeline, outcomes, record } = setup();
    pipeline.submit([tick()], record);
    pipeline.flush();
    pipeline.skippedThrough(20);
    expect(outcomes[0]?.[1]).toMatchObject({ ok: false, error: expect.any(OutcomeUnknownError) });
  });
});
