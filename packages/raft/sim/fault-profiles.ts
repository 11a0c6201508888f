// Named mixes of faults the simulator injects. A seed picks one unless a profile is named.

export interface FaultProfile {
  name: string;
  /** Probability each message is lost. */
  dropRate: number;
  /** Probability each message is delivered twice. */
  duplicateRate: number;
  /** Messages wait 0..maxDelayTicks ticks; different delays reorder them. */
  maxDelayTicks: number;
  /** Per tick, while the network is whole, the chance a partition starts. */
  partitionRate: number;
  partitionTicks: [number, number];
  /** Per tick, the chance a live node crashes (at most maxDown at once). */
  crashRate: number;
  maxDown: number;
  restartTicks: [number, number];
  /** Per tick, the chance the leader is asked for a membership change. */
  confChangeRate: number;
  /** Per tick, the chance of a leadership transfer request. */
  transferRate: number;
  /** Per tick, the chance of a client proposal (several may be proposed at once). */
  proposeRate: number;
  /** Each node snapshots and compacts every so many applied entries; 0 disables. */
  snapshotEvery: number;
  /** Chance a crash picks the leader rather than a random node. */
  crashLeaderBias: number;
  /** Bytes of entry data per AppendEntries: small values split batches across messages. */
  maxSizePerMsg: number;
  /**
   * A known bug injected into every node (RaftConfig.unsafeCommitPreviousTerm), so a regression
   * seed can prove it still catches it. No named profile sets it.
   */
  unsafeCommitPreviousTerm?: boolean;
  /**
   * Followers learn at once when their connections to the leader close (it crashed, or a
   * partition cut them from it), as a node does from its transport: RaftNode.leaderUnreachable,
   * then campaignIfLeaderSilent within a tick. Only the LEADER_LOSS_PROFILES set it, so the seeds
   * of FAULT_PROFILES keep their runs.
   */
  leaderLossDetection?: boolean;
}

const base: FaultProfile = {
  name: "base",
  dropRate: 0,
  duplicateRate: 0,
  maxDelayTicks: 0,
  partitionRate: 0,
  partitionTicks: [10, 40],
  crashRate: 0,
  maxDown: 1,
  restartTicks: [5, 40],
  confChangeRate: 0,
  transferRate: 0,
  proposeRate: 0.5,
  snapshotEvery: 0,
  crashLeaderBias: 0,
  maxSizePerMsg: 256,
};

export const FAULT_PROFILES: readonly FaultProfile[] = [
  { ...base, name: "lossy", dropRate: 0.1, duplicateRate: 0.05, maxDelayTicks: 3, snapshotEvery: 25 },
  { ...base, name: "partitions", dropRate: 0.02, maxDelayTicks: 1, partitionRate: 0.03, snapshotEvery: 30 },
  { ...base, name: "crashes", dropRate: 0.02, maxDelayTicks: 2, crashRate: 0.02, maxDown: 2, snapshotEvery: 15 },
  { ...base, name: "membership", dropRate: 0.03, maxDelayTicks: 2, confChangeRate: 0.08, transferRate: 0.01, snapshotEvery: 20 },
  {
    ...base,
    name: "chaos",
    dropRate: 0.08,
    duplicateRate: 0.05,
    maxDelayTicks: 4,
    partitionRate: 0.02,
    crashRate: 0.01,
    maxDown: 2,
    confChangeRate: 0.05,
    transferRate: 0.01,
    snapshotEvery: 12,
  },
  {
    ...base,
    name: "leader-churn",
    dropRate: 0.05,
    maxDelayTicks: 3,
    partitionRate: 0.04,
    partitionTicks: [3, 15],
    crashRate: 0.05,
    maxDown: 2,
    restartTicks: [2, 15],
    crashLeaderBias: 0.8,
    proposeRate: 0.8,
    maxSizePerMsg: 12,
    snapshotEvery: 40,
  },
];

/** Profiles where followers hear of a lost leader at once (the node's fast failover). */
export const LEADER_LOSS_PROFILES: readonly FaultProfile[] = ["crashes", "partitions", "leader-churn", "chaos"].map((name) => {
  const profile = FAULT_PROFILES.find((p) => p.name === name);
  if (profile === undefined) throw new Error(`no fault profile ${name}`);
  return { ...profile, name: `${name}-leader-loss`, leaderLossDetection: true };
});

export function profileNamed(name: string): FaultProfile {
  const all = [...FAULT_PROFILES, ...LEADER_LOSS_PROFILES];
  const found = all.find((p) => p.name === name);
  if (found === undefined) throw new Error(`unknown fault profile "${name}"; known: ${all.map((p) => p.name).join(", ")}`);
  return found;
}

export function profileForSeed(seed: number): FaultProfile {
  const profile = FAULT_PROFILES[seed % FAULT_PROFILES.length];
  if (profile === undefined) throw new Error("no fault profiles");
  return profile;
}
