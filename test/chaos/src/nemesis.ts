// Carries out a fault schedule on a real cluster: each fault starts at its offset, holds, and is
// undone; every action goes to the history as a nemesis op and to the console as one line.
// heal() undoes whatever is still in effect, whenever it is called.

import { setTimeout as sleep } from "node:timers/promises";
import type { ChaosCluster } from "./chaos-cluster.ts";
import { corruptMember, replaceMember } from "./corruption-fault.ts";
import { describePlan, type FaultPlan, type ScheduledFault } from "./fault-schedule.ts";
import type { NemesisF, NemesisOp } from "./history.ts";
import type { HistoryRecorder } from "./history-recorder.ts";
import type { NamespaceNetwork } from "./net/namespace-network.ts";
import { describePartition, type PartitionShape, partitionOf } from "./net/partition.ts";
import { SeededRandom } from "./seeded-random.ts";

/** How long a leader-targeted fault waits for a leader before it hits a random node instead. */
const LEADER_WAIT_MS = 5000;

type Undo = () => Promise<void>;

/** Shapes placed around the leader: they wait for one, like leader-targeted process faults. */
const LEADER_SHAPES: readonly PartitionShape[] = ["isolate-leader", "leader-minority"];

export class Nemesis {
  readonly #cluster: ChaosCluster;
  readonly #recorder: HistoryRecorder;
  readonly #say: (line: string) => void;
  readonly #network: NamespaceNetwork | undefined;
  #undo: { stop: NemesisF; run: Undo } | undefined;
  #stopped = false;
  #wake: (() => void) | undefined;
  /** Fault actions that threw: the run goes on, the report says so. */
  readonly errors: string[] = [];
  faultsStarted = 0;

  constructor(cluster: ChaosCluster, recorder: HistoryRecorder, say: (line: string) => void) {
    this.#cluster = cluster;
    this.#recorder = recorder;
    this.#say = say;
    this.#network = cluster.network;
  }

  /** Runs the schedule until it ends or stop() is called; offsets count from the call. */
  async run(schedule: readonly ScheduledFault[]): Promise<void> {
    const started = Date.now();
    for (const fault of schedule) {
      if (!(await this.#sleepUntil(started + fault.atMs))) return;
      await this.#start(fault);
      const holdUntil = Date.now() + fault.holdMs;
      await this.#sleepUntil(holdUntil);
      await this.#end();
      if (this.#stopped) return;
    }
  }

  /** Stops the schedule; whatever fault is in effect stays until heal(). */
  stop(): void {
    this.#stopped = true;
    this.#wake?.();
  }

  /** Undoes the fault in effect, resumes paused and restarts killed members, and records heal. */
  async heal(): Promise<void> {
    await this.#end();
    try {
      await this.#network?.heal();
    } catch (err) {
      this.#error("heal: network", err);
    }
    for (const id of this.#cluster.paused()) this.#cluster.resume(id);
    for (const id of this.#cluster.down()) {
      try {
        await this.#cluster.restart(id);
      } catch (err) {
        this.#error(`heal: restart n${id}`, err);
      }
    }
    this.#record("heal", "heal: every node running, no fault in effect", this.#cluster.members());
  }

  async #start(fault: ScheduledFault): Promise<void> {
    const rng = new SeededRandom(fault.seed);
    this.faultsStarted += 1;
    try {
      this.#undo = await this.#apply(fault.plan, rng);
    } catch (err) {
      this.#error(describePlan(fault.plan), err);
    }
  }

  async #end(): Promise<void> {
    const undo = this.#undo;
    this.#undo = undefined;
    if (undo === undefined) return;
    try {
      await undo.run();
    } catch (err) {
      this.#error(`undo ${undo.stop}`, err);
    }
  }

  async #apply(plan: FaultPlan, rng: SeededRandom): Promise<{ stop: NemesisF; run: Undo } | undefined> {
    const c = this.#cluster;
    switch (plan.nemesis) {
      case "kill": {
        const targets = await this.#targets(plan.target, rng);
        this.#record("kill", `kill ${plan.target}: ${names(targets)}`, targets);
        for (const id of targets) await c.kill(id);
        return {
          stop: "restart",
          run: async () => {
            for (const id of targets) await c.restart(id);
            this.#record("restart", `restart ${names(targets)}`, targets);
          },
        };
      }
      case "pause": {
        const targets = await this.#targets(plan.target, rng);
        this.#record("pause", `pause ${plan.target}: ${names(targets)}`, targets);
        for (const id of targets) c.pause(id);
        return {
          stop: "resume",
          run: async () => {
            for (const id of targets) c.resume(id);
            this.#record("resume", `resume ${names(targets)}`, targets);
          },
        };
      }
      case "transfer": {
        this.#record("start-transfer-storm", `transfer storm every ${plan.intervalMs} ms`, c.members());
        const storm = { on: true, transfers: 0, refused: 0 };
        const done = this.#storm(plan.intervalMs, rng, storm);
        return {
          stop: "stop-transfer-storm",
          run: async () => {
            storm.on = false;
            await done;
            this.#record("stop-transfer-storm", `transfer storm over: ${storm.transfers} transfers, ${storm.refused} refused`, c.members());
          },
        };
      }
      case "membership": {
        const victim = rng.pick(c.members());
        this.#record("remove-member", `remove n${victim}`, [victim]);
        await c.removeMember(victim);
        return {
          stop: "add-member",
          run: async () => {
            const added = await c.addNewMember();
            this.#record("add-member", `add n${added} (new member, empty data, replaces n${victim})`, [added]);
          },
        };
      }
      case "corrupt": {
        const victim = rng.pick(c.members());
        const damage = await corruptMember(c, victim, rng, this.#say);
        this.#record("corrupt", `corrupt n${victim}: ${damage.kind} ${damage.file}; it refused to start`, [victim]);
        return {
          stop: "repair",
          run: async () => {
            const newId = await replaceMember(c, victim, this.#say);
            this.#record("repair", `raftmqctl members replace n${victim}: back as n${newId}, a voter`, [newId]);
          },
        };
      }
      case "partition": {
        const net = this.#net(plan.nemesis);
        const leader = LEADER_SHAPES.includes(plan.shape) ? await c.waitForLeader(LEADER_WAIT_MS) : undefined;
        const partition = partitionOf(plan.shape, c.members(), leader, rng.int(0, 2 ** 31 - 1));
        await net.partition(partition);
        const probe = await net.probe(partition, (id) => c.harness.spec(id).peerPort);
        const seen = probe === undefined ? "" : `; probe ${probe.cut} ${probe.blocked ? "blocked" : "CONNECTED"}${probe.open === undefined ? "" : `, ${probe.open} ${probe.connected === true ? "open" : "FAILED"}`}`;
        this.#record("start-partition", `partition ${describePartition(partition)}${seen}`, partition.groups.flat(), probe === undefined ? {} : { probe });
        return {
          stop: "stop-partition",
          run: async () => {
            await net.heal();
            this.#record("stop-partition", `heal partition ${describePartition(partition)}`, c.members());
          },
        };
      }
      case "loss": {
        const net = this.#net(plan.nemesis);
        const targets = plan.scope === "one" ? [rng.pick(c.members())] : c.members();
        const what = `${Math.round(plan.probability * 100)}% loss on ${names(targets)}`;
        await net.loss(targets, plan.probability);
        this.#record("start-loss", what, targets);
        return {
          stop: "stop-loss",
          run: async () => {
            await net.heal();
            this.#record("stop-loss", `end ${what}`, targets);
          },
        };
      }
      case "slow": {
        const net = this.#net(plan.nemesis);
        const targets = plan.scope === "one" ? [rng.pick(c.members())] : c.members();
        const delay = net.netem ? `, ${plan.delayMs} ms delay` : " (no delay: netem unavailable)";
        const what = `${plan.rateKbit} kbit/s${delay} on ${names(targets)}`;
        await net.slow(targets, { rateKbit: plan.rateKbit, delayMs: plan.delayMs });
        this.#record("start-slow", what, targets);
        return {
          stop: "stop-slow",
          run: async () => {
            await net.heal();
            this.#record("stop-slow", `end ${what}`, targets);
          },
        };
      }
      default: {
        const never: never = plan;
        throw new Error(`unknown plan ${JSON.stringify(never)}`);
      }
    }
  }

  #net(nemesis: string): NamespaceNetwork {
    if (this.#network === undefined) throw new Error(`${nemesis} needs the namespace network, and this run has none`);
    return this.#network;
  }

  async #storm(intervalMs: number, rng: SeededRandom, storm: { on: boolean; transfers: number; refused: number }): Promise<void> {
    while (storm.on && !this.#stopped) {
      const to = rng.pick(this.#cluster.members());
      try {
        const admin = await this.#cluster.admin();
        try {
          await admin.transferLeadership(to);
          storm.transfers += 1;
        } finally {
          admin.close();
        }
      } catch {
        // A transfer refused or timed out mid-storm is part of the storm.
        storm.refused += 1;
      }
      await sleep(intervalMs);
    }
  }

  async #targets(target: "random" | "leader" | "majority", rng: SeededRandom): Promise<number[]> {
    const members = this.#cluster.members();
    switch (target) {
      case "random":
        return [rng.pick(members)];
      case "leader": {
        const leader = await this.#cluster.waitForLeader(LEADER_WAIT_MS);
        return [leader ?? rng.pick(members)];
      }
      case "majority":
        return rng
          .shuffle(members)
          .slice(0, Math.floor(members.length / 2) + 1)
          .sort((a, b) => a - b);
      default: {
        const never: never = target;
        throw new Error(`unknown target ${String(never)}`);
      }
    }
  }

  #record(f: NemesisF, value: string, nodes: readonly number[], extra: Pick<NemesisOp, "probe"> = {}): void {
    const op = this.#recorder.record({ f, process: "nemesis", type: "info", value, nodes: [...new Set(nodes)].sort((a, b) => a - b).map((id) => `n${id}`), ...extra });
    this.#say(`[${(op.time / 1000).toFixed(1).padStart(6)} s] ${f.padEnd(20)} ${value}`);
  }

  #error(what: string, err: unknown): void {
    const message = `${what}: ${err instanceof Error ? err.message : String(err)}`;
    this.errors.push(message);
    this.#say(`nemesis error: ${message}`);
  }

  /** Resolves true at `deadline`, or false as soon as stop() is called. */
  async #sleepUntil(deadline: number): Promise<boolean> {
    if (this.#stopped) return false;
    const wait = deadline - Date.now();
    if (wait > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, wait);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
    return !this.#stopped;
  }
}

function names(ids: readonly number[]): string {
  return ids.map((id) => `n${id}`).join(" ");
}
