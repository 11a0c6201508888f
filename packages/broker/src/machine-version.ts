// The state-machine version (RabbitMQ Ra's machine version): which semantics apply an entry. A
// cluster upgraded node by node runs old and new code side by side, and every node must still
// answer every entry alike; so new semantics take effect only from the entry that moves the
// version in force (SetClusterSettings), never from the code a node happens to run.

/**
 * The highest version this code applies. A change to what apply answers for the same state and
 * command (a new rule, a changed default or bound) goes under a new version, and apply branches on
 * the version in force until the old one is no longer supported.
 */
export const MACHINE_VERSION = 7;

// What each version applies:
//   1  exchanges, queues, bindings, consumers, idempotent producers, cluster settings.
//   2  virtual hosts, users and permissions (version-gate.ts refuses them under 1).
//   3  the request limits among the cluster settings (cluster-settings.ts refuses them in entries
//      of 2 and older). Apply answers every command as under 2: only the front end reads them.
//   4  AckTags, many single acks of one consumer in one command (version-gate.ts refuses it under 3).
//   5  Publish.retry: a retry of a producer with no record, or below its record, answers
//      OUTCOME_UNKNOWN instead of enqueuing (ignored under 4).
//   6  Bind/Unbind.destination_exchange: exchange-to-exchange bindings, routed recursively
//      (version-gate.ts refuses them under 5; older code would ignore the field).
//   7  Snapshots write the ready messages never taken as columns (snapshot.ts); apply answers
//      every command as under 6. Older code would skip the columns: it refuses the snapshot by
//      its version instead.

/** The version of a state that never applied SetClusterSettings, and of snapshots written before versions. */
export const INITIAL_MACHINE_VERSION = 1;

/**
 * An entry or snapshot needs a newer state machine than this code. Applying it anyway would answer
 * differently from the nodes that can, so the node must stop (and be upgraded) instead.
 */
export class UnsupportedMachineVersionError extends Error {
  override name = "UnsupportedMachineVersionError";

  constructor(
    readonly required: number,
    readonly supported: number,
    /** What asked for it: "entry 42" or "snapshot". */
    readonly source: string,
  ) {
    super(`${source} needs state-machine version ${required}, and this node's code applies versions up to ${supported}: upgrade this node`);
  }
}

/** Throws UnsupportedMachineVersionError unless this code applies `version`. */
export function requireMachineVersion(version: number, source: string): void {
  if (version > MACHINE_VERSION) throw new UnsupportedMachineVersionError(version, MACHINE_VERSION, source);
}
