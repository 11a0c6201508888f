// Everything the broker state machine holds. Snapshots encode exactly this; every Map here is
// iterated in insertion order, which is the same on every node because the same commands insert
// in the same order, and restore re-inserts in snapshot order.
import type { Permissions, User } from "./access-control.ts";
import type { QueuedMessage } from "./broker-message.ts";
import { DedupWindows } from "./dedup-window.ts";
import type { BrokerLimits } from "./limits.ts";
import { INITIAL_MACHINE_VERSION } from "./machine-version.ts";
import type { Consumer, Queue } from "./queue.ts";
import { DEFAULT_VHOST, Vhost } from "./vhost.ts";

export interface GetDelivery {
  readonly queue: Queue;
  readonly message: QueuedMessage;
}

/** A client session: what goes when it goes down. */
export interface Session {
  readonly id: string;
  readonly consumers: Set<string>;
  /** Unsettled basic.get deliveries by tag (tags are broker-wide, so never reused). */
  readonly gets: Map<number, GetDelivery>;
  readonly exclusiveQueues: Set<Queue>;
}

export interface BrokerState {
  /** The limits in force: changed only by SetClusterSettings, so alike on every node at every index. */
  settings: BrokerLimits;
  /** The state-machine version in force (machine-version.ts); it never goes down. */
  machineVersion: number;
  /** Log time: the largest batch timestamp seen. */
  now: number;
  /** Log time of the last sweep for expiries. */
  lastSweepAt: number;
  nextMessageId: number;
  /** The key the next stored body gets (BodyRef.bodyKey). */
  nextBodyKey: number;
  nextQueueSeq: number;
  /** Counter for server-named queues (amq.gen-N). */
  nextGeneratedName: number;
  nextGetTag: number;
  bindingCount: number;
  /** Exchanges and queues, by vhost; "/" is always here. */
  readonly vhosts: Map<string, Vhost>;
  /** vhosts.get("/"), which is never deleted: most commands name it. */
  readonly defaultVhost: Vhost;
  readonly consumers: Map<string, Consumer>;
  readonly sessions: Map<string, Session>;
  readonly dedup: DedupWindows;
  /**
   * Queues whose dispatch stopped at a no_ack consumer's per-apply share with messages still
   * ready: the next apply goes on with them. Its order carries no meaning (it is used sorted).
   */
  readonly backlog: Set<Queue>;
  readonly users: Map<string, User>;
  /** By user, then vhost. */
  readonly permissions: Map<string, Map<string, Permissions>>;
  /** Counts user, vhost and permission changes applied, so readers can tell a cache is stale. */
  accessVersion: number;
}

export function emptyState(limits: BrokerLimits): BrokerState {
  const defaultVhost = Vhost.withBuiltins(DEFAULT_VHOST);
  return {
    settings: Object.freeze({ ...limits }),
    machineVersion: INITIAL_MACHINE_VERSION,
    now: 0,
    lastSweepAt: 0,
    nextMessageId: 1,
    nextBodyKey: 1,
    nextQueueSeq: 1,
    nextGeneratedName: 1,
    nextGetTag: 1,
    bindingCount: 0,
    vhosts: new Map([[DEFAULT_VHOST, defaultVhost]]),
    defaultVhost,
    consumers: new Map(),
    sessions: new Map(),
    dedup: new DedupWindows(limits.dedupWindow, limits.maxProducers, limits.producerIdleMs),
    backlog: new Set(),
    users: new Map(),
    permissions: new Map(),
    accessVersion: 0,
  };
}
