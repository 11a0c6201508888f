// The Raft consensus core: a pure object stepped by ticks, messages and proposals. It never
// touches the disk, the network or the clock; it hands the application a Ready describing what
// to persist, send and apply, and learns through advance() that it was done.
import { type ResolvedConfig, type RaftConfig, resolveConfig } from "./config.ts";
import { NotLeaderError, ProposalDroppedError, RaftInvariantError, RaftUsageError } from "./errors.ts";
import type { RaftEvent } from "./events.ts";
import { CompactedError, type LogStorage } from "./log-storage.ts";
import { Membership, decodeConfChange, encodeConfChange } from "./membership.ts";
import { Progress, type ProgressState } from "./progress.ts";
import { committedIndex, majority, voteResult } from "./quorum.ts";
import { ReadOnly } from "./read-only.ts";
import { RaftLog } from "./raft-log.ts";
import { SnapshotReceiver } from "./snapshot-receiver.ts";
import {
  type ConfChange,
  ConfChangeType,
  type ConfState,
  createMessage,
  type Entry,
  EntryType,
  type HardState,
  type Message,
  MessageType,
  NONE,
  type ProposalPosition,
  type ReadState,
  type Ready,
  type Role,
  type Snapshot,
  type SoftState,
} from "./types.ts";

export interface PeerProgress {
  id: number;
  match: number;
  next: number;
  state: ProgressState;
  recentActive: boolean;
  isLearner: boolean;
}

export interface RaftStatus {
  id: number;
  term: number;
  vote: number;
  role: Role;
  leaderId: number;
  commit: number;
  applied: number;
  lastIndex: number;
  confState: ConfState;
  /** Filled on the leader only: what it knows of each member, itself included. */
  progress: PeerProgress[];
  leadTransferee: number;
}

type CampaignKind = "pre-vote" | "election" | "transfer";

/** Marks a RequestVote sent on a leader's TimeoutNow, which bypasses the lease check. */
const TRANSFER_CONTEXT = new TextEncoder().encode("raftmq-leader-transfer");
const EMPTY = new Uint8Array(0);

interface HandedOut {
  lastEntry: { index: number; term: number } | null;
  snapshotIndex: number;
  appliedTo: number;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class RaftNode {
  readonly id: number;
  private readonly cfg: ResolvedConfig;
  private readonly log: RaftLog;
  private term = 0;
  private vote = NONE;
  private leaderId = NONE;
  private role: Role = "follower";
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  private votes = new Map<number, boolean>();
  private progress = new Map<number, Progress>();
  private membership: Membership = Membership.empty();
  /** Membership reflects every conf change at or below this index. */
  private confIndex = 0;
  /** The leader proposes no conf change until it has applied this index. */
  private pendingConfIndex = 0;
  private uncommittedSize = 0;
  private leadTransferee = NONE;
  private readonly readOnly: ReadOnly;
  /** ReadIndex requests that arrived before the leader committed an entry of its term. */
  private pendingReadIndex: { from: number; context: Uint8Array }[] = [];
  private readStates: ReadState[] = [];
  private msgs: Message[] = [];
  private pendingBroadcast = false;
  private readonly snapshotReceiver: SnapshotReceiver;
  private prevHardState: HardState;
  private prevSoftState: SoftState;
  private handedOut: HandedOut | null = null;
  private checkedTerm = 0;
  private checkedCommit = 0;

  constructor(config: RaftConfig, storage: LogStorage) {
    this.cfg = resolveConfig(config);
    this.id = this.cfg.id;
    this.readOnly = new ReadOnly(this.cfg.maxPendingReadIndex);
    this.snapshotReceiver = new SnapshotReceiver(this.cfg.maxSnapshotBytes);
    this.log = new RaftLog(storage, this.id);
    const { hardState } = storage.initialState();
    const snapshot = storage.snapshot();
    const empty = snapshot.meta.index === 0 && storage.lastIndex() === 0 && hardState.term === 0;

    this.term = hardState.term;
    this.vote = hardState.vote;
    // A snapshot holds only committed state, so its index is committed even if the hard state
    // was written before it.
    this.log.commitTo(Math.max(hardState.commit, snapshot.meta.index));
    this.membership = Membership.of(snapshot.meta.confState);
    this.confIndex = snapshot.meta.index;
    this.replayConfChanges();
    this.prevHardState = { ...hardState };
    this.prevSoftState = { leaderId: NONE, role: "follower" };

    const applied = this.cfg.applied ?? snapshot.meta.index;
    if (!(applied <= this.log.committed)) throw new RaftInvariantError(this.id, `applied ${applied} is past commit ${this.log.committed}`);
    this.log.applied = Math.max(applied, snapshot.meta.index);
    this.becomeFollower(this.term, NONE);
    if (empty && this.cfg.peers.length + this.cfg.learners.length > 0) this.bootstrap();
    this.checkInvariants();
  }

  // ---- public API ----

  tick(): void {
    this.guard(() => {
      if (this.role === "leader") this.tickLeader();
      else this.tickElection();
    });
  }

  step(message: Message): void {
    this.guard(() => this.stepMessage(message));
  }

  propose(data: Uint8Array): ProposalPosition {
    return this.guard(() => {
      this.checkCanPropose(data.length);
      return this.appendProposal({ term: 0, index: 0, type: EntryType.ENTRY_TYPE_NORMAL, data });
    });
  }

  proposeConfChange(change: ConfChange): ProposalPosition {
    return this.guard(() => {
      const data = encodeConfChange(change);
      this.checkCanPropose(data.length);
      if (this.pendingConfIndex > this.log.applied) {
        throw new ProposalDroppedError("conf-change-pending", `a change at ${this.pendingConfIndex} is not applied yet`);
      }
      const problem = this.membership.validate(change);
      if (problem !== null) throw new ProposalDroppedError("invalid-conf-change", problem);
      const position = this.appendProposal({ term: 0, index: 0, type: EntryType.ENTRY_TYPE_CONF_CHANGE, data });
      this.pendingConfIndex = position.index;
      return position;
    });
  }

  transferLeadership(to: number): void {
    this.guard(() => {
      if (this.role !== "leader") throw new NotLeaderError(this.leaderId);
      if (to === this.id) return;
      if (!this.membership.isVoter(to)) throw new ProposalDroppedError("not-a-member", `node ${to} is not a voter`);
      if (this.leadTransferee === to) return;
      if (this.leadTransferee !== NONE) this.abortLeaderTransfer();
      this.leadTransferee = to;
      // The transfer must finish within one election timeout or it is abandoned.
      this.electionElapsed = 0;
      this.emit({ kind: "leadership-transfer-started", id: this.id, term: this.term, to });
      const pr = this.progress.get(to);
      if (pr !== undefined && pr.match === this.log.lastIndex()) this.sendTimeoutNow(to);
      else this.sendAppend(to, true);
    });
  }

  readIndex(context: Uint8Array): void {
    this.guard(() => {
      if (this.role === "leader") this.handleReadIndex(this.id, context);
      else if (this.leaderId !== NONE) this.send({ type: MessageType.MESSAGE_TYPE_READ_INDEX, to: this.leaderId, context });
      // With no known leader the request is dropped; the caller retries after a timeout.
    });
  }

  campaign(): void {
    this.guard(() => this.hup(false));
  }

  hasReady(): boolean {
    if (this.handedOut !== null) return false;
    return (
      this.msgs.length > 0 ||
      this.pendingBroadcast ||
      this.readStates.length > 0 ||
      this.log.pendingEntries().length > 0 ||
      this.log.pendingSnapshot() !== null ||
      this.log.hasNextCommittedEntries() ||
      this.hardStateChanged() ||
      this.softStateChanged()
    );
  }

  ready(): Ready {
    return this.guard(() => {
      if (this.handedOut !== null) throw new RaftUsageError("ready() called again before advance()");
      const snapshot = this.log.pendingSnapshot();
      const entries = [...this.log.pendingEntries()];
      const committedEntries = this.log.nextCommittedEntries(this.cfg.maxCommittedBytesPerReady);
      for (const entry of committedEntries) {
        if (entry.type === EntryType.ENTRY_TYPE_CONF_CHANGE && entry.index > this.confIndex) this.applyConfChange(entry);
        if (this.role === "leader") this.uncommittedSize = Math.max(0, this.uncommittedSize - entry.data.length);
      }
      if (this.pendingBroadcast) this.bcastAppend();
      const hardState = this.hardStateChanged() ? this.hardState() : null;
      const softState = this.softStateChanged() ? { leaderId: this.leaderId, role: this.role } : null;
      const termOrVoteChanged = hardState !== null && (hardState.term !== this.prevHardState.term || hardState.vote !== this.prevHardState.vote);
      const mustSync = entries.length > 0 || snapshot !== null || termOrVoteChanged;
      if (hardState !== null) this.prevHardState = hardState;
      if (softState !== null) this.prevSoftState = softState;
      const lastEntry = entries[entries.length - 1];
      const lastCommitted = committedEntries[committedEntries.length - 1];
      this.handedOut = {
        lastEntry: lastEntry === undefined ? null : { index: lastEntry.index, term: lastEntry.term },
        snapshotIndex: snapshot?.meta.index ?? 0,
        appliedTo: lastCommitted?.index ?? 0,
      };
      const { early, afterPersist } = splitBySync(this.msgs, this.role === "leader" && !termOrVoteChanged);
      this.msgs = [];
      const readStates = this.readStates;
      this.readStates = [];
      return { softState, hardState, entries, snapshot, committedEntries, messages: early, messagesAfterPersist: afterPersist, readStates, mustSync };
    });
  }

  /**
   * While a Ready is out (its write in flight): the committed normal entries after those it
   * handed out that were persisted before it, to apply now instead of after the write. A
   * commit learned meanwhile (a follower's ack reaching the leader) then answers its clients
   * without waiting for the unrelated write; advance() counts them as applied. Stops before a
   * conf change, which takes effect through a Ready of its own, and at `maxCommittedBytesPerReady`.
   * With them comes the hard state to persist next: the one handed out last, its commit raised
   * to the last of them (a snapshot at the applied index needs that commit on disk, and the next
   * Ready would bring it only later); null when there are none.
   */
  committedWhileWriting(): { entries: Entry[]; hardState: HardState | null } {
    return this.guard(() => {
      const handed = this.handedOut;
      if (handed === null) throw new RaftUsageError("committedWhileWriting() called without a ready()");
      const none = { entries: [], hardState: null };
      if (handed.snapshotIndex > 0) return none;
      const lo = Math.max(this.log.applied, handed.appliedTo) + 1;
      const hi = Math.min(this.log.committed, this.log.lastStableIndex()) + 1;
      if (lo >= hi || lo < this.log.firstIndex()) return none;
      const entries: Entry[] = [];
      for (const entry of this.log.slice(lo, hi, this.cfg.maxCommittedBytesPerReady)) {
        if (entry.type === EntryType.ENTRY_TYPE_CONF_CHANGE) break;
        if (this.role === "leader") this.uncommittedSize = Math.max(0, this.uncommittedSize - entry.data.length);
        entries.push(entry);
      }
      const last = entries[entries.length - 1];
      if (last === undefined) return none;
      handed.appliedTo = last.index;
      const p = this.prevHardState;
      return { entries, hardState: { term: p.term, vote: p.vote, commit: Math.max(p.commit, last.index) } };
    });
  }

  /**
   * While a Ready is out: a leader's appends of entries proposed since, to send now (§10.2.1: they
   * need not wait for any write), so followers write the next entries while this node writes the
   * previous ones. Only appends, and only while the term and vote handed out still stand; the rest
   * waits for the next Ready.
   */
  appendsWhileWriting(): Message[] {
    return this.guard(() => {
      if (this.handedOut === null) throw new RaftUsageError("appendsWhileWriting() called without a ready()");
      if (this.role !== "leader" || this.term !== this.prevHardState.term || this.vote !== this.prevHardState.vote) return [];
      if (this.pendingBroadcast) this.bcastAppend();
      if (this.msgs.length === 0) return [];
      const appends: Message[] = [];
      const rest: Message[] = [];
      for (const m of this.msgs) (m.type === MessageType.MESSAGE_TYPE_APPEND_ENTRIES ? appends : rest).push(m);
      this.msgs = rest;
      return appends;
    });
  }

  advance(_ready: Ready): void {
    this.guard(() => {
      const handed = this.handedOut;
      if (handed === null) throw new RaftUsageError("advance() called without a ready()");
      this.handedOut = null;
      if (handed.snapshotIndex > 0) {
        this.log.stableSnapTo(handed.snapshotIndex);
        this.log.appliedTo(handed.snapshotIndex);
      }
      if (handed.lastEntry !== null) this.log.stableTo(handed.lastEntry.index, handed.lastEntry.term);
      this.log.appliedTo(handed.appliedTo);
    });
  }

  reportUnreachable(id: number): void {
    this.guard(() => {
      const pr = this.progress.get(id);
      if (this.role !== "leader" || pr === undefined) return;
      if (pr.state === "replicate") pr.becomeProbe();
    });
  }

  /**
   * This node's connection to `id` closed: its process died, or the network cut it. A follower
   * whose leader that is stops vouching for the leader's lease, so it no longer ignores pre-votes
   * and votes, and a peer that saw the same can win an election without waiting out a timeout.
   * Answers whether `id` was this node's leader; the caller may then campaign(). A leader that is
   * alive is not deposed by this: the voters that still hear from it keep ignoring candidates,
   * and it ignores them itself.
   */
  leaderUnreachable(id: number): boolean {
    return this.guard(() => {
      if (this.role !== "follower" || id === NONE || this.leaderId !== id) return false;
      this.electionElapsed = Math.max(this.electionElapsed, this.cfg.electionTick);
      this.emit({ kind: "leader-unreachable", id: this.id, term: this.term, leaderId: id });
      return true;
    });
  }

  /**
   * This node's place, from 0, among the voters that may take over from leader `id` (every voter
   * but `id`, in id order). Hosts stagger their campaigns after leaderUnreachable(id) by it: two
   * followers that saw the same connection close and campaigned at the same moment would split
   * the vote, and the cluster would wait out a whole election timeout.
   */
  campaignRank(id: number): number {
    let rank = 0;
    for (const v of this.membership.confState().voters) if (v !== id && v < this.id) rank++;
    return rank;
  }

  /**
   * After leaderUnreachable(id): campaigns (pre-vote first, where configured) unless leader `id`
   * has been heard from since or another leader is known. Answers whether it campaigned.
   */
  campaignIfLeaderSilent(id: number): boolean {
    return this.guard(() => {
      if (this.role !== "follower" || id === NONE || this.leaderId !== id || this.electionElapsed < this.cfg.electionTick) return false;
      this.hup(false);
      return this.role !== "follower";
    });
  }

  reportSnapshot(id: number, ok: boolean): void {
    this.guard(() => {
      const pr = this.progress.get(id);
      if (this.role !== "leader" || pr === undefined || pr.state !== "snapshot") return;
      if (!ok) pr.pendingSnapshot = 0;
      pr.becomeProbe();
      // Wait for the follower's answer (or the next heartbeat) before probing.
      pr.probeSent = true;
    });
  }

  status(): RaftStatus {
    const progress: PeerProgress[] = [];
    if (this.role === "leader") {
      for (const id of this.membership.members()) {
        const pr = this.progress.get(id);
        if (pr === undefined) continue;
        progress.push({ id, match: pr.match, next: pr.next, state: pr.state, recentActive: pr.recentActive, isLearner: this.membership.isLearner(id) });
      }
    }
    return {
      id: this.id,
      term: this.term,
      vote: this.vote,
      role: this.role,
      leaderId: this.leaderId,
      commit: this.log.committed,
      applied: this.log.applied,
      lastIndex: this.log.lastIndex(),
      confState: this.membership.confState(),
      progress,
      leadTransferee: this.leadTransferee,
    };
  }

  confState(): ConfState {
    return this.membership.confState();
  }

  // ---- construction ----

  /** Applies the conf changes in the committed part of the persisted log. */
  private replayConfChanges(): void {
    let next = this.log.firstIndex();
    const end = this.log.committed;
    while (next <= end) {
      const batch = this.log.slice(next, end + 1, this.cfg.maxCommittedBytesPerReady);
      for (const entry of batch) {
        if (entry.type === EntryType.ENTRY_TYPE_CONF_CHANGE) {
          this.membership = this.membership.apply(decodeConfChange(entry.data));
          this.confIndex = entry.index;
        }
      }
      const last = batch[batch.length - 1];
      if (last === undefined) break;
      next = last.index + 1;
    }
    this.confIndex = Math.max(this.confIndex, end);
  }

  /**
   * A brand-new cluster: every bootstrap node writes the same committed conf changes at term 1,
   * so membership lives in the log from the first entry and survives restarts.
   */
  private bootstrap(): void {
    const changes: ConfChange[] = [
      ...[...this.cfg.peers].sort((a, b) => a - b).map((nodeId) => ({ type: ConfChangeType.CONF_CHANGE_TYPE_ADD_VOTER, nodeId, context: EMPTY })),
      ...[...this.cfg.learners].sort((a, b) => a - b).map((nodeId) => ({ type: ConfChangeType.CONF_CHANGE_TYPE_ADD_LEARNER, nodeId, context: EMPTY })),
    ];
    const entries: Entry[] = changes.map((change, i) => ({
      term: 1,
      index: i + 1,
      type: EntryType.ENTRY_TYPE_CONF_CHANGE,
      data: encodeConfChange(change),
    }));
    this.becomeFollower(1, NONE);
    this.log.append(entries);
    this.log.commitTo(entries.length);
    for (const change of changes) this.membership = this.membership.apply(change);
    this.confIndex = entries.length;
    this.syncProgress();
  }

  // ---- ticks ----

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.hup(false);
    }
  }

  private tickLeader(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.cfg.electionTick) {
      this.electionElapsed = 0;
      if (this.cfg.checkQuorum) {
        if (!this.quorumActive()) {
          this.emit({ kind: "stepped-down", id: this.id, term: this.term, reason: "check-quorum" });
          this.becomeFollower(this.term, NONE);
          return;
        }
        for (const [id, pr] of this.progress) if (id !== this.id) pr.recentActive = false;
      }
      if (this.leadTransferee !== NONE) this.abortLeaderTransfer();
    }
    if (this.heartbeatElapsed >= this.cfg.heartbeatTick) {
      this.heartbeatElapsed = 0;
      this.bcastHeartbeat(this.readOnly.lastContext() ?? EMPTY);
    }
  }

  private quorumActive(): boolean {
    let active = 0;
    for (const id of this.membership.voters) {
      if (id === this.id || this.progress.get(id)?.recentActive === true) active++;
    }
    return active >= majority(this.membership.voters.length);
  }

  // ---- role changes ----

  private reset(term: number): void {
    if (term !== this.term) {
      if (!(term > this.term)) throw new RaftInvariantError(this.id, `term moves back from ${this.term} to ${term}`);
      this.term = term;
      this.vote = NONE;
    }
    this.leaderId = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.cfg.electionTick + Math.floor(this.cfg.random() * this.cfg.electionTick);
    if (this.leadTransferee !== NONE) this.abortLeaderTransfer();
    this.votes = new Map();
    this.progress = new Map();
    this.syncProgress();
    this.pendingConfIndex = 0;
    this.uncommittedSize = 0;
    this.readOnly.reset();
    this.pendingReadIndex = [];
  }

  private becomeFollower(term: number, leaderId: number): void {
    const wasLeader = this.role === "leader";
    this.reset(term);
    this.leaderId = leaderId;
    this.role = "follower";
    if (wasLeader) this.emit({ kind: "became-follower", id: this.id, term, leaderId });
  }

  private becomePreCandidate(): void {
    if (!(this.role !== "leader")) throw new RaftInvariantError(this.id, "a leader cannot become a pre-candidate");
    // A pre-candidate keeps its term and vote: a failed pre-vote leaves no trace.
    this.votes = new Map();
    this.leaderId = NONE;
    this.role = "pre-candidate";
  }

  private becomeCandidate(): void {
    if (!(this.role !== "leader")) throw new RaftInvariantError(this.id, "a leader cannot become a candidate");
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = "candidate";
  }

  private becomeLeader(): void {
    if (!(this.role === "candidate")) throw new RaftInvariantError(this.id, `only a candidate becomes leader, not a ${this.role}`);
    this.reset(this.term);
    this.leaderId = this.id;
    this.role = "leader";
    for (const pr of this.progress.values()) pr.recentActive = true;
    const self = this.progress.get(this.id);
    if (self !== undefined) {
      self.match = this.log.lastIndex();
      self.becomeReplicate();
    }
    // A conf change already in the log may be uncommitted; allow no new one until it is applied.
    this.pendingConfIndex = this.log.lastIndex();
    this.emit({ kind: "became-leader", id: this.id, term: this.term });
    // §5.4.2: entries of earlier terms commit only once an entry of this term does.
    this.appendLeaderEntries([{ term: 0, index: 0, type: EntryType.ENTRY_TYPE_NORMAL, data: EMPTY }]);
  }

  private promotable(): boolean {
    return this.membership.isVoter(this.id) && this.log.pendingSnapshot() === null;
  }

  private hup(transfer: boolean): void {
    if (this.role === "leader" || !this.promotable()) return;
    if (this.hasUnappliedConfChanges()) return;
    this.startCampaign(transfer ? "transfer" : this.cfg.preVote ? "pre-vote" : "election");
  }

  /** A committed conf change not yet in effect: campaigning now could use the wrong quorum. */
  private hasUnappliedConfChanges(): boolean {
    let lo = Math.max(this.log.applied + 1, this.log.firstIndex(), this.confIndex + 1);
    while (lo <= this.log.committed) {
      const page = this.log.slice(lo, this.log.committed + 1, this.cfg.maxCommittedBytesPerReady);
      if (page.some((e) => e.type === EntryType.ENTRY_TYPE_CONF_CHANGE)) return true;
      const last = page[page.length - 1];
      if (last === undefined) return false;
      lo = last.index + 1;
    }
    return false;
  }

  private startCampaign(kind: CampaignKind): void {
    let voteType: MessageType;
    let term: number;
    if (kind === "pre-vote") {
      this.becomePreCandidate();
      voteType = MessageType.MESSAGE_TYPE_PRE_VOTE;
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      voteType = MessageType.MESSAGE_TYPE_REQUEST_VOTE;
      term = this.term;
    }
    this.emit({ kind: "election-started", id: this.id, term, preVote: kind === "pre-vote", transfer: kind === "transfer" });
    this.votes.set(this.id, true);
    if (voteResult(this.membership.voters, this.votes) === "won") {
      if (kind === "pre-vote") this.startCampaign("election");
      else this.becomeLeader();
      return;
    }
    const lastIndex = this.log.lastIndex();
    const lastTerm = this.log.lastTerm();
    for (const id of this.membership.voters) {
      if (id === this.id) continue;
      this.send({ type: voteType, to: id, term, logIndex: lastIndex, logTerm: lastTerm, context: kind === "transfer" ? TRANSFER_CONTEXT : EMPTY });
    }
  }

  // ---- messages ----

  private stepMessage(m: Message): void {
    if (m.to !== this.id || m.from === this.id || m.from === NONE || m.term === 0) return;
    const T = MessageType;
    if (m.term > this.term) {
      if (m.type === T.MESSAGE_TYPE_PRE_VOTE || m.type === T.MESSAGE_TYPE_REQUEST_VOTE) {
        const forced = m.type === T.MESSAGE_TYPE_REQUEST_VOTE && sameBytes(m.context, TRANSFER_CONTEXT);
        const inLease = this.cfg.checkQuorum && this.leaderId !== NONE && this.electionElapsed < this.cfg.electionTick;
        if (!forced && inLease) {
          // We heard from a live leader recently: a disruptive candidate gets no answer at all.
          this.emit({ kind: "vote-rejected", id: this.id, term: this.term, to: m.from, preVote: m.type === T.MESSAGE_TYPE_PRE_VOTE, reason: "lease" });
          return;
        }
      }
      if (m.type === T.MESSAGE_TYPE_PRE_VOTE || (m.type === T.MESSAGE_TYPE_PRE_VOTE_RESPONSE && !m.reject)) {
        // A pre-vote does not change terms; a granted pre-vote carries the term we would campaign at.
      } else {
        const fromLeader =
          m.type === T.MESSAGE_TYPE_APPEND_ENTRIES || m.type === T.MESSAGE_TYPE_HEARTBEAT || m.type === T.MESSAGE_TYPE_INSTALL_SNAPSHOT;
        if (this.role === "leader") this.emit({ kind: "stepped-down", id: this.id, term: m.term, reason: "higher-term" });
        this.becomeFollower(m.term, fromLeader ? m.from : NONE);
      }
    } else if (m.term < this.term) {
      if ((this.cfg.checkQuorum || this.cfg.preVote) && (m.type === T.MESSAGE_TYPE_APPEND_ENTRIES || m.type === T.MESSAGE_TYPE_HEARTBEAT)) {
        // Tells a stale leader (e.g. one cut off and now back) about the newer term.
        this.send({ type: T.MESSAGE_TYPE_APPEND_ENTRIES_RESPONSE, to: m.from });
      } else if (m.type === T.MESSAGE_TYPE_PRE_VOTE) {
        this.send({ type: T.MESSAGE_TYPE_PRE_VOTE_RESPONSE, to: m.from, reject: true });
      }
      return;
    }

    switch (m.type) {
      case T.MESSAGE_TYPE_PRE_VOTE:
      case T.MESSAGE_TYPE_REQUEST_VOTE:
        this.handleVoteRequest(m);
        return;
      case T.MESSAGE_TYPE_UNSPECIFIED:
        return;
      default:
        break;
    }
    switch (this.role) {
      case "leader":
        this.stepLeader(m);
        return;
      case "candidate":
      case "pre-candidate":
        this.stepCandidate(m);
        return;
      case "follower":
        this.stepFollower(m);
        return;
      default: {
        const never: never = this.role;
        throw new Error(`unknown role ${String(never)}`);
      }
    }
  }

  private handleVoteRequest(m: Message): void {
    const preVote = m.type === MessageType.MESSAGE_TYPE_PRE_VOTE;
    const responseType = preVote ? MessageType.MESSAGE_TYPE_PRE_VOTE_RESPONSE : MessageType.MESSAGE_TYPE_REQUEST_VOTE_RESPONSE;
    const canVote = this.vote === m.from || (this.vote === NONE && this.leaderId === NONE) || (preVote && m.term > this.term);
    // A node answers even while its own config calls it a learner: it may already be promoted
    // in the candidate's log and be needed for a quorum. The candidate counts answers only from
    // those it sees as voters, so a learner's answer never elects anyone on its own.
    let reason: "log" | "voted" | null = null;
    if (!canVote) reason = "voted";
    // §5.4.1: grant only to a candidate whose log is at least as up-to-date as ours.
    else if (!this.log.isUpToDate(m.logIndex, m.logTerm)) reason = "log";
    if (reason !== null) {
      this.emit({ kind: "vote-rejected", id: this.id, term: this.term, to: m.from, preVote, reason });
      this.send({ type: responseType, to: m.from, reject: true });
      return;
    }
    this.emit({ kind: "vote-granted", id: this.id, term: m.term, to: m.from, preVote });
    // A granted pre-vote answers at the candidate's future term so it counts there.
    this.send({ type: responseType, to: m.from, term: m.term });
    if (!preVote) {
      this.electionElapsed = 0;
      this.vote = m.from;
    }
  }

  private stepLeader(m: Message): void {
    const T = MessageType;
    if (m.type === T.MESSAGE_TYPE_READ_INDEX) {
      if (this.membership.isMember(m.from)) this.handleReadIndex(m.from, m.context);
      return;
    }
    const pr = this.progress.get(m.from);
    if (pr === undefined) return;
    switch (m.type) {
      case T.MESSAGE_TYPE_APPEND_ENTRIES_RESPONSE:
        pr.recentActive = true;
        this.handleAppendResponse(m, pr);
        return;
      case T.MESSAGE_TYPE_HEARTBEAT_RESPONSE:
        pr.recentActive = true;
        this.handleHeartbeatResponse(m, pr);
        return;
      case T.MESSAGE_TYPE_INSTALL_SNAPSHOT_RESPONSE:
        pr.recentActive = true;
        this.handleSnapshotResponse(m, pr);
        return;
      default:
        return;
    }
  }

  private handleAppendResponse(m: Message, pr: Progress): void {
    if (m.reject) {
      let probeFrom = m.rejectHint;
      if (m.hintTerm > 0) probeFrom = this.log.findConflictByTerm(m.rejectHint, m.hintTerm).index;
      if (pr.maybeDecrTo(m.logIndex, probeFrom)) {
        if (pr.state === "replicate") pr.becomeProbe();
        this.sendAppend(m.from, true);
      }
      return;
    }
    const wasPaused = pr.isPaused();
    if (!pr.maybeUpdate(m.logIndex)) {
      if (wasPaused && pr.state === "probe") this.sendAppend(m.from, false);
      return;
    }
    switch (pr.state) {
      case "probe":
        pr.becomeReplicate();
        break;
      case "snapshot":
        if (pr.match >= pr.pendingSnapshot) {
          pr.becomeProbe();
          pr.becomeReplicate();
        }
        break;
      case "replicate":
        pr.inflights.freeLE(m.logIndex);
        break;
      default: {
        const never: never = pr.state;
        throw new Error(`unknown progress state ${String(never)}`);
      }
    }
    // A new commit index rides on the next append or heartbeat rather than a notice of its own:
    // followers need it only to apply (the leader answers clients), and a notice per commit
    // would cost every follower a message and a cycle per entry.
    this.maybeCommit();
    while (this.sendAppend(m.from, false)) {
      // Fill the in-flight window.
    }
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) this.sendTimeoutNow(m.from);
  }

  private handleHeartbeatResponse(m: Message, pr: Progress): void {
    pr.probeSent = false;
    if (pr.state === "replicate" && pr.inflights.full()) pr.inflights.freeFirstOne();
    if (pr.state === "snapshot") this.sendSnapshotChunk(m.from, pr);
    else if (pr.match < this.log.lastIndex()) this.sendAppend(m.from, true);

    if (m.context.length === 0 || !this.membership.isVoter(m.from)) return;
    const acks = this.readOnly.recvAck(m.from, m.context);
    if (acks === null || voteResult(this.membership.voters, acks) !== "won") return;
    for (const request of this.readOnly.advance(m.context)) this.answerRead(request.from, request.index, request.context);
  }

  private handleSnapshotResponse(m: Message, pr: Progress): void {
    const transfer = pr.transfer;
    if (pr.state !== "snapshot" || transfer === null || transfer.snapshot.meta.index !== m.logTerm) return;
    transfer.offset = m.reject ? m.logIndex : Math.max(transfer.offset, m.logIndex);
    if (transfer.offset < transfer.snapshot.data.length) this.sendSnapshotChunk(m.from, pr);
  }

  private stepCandidate(m: Message): void {
    const T = MessageType;
    const expected = this.role === "pre-candidate" ? T.MESSAGE_TYPE_PRE_VOTE_RESPONSE : T.MESSAGE_TYPE_REQUEST_VOTE_RESPONSE;
    switch (m.type) {
      case T.MESSAGE_TYPE_APPEND_ENTRIES:
      case T.MESSAGE_TYPE_HEARTBEAT:
      case T.MESSAGE_TYPE_INSTALL_SNAPSHOT:
        // §5.2: a leader of our term exists; go back to following.
        this.becomeFollower(m.term, m.from);
        this.stepFollower(m);
        return;
      default:
        break;
    }
    if (m.type !== expected || !this.membership.isVoter(m.from)) return;
    this.votes.set(m.from, !m.reject);
    const result = voteResult(this.membership.voters, this.votes);
    if (result === "won") {
      if (this.role === "pre-candidate") this.startCampaign("election");
      else {
        this.becomeLeader();
      }
    } else if (result === "lost") {
      this.becomeFollower(this.term, NONE);
    }
  }

  private stepFollower(m: Message): void {
    const T = MessageType;
    switch (m.type) {
      case T.MESSAGE_TYPE_APPEND_ENTRIES:
        this.electionElapsed = 0;
        this.leaderId = m.from;
        this.handleAppendEntries(m);
        return;
      case T.MESSAGE_TYPE_HEARTBEAT:
        this.electionElapsed = 0;
        this.leaderId = m.from;
        this.log.commitTo(m.commit);
        this.send({ type: T.MESSAGE_TYPE_HEARTBEAT_RESPONSE, to: m.from, context: m.context });
        return;
      case T.MESSAGE_TYPE_INSTALL_SNAPSHOT:
        this.electionElapsed = 0;
        this.leaderId = m.from;
        this.handleSnapshotChunk(m);
        return;
      case T.MESSAGE_TYPE_TIMEOUT_NOW:
        if (this.promotable()) this.hup(true);
        return;
      case T.MESSAGE_TYPE_READ_INDEX_RESPONSE:
        this.readStates.push({ index: m.logIndex, context: m.context });
        return;
      default:
        return;
    }
  }

  private handleAppendEntries(m: Message): void {
    const T = MessageType;
    if (m.logIndex < this.log.committed) {
      this.send({ type: T.MESSAGE_TYPE_APPEND_ENTRIES_RESPONSE, to: m.from, logIndex: this.log.committed });
      return;
    }
    const lastNew = this.log.maybeAppend(m.logIndex, m.logTerm, m.commit, m.entries);
    if (lastNew !== null) {
      this.send({ type: T.MESSAGE_TYPE_APPEND_ENTRIES_RESPONSE, to: m.from, logIndex: lastNew });
      return;
    }
    // Tell the leader where our log could match: the last entry at or before the rejected
    // index whose term is not above the leader's term there.
    const hint = this.log.findConflictByTerm(Math.min(m.logIndex, this.log.lastIndex()), m.logTerm);
    this.send({
      type: T.MESSAGE_TYPE_APPEND_ENTRIES_RESPONSE,
      to: m.from,
      logIndex: m.logIndex,
      reject: true,
      rejectHint: hint.index,
      hintTerm: hint.term,
    });
  }

  /**
   * InstallSnapshot, follower side. Each chunk is acknowledged with INSTALL_SNAPSHOT_RESPONSE
   * (log_index = bytes received so far, log_term = the snapshot's index, reject = start over from
   * log_index); once installed, the follower answers like an accepted AppendEntries whose match is
   * the snapshot index, so the leader resumes replication through its usual path.
   */
  private handleSnapshotChunk(m: Message): void {
    const T = MessageType;
    const chunk = m.snapshot;
    if (chunk === null || chunk === undefined) return;
    const meta = chunk.meta;
    if (meta.index <= this.log.committed) {
      this.snapshotReceiver.reset();
      this.send({ type: T.MESSAGE_TYPE_APPEND_ENTRIES_RESPONSE, to: m.from, logIndex: this.log.committed });
      return;
    }
    const outcome = this.snapshotReceiver.receive(chunk);
    switch (outcome.kind) {
      case "ack":
      case "restart":
        this.send({
          type: T.MESSAGE_TYPE_INSTALL_SNAPSHOT_RESPONSE,
          to: m.from,
          logIndex: outcome.received,
          logTerm: meta.index,
          reject: outcome.kind === "restart",
        });
        return;
      case "complete":
        break;
      default: {
        const never: never = outcome;
        throw new Error(`unknown chunk outcome ${String(never)}`);
      }
    }
    const snapshot = outcome.snapshot;
    if (this.restore(snapshot)) {
      this.send({ type: T.MESSAGE_TYPE_APPEND_ENTRIES_RESPONSE, to: m.from, logIndex: this.log.lastIndex() });
    } else {
      this.send({ type: T.MESSAGE_TYPE_APPEND_ENTRIES_RESPONSE, to: m.from, logIndex: this.log.committed });
    }
  }

  /** §7: install a snapshot, unless our log already holds its last entry. */
  private restore(snapshot: Snapshot): boolean {
    const { index, term } = snapshot.meta;
    if (index <= this.log.committed) return false;
    if (this.log.matchTerm(index, term)) {
      this.log.commitTo(index);
      return false;
    }
    this.log.restore(snapshot);
    this.membership = Membership.of(snapshot.meta.confState);
    this.confIndex = index;
    this.syncProgress();
    this.emit({ kind: "snapshot-installed", id: this.id, index, term });
    return true;
  }

  // ---- leader: replication ----

  private checkCanPropose(bytes: number): void {
    if (this.role !== "leader") throw new NotLeaderError(this.leaderId);
    if (this.leadTransferee !== NONE) throw new ProposalDroppedError("leadership-transfer", `to node ${this.leadTransferee}`);
    if (!this.membership.isMember(this.id)) throw new ProposalDroppedError("not-a-member");
    if (bytes > this.cfg.maxUncommittedEntriesBytes) throw new ProposalDroppedError("too-large", `${bytes} bytes`);
    if (this.uncommittedSize > 0 && this.uncommittedSize + bytes > this.cfg.maxUncommittedEntriesBytes) {
      throw new ProposalDroppedError("uncommitted-limit", `${this.uncommittedSize} bytes are uncommitted`);
    }
  }

  private appendProposal(entry: Entry): ProposalPosition {
    const last = this.appendLeaderEntries([entry]);
    return { index: last, term: this.term };
  }

  private appendLeaderEntries(entries: Entry[]): number {
    let index = this.log.lastIndex();
    const stamped = entries.map((e) => {
      index++;
      this.uncommittedSize += e.data.length;
      return { term: this.term, index, type: e.type, data: e.data };
    });
    const last = this.log.append(stamped);
    this.progress.get(this.id)?.maybeUpdate(last);
    // The leader already held the highest match, so its own append can move the majority's
    // match only when it is the majority by itself.
    if (this.membership.voters.length === 1) this.maybeCommit();
    this.pendingBroadcast = true;
    return last;
  }

  /** §5.3/§5.4.2: commit the highest index a majority holds, if it is of the current term. */
  private maybeCommit(): boolean {
    const index = committedIndex(this.membership.voters, (id) => this.progress.get(id)?.match ?? 0);
    if (index <= this.log.committed) return false;
    if (this.log.term(index) !== this.term && !this.cfg.unsafeCommitPreviousTerm) return false;
    this.log.commitTo(index);
    this.releasePendingReads();
    return true;
  }

  private bcastAppend(): void {
    this.pendingBroadcast = false;
    if (this.role !== "leader") return;
    for (const id of this.membership.members()) {
      if (id === this.id) continue;
      if (!this.sendAppend(id, true)) continue;
      while (this.sendAppend(id, false)) {
        // Fill the in-flight window.
      }
    }
  }

  /** Sends entries (or, past the compacted prefix, a snapshot) to `to`; false when nothing was sent. */
  private sendAppend(to: number, sendIfEmpty: boolean): boolean {
    const pr = this.progress.get(to);
    if (pr === undefined || pr.isPaused()) return false;
    const lastIndex = this.log.lastIndex();
    if (pr.next > lastIndex + 1) pr.next = lastIndex + 1;
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    let entries: Entry[];
    try {
      if (prevTerm === undefined) throw new CompactedError(prevIndex, this.log.firstIndex());
      entries = this.log.slice(pr.next, lastIndex + 1, this.cfg.maxSizePerMsg);
    } catch (error) {
      if (error instanceof CompactedError) return this.sendSnapshot(to, pr);
      throw error;
    }
    if (entries.length === 0 && !sendIfEmpty) return false;
    this.send({
      type: MessageType.MESSAGE_TYPE_APPEND_ENTRIES,
      to,
      logIndex: prevIndex,
      logTerm: prevTerm,
      entries,
      commit: this.log.committed,
    });
    const last = entries[entries.length - 1];
    if (pr.state === "replicate" && last !== undefined) {
      let bytes = 0;
      for (const e of entries) bytes += e.data.length;
      pr.next = last.index + 1;
      pr.inflights.add(last.index, bytes);
    } else if (pr.state === "probe") {
      pr.probeSent = true;
    }
    return true;
  }

  private sendSnapshot(to: number, pr: Progress): boolean {
    if (!pr.recentActive) return false;
    const snapshot = this.log.storage.snapshot();
    if (snapshot.meta.index === 0) return false;
    pr.becomeSnapshot(snapshot);
    this.emit({ kind: "snapshot-sent", id: this.id, to, index: snapshot.meta.index, term: snapshot.meta.term, bytes: snapshot.data.length });
    this.sendSnapshotChunk(to, pr);
    return true;
  }

  private sendSnapshotChunk(to: number, pr: Progress): void {
    const transfer = pr.transfer;
    if (transfer === null) return;
    const data = transfer.snapshot.data;
    const offset = Math.min(transfer.offset, data.length);
    const end = Math.min(offset + this.cfg.maxSnapshotChunkBytes, data.length);
    this.send({
      type: MessageType.MESSAGE_TYPE_INSTALL_SNAPSHOT,
      to,
      snapshot: { meta: transfer.snapshot.meta, offset, totalSize: data.length, data: data.subarray(offset, end), done: end === data.length },
    });
  }

  private bcastHeartbeat(context: Uint8Array): void {
    for (const id of this.membership.members()) {
      if (id === this.id) continue;
      const pr = this.progress.get(id);
      if (pr === undefined) continue;
      // A follower may not hold entries past its match yet, so it may only commit that far.
      const commit = Math.min(pr.match, this.log.committed);
      this.send({ type: MessageType.MESSAGE_TYPE_HEARTBEAT, to: id, commit, context });
    }
  }

  private sendTimeoutNow(to: number): void {
    this.send({ type: MessageType.MESSAGE_TYPE_TIMEOUT_NOW, to });
  }

  private abortLeaderTransfer(): void {
    this.emit({ kind: "leadership-transfer-aborted", id: this.id, term: this.term, to: this.leadTransferee });
    this.leadTransferee = NONE;
  }

  // ---- ReadIndex ----

  private handleReadIndex(from: number, context: Uint8Array): void {
    if (this.membership.voters.length === 1 && this.membership.isVoter(this.id)) {
      this.answerRead(from, this.log.committed, context);
      return;
    }
    // Until an entry of this term commits, our commit index may lag what earlier leaders committed.
    if (this.log.term(this.log.committed) !== this.term) {
      if (this.pendingReadIndex.length < this.cfg.maxPendingReadIndex) this.pendingReadIndex.push({ from, context });
      return;
    }
    if (!this.readOnly.add(this.log.committed, from, context)) return;
    this.readOnly.recvAck(this.id, context);
    this.bcastHeartbeat(context);
  }

  private releasePendingReads(): void {
    if (this.pendingReadIndex.length === 0 || this.log.term(this.log.committed) !== this.term) return;
    const waiting = this.pendingReadIndex;
    this.pendingReadIndex = [];
    for (const { from, context } of waiting) this.handleReadIndex(from, context);
  }

  private answerRead(from: number, index: number, context: Uint8Array): void {
    if (from === this.id) this.readStates.push({ index, context });
    else this.send({ type: MessageType.MESSAGE_TYPE_READ_INDEX_RESPONSE, to: from, logIndex: index, context });
  }

  // ---- membership ----

  /** §6: a committed conf change takes effect when handed out for applying. */
  private applyConfChange(entry: Entry): void {
    const change = decodeConfChange(entry.data);
    this.membership = this.membership.apply(change);
    this.confIndex = entry.index;
    this.syncProgress();
    this.emit({ kind: "conf-change-applied", id: this.id, index: entry.index, change });
    if (this.role !== "leader") return;
    if (!this.membership.isMember(this.id)) {
      this.emit({ kind: "stepped-down", id: this.id, term: this.term, reason: "removed" });
      this.becomeFollower(this.term, NONE);
      return;
    }
    if (this.leadTransferee !== NONE && !this.membership.isVoter(this.leadTransferee)) this.abortLeaderTransfer();
    this.maybeCommit();
    this.pendingBroadcast = true;
  }

  /** Gives every member a Progress and drops those of former members. */
  private syncProgress(): void {
    const next = this.log.lastIndex() + 1;
    for (const id of this.membership.members()) {
      if (!this.progress.has(id)) {
        const pr = new Progress(next, this.cfg.maxInflightMsgs, this.cfg.maxInflightBytes);
        if (id === this.id) pr.match = next - 1;
        this.progress.set(id, pr);
      }
    }
    for (const id of [...this.progress.keys()]) {
      if (!this.membership.isMember(id)) this.progress.delete(id);
    }
  }

  // ---- plumbing ----

  private send(partial: Partial<Message> & { type: MessageType; to: number }): void {
    this.msgs.push(createMessage({ ...partial, from: this.id, term: partial.term ?? this.term }));
  }


  private hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  private hardStateChanged(): boolean {
    const p = this.prevHardState;
    return p.term !== this.term || p.vote !== this.vote || p.commit !== this.log.committed;
  }

  private softStateChanged(): boolean {
    return this.prevSoftState.leaderId !== this.leaderId || this.prevSoftState.role !== this.role;
  }

  private emit(event: RaftEvent): void {
    this.cfg.logger?.(event);
  }

  /** Runs one public operation, then checks the invariants that must hold after any of them. */
  private guard<T>(operation: () => T): T {
    const result = operation();
    this.checkInvariants();
    return result;
  }

  private checkInvariants(): void {
    const committed = this.log.committed;
    if (!(this.term >= this.checkedTerm)) throw new RaftInvariantError(this.id, `term moved back from ${this.checkedTerm} to ${this.term}`);
    if (!(committed >= this.checkedCommit)) throw new RaftInvariantError(this.id, `commit moved back from ${this.checkedCommit} to ${committed}`);
    if (!(committed <= this.log.lastIndex())) throw new RaftInvariantError(this.id, `commit ${committed} is past the last index ${this.log.lastIndex()}`);
    if (!(this.log.applied <= committed)) throw new RaftInvariantError(this.id, `applied ${this.log.applied} is past commit ${committed}`);
    this.checkedTerm = this.term;
    this.checkedCommit = committed;
  }
}

/** Answers that vouch for the sender's disk: an ack says the entries are stored, a vote that it is recorded. */
const VOUCHING_TYPES: ReadonlySet<MessageType> = new Set([
  MessageType.MESSAGE_TYPE_APPEND_ENTRIES_RESPONSE,
  MessageType.MESSAGE_TYPE_REQUEST_VOTE_RESPONSE,
  MessageType.MESSAGE_TYPE_PRE_VOTE_RESPONSE,
  MessageType.MESSAGE_TYPE_INSTALL_SNAPSHOT_RESPONSE,
]);

/**
 * Which messages may leave while this Ready's write is in flight. A leader whose term and vote
 * stand may send its appends and heartbeats at once (Raft thesis §10.2.1): the core collects
 * messages only at ready(), after the previous write, so none of them carries a commit index that
 * counts the write in flight. Anything that vouches for the write (acks, votes) and everything a
 * node says in a term or with a vote it has not stored yet waits for the sync.
 */
function splitBySync(messages: Message[], leaderMayLeadTheWrite: boolean): { early: Message[]; afterPersist: Message[] } {
  if (!leaderMayLeadTheWrite) return { early: [], afterPersist: messages };
  let vouching = 0;
  for (const m of messages) if (VOUCHING_TYPES.has(m.type)) vouching++;
  if (vouching === 0) return { early: messages, afterPersist: [] };
  const early: Message[] = [];
  const afterPersist: Message[] = [];
  for (const m of messages) (VOUCHING_TYPES.has(m.type) ? afterPersist : early).push(m);
  return { early, afterPersist };
}
