// raftmqctl members replace: the way back for a node whose data directory is corrupt. It checks
// the directory, removes the node's old id through a healthy member, wipes the directory and
// adds the node back as a learner under a new id; started with --join, the node catches up and
// the leader promotes it to voter, so the cluster ends with as many voters as before.
import type { MemberInfo, RaftmqClient } from "@raftmq/client";
import { type Command, Option } from "commander";
import { positiveInteger, withClient } from "./ctl-context.ts";
import { println } from "./terminal-output.ts";

/** A refusal: nothing was changed past the step it names. */
export class ReplaceRefusedError extends Error {
  override name = "ReplaceRefusedError";
}

interface ReplaceOptions {
  dataDir: string;
  force?: boolean;
}

/** The server's data-directory checks, loaded only by this command: the other commands stay light. */
async function dataVerification(): Promise<Pick<typeof import("@raftmq/server"), "inspectDataDir" | "wipeDataDir">> {
  return import("@raftmq/server");
}

function describeMembers(list: readonly MemberInfo[]): string {
  return list.map((m) => `${m.id} (${m.role})`).join(", ");
}

async function checkDataDir(dir: string, force: boolean): Promise<void> {
  const { inspectDataDir } = await dataVerification();
  const verdict = await inspectDataDir(dir);
  switch (verdict.kind) {
    case "absent":
      println(`step 1/4: ${dir} is empty or absent: nothing to wipe`);
      return;
    case "foreign":
      if (!force) {
        throw new ReplaceRefusedError(
          `${dir} does not look like a raftmq data directory${verdict.strangers.length > 0 ? ` (it holds ${verdict.strangers.slice(0, 5).join(", ")})` : ""}; check --data-dir, or pass --force to wipe it anyway`,
        );
      }
      println(`step 1/4: ${dir} does not look like a raftmq data directory; wiping it anyway (--force)`);
      return;
    case "in-use":
      throw new ReplaceRefusedError(`${dir} is held by a running process: stop that node first`);
    case "intact":
      if (!force) {
        throw new ReplaceRefusedError(`${dir} checks out (log through index ${verdict.lastIndex}): refusing to wipe a healthy node; pass --force to replace it anyway`);
      }
      println(`step 1/4: ${dir} checks out (log through index ${verdict.lastIndex}); replacing it anyway (--force)`);
      return;
    case "corrupt":
      println(`step 1/4: ${dir} is corrupt: ${verdict.error.message}`);
      return;
    case "unreadable":
      if (!force) throw new ReplaceRefusedError(`${dir} cannot be checked (${verdict.error.message}); pass --force to wipe it anyway`);
      println(`step 1/4: ${dir} cannot be checked (${verdict.error.message}); wiping it anyway (--force)`);
      return;
    default: {
      const never: never = verdict;
      throw new Error(`unknown data directory verdict ${JSON.stringify(never)}`);
    }
  }
}

async function replace(client: RaftmqClient, oldId: number, newId: number, peer: string, clientAddress: string, o: ReplaceOptions): Promise<void> {
  if (oldId === newId) throw new ReplaceRefusedError("the new id must differ from the old one: Raft must never see two incarnations under one id");
  await checkDataDir(o.dataDir, o.force === true);

  const status = await client.status();
  const members = status.members;
  if (status.leaderId === 0) throw new ReplaceRefusedError(`node ${status.nodeId} knows no leader: the cluster must be serving to replace a member`);
  if (status.nodeId === oldId) throw new ReplaceRefusedError(`--addresses reached node ${oldId} itself; point it at the healthy members`);
  const clash = members.find((m) => m.id === newId);
  if (clash !== undefined && (clash.peerAddress !== peer || clash.clientAddress !== clientAddress)) {
    throw new ReplaceRefusedError(`id ${newId} already belongs to a member at ${clash.peerAddress}; choose an id never used in this cluster`);
  }
  if (members.some((m) => m.id === oldId)) {
    const after = await client.removeMember(oldId);
    println(`step 2/4: removed node ${oldId}; members: ${describeMembers(after)}`);
  } else {
    println(`step 2/4: node ${oldId} is not a member (removed earlier); nothing to remove`);
  }

  const { wipeDataDir } = await dataVerification();
  const removed = await wipeDataDir(o.dataDir);
  println(`step 3/4: wiped ${o.dataDir} (${removed.length} entries)`);

  if (clash === undefined) {
    const after = await client.addMember(newId, peer, clientAddress);
    println(`step 4/4: added node ${newId} as a learner; members: ${describeMembers(after)}`);
  } else {
    println(`step 4/4: node ${newId} is a member already (a repeated replace)`);
  }
  println(
    `next: start the node with --node-id ${newId} --join --data-dir ${o.dataDir} (and its other flags as before); ` +
      "the leader promotes it to voter once it has caught up",
  );
}

export function addReplaceCommand(members: Command): void {
  members
    .command("replace")
    .description(
      "replace a member whose data directory is corrupt (run where its data lives, with the node stopped): " +
        "checks the directory (refuses a healthy one, one held by a running process, or one that is not a raftmq data directory), " +
        "removes <old-id> through the healthy members, wipes the directory and adds <new-id> as a learner at the given addresses. " +
        "Then start the node with --node-id <new-id> --join; it is promoted to voter once caught up. Each step is printed.",
    )
    .argument("<old-id>", "the corrupt node's id", positiveInteger("old-id"))
    .argument("<new-id>", "the id it rejoins under: one never used in this cluster", positiveInteger("new-id"))
    .argument("<peer-address>", "its peer transport address, host:port")
    .argument("<client-address>", "its client API address, host:port")
    .addOption(new Option("--data-dir <dir>", "the node's data directory (only its contents are removed)").makeOptionMandatory())
    .option("--force", "wipe even a directory that checks out, cannot be checked, or does not look like a raftmq data directory")
    .action(async (oldId: number, newId: number, peer: string, clientAddress: string, o: ReplaceOptions, cmd: Command) => {
      await withClient(cmd, (client) => replace(client, oldId, newId, peer, clientAddress, o));
    });
}
