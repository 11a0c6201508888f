// A member removed from the cluster may never apply its own removal: the leader stops replicating
// to it once the change commits. A node that has heard from no leader for a while asks the other
// members for their status; if one that knows a leader no longer lists this node, it was removed.
import * as grpc from "@grpc/grpc-js";
import type { raftmq } from "@raftmq/proto";
import { clusterServiceDefinition } from "@raftmq/proto/grpc";

export interface RemovalProbeHost {
  selfId: number;
  /** Whether this node counts itself a member (a node waiting to be added does not). */
  isMember(): boolean;
  leaderId(): number;
  peerAddresses(): string[];
  removed(): void;
  /** Of the Status calls to peers (mutual TLS with this node's certificate, unless insecure). */
  credentials?: grpc.ChannelCredentials;
  channelOptions?: grpc.ChannelOptions;
}

export class RemovalProbe {
  private leaderlessSince = 0;
  private timer: NodeJS.Timeout | null = null;
  private probing = false;

  constructor(
    private readonly host: RemovalProbeHost,
    /** Time without a leader before asking the others. */
    private readonly patienceMs: number,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.check(), this.intervalMs);
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  private async check(): Promise<void> {
    if (this.host.leaderId() !== 0 || !this.host.isMember()) {
      this.leaderlessSince = 0;
      return;
    }
    const now = Date.now();
    if (this.leaderlessSince === 0) this.leaderlessSince = now;
    if (now - this.leaderlessSince < this.patienceMs || this.probing) return;
    this.probing = true;
    try {
      const answers = await Promise.all(this.host.peerAddresses().map((a) => status(a, this.intervalMs, this.host.credentials ?? grpc.credentials.createInsecure(), this.host.channelOptions ?? {}).catch(() => null)));
      const removed = answers.some((s) => {
        const members = s?.members ?? [];
        return s != null && Number(s.leaderId ?? 0) !== 0 && members.length > 0 && !members.some((m) => Number(m.id) === this.host.selfId);
      });
      if (removed && this.timer !== null) {
        this.stop();
        this.host.removed();
      }
    } finally {
      this.probing = false;
    }
  }
}

function status(address: string, timeoutMs: number, credentials: grpc.ChannelCredentials, channelOptions: grpc.ChannelOptions): Promise<raftmq.v1.StatusResponse.$Properties> {
  const def = clusterServiceDefinition.Status;
  const client = new grpc.Client(address, credentials, channelOptions);
  return new Promise<raftmq.v1.StatusResponse.$Properties>((resolve, reject) => {
    client.makeUnaryRequest(def.path, def.requestSerialize, def.responseDeserialize, {}, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, value) =>
      err !== null || value === undefined ? reject(err ?? new Error("no status")) : resolve(value),
    );
  }).finally(() => client.close());
}
