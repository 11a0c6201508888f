export { type CheckHistoryFileResult, checkHistoryFile, TIMELINE_FILE } from "./check-history.ts";
export {
  type CheckOptions,
  type CheckResult,
  check,
  DEFAULT_MAX_ORDER_VIOLATIONS,
  type Duplicate,
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
