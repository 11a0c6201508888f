// What each state-machine version added to the commands, refused while an older version is in
// force, so no node applies them before every node can. Older code decodes a new command kind as no
// operation (it changes nothing there, nor here); but it ignores a new field, and would apply a
// command naming vhost "a" in "/". So a node checks this before proposing too: such an entry
// should never reach the log of a cluster still on version 1.
import { type BrokerError, preconditionFailed } from "./broker-error.ts";
import { accessCommandKinds, type Command, type CommandKind, commandVhostField } from "./validate-command.ts";
import { DEFAULT_VHOST } from "./vhost.ts";

/** Users, vhosts and permissions: the new command kinds and any vhost but "/". */
export const ACCESS_CONTROL_VERSION = 2;
/** AckTags: many single acks of one consumer in one command. */
export const ACK_TAGS_VERSION = 4;
/**
 * Publish.retry: a retry the broker has no record of (its producer forgotten, or the sequence below
 * what was recorded since) answers OUTCOME_UNKNOWN. Older versions ignore the field.
 */
export const PRODUCER_RETRY_VERSION = 5;

const accessKinds: ReadonlySet<CommandKind> = new Set(accessCommandKinds);

function snakeCase(kind: string): string {
  return kind.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

function needs(what: string, version: number, inForce: number): BrokerError {
  return preconditionFailed(
    `${what} needs state-machine version ${version}, and the cluster applies version ${inForce}: move it to version ${version} first (raftmqctl settings, Cluster.SetSettings)`,
  );
}

/**
 * Bind/Unbind.destination_exchange: bindings whose destination is an exchange. Older code ignores
 * the field and would take the command for a queue binding without a queue.
 */
export const EXCHANGE_BINDINGS_VERSION = 6;

/** Why the version in force cannot apply this command, or null when it can. */
export function versionGateError(kind: CommandKind, command: Command, inForce: number): BrokerError | null {
  if (kind === "ackTags" && inForce < ACK_TAGS_VERSION) return needs("ack_tags", ACK_TAGS_VERSION, inForce);
  if ((kind === "bind" || kind === "unbind") && inForce < EXCHANGE_BINDINGS_VERSION && command[kind]?.destinationExchange != null) {
    return needs(`${kind === "bind" ? "exchange.bind" : "exchange.unbind"} to exchange "${command[kind]?.destinationExchange ?? ""}"`, EXCHANGE_BINDINGS_VERSION, inForce);
  }
  if (inForce >= ACCESS_CONTROL_VERSION) return null;
  if (accessKinds.has(kind)) return needs(snakeCase(kind), ACCESS_CONTROL_VERSION, inForce);
  const vhost = commandVhostField(kind, command);
  if (vhost !== "" && vhost !== DEFAULT_VHOST) return needs(`vhost "${vhost}"`, ACCESS_CONTROL_VERSION, inForce);
  return null;
}
