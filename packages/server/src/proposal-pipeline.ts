// Client commands wait here until the leader proposes them as one CommandBatch entry; each
// caller is answered with its command's result once the entry is applied at the index and term
// it was proposed at. Batches form naturally while a write is being persisted (group commit).
import type { CommandResult } from "@raftmq/broker";
import { ownBytes, raftmq } from "@raftmq/proto";
import { NotLeaderError, type ProposalPosition, ProposalDroppedError } from "@raftmq/raft";
import { NodeUnavailableError, OutcomeUnknownError, OverloadedError } from "./node-errors.ts";

export type ProposalOutcome = { ok: true; result: CommandResult } | { ok: false; error: Error };
export type ProposalCallback = (outcome: ProposalOutcome) => void;

export interface PipelineLimits {
  maxBatchBytes: number;
  maxBatchCommands: number;
  /** Commands queued or proposed but not yet applied. */
  maxPendingCommands: number;
}

export interface PipelineHost {
  /** Proposes one entry; throws NotLeaderError or ProposalDroppedError. */
  propose(data: Uint8Array): ProposalPosition;
  /** Wall-clock time for the batch stamp. */
  now(): number;
}

interface Queued {
  command: raftmq.v1.Command.$Properties;
  bytes: number;
  done: ProposalCallback | null;
}

interface Proposed {
  term: number;
  callbacks: (ProposalCallback | null)[];
}

/** Fixed cost of one command in a batch, besides its variable-length fields. */
const COMMAND_OVERHEAD = 64;

/** An upper-bound-ish estimate of a command's encoded size, without encoding it. */
export function estimateCommandBytes(command: raftmq.v1.Command.$Properties): number {
  const p = command.publish;
  if (p == null) return COMMAND_OVERHEAD + 512;
  let size = COMMAND_OVERHEAD + (p.body?.byteLength ?? 0) + (p.exchange?.length ?? 0) * 3 + (p.routingKey?.length ?? 0) * 3 + (p.producerId?.length ?? 0) * 3;
  const props = p.properties;
  if (props != null) {
    size += 64 + (props.headers?.length ?? 0) * 64;
    for (const h of props.headers ?? []) size += (h.key?.length ?? 0) * 3 + (h.value?.stringValue?.length ?? 0) * 3 + (h.value?.bytesValue?.byteLength ?? 0) + (h.value?.amqpField?.byteLength ?? 0);
  }
  return size;
}

export class ProposalPipeline {
  private queue: Queued[] = [];
  private queuedBytes = 0;
  private readonly proposed = new Map<number, Proposed>();
  private proposedCommands = 0;
  /** Wall-clock time of the last proposed batch, for the idle Tick. */
  lastProposalAt = 0;
  proposals = 0;

  constructor(
    private readonly host: PipelineHost,
    private readonly limits: PipelineLimits,
  ) {
    for (const [key, value] of Object.entries(limits)) {
      if (!Number.isSafeInteger(value) || value <= 0) throw new RangeError(`pipeline limit ${key} must be a positive integer, got ${value}`);
    }
  }

  get pending(): number {
    return this.queue.length + this.proposedCommands;
  }

  get hasQueued(): boolean {
    return this.queue.length > 0;
  }

  /** Queues commands; `done` is called once per command. Throws OverloadedError past the bound. */
  submit(commands: readonly raftmq.v1.Command.$Properties[], done: ((i: number, outcome: ProposalOutcome) => void) | null): void {
    if (this.pending + commands.length > this.limits.maxPendingCommands) {
      throw new OverloadedError(`the leader has ${this.pending} commands waiting for commit (limit ${this.limits.maxPendingCommands}); slow down and retry`);
    }
    for (let i = 0; i < commands.length; i++) {
      const command = commands[i] as raftmq.v1.Command.$Properties;
      const bytes = estimateCommandBytes(command);
      this.queue.push({ command, bytes, done: done === null ? null : (outcome) => done(i, outcome) });
      this.queuedBytes += bytes;
    }
    // A full batch need not wait for the current write to finish.
    if (this.queue.length >= this.limits.maxBatchCommands || this.queuedBytes >= this.limits.maxBatchBytes) this.flush(true);
  }

  /**
   * A new leader's first command (RabbitMQ's state_enter(leader)): when it applies, the state
   * machine downs every session of earlier leaders. Queued ahead of anything a client asks.
   */
  tookOffice(done: ((outcome: ProposalOutcome) => void) | null): void {
    this.submit([{ leaderTookOffice: {} }], done === null ? null : (_i, outcome) => done(outcome));
  }

  /** Proposes queued commands; with `fullOnly` only complete batches leave. */
  flush(fullOnly = false): void {
    while (this.queue.length > 0) {
      let count = 0;
      let bytes = 0;
      while (count < this.queue.length && count < this.limits.maxBatchCommands) {
        const next = this.queue[count] as Queued;
        if (count > 0 && bytes + next.bytes > this.limits.maxBatchBytes) break;
        bytes += next.bytes;
        count++;
      }
      const full = count === this.limits.maxBatchCommands || count < this.queue.length;
      if (fullOnly && !full) return;
      const batch = this.queue.slice(0, count);
      // The entry stays in the log cache, and queued messages' bodies point into it.
      const data = ownBytes(raftmq.v1.CommandBatch.encode({ timestampMs: this.host.now(), commands: batch.map((q) => q.command) }).finish());
      let position: ProposalPosition;
      try {
        position = this.host.propose(data);
      } catch (err) {
        if (err instanceof ProposalDroppedError && err.reason === "uncommitted-limit") return; // retried on the next cycle
        this.queue.splice(0, count);
        this.queuedBytes -= bytes;
        const error = err instanceof NotLeaderError ? new NodeUnavailableError("this node lost leadership before proposing the command") : err;
        for (const q of batch) q.done?.({ ok: false, error: error instanceof Error ? error : new Error(String(error)) });
        continue;
      }
      this.queue.splice(0, count);
      this.queuedBytes -= bytes;
      if (this.proposed.has(position.index)) throw new Error(`proposal index ${position.index} handed out twice`);
      this.proposed.set(position.index, { term: position.term, callbacks: batch.map((q) => q.done) });
      this.proposedCommands += count;
      this.lastProposalAt = this.host.now();
      this.proposals++;
    }
  }

  /** An entry was applied: answer the commands proposed at its index, or fail them on another term. */
  applied(index: number, term: number, results: readonly CommandResult[]): void {
    if (this.proposed.size === 0) return;
    const entry = this.proposed.get(index);
    if (entry === undefined) return;
    this.proposed.delete(index);
    this.proposedCommands -= entry.callbacks.length;
    if (entry.term !== term) {
      const error = new OutcomeUnknownError(`the entry proposed at index ${index} in term ${entry.term} was replaced by one of term ${term}`);
      for (const cb of entry.callbacks) cb?.({ ok: false, error });
      return;
    }
    if (results.length !== entry.callbacks.length) {
      throw new Error(`entry ${index} answered ${results.length} results for ${entry.callbacks.length} proposed commands`);
    }
    for (let i = 0; i < entry.callbacks.length; i++) entry.callbacks[i]?.({ ok: true, result: results[i] as CommandResult });
  }

  /** A snapshot replaced the log through `index`: what was proposed there has an unknown outcome. */
  skippedThrough(index: number): void {
    for (const [at, entry] of [...this.proposed]) {
      if (at > index) continue;
      this.proposed.delete(at);
      this.proposedCommands -= entry.callbacks.length;
      const error = new OutcomeUnknownError(`a snapshot replaced the log through index ${index}`);
      for (const cb of entry.callbacks) cb?.({ ok: false, error });
    }
  }

  /** Leadership was lost (or the node stops): every waiting command fails with `error`. */
  failAll(error: Error, proposedError: Error = error): void {
    const queued = this.queue;
    this.queue = [];
    this.queuedBytes = 0;
    for (const q of queued) q.done?.({ ok: false, error });
    const proposed = [...this.proposed.values()];
    this.proposed.clear();
    this.proposedCommands = 0;
    for (const entry of proposed) for (const cb of entry.callbacks) cb?.({ ok: false, error: proposedError });
  }
}
