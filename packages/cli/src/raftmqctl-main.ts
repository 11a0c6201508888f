// `raftmqctl`: administer a raftmq cluster, publish, consume and benchmark from the shell.
import { RaftmqError, UnavailableError } from "@raftmq/client";
import { Command, CommanderError, Option } from "commander";
import { addBenchCommand } from "./bench-command.ts";
import { addClusterCommands } from "./ctl-cluster-commands.ts";
import { ADDRESSES_ENV, defaultAddresses, positiveInteger } from "./ctl-context.ts";
import { addMessageCommands } from "./ctl-message-commands.ts";
import { addTopologyCommands } from "./ctl-topology-commands.ts";

const program = new Command("raftmqctl")
  .description("Administer a raftmq cluster; publish, consume and benchmark.")
  .addOption(new Option("--addresses <list>", `client addresses of some nodes, host:port,... (env ${ADDRESSES_ENV}; the default is the raftmq dev cluster)`).default(defaultAddresses()))
  .addOption(new Option("--timeout-ms <ms>", "deadline of each call, and how long calls retry an unavailable cluster").default(10_000).argParser(positiveInteger("--timeout-ms")))
  .exitOverride()
  .showHelpAfterError();

addClusterCommands(program);
addTopologyCommands(program);
addMessageCommands(program);
addBenchCommand(program);

function describe(err: unknown): string {
  if (err instanceof UnavailableError) return `cannot reach the cluster: ${err.message}`;
  if (err instanceof RaftmqError) return err.details;
  return err instanceof Error ? err.message : String(err);
}

try {
  await program.parseAsync(process.argv);
  process.exit(0);
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode);
  process.stderr.write(`raftmqctl: ${describe(err)}\n`);
  process.exit(1);
}
