// What a node does when its data directory is damaged: it never serves, votes or acknowledges
// on it. It says once, in one structured line, what is damaged and how to replace the node,
// and exits with a code of its own so a supervisor can tell this from a crash worth restarting.
import { CorruptionError } from "@raftmq/storage";
import type { NodeConfig } from "./node-config.ts";

/** sysexits' EX_DATAERR: restarting will not help; the operator replaces the node. */
export const DATA_CORRUPT_EXIT_CODE = 65;

/** The CorruptionError behind `error` (itself or somewhere in its causes), or null. */
export function findCorruption(error: unknown): CorruptionError | null {
  const seen = new Set<unknown>();
  for (let e: unknown = error; e instanceof Error && !seen.has(e); e = e.cause) {
    if (e instanceof CorruptionError) return e;
    seen.add(e);
  }
  return null;
}

export interface CorruptionReport {
  event: "data-corrupt";
  record: string;
  dataDir: string;
  detail: string;
  exitCode: number;
  /** The command that wipes this node and adds it back under a new id. */
  command: string;
  msg: string;
}

/** The log line for damage found `when` ("at startup", "while running"). */
export function corruptionReport(corruption: CorruptionError, config: NodeConfig, when: string): CorruptionReport {
  const healthy = config.initialCluster.filter((m) => m.id !== config.nodeId).map((m) => m.clientAddress);
  const addresses = healthy.length > 0 ? healthy.join(",") : "<client address of a healthy member>";
  const command =
    `raftmqctl --addresses ${addresses} members replace ${config.nodeId} <new-id> ` +
    `${config.advertiseHost}:${config.peerPort} ${config.advertiseHost}:${config.clientPort} --data-dir ${config.dataDir}`;
  return {
    event: "data-corrupt",
    record: corruption.record,
    dataDir: corruption.dir,
    detail: corruption.message,
    exitCode: DATA_CORRUPT_EXIT_CODE,
    command,
    msg:
      `data directory ${corruption.dir} is corrupt (${corruption.record}), found ${when}: this node will not serve, vote or acknowledge on it. ` +
      `Replace it (removes node ${config.nodeId}, wipes the directory, adds it back as a new member): ${command}; ` +
      `then start it with --node-id <new-id> --join`,
  };
}
