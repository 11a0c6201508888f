// Names and addresses of one run's network namespaces. A run owns a hub namespace holding a
// bridge, and one namespace per node joined to the bridge by a veth pair; the root namespace is
// never touched. Names carry a per-run prefix (with the owner's pid, so a later run can tell a
// crashed run's leftovers from a live run's namespaces).

/** Every namespace of every run starts with this; a run's own prefix adds its pid and a nonce. */
export const NETNS_BASE = "raftmq-chaos";
/** The bridge in the hub, and the node's end of its veth pair inside the node namespace. */
export const BRIDGE = "br0";
export const NODE_IFACE = "eth0";
/** Node addresses are SUBNET.<HOST_OFFSET + id>; the hub is SUBNET.1. */
const HOST_OFFSET = 10;
/** Client namespaces (consumers whose link to the cluster gets cut) are SUBNET.<CLIENT_OFFSET + k>. */
const CLIENT_OFFSET = 200;
export const MAX_NODE_ID = CLIENT_OFFSET - HOST_OFFSET - 1;
export const MAX_CLIENT_ID = 254 - CLIENT_OFFSET;
/** Namespace names become file names under /run/netns; keep them short and plain. */
const PREFIX_PATTERN = /^[a-z0-9-]{1,48}$/;

export interface NetLayout {
  readonly prefix: string;
  /** Third octet of 10.203.x.0/24. Runs never share a bridge, so this only aids reading logs. */
  readonly subnet: number;
}

export function newNetLayout(pid: number, nonce: number): NetLayout {
  return netLayout(`${NETNS_BASE}-${pid}-${(nonce >>> 0).toString(36)}`, pid % 250);
}

export function netLayout(prefix: string, subnet: number): NetLayout {
  if (!PREFIX_PATTERN.test(prefix)) throw new RangeError(`namespace prefix must match ${PREFIX_PATTERN}, got ${JSON.stringify(prefix)}`);
  if (!Number.isInteger(subnet) || subnet < 0 || subnet > 255) throw new RangeError(`subnet must be 0..255, got ${subnet}`);
  return { prefix, subnet };
}

export function hubNetns(layout: NetLayout): string {
  return `${layout.prefix}-hub`;
}

export function nodeNetns(layout: NetLayout, id: number): string {
  checkId(id);
  return `${layout.prefix}-n${id}`;
}

export function hubAddress(layout: NetLayout): string {
  return `10.203.${layout.subnet}.1`;
}

export function nodeAddress(layout: NetLayout, id: number): string {
  checkId(id);
  return `10.203.${layout.subnet}.${HOST_OFFSET + id}`;
}

/** The hub's end of node `id`'s veth pair; interface names are at most 15 bytes. */
export function hubIface(id: number): string {
  checkId(id);
  return `veth-n${id}`;
}

/** The namespace of client `k`: one consumer process whose whole network can be cut. */
export function clientNetns(layout: NetLayout, k: number): string {
  checkClient(k);
  return `${layout.prefix}-c${k}`;
}

export function clientAddress(layout: NetLayout, k: number): string {
  checkClient(k);
  return `10.203.${layout.subnet}.${CLIENT_OFFSET + k}`;
}

/** The hub's end of client `k`'s veth pair. */
export function hubClientIface(k: number): string {
  checkClient(k);
  return `veth-c${k}`;
}

/** The pid a namespace name was made by, when it is one of ours. */
export function ownerPid(netns: string): number | undefined {
  const m = new RegExp(`^${NETNS_BASE}-(\\d+)-`).exec(netns);
  return m === null ? undefined : Number(m[1]);
}

function checkId(id: number): void {
  if (!Number.isInteger(id) || id < 1 || id > MAX_NODE_ID) throw new RangeError(`node id must be 1..${MAX_NODE_ID} in a namespace run, got ${id}`);
}

function checkClient(k: number): void {
  if (!Number.isInteger(k) || k < 1 || k > MAX_CLIENT_ID) throw new RangeError(`client id must be 1..${MAX_CLIENT_ID}, got ${k}`);
}
