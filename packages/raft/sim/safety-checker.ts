// The Raft safety properties, checked as the simulation runs. Each check throws a
// SafetyViolation naming the property, so a failing seed says what broke.
import type { Entry } from "../src/index.ts";
import { hashBytes } from "./sim-app.ts";
import type { SimStorage } from "./sim-storage.ts";

export class SafetyViolation extends Error {
  constructor(
    readonly property: string,
    detail: string,
  ) {
    super(`${property}: ${detail}`);
    this.name = "SafetyViolation";
  }
}

interface LogRecord {
  dataHash: number;
  type: number;
  prevTerm: number | undefined;
  node: number;
}

export class SafetyChecker {
  private readonly leaderOfTerm = new Map<number, number>();
  /** index -> term -> what was persisted there (by any node). */
  private readonly persisted = new Map<number, Map<number, LogRecord>>();
  /** index -> the entry's term and the state hash after applying it (by any node). */
  readonly appliedAt = new Map<number, { term: number; hash: number; node: number }>();
  maxApplied = 0;
  private readonly checkedLeaders = new Set<string>();

  /** Election safety: at most one leader per term. */
  observeLeader(id: number, term: number): void {
    const known = this.leaderOfTerm.get(term);
    if (known === undefined) this.leaderOfTerm.set(term, id);
    else if (known !== id) throw new SafetyViolation("election safety", `nodes ${known} and ${id} both lead term ${term}`);
  }

  leadersSeen(): number {
    return this.leaderOfTerm.size;
  }

  /**
   * Log matching: entries with the same index and term hold the same data and follow an entry
   * of the same term (which, by induction, makes the whole prefixes equal).
   */
  observePersisted(node: number, entries: readonly Entry[], storage: SimStorage): void {
    for (const entry of entries) {
      let prevTerm: number | undefined;
      try {
        prevTerm = entry.index > 1 ? storage.term(entry.index - 1) : 0;
      } catch {
        prevTerm = undefined;
      }
      let byTerm = this.persisted.get(entry.index);
      if (byTerm === undefined) {
        byTerm = new Map();
        this.persisted.set(entry.index, byTerm);
      }
      const record: LogRecord = { dataHash: hashBytes(entry.data), type: entry.type, prevTerm, node };
      const known = byTerm.get(entry.term);
      if (known === undefined) {
        byTerm.set(entry.term, record);
        continue;
      }
      if (known.dataHash !== record.dataHash || known.type !== record.type) {
        throw new SafetyViolation("log matching", `index ${entry.index} term ${entry.term} holds different data on nodes ${known.node} and ${node}`);
      }
      if (known.prevTerm !== undefined && prevTerm !== undefined && known.prevTerm !== prevTerm) {
        throw new SafetyViolation(
          "log matching",
          `index ${entry.index} term ${entry.term} follows term ${known.prevTerm} on node ${known.node} but term ${prevTerm} on node ${node}`,
        );
      }
      if (known.prevTerm === undefined) known.prevTerm = prevTerm;
    }
  }

  /** State machine safety: no two nodes apply different entries (or reach different states) at an index. */
  /** Returns whether this is the first time any node applied `index`. */
  observeApplied(node: number, index: number, term: number, hash: number): boolean {
    const known = this.appliedAt.get(index);
    if (known === undefined) {
      this.appliedAt.set(index, { term, hash, node });
      if (index > this.maxApplied) this.maxApplied = index;
      return true;
    }
    if (known.term !== term || known.hash !== hash) {
      throw new SafetyViolation(
        "state machine safety",
        `index ${index}: node ${known.node} applied term ${known.term} (state ${known.hash}), node ${node} term ${term} (state ${hash})`,
      );
    }
    return false;
  }

  observeSnapshotRestored(node: number, index: number, hash: number): void {
    const known = this.appliedAt.get(index);
    if (known !== undefined && known.hash !== hash) {
      throw new SafetyViolation("state machine safety", `node ${node} restored a snapshot at ${index} with state ${hash}, applied state is ${known.hash}`);
    }
  }

  /**
   * Leader completeness: a leader's log holds every entry committed (applied anywhere) before
   * its term began. Checked once per leader and term, on its persisted log.
   */
  checkLeaderCompleteness(node: number, term: number, storage: SimStorage): void {
    const key = `${node}:${term}`;
    if (this.checkedLeaders.has(key)) return;
    this.checkedLeaders.add(key);
    const first = storage.firstIndex();
    for (const [index, applied] of this.appliedAt) {
      if (applied.term >= term || index < first) continue;
      let held: number | undefined;
      try {
        held = storage.term(index);
      } catch {
        held = undefined;
      }
      if (held !== applied.term) {
        throw new SafetyViolation(
          "leader completeness",
          `node ${node} leads term ${term} without committed entry ${index} (term ${applied.term}); it holds ${held === undefined ? "nothing" : `term ${held}`} there`,
        );
      }
    }
  }
}
