// raftmqctl status | members add|remove|replace | leader transfer.
import type { NodeStatus } from "@raftmq/client";
import { type Command, Option } from "commander";
import { positiveInteger, withClient } from "./ctl-context.ts";
import { addReplaceCommand } from "./ctl-replace-command.ts";
import { printJson, printTable, println } from "./terminal-output.ts";

export function addClusterCommands(program: Command): void {
  program
    .command("status")
    .description("every member as the leader sees it (id, role, leader, addresses, match index, lag, reachable), and nodes that did not answer")
    .option("--json", "print the status of every node as JSON")
    .action(async (o: { json?: boolean }, cmd: Command) => {
      await withClient(cmd, async (client) => {
        const { nodes, failures } = await client.clusterStatus();
        if (o.json === true) {
          printJson({ nodes, failures });
          return;
        }
        const leader: NodeStatus | undefined = nodes.find((n) => n.role === "leader");
        const view = leader ?? nodes[0];
        const roleOf = new Map(nodes.map((n) => [n.nodeId, n.role]));
        if (view === undefined) return;
        printTable(
          ["id", "role", "leader", "client address", "peer address", "match", "lag", "reachable"],
          view.members.map((m) => [
            m.id,
            `${m.role}${roleOf.has(m.id) ? ` (${roleOf.get(m.id)})` : ""}`,
            m.leader ? "yes" : "",
            m.clientAddress,
            m.peerAddress,
            leader === undefined ? "-" : m.matchIndex,
            leader === undefined ? "-" : m.lag,
            m.reachable || m.leader ? "yes" : "no",
          ]),
        );
        println(
          leader === undefined
            ? `no leader (as seen by node ${view.nodeId}, term ${view.term})`
            : `leader: node ${leader.nodeId} at ${leader.address}, term ${leader.term}, commit ${leader.commitIndex}, version ${leader.version}`,
        );
        for (const f of failures) println(`not answering: ${f.address} (${f.error})`);
      });
    });

  const members = program.command("members").description("change the cluster's membership");
  members
    .command("add")
    .description("add a node as a learner; the leader promotes it to voter once it has caught up (start it with --join first)")
    .argument("<id>", "the new node's id", positiveInteger("id"))
    .argument("<peer-address>", "its peer transport address, host:port")
    .argument("<client-address>", "its client API address, host:port")
    .action(async (id: number, peer: string, clientAddress: string, _o: unknown, cmd: Command) => {
      await withClient(cmd, async (client) => {
        const list = await client.addMember(id, peer, clientAddress);
        println(`added node ${id}; members: ${list.map((m) => `${m.id} (${m.role})`).join(", ")}`);
      });
    });
  members
    .command("remove")
    .description("remove a node from the cluster")
    .argument("<id>", "the node's id", positiveInteger("id"))
    .action(async (id: number, _o: unknown, cmd: Command) => {
      await withClient(cmd, async (client) => {
        const list = await client.removeMember(id);
        println(`removed node ${id}; members: ${list.map((m) => `${m.id} (${m.role})`).join(", ")}`);
      });
    });

  addReplaceCommand(members);

  program
    .command("leader")
    .description("leadership")
    .command("transfer")
    .description("move leadership to another voter")
    .addOption(new Option("--to <id>", "target node id (default: the most caught-up voter)").argParser(positiveInteger("--to")))
    .action(async (o: { to?: number }, cmd: Command) => {
      await withClient(cmd, async (client) => {
        const leader = await client.transferLeadership(o.to ?? 0);
        println(`leader: node ${leader}`);
      });
    });
}
