export { type CheckHistoryFileResult, checkHistoryFile, TIMELINE_FILE } from "./check-history.ts";
export {
  type CheckOptions,
  type CheckResult,
  check,
  DEFAULT_MAX_ORDER_VIOLATIONS,
  type Duplicate,
  type DuplicatePolicy,
  type FaultWindow,
  type OrderScope,
  type OrderViolation,
  type PublishCounts,
} from "./checker.ts";
export type {
  AckOp,
  CompletionType,
  DeliverOp,
  DrainOp,
  FaultStart,
  FaultStop,
  NemesisF,
  NemesisOp,
  Op,
  OpF,
  OpInput,
  OpType,
  PublishOp,
} from "./history.ts";
export { FAULT_KINDS, TIMEOUT_ERROR } from "./history.ts";
export { HistoryParseError, MalformedHistoryError, RecorderError } from "./history-errors.ts";
export {
  type CompletionExtra,
  DEFAULT_MAX_BUFFERED_BYTES,
  HistoryRecorder,
  type InvokeInput,
  type PendingOp,
  type RecorderOptions,
} from "./history-recorder.ts";
export { type ReadHistoryResult, readHistory, type TruncatedLine } from "./read-history.ts";
export { formatSummary, SUMMARY_FILE, summarize } from "./summary.ts";
export { buildTimeline, type Timeline, type TimelineBucket, type TimelineOptions } from "./timeline.ts";
export { type PlotOptions, renderTimelineSvg, timelineSpec } from "./timeline-plot.ts";
export { amqpUnreachable, ChaosCluster, type ChaosClusterOptions, type NodeCrash } from "./chaos-cluster.ts";
export {
  DEFAULT_SCHEDULE_LIMITS,
  describePlan,
  type FaultPlan,
  isNetworkNemesis,
  type LinkScope,
  NEMESES,
  NETWORK_NEMESES,
  type Nemesis as NemesisName,
  type NetworkNemesis,
  PROCESS_NEMESES,
  parseNemeses,
  planFaults,
  type ScheduledFault,
  type ScheduleLimits,
} from "./fault-schedule.ts";
export { type NamespaceRunOptions, runChaosInNamespaces } from "./net/hub-runner.ts";
export { NamespaceNetwork, type PartitionProbe } from "./net/namespace-network.ts";
export type { NetCommand, SlowLink } from "./net/net-commands.ts";
export type { NetLayout } from "./net/net-layout.ts";
export { type NetworkSupport, probeNetworkSupport } from "./net/network-support.ts";
export { removeNetns, sweepLeftovers } from "./net/netns-cleanup.ts";
export { cutsOf, describePartition, type Partition, PARTITION_SHAPES, type PartitionShape, partitionOf, reachableFrom } from "./net/partition.ts";
export { NetCommandError } from "./net/run-command.ts";
export { RUN_RECORD_FILE, type RunRecord, readRunRecord, RunRecordError } from "./run-record.ts";
export { Nemesis } from "./nemesis.ts";
export {
  CHAOS_CLIENT_KEEPALIVE_MS,
  CHAOS_CLIENT_KEEPALIVE_TIMEOUT_MS,
  type ChaosOptions,
  type ChaosRunResult,
  DEFAULT_VANISHERS,
  HISTORY_FILE,
  runChaos,
} from "./run-chaos.ts";
export {
  checkConsumerLiveness,
  describeLiveness,
  judgeQueues,
  LIVENESS_MARGIN_MS,
  type LivenessCheck,
  type LivenessCheckOptions,
  livenessSettleMs,
  type QueueConsumers,
  wrongQueues,
} from "./consumer-liveness.ts";
export { planVanishers, VANISH_KINDS, VANISHER_PREFETCH, type VanisherPlan, type VanisherReport, type VanisherTarget, type VanishKind, VanishingConsumers } from "./vanishing-consumers.ts";
export { SeededRandom } from "./seeded-random.ts";
export { DEFAULT_WORKLOAD, Workload, type WorkloadOptions, type WorkloadStats } from "./workload.ts";
export { AmqpWorkload, type AmqpWorkloadOptions, type AmqpWorkloadStats, DEFAULT_AMQP_WORKLOAD, type QueueState } from "./amqp-workload.ts";
export { AmqpLink } from "./amqp-link.ts";
export { type ChaosWorkload, duplicatePolicyOf, parseWorkloadKind, WORKLOAD_KINDS, type WorkloadKind } from "./chaos-workload.ts";
