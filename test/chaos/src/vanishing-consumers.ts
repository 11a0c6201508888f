// Consumers whose client vanishes without closing, while the faults run: each is a process of
// its own (vanishing-consumer-main.ts) that subscribes at the leader or at a follower, holds
// deliveries unacknowledged and is then frozen (SIGSTOP: its kernel keeps the connection up,
// only keepalive can tell), killed (SIGKILL: the kernel resets the connection), or cut off (its
// namespace drops every packet, then SIGKILL: nothing ever reaches the node again). The node
// must down each one within its keepalive bounds, and what it held must come back redelivered.

import { type ChildProcess, spawn } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import type { ChaosCluster } from "./chaos-cluster.ts";
import type { ScheduledFault } from "./fault-schedule.ts";
import type { HistoryRecorder } from "./history-recorder.ts";
import { SeededRandom } from "./seeded-random.ts";
import { CLIENT_ENV, type ClientIdentity, parseVanisherEvent } from "./vanisher-events.ts";

const CHILD = fileURLToPath(new URL("./vanishing-consumer-main.ts", import.meta.url));
const REPO_ROOT = fileURLToPath(new URL("../../..", import.meta.url));

export const VANISH_KINDS = ["freeze", "kill", "cut"] as const;
export type VanishKind = (typeof VANISH_KINDS)[number];
export type VanisherTarget = "leader" | "follower";

/** Deliveries a vanishing consumer takes ahead; it never acks, so this is what it holds. */
export const VANISHER_PREFETCH = 8;
/** A vanisher starts this long (drawn) before it vanishes: time to start a process and fill its prefetch. */
const LEAD_MIN_MS = 4000;
const LEAD_MAX_MS = 9000;
const HOLD_POLL_MS = 250;
/** Lines a child printed before it vanished may still be in the pipe. */
const TRAILING_LINES_MS = 300;

export interface VanisherPlan {
  /** The history's process name: v1, v2 … */
  readonly name: string;
  readonly queue: string;
  readonly kind: VanishKind;
  readonly target: VanisherTarget;
  /** Offsets from the start of the fault phase. */
  readonly startAtMs: number;
  readonly vanishAtMs: number;
  readonly seed: number;
}

/**
 * `count` vanishers, a pure function of the seed and the fault schedule: kinds, targets (leader,
 * follower) and queues rotate, and each vanishes in the middle of a scheduled fault (spread over
 * the schedule; a fault's start is recorded once it is in place, which takes a moment), or at a
 * drawn time when there are no faults.
 */
export function planVanishers(
  seed: number,
  count: number,
  schedule: readonly ScheduledFault[],
  durationMs: number,
  kinds: readonly VanishKind[],
  queues: readonly string[],
): VanisherPlan[] {
  if (count === 0) return [];
  if (kinds.length === 0 || queues.length === 0) throw new RangeError("vanishers need kinds and queues");
  const rng = new SeededRandom(seed + 0x7a11);
  const targets: readonly VanisherTarget[] = ["leader", "follower"];
  const plans: VanisherPlan[] = [];
  for (let i = 0; i < count; i++) {
    const fault = schedule[Math.floor(((i + 0.5) * schedule.length) / count)];
    const vanishAtMs =
      fault === undefined ? Math.round(durationMs * (0.3 + 0.5 * rng.next())) : fault.atMs + Math.round(fault.holdMs * (0.4 + 0.4 * rng.next()));
    plans.push({
      name: `v${i + 1}`,
      queue: queues[i % queues.length] as string,
      kind: kinds[i % kinds.length] as VanishKind,
      target: targets[i % targets.length] as VanisherTarget,
      startAtMs: Math.max(0, vanishAtMs - rng.int(LEAD_MIN_MS, LEAD_MAX_MS)),
      vanishAtMs,
      seed: rng.int(0, 2 ** 31 - 1),
    });
  }
  return plans;
}

/** What became of one vanisher, for the run's report. */
export interface VanisherReport {
  readonly name: string;
  readonly kind: VanishKind;
  readonly target: VanisherTarget;
  readonly queue: string;
  /** The node it subscribed at first; undefined when it never started. */
  readonly node?: number;
  readonly delivered: number;
  /** Deliveries of its current stream when it vanished (none acked, ever). */
  readonly heldAtVanish: number;
  /** Run time (ms) at which it vanished; undefined when it never did. */
  readonly vanishedAt?: number;
}

interface Running {
  readonly plan: VanisherPlan;
  readonly child: ChildProcess;
  readonly node: number;
  readonly client: number | undefined;
  delivered: number;
  held: number;
  subscriptions: number;
  lastEnd: string | undefined;
  vanishedAt: number | undefined;
}

export class VanishingConsumers {
  readonly #plans: readonly VanisherPlan[];
  readonly #cluster: ChaosCluster;
  readonly #recorder: HistoryRecorder;
  readonly #say: (line: string) => void;
  readonly #running: Running[] = [];
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #pending = new Set<Promise<void>>();
  #stopped = false;
  #recording = true;
  /** Failures to start or vanish: the run goes on, the report says so. */
  readonly errors: string[] = [];

  constructor(plans: readonly VanisherPlan[], cluster: ChaosCluster, recorder: HistoryRecorder, say: (line: string) => void) {
    if (plans.some((p) => p.kind === "cut") && cluster.network === undefined) throw new RangeError("a cut vanisher needs the namespace network");
    this.#plans = plans;
    this.#cluster = cluster;
    this.#recorder = recorder;
    this.#say = say;
  }

  /** Starts and vanishes each consumer at its offsets from now. */
  start(): void {
    for (const plan of this.#plans) {
      this.#at(plan.startAtMs, async () => {
        const r = await this.#launch(plan);
        if (r !== undefined) this.#at(Math.max(0, plan.vanishAtMs - plan.startAtMs), () => this.#vanishHolding(r));
      });
    }
  }

  /** Vanishes every consumer still attached (those not started yet never start); waits for all of it. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    while (this.#pending.size > 0) await Promise.all(this.#pending);
    for (const r of this.#running) if (r.vanishedAt === undefined) await this.#vanish(r);
    await sleep(TRAILING_LINES_MS);
  }

  /** Ends every child for good (frozen ones stay frozen until here) and stops recording. */
  kill(): void {
    this.#recording = false;
    for (const r of this.#running) if (r.child.exitCode === null && r.child.signalCode !== "SIGKILL") r.child.kill("SIGKILL");
  }

  report(): VanisherReport[] {
    return this.#plans.map((plan) => {
      const r = this.#running.find((x) => x.plan === plan);
      return {
        name: plan.name,
        kind: plan.kind,
        target: plan.target,
        queue: plan.queue,
        ...(r === undefined ? {} : { node: r.node }),
        delivered: r?.delivered ?? 0,
        heldAtVanish: r?.vanishedAt === undefined ? 0 : r.held,
        ...(r?.vanishedAt === undefined ? {} : { vanishedAt: Math.round(r.vanishedAt) }),
      };
    });
  }

  #at(delayMs: number, action: () => Promise<void>): void {
    if (this.#stopped) return;
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      if (this.#stopped) return;
      const p = action().finally(() => this.#pending.delete(p));
      this.#pending.add(p);
    }, delayMs);
    this.#timers.add(timer);
  }

  async #launch(plan: VanisherPlan): Promise<Running | undefined> {
    const c = this.#cluster;
    const rng = new SeededRandom(plan.seed);
    try {
      const leader = await c.leader();
      const live = c.live();
      const followers = live.filter((id) => id !== leader);
      const node = plan.target === "leader" && leader !== undefined ? leader : followers.length > 0 ? rng.pick(followers) : rng.pick(c.members());
      // It starts at its node and, when a stream ends, tries the others in turn.
      const addresses = [node, ...c.members().filter((id) => id !== node)].map((id) => c.clientAddress(id));
      const args = ["--import", "tsx", CHILD, plan.queue, String(VANISHER_PREFETCH), `chaos-${plan.name}`, addresses.join(",")];
      const client = plan.kind === "cut" ? await c.network?.addClient() : undefined;
      const run = client === undefined ? { command: process.execPath, args } : (c.network?.wrapClient(client, process.execPath, args) ?? { command: process.execPath, args });
      const child = spawn(run.command, run.args, { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, [CLIENT_ENV]: JSON.stringify(this.#identity()) } });
      const r: Running = { plan, child, node, client, delivered: 0, held: 0, subscriptions: 0, lastEnd: undefined, vanishedAt: undefined };
      this.#running.push(r);
      this.#listen(r);
      this.#line(`start   ${plan.name} on n${node} (${node === leader ? "leader" : "follower"}), queue ${plan.queue}, prefetch ${VANISHER_PREFETCH}, to ${plan.kind}${client === undefined ? "" : ` (client namespace c${client})`}`);
      return r;
    } catch (err) {
      this.#error(`start ${plan.name}`, err);
      return undefined;
    }
  }

  /** Vanishes once the consumer holds something (a slow start, a stream that just ended), or at stop(). */
  async #vanishHolding(r: Running): Promise<void> {
    while (r.held === 0 && !this.#stopped && r.child.exitCode === null) await sleep(HOLD_POLL_MS);
    await this.#vanish(r);
  }

  async #vanish(r: Running): Promise<void> {
    if (r.vanishedAt !== undefined) return;
    r.vanishedAt = this.#recorder.now();
    try {
      switch (r.plan.kind) {
        case "freeze":
          if (r.child.pid !== undefined && r.child.exitCode === null) process.kill(r.child.pid, "SIGSTOP");
          break;
        case "kill":
          r.child.kill("SIGKILL");
          break;
        case "cut":
          if (r.client !== undefined) await this.#cluster.network?.cutClient(r.client);
          r.child.kill("SIGKILL");
          break;
        default: {
          const never: never = r.plan.kind;
          throw new Error(`unknown vanish kind ${String(never)}`);
        }
      }
    } catch (err) {
      this.#error(`vanish ${r.plan.name}`, err);
    }
    const ended = r.lastEnd === undefined ? "" : `; a stream ended (${r.lastEnd})`;
    this.#line(`${r.plan.kind.padEnd(7)} ${r.plan.name} on n${r.node}: holding ${r.held} unacked, ${r.delivered} delivered in ${r.subscriptions} subscriptions${ended}`);
  }

  #listen(r: Running): void {
    let pending = "";
    r.child.stdout?.on("data", (chunk: Buffer) => {
      const parts = (pending + chunk.toString("utf8")).split("\n");
      pending = parts.pop() ?? "";
      for (const line of parts) this.#event(r, line);
    });
    r.child.stderr?.on("data", () => {
      // tsx and node warnings; the events come on stdout.
    });
  }

  #event(r: Running, line: string): void {
    const e = parseVanisherEvent(line);
    if (e === undefined || !this.#recording) return;
    switch (e.event) {
      case "subscribed":
        // Deliveries may come ahead of the confirmation: only an end resets what is held.
        r.subscriptions += 1;
        return;
      case "ended":
        // The broker takes back what the dead stream held.
        r.held = 0;
        r.lastEnd = `${e.address}: ${e.details}`;
        return;
      case "delivery":
        r.delivered += 1;
        r.held += 1;
        this.#recorder.record({ f: "deliver", process: r.plan.name, type: "ok", value: e.value, queue: r.plan.queue, redelivered: e.redelivered, deliveryTag: e.deliveryTag });
        return;
      default: {
        const never: never = e;
        throw new Error(`unknown vanisher event ${JSON.stringify(never)}`);
      }
    }
  }

  #identity(): ClientIdentity {
    const o = this.#cluster.clientOptions();
    return {
      ...(o.tls === undefined ? {} : { ca: o.tls.ca.toString("utf8") }),
      ...(o.credentials === undefined ? {} : { username: o.credentials.username, password: o.credentials.password }),
    };
  }

  #line(text: string): void {
    this.#say(`[${(this.#recorder.now() / 1000).toFixed(1).padStart(6)} s] vanisher ${text}`);
  }

  #error(what: string, err: unknown): void {
    const message = `${what}: ${err instanceof Error ? err.message : String(err)}`;
    this.errors.push(message);
    this.#say(`vanisher error: ${message}`);
  }
}
