// Structured events the core reports through RaftConfig.logger, for logs and metrics.
import type { ConfChange, Role } from "./types.ts";

export type RaftEvent =
  | { kind: "election-started"; id: number; term: number; preVote: boolean; transfer: boolean }
  | { kind: "became-leader"; id: number; term: number }
  | { kind: "became-follower"; id: number; term: number; leaderId: number }
  | { kind: "stepped-down"; id: number; term: number; reason: "check-quorum" | "removed" | "higher-term" }
  | { kind: "role-changed"; id: number; term: number; role: Role }
  | { kind: "conf-change-applied"; id: number; index: number; change: ConfChange }
  | { kind: "snapshot-sent"; id: number; to: number; index: number; term: number; bytes: number }
  | { kind: "snapshot-installed"; id: number; index: number; term: number }
  | { kind: "leadership-transfer-started"; id: number; term: number; to: number }
  | { kind: "leadership-transfer-aborted"; id: number; term: number; to: number }
  | { kind: "vote-granted"; id: number; term: number; to: number; preVote: boolean }
  | { kind: "vote-rejected"; id: number; term: number; to: number; preVote: boolean; reason: "lease" | "log" | "voted" }
  | { kind: "leader-unreachable"; id: number; term: number; leaderId: number };
