// `raftmqctl`: administer a raftmq cluster, publish, consume and benchmark from the shell.
import { AuthenticationError, PermissionDeniedError, RaftmqError, UnavailableError } from "@raftmq/client";
import { CommanderError } from "commander";
import { buildCtlProgram } from "./ctl-program.ts";

// grpc-js names the TLS server by the address even when it is an IP (grpc/grpc-node#1919), and
// Node warns about that (DEP0123) on each run against 127.0.0.1: noise a user cannot act on.
process.removeAllListeners("warning");
process.on("warning", (warning: Error & { code?: string }) => {
  if (warning.code !== "DEP0123") process.stderr.write(`raftmqctl: ${warning.name}: ${warning.message}\n`);
});

function describe(err: unknown): string {
  if (err instanceof UnavailableError) return `cannot reach the cluster: ${err.message}`;
  if (err instanceof AuthenticationError) return `authentication failed: ${err.details} (check --username and --password-file, or the client certificate)`;
  if (err instanceof PermissionDeniedError) return `permission denied: ${err.details}`;
  if (err instanceof RaftmqError) return err.details;
  return err instanceof Error ? err.message : String(err);
}

try {
  await buildCtlProgram().parseAsync(process.argv);
  process.exit(0);
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode);
  process.stderr.write(`raftmqctl: ${describe(err)}\n`);
  process.exit(1);
}
