// Finds the peer address of a member this node has no link to, by asking the members it knows
// (Cluster.Status on their peer ports, over mutual TLS): a node joining a cluster led by a member
// it was not configured with learns the leader's address from the membership, never from what a
// stream announces. At most one lookup runs at a time, and at most one starts per interval.
import * as grpc from "@grpc/grpc-js";
import type { raftmq } from "@raftmq/proto";
import { clusterServiceDefinition } from "@raftmq/proto/grpc";

const MAX_WANTED = 64;

export interface MemberLookupOptions {
  selfId: number;
  /** Peer addresses of the members this node knows. */
  seeds: () => string[];
  credentials: grpc.ChannelCredentials;
  channelOptions?: grpc.ChannelOptions;
  found: (id: number, peerAddress: string) => void;
  intervalMs?: number;
  timeoutMs?: number;
}

export class MemberLookup {
  private running = false;
  private lastStart = Number.NEGATIVE_INFINITY;
  private stopped = false;
  private readonly wanted = new Set<number>();

  constructor(private readonly options: MemberLookupOptions) {}

  /** Looks `id` up among the members, unless a lookup ran in the last interval. */
  find(id: number): void {
    if (this.stopped || id === this.options.selfId) return;
    // A cluster has a handful of members: more unknown senders than this at once are not members.
    if (this.wanted.size < MAX_WANTED) this.wanted.add(id);
    const now = Date.now();
    if (this.running || now - this.lastStart < (this.options.intervalMs ?? 1000)) return;
    this.running = true;
    this.lastStart = now;
    void this.lookup().finally(() => {
      this.running = false;
    });
  }

  stop(): void {
    this.stopped = true;
  }

  private async lookup(): Promise<void> {
    for (const address of this.options.seeds()) {
      if (this.stopped || this.wanted.size === 0) return;
      let status: raftmq.v1.StatusResponse.$Properties;
      try {
        status = await this.status(address);
      } catch {
        continue;
      }
      for (const m of status.members ?? []) {
        const id = Number(m.id ?? 0);
        if (this.wanted.has(id) && (m.peerAddress ?? "") !== "") {
          this.wanted.delete(id);
          this.options.found(id, m.peerAddress ?? "");
        }
      }
    }
    // Whoever was not found is not a member: nothing links to it.
    this.wanted.clear();
  }

  private status(address: string): Promise<raftmq.v1.StatusResponse.$Properties> {
    const def = clusterServiceDefinition.Status;
    const client = new grpc.Client(address, this.options.credentials, this.options.channelOptions ?? {});
    return new Promise<raftmq.v1.StatusResponse.$Properties>((resolve, reject) => {
      client.makeUnaryRequest(def.path, def.requestSerialize, def.responseDeserialize, {}, new grpc.Metadata(), { deadline: Date.now() + (this.options.timeoutMs ?? 2000) }, (err, value) =>
        err !== null || value === undefined ? reject(err ?? new Error("no status")) : resolve(value),
      );
    }).finally(() => client.close());
  }
}
