// A small in-process cluster for scenario tests: real RaftNodes on MemoryStorage, messages
// queued in FIFO order and delivered when a test says so, with drop rules for partitions.
import { MemoryStorage, createPrng, RaftNode, type RaftConfig, type Entry, type Message, EntryType } from "../src/index.ts";

export interface TestNode {
  id: number;
  raft: RaftNode;
  storage: MemoryStorage;
  applied: Entry[];
  readStates: { index: number; context: Uint8Array }[];
}

export type ClusterOptions = Partial<Omit<RaftConfig, "id" | "random">> & { seed?: number };

export class Cluster {
  readonly nodes = new Map<number, TestNode>();
  queue: Message[] = [];
  /** Messages for which this returns true are dropped in delivery. */
  dropIf: (m: Message) => boolean = () => false;
  private readonly options: ClusterOptions;
  private seed: number;

  constructor(voters: number[], options: ClusterOptions = {}) {
    this.options = options;
    this.seed = options.seed ?? 1;
    for (const id of [...voters, ...(options.learners ?? [])]) this.addNode(id, { peers: voters, learners: options.learners ?? [] });
  }

  addNode(id: number, extra: Partial<RaftConfig> = {}, storage = new MemoryStorage()): TestNode {
    const raft = new RaftNode({ ...this.options, ...extra, id, random: createPrng(this.seed++ * 7919 + id) }, storage);
    const node: TestNode = { id, raft, storage, applied: [], readStates: [] };
    this.nodes.set(id, node);
    return node;
  }

  /** Restarts a node from its storage, as after a crash. */
  restart(id: number): TestNode {
    const old = this.node(id);
    const raft = new RaftNode({ ...this.options, id, random: createPrng(this.seed++ * 7919 + id) }, old.storage);
    const node: TestNode = { id, raft, storage: old.storage, applied: [], readStates: [] };
    this.nodes.set(id, node);
    return node;
  }

  node(id: number): TestNode {
    const node = this.nodes.get(id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  raft(id: number): RaftNode {
    return this.node(id).raft;
  }

  /** Persists, sends and applies each node's Ready once; returns whether any node had one. */
  processReadies(): boolean {
    let any = false;
    for (const node of this.nodes.values()) {
      if (!node.raft.hasReady()) continue;
      any = true;
      const rd = node.raft.ready();
      if (rd.snapshot !== null) node.storage.applySnapshot(rd.snapshot);
      node.storage.append(rd.entries);
      if (rd.hardState !== null) node.storage.setHardState(rd.hardState);
      this.queue.push(...rd.messages, ...rd.messagesAfterPersist);
      node.applied.push(...rd.committedEntries);
      node.readStates.push(...rd.readStates);
      node.raft.advance(rd);
    }
    return any;
  }

  /** Delivers queued messages (subject to dropIf) and processes Readies until all is quiet. */
  stabilize(maxRounds = 1000): void {
    for (let round = 0; round < maxRounds; round++) {
      const worked = this.processReadies();
      const batch = this.queue;
      this.queue = [];
      for (const m of batch) this.deliver(m);
      if (!worked && batch.length === 0) return;
    }
    throw new Error("cluster did not stabilize");
  }

  deliver(m: Message): void {
    const target = this.nodes.get(m.to);
    if (target === undefined || this.dropIf(m)) return;
    target.raft.step(m);
  }

  /** Collects the messages the nodes want to send now without delivering them. */
  takeMessages(): Message[] {
    this.processReadies();
    const out = this.queue;
    this.queue = [];
    return out;
  }

  tick(ids: number[] = [...this.nodes.keys()], times = 1): void {
    for (let i = 0; i < times; i++) for (const id of ids) this.raft(id).tick();
  }

  /** Ticks everyone, stabilizing after each tick, `times` times. */
  tickAndStabilize(times: number): void {
    for (let i = 0; i < times; i++) {
      this.tick();
      this.stabilize();
    }
  }

  isolate(id: number): void {
    this.dropIf = (m) => m.from === id || m.to === id;
  }

  partition(...groups: number[][]): void {
    const groupOf = new Map<number, number>();
    groups.forEach((group, i) => {
      for (const id of group) groupOf.set(id, i);
    });
    this.dropIf = (m) => groupOf.get(m.from) !== groupOf.get(m.to);
  }

  heal(): void {
    this.dropIf = () => false;
  }

  elect(id: number): void {
    this.raft(id).campaign();
    this.stabilize();
  }

  leaders(): number[] {
    return [...this.nodes.values()].filter((n) => n.raft.status().role === "leader").map((n) => n.id);
  }

  /** The data of applied NORMAL entries with data, as strings. */
  appliedData(id: number): string[] {
    return this.node(id)
      .applied.filter((e) => e.type === EntryType.ENTRY_TYPE_NORMAL && e.data.length > 0)
      .map((e) => new TextDecoder().decode(e.data));
  }
}

export function bytes(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

