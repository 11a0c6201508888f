// The command lines that build a run's namespaces and put network faults on them, as data: pure,
// so they can be checked without root. Commands without a namespace run where the runner runs,
// which is the hub namespace; never the root namespace.

import { cutsOf, type Partition } from "./partition.ts";
import { BRIDGE, clientAddress, clientNetns, hubAddress, hubClientIface, hubIface, hubNetns, type NetLayout, NODE_IFACE, nodeAddress, nodeNetns } from "./net-layout.ts";

export interface NetCommand {
  /** Run inside this namespace (`ip netns exec`); undefined: where the runner is. */
  readonly netns?: string;
  readonly argv: readonly string[];
  /** Undoing something that may not be there: a failure is expected and ignored. */
  readonly mayFail?: boolean;
}

/** The bandwidth and delay of a slowed link. Delay needs netem, which some kernels lack. */
export interface SlowLink {
  readonly rateKbit: number;
  readonly delayMs: number;
  readonly netem: boolean;
}

export const LIMITS = {
  minLoss: 0.01,
  maxLoss: 0.5,
  minRateKbit: 64,
  maxRateKbit: 100_000,
  maxDelayMs: 5000,
  /** tbf: bytes sent at line rate before shaping starts, and the longest a packet may queue. */
  tbfBurst: "16kb",
  tbfLatency: "400ms",
} as const;

/** The argv that runs `command` where it belongs. */
export function commandLine(command: NetCommand): string[] {
  return command.netns === undefined ? [...command.argv] : ["ip", "netns", "exec", command.netns, ...command.argv];
}

/** Inside the hub: loopback up (the harness picks ports on it), a bridge with the hub's address. */
export function hubSetupCommands(layout: NetLayout): NetCommand[] {
  return [
    { argv: ["ip", "link", "set", "lo", "up"] },
    { argv: ["ip", "link", "add", BRIDGE, "type", "bridge"] },
    { argv: ["ip", "addr", "add", `${hubAddress(layout)}/24`, "dev", BRIDGE] },
    { argv: ["ip", "link", "set", BRIDGE, "up"] },
  ];
}

/** A node namespace with one veth pair: eth0 inside it, the other end on the hub's bridge. */
export function nodeSetupCommands(layout: NetLayout, id: number): NetCommand[] {
  return endpointSetupCommands(nodeNetns(layout, id), hubIface(id), nodeAddress(layout, id));
}

/** A client namespace, joined to the bridge the same way as a node's. */
export function clientSetupCommands(layout: NetLayout, k: number): NetCommand[] {
  return endpointSetupCommands(clientNetns(layout, k), hubClientIface(k), clientAddress(layout, k));
}

function endpointSetupCommands(ns: string, veth: string, address: string): NetCommand[] {
  return [
    { argv: ["ip", "netns", "add", ns] },
    { argv: ["ip", "link", "add", veth, "type", "veth", "peer", "name", NODE_IFACE, "netns", ns] },
    { argv: ["ip", "link", "set", veth, "master", BRIDGE] },
    { argv: ["ip", "link", "set", veth, "up"] },
    { argv: ["ip", "-n", ns, "link", "set", "lo", "up"] },
    { argv: ["ip", "-n", ns, "addr", "add", `${address}/24`, "dev", NODE_IFACE] },
    { argv: ["ip", "-n", ns, "link", "set", NODE_IFACE, "up"] },
  ];
}

/**
 * Cuts client `k` off: every packet in or out of its namespace is dropped, so the nodes see its
 * connections go silent (no FIN, no RST), as when a client machine loses its network.
 */
export function clientCutCommands(layout: NetLayout, k: number): NetCommand[] {
  const netns = clientNetns(layout, k);
  return [
    { netns, argv: ["iptables", "-w", "-A", "INPUT", "-j", "DROP"] },
    { netns, argv: ["iptables", "-w", "-A", "OUTPUT", "-j", "DROP"] },
  ];
}

/** DROP rules for every cut link, at both ends and in both directions. */
export function partitionCommands(layout: NetLayout, partition: Partition): NetCommand[] {
  const out: NetCommand[] = [];
  for (const [a, b] of cutsOf(partition)) {
    out.push(...dropPeer(layout, a, b), ...dropPeer(layout, b, a));
  }
  return out;
}

function dropPeer(layout: NetLayout, self: number, peer: number): NetCommand[] {
  const netns = nodeNetns(layout, self);
  const addr = nodeAddress(layout, peer);
  return [
    { netns, argv: ["iptables", "-w", "-A", "INPUT", "-s", addr, "-j", "DROP"] },
    { netns, argv: ["iptables", "-w", "-A", "OUTPUT", "-d", addr, "-j", "DROP"] },
  ];
}

/** Each node in `ids` drops `probability` of the packets it receives and of those it sends. */
export function lossCommands(layout: NetLayout, ids: readonly number[], probability: number): NetCommand[] {
  if (!(probability >= LIMITS.minLoss && probability <= LIMITS.maxLoss)) throw new RangeError(`loss probability must be in [${LIMITS.minLoss}, ${LIMITS.maxLoss}], got ${probability}`);
  const p = probability.toFixed(4);
  return ids.flatMap((id) => {
    const netns = nodeNetns(layout, id);
    return ["INPUT", "OUTPUT"].map((chain) => ({
      netns,
      argv: ["iptables", "-w", "-A", chain, "-m", "statistic", "--mode", "random", "--probability", p, "-j", "DROP"],
    }));
  });
}

/**
 * Shapes both directions of each node's link: its own eth0 (what it sends) and the hub's end of
 * its veth pair (what it receives). With netem the link is delayed as well; without, tbf only.
 */
export function slowCommands(layout: NetLayout, ids: readonly number[], link: SlowLink): NetCommand[] {
  if (!(link.rateKbit >= LIMITS.minRateKbit && link.rateKbit <= LIMITS.maxRateKbit)) throw new RangeError(`rate must be ${LIMITS.minRateKbit}..${LIMITS.maxRateKbit} kbit/s, got ${link.rateKbit}`);
  if (!(link.delayMs >= 0 && link.delayMs <= LIMITS.maxDelayMs)) throw new RangeError(`delay must be 0..${LIMITS.maxDelayMs} ms, got ${link.delayMs}`);
  const qdisc =
    link.netem && link.delayMs > 0
      ? ["netem", "delay", `${link.delayMs}ms`, "rate", `${link.rateKbit}kbit`]
      : ["tbf", "rate", `${link.rateKbit}kbit`, "burst", LIMITS.tbfBurst, "latency", LIMITS.tbfLatency];
  return ids.flatMap((id) => [
    { netns: nodeNetns(layout, id), argv: ["tc", "qdisc", "replace", "dev", NODE_IFACE, "root", ...qdisc] },
    { argv: ["tc", "qdisc", "replace", "dev", hubIface(id), "root", ...qdisc] },
  ]);
}

/** Removes every rule and shaper from the nodes' links; what is not there is skipped. */
export function healCommands(layout: NetLayout, ids: readonly number[]): NetCommand[] {
  return ids.flatMap((id) => {
    const netns = nodeNetns(layout, id);
    return [
      { netns, argv: ["iptables", "-w", "-F", "INPUT"] },
      { netns, argv: ["iptables", "-w", "-F", "OUTPUT"] },
      { netns, argv: ["tc", "qdisc", "del", "dev", NODE_IFACE, "root"], mayFail: true },
      { argv: ["tc", "qdisc", "del", "dev", hubIface(id), "root"], mayFail: true },
    ];
  });
}

/** Whether this kernel has netem: tried on the hub's loopback, then removed. */
export function netemProbeCommands(): NetCommand[] {
  return [
    { argv: ["tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"] },
    { argv: ["tc", "qdisc", "del", "dev", "lo", "root"], mayFail: true },
  ];
}

/** The hub namespace, made from the root side before the runner moves into it. */
export function hubCreateCommand(layout: NetLayout): NetCommand {
  return { argv: ["ip", "netns", "add", hubNetns(layout)] };
}
