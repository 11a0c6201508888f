// The network of one run, seen from inside its hub namespace: builds the bridge and a namespace
// per node, tells the harness where each node lives, and puts partitions, loss and slow links
// on the nodes' traffic (and takes them off again). Client namespaces hold consumer processes
// whose own network the run cuts for good (a client that vanishes).

import { clientCutCommands, clientSetupCommands, hubSetupCommands, healCommands, lossCommands, netemProbeCommands, nodeSetupCommands, partitionCommands, type SlowLink, slowCommands } from "./net-commands.ts";
import { clientNetns, type NetLayout, nodeAddress, nodeNetns } from "./net-layout.ts";
import { type Partition, reachableFrom } from "./partition.ts";
import { exec, runCommands } from "./run-command.ts";

/** A connect across a cut link gets no answer; past this the probe calls it blocked. */
export const PROBE_TIMEOUT_MS = 1500;

/** What a direct TCP probe saw right after a partition was put in place. */
export interface PartitionProbe {
  /** "n1->n3": a cut link; blocked is true when the connect failed. */
  readonly cut: string;
  readonly blocked: boolean;
  /** "n1->n2": a link the partition kept, when there is one; connected is true when it worked. */
  readonly open?: string;
  readonly connected?: boolean;
}

// Exit 0 on connect, 1 on error or timeout: the probe runs inside a node's namespace.
const PROBE_SCRIPT = `const s=require("node:net").connect({host:process.argv[1],port:Number(process.argv[2])});
const t=setTimeout(()=>process.exit(1),Number(process.argv[3]));
s.on("connect",()=>{clearTimeout(t);s.destroy();process.exit(0)});s.on("error",()=>process.exit(1));`;

export class NamespaceNetwork {
  readonly layout: NetLayout;
  /** The kernel has netem, so slow links get delay as well as a rate limit. */
  readonly netem: boolean;
  readonly #nodes = new Set<number>();
  #clients = 0;

  private constructor(layout: NetLayout, netem: boolean) {
    this.layout = layout;
    this.netem = netem;
  }

  /** Builds the bridge in the current (hub) namespace; node namespaces come with ensureNode. */
  static async setup(layout: NetLayout): Promise<NamespaceNetwork> {
    await runCommands(hubSetupCommands(layout));
    const netem = await runCommands(netemProbeCommands()).then(
      () => true,
      () => false,
    );
    return new NamespaceNetwork(layout, netem);
  }

  /** Creates node `id`'s namespace and link the first time it is asked for. */
  async ensureNode(id: number): Promise<void> {
    if (this.#nodes.has(id)) return;
    await runCommands(nodeSetupCommands(this.layout, id));
    this.#nodes.add(id);
  }

  /** Makes a new client namespace on the bridge; returns its number. */
  async addClient(): Promise<number> {
    const k = ++this.#clients;
    await runCommands(clientSetupCommands(this.layout, k));
    return k;
  }

  /** The command that runs `command args` inside client `k`'s namespace (ip execs, same pid). */
  wrapClient(k: number, command: string, args: readonly string[]): { command: string; args: string[] } {
    return { command: "ip", args: ["netns", "exec", clientNetns(this.layout, k), command, ...args] };
  }

  /** Drops everything in and out of client `k`'s namespace; heal() leaves it cut (the client is gone). */
  async cutClient(k: number): Promise<void> {
    await runCommands(clientCutCommands(this.layout, k));
  }

  nodes(): number[] {
    return [...this.#nodes].sort((a, b) => a - b);
  }

  host(id: number): string {
    return nodeAddress(this.layout, id);
  }

  /** The command that runs `command args` inside node `id`'s namespace (ip execs, same pid). */
  wrap(id: number, command: string, args: readonly string[]): { command: string; args: string[] } {
    return { command: "ip", args: ["netns", "exec", nodeNetns(this.layout, id), command, ...args] };
  }

  async partition(partition: Partition): Promise<void> {
    await runCommands(partitionCommands(this.layout, partition));
  }

  async loss(ids: readonly number[], probability: number): Promise<void> {
    await runCommands(lossCommands(this.layout, ids, probability));
  }

  async slow(ids: readonly number[], link: Omit<SlowLink, "netem">): Promise<void> {
    await runCommands(slowCommands(this.layout, ids, { ...link, netem: this.netem }));
  }

  /** Takes every rule and shaper off every node's link. */
  async heal(): Promise<void> {
    await runCommands(healCommands(this.layout, this.nodes()));
  }

  /** Whether a TCP connect from inside node `from` to node `to`'s `port` succeeds. */
  async canConnect(from: number, to: number, port: number): Promise<boolean> {
    const argv = ["ip", "netns", "exec", nodeNetns(this.layout, from), process.execPath, "-e", PROBE_SCRIPT, this.host(to), String(port), String(PROBE_TIMEOUT_MS)];
    return exec(argv, PROBE_TIMEOUT_MS * 4).then(
      () => true,
      () => false,
    );
  }

  /** Probes one cut link and, where the partition keeps one, one open link. */
  async probe(partition: Partition, peerPort: (id: number) => number): Promise<PartitionProbe | undefined> {
    const nodes = [...new Set(partition.groups.flat())].sort((a, b) => a - b);
    let cut: [number, number] | undefined;
    let open: [number, number] | undefined;
    for (const a of nodes) {
      const reach = reachableFrom(partition, a);
      for (const b of nodes) {
        if (a === b) continue;
        if (cut === undefined && !reach.includes(b)) cut = [a, b];
        if (open === undefined && reach.includes(b)) open = [a, b];
      }
    }
    if (cut === undefined) return undefined;
    const [c0, c1] = cut;
    const [blocked, connected] = await Promise.all([
      this.canConnect(c0, c1, peerPort(c1)).then((ok) => !ok),
      open === undefined ? Promise.resolve(undefined) : this.canConnect(open[0], open[1], peerPort(open[1])),
    ]);
    return {
      cut: `n${c0}->n${c1}`,
      blocked,
      ...(open === undefined || connected === undefined ? {} : { open: `n${open[0]}->n${open[1]}`, connected }),
    };
  }
}
