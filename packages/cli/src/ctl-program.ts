// The raftmqctl command tree, built apart from running it so tests can parse arguments without a process.
import { Command, Option } from "commander";
import { addBenchCommand } from "./bench-command.ts";
import { addAccessCommands } from "./ctl-access-commands.ts";
import { addClusterCommands } from "./ctl-cluster-commands.ts";
import { ADDRESSES_ENV, addSecurityOptions, defaultAddresses, positiveInteger } from "./ctl-context.ts";
import { addMessageCommands } from "./ctl-message-commands.ts";
import { addSettingsCommand } from "./ctl-settings-command.ts";
import { addTopologyCommands } from "./ctl-topology-commands.ts";

export function buildCtlProgram(): Command {
  const program = new Command("raftmqctl")
    .description("Administer a raftmq cluster; publish, consume and benchmark.")
    // Global options go before the command: `user add --password` is the new user's, not ours.
    .enablePositionalOptions()
    .configureHelp({ showGlobalOptions: true })
    .addOption(new Option("--addresses <list>", `client addresses of some nodes, host:port,... (env ${ADDRESSES_ENV}; the default is the raftmq dev cluster)`).default(defaultAddresses()))
    .addOption(new Option("--timeout-ms <ms>", "deadline of each call, and how long calls retry an unavailable cluster").default(10_000).argParser(positiveInteger("--timeout-ms")));
  addSecurityOptions(program)
    .addHelpText("after", "\nGlobal options go before the command: raftmqctl --username admin --password-file pw user list")
    .exitOverride()
    .showHelpAfterError();

  addClusterCommands(program);
  addSettingsCommand(program);
  addTopologyCommands(program);
  addMessageCommands(program);
  addAccessCommands(program);
  addBenchCommand(program);
  return program;
}
