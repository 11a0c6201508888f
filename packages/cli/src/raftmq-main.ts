// `raftmq`: start one node (`raftmq node`, the default) or a local cluster (`raftmq dev`), or make
// certificates (`raftmq cert`).
import { pathToFileURL } from "node:url";
import { buildCommand } from "@raftmq/server";
import { Command, CommanderError, Option } from "commander";
import { addCertCommand } from "./cert-command.ts";
import { runDevCluster } from "./dev-cluster.ts";
import { DEV_AMQP_PORT_BASE, DEV_AMQPS_PORT_BASE, DEV_CLIENT_PORT_BASE, DEV_HTTP_PORT_BASE, DEV_NODES, DEV_PEER_PORT_BASE, DEV_TLS_CLIENT_PORT_BASE } from "./dev-layout.ts";
import { nodeMainPath } from "./node-entry.ts";

function integerOption(name: string, min: number, max: number): (raw: string) => number {
  return (raw) => {
    const n = Number(raw);
    if (!Number.isSafeInteger(n) || n < min || n > max) throw new CommanderError(2, "raftmq.invalidArgument", `${name} must be an integer in [${min}, ${max}], got ${JSON.stringify(raw)}`);
    return n;
  };
}

const program = new Command("raftmq").description("raftmq, a Raft-replicated message broker: run a node or a local cluster; make its certificates.").exitOverride();

// The node's flags come from the server's option table, so they cannot drift from what the node reads.
const node = buildCommand()
  .name("node")
  .summary("start one node (every option also reads RAFTMQ_<NAME> and a --config file)")
  .addHelpText(
    "after",
    "\nExit codes:\n" +
      "  0   stopped by a signal, or removed from the cluster\n" +
      "  1   failed (restarting may help)\n" +
      "  2   invalid configuration\n" +
      "  65  the data directory is corrupt: the node served, voted and acknowledged nothing on it.\n" +
      "      Do not restart it. Its last log line (event \"data-corrupt\") names the damage and the command:\n" +
      "        raftmqctl --addresses <healthy members> members replace <id> <new-id> <peer-address> <client-address> --data-dir <dir>\n" +
      "      then start it again with --node-id <new-id> --join.\n",
  )
  .action(async () => {
    const argv = process.argv.slice(2);
    const args = argv[0] === "node" ? argv.slice(1) : argv;
    const entry = nodeMainPath();
    // node-main owns the process from here: it reads its arguments, handles signals and exits.
    process.argv = [process.argv[0] ?? process.execPath, entry, ...args];
    await import(pathToFileURL(entry).href);
  });
program.addCommand(node, { isDefault: true });

program
  .command("dev")
  .description(
    "start a local cluster of child node processes on 127.0.0.1 with fixed ports and data under --data-dir; " +
      "prints the endpoints, the leader and commands to try. Ctrl-C (SIGINT) or SIGTERM stops every node; running it again keeps the data. " +
      "The nodes use mutual TLS with a throwaway CA made in <data-dir>/certs, serve TLS client ports and plaintext ones on 127.0.0.1, and create the user guest/guest (loopback only).",
  )
  .addOption(new Option("--data-dir <dir>", "node N keeps its data in <dir>/node-N and its log in <dir>/node-N.log").default("data"))
  .addOption(new Option("--nodes <count>", "number of nodes").default(DEV_NODES).argParser(integerOption("--nodes", 1, 7)))
  .addOption(
    new Option("--client-port <port>", "plaintext client port of node 1 (127.0.0.1 only); node N uses port + N - 1").default(DEV_CLIENT_PORT_BASE).argParser(integerOption("--client-port", 1, 65535)),
  )
  .addOption(
    new Option("--tls-client-port <port>", "TLS client port of node 1; node N uses port + N - 1").default(DEV_TLS_CLIENT_PORT_BASE).argParser(integerOption("--tls-client-port", 1, 65535)),
  )
  .addOption(new Option("--peer-port <port>", "peer port of node 1; node N uses port + N - 1").default(DEV_PEER_PORT_BASE).argParser(integerOption("--peer-port", 1, 65535)))
  .addOption(new Option("--http-port <port>", "metrics/health port of node 1; node N uses port + N - 1").default(DEV_HTTP_PORT_BASE).argParser(integerOption("--http-port", 1, 65535)))
  .addOption(
    new Option("--amqp-port <port>", "AMQP 0-9-1 port of node 1 (127.0.0.1 only); node N uses port + N - 1").default(DEV_AMQP_PORT_BASE).argParser(integerOption("--amqp-port", 1, 65535)),
  )
  .addOption(new Option("--amqps-port <port>", "AMQP 0-9-1 over TLS port of node 1; node N uses port + N - 1").default(DEV_AMQPS_PORT_BASE).argParser(integerOption("--amqps-port", 1, 65535)))
  .addOption(new Option("--log-level <level>", "log level of the nodes (their logs go to the log files)").default("info"))
  .action(async (o: { dataDir: string; nodes: number; clientPort: number; tlsClientPort: number; peerPort: number; httpPort: number; amqpPort: number; amqpsPort: number; logLevel: string }) => {
    process.exitCode = await runDevCluster({
      dataDir: o.dataDir,
      nodes: o.nodes,
      ports: { client: o.clientPort, tlsClient: o.tlsClientPort, peer: o.peerPort, http: o.httpPort, amqp: o.amqpPort, amqps: o.amqpsPort },
      logLevel: o.logLevel,
    });
  });

addCertCommand(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode);
  process.stderr.write(`raftmq: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
