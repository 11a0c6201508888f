// Where the contract's .proto files are at run time, for code that loads them itself (gRPC
// server reflection). `pnpm gen` copies them from the repository's proto/ into the package.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** The include directory: the files below are relative to it. */
export const PROTO_INCLUDE_DIR = fileURLToPath(new URL("../gen/proto", import.meta.url));

/** The contract's files, services first. */
export const PROTO_FILES = ["raftmq/v1/broker.proto", "raftmq/v1/cluster.proto", "raftmq/v1/access.proto", "raftmq/v1/types.proto", "raftmq/v1/raft.proto"] as const;

/** Throws with the fix when the copies are missing (the package was not generated). */
export function assertProtoFilesPresent(): void {
  const missing = PROTO_FILES.filter((f) => !existsSync(`${PROTO_INCLUDE_DIR}/${f}`));
  if (missing.length > 0) throw new Error(`the .proto files ${missing.join(", ")} are missing from ${PROTO_INCLUDE_DIR}; run \`pnpm gen\``);
}
