// One chaos run: start a real cluster, run the workload while the nemesis breaks things, heal,
// drain, check the history and the consumers every queue still lists, and leave history.jsonl,
// summary.json, timeline.svg, run.json and the node logs in the run folder.
//
//   pnpm chaos --time 60 --nemesis all --seed 7 --nodes 3 --out runs/7
//   pnpm chaos --workload amqp --time 30 --nemesis kill,partition --security insecure
//
// With network nemeses the runner re-runs itself inside the run's hub namespace (--in-hub) and
// the outer process only makes and removes the namespaces.

import { defaultSecurity, type HarnessSecurity } from "../../integration/cluster-harness.ts";
import { mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import type { RaftmqClient } from "@raftmq/client";
import { AmqpWorkload, type AmqpWorkloadOptions, type AmqpWorkloadStats, DEFAULT_AMQP_WORKLOAD, type QueueState } from "./amqp-workload.ts";
import { amqpUnreachable, ChaosCluster, type NodeCrash } from "./chaos-cluster.ts";
import { type ChaosWorkload, duplicatePolicyOf, parseWorkloadKind, WORKLOAD_KINDS, type WorkloadKind } from "./chaos-workload.ts";
import { type CheckHistoryFileResult, checkHistoryFile } from "./check-history.ts";
import type { CheckResult } from "./checker.ts";
import { checkConsumerLiveness, describeLiveness, type LivenessCheck, livenessSettleMs } from "./consumer-liveness.ts";
import { isNetworkNemesis, type Nemesis as NemesisName, NEMESES, parseNemeses, planFaults } from "./fault-schedule.ts";
import { HistoryRecorder } from "./history-recorder.ts";
import { Nemesis } from "./nemesis.ts";
import { runChaosInNamespaces } from "./net/hub-runner.ts";
import { NamespaceNetwork } from "./net/namespace-network.ts";
import { netLayout } from "./net/net-layout.ts";
import { probeNetworkSupport } from "./net/network-support.ts";
import { writeRunRecord } from "./run-record.ts";
import { SeededRandom } from "./seeded-random.ts";
import { planVanishers, type VanisherReport, type VanishKind, VanishingConsumers } from "./vanishing-consumers.ts";
import { DEFAULT_WORKLOAD, Workload, type WorkloadOptions } from "./workload.ts";

export const HISTORY_FILE = "history.jsonl";
/** After the heal, the cluster must elect a leader within this. */
const HEALED_LEADER_TIMEOUT_MS = 30_000;
const FIRST_LEADER_TIMEOUT_MS = 20_000;
export const MAX_RUN_SECONDS = 24 * 3600;
/**
 * A chaos run's nodes ping their clients far more often than the defaults (10 s, 5 s), so a
 * vanished consumer is downed within seconds and the liveness check can wait little.
 */
export const CHAOS_CLIENT_KEEPALIVE_MS = 1000;
export const CHAOS_CLIENT_KEEPALIVE_TIMEOUT_MS = 1000;
export const DEFAULT_VANISHERS = 3;
/** Each vanisher is a node process of its own (and, when cut, a namespace of its own). */
export const MAX_VANISHERS = 50;
/** The node's own bounds on its keepalive flags (node-config.ts). */
const KEEPALIVE_RANGE = { min: 100, max: 3_600_000 } as const;

export interface ChaosOptions {
  /** Seconds of workload under faults (the heal and drain come after). */
  readonly timeSec: number;
  readonly nemeses: readonly NemesisName[];
  readonly seed: number;
  readonly nodes: number;
  readonly outDir: string;
  /** "tls" runs the cluster secure: mutual TLS, TLS clients, authentication. */
  readonly security?: HarnessSecurity;
  /** Whose clients the workload runs: the SDK over gRPC (default) or amqplib over AMQP 0-9-1. */
  readonly workloadKind?: WorkloadKind;
  /** Tuning of the gRPC workload. */
  readonly workload?: Partial<WorkloadOptions>;
  /** Tuning of the AMQP workload. */
  readonly amqpWorkload?: Partial<AmqpWorkloadOptions>;
  /** Live lines (one per fault, progress); default stdout. */
  readonly say?: (line: string) => void;
  /** Where the summary table goes; default stdout. */
  readonly out?: { write(text: string): unknown };
  /** Hears the cluster's cleanup as soon as nodes exist, so an interrupt can stop them. */
  readonly onCleanup?: (cleanup: () => Promise<void>) => void;
  /**
   * The namespace network the nodes run in; the caller runs in its hub. Required by the network
   * nemeses (runChaosInNamespaces sets it up from the root namespace).
   */
  readonly network?: NamespaceNetwork;
  /** The nodes' --client-keepalive-ms and --client-keepalive-timeout-ms (default 1 s each). */
  readonly clientKeepaliveMs?: number;
  readonly clientKeepaliveTimeoutMs?: number;
  /** How long the liveness check waits for the queues to list exactly the open consumers; default keepalive + timeout + 10 s, at most 60 s. */
  readonly livenessSettleMs?: number;
  /** Consumer processes that vanish without closing during the faults (default 3). */
  readonly vanishers?: number;
}

export interface ChaosRunResult {
  /** The checker found nothing and no node crashed. */
  readonly valid: boolean;
  readonly check: CheckResult;
  readonly outDir: string;
  readonly crashes: readonly NodeCrash[];
  readonly nemesisErrors: readonly string[];
  readonly faults: number;
  /** The consumer-liveness checks: with the kept consumers open, then with every stream closed. */
  readonly liveness: readonly LivenessCheck[];
  readonly vanishers: readonly VanisherReport[];
  readonly workload: WorkloadKind;
  /** The AMQP clients' own counts (nacked and unknown confirms, reconnects); AMQP runs only. */
  readonly amqp?: AmqpWorkloadStats;
  /** One line for a log: seed, nemeses and the figures that matter. */
  readonly summaryLine: string;
}

export async function runChaos(options: ChaosOptions): Promise<ChaosRunResult> {
  if (!(options.timeSec > 0 && options.timeSec <= MAX_RUN_SECONDS)) throw new RangeError(`time must be in (0, ${MAX_RUN_SECONDS}] s, got ${options.timeSec}`);
  const netNemeses = options.nemeses.filter(isNetworkNemesis);
  if (netNemeses.length > 0 && options.network === undefined) throw new RangeError(`${netNemeses.join(", ")} need the namespace network: run them through runChaosInNamespaces`);
  const kind = options.workloadKind ?? "grpc";
  const security = options.security ?? defaultSecurity();
  const unreachable = kind === "amqp" ? amqpUnreachable(security, options.network !== undefined) : undefined;
  if (unreachable !== undefined) throw new RangeError(unreachable);
  const say = options.say ?? ((line: string) => process.stdout.write(`${line}\n`));
  const outDir = resolve(options.outDir);
  await mkdir(outDir, { recursive: true });
  const keepaliveMs = options.clientKeepaliveMs ?? CHAOS_CLIENT_KEEPALIVE_MS;
  const keepaliveTimeoutMs = options.clientKeepaliveTimeoutMs ?? CHAOS_CLIENT_KEEPALIVE_TIMEOUT_MS;
  for (const [name, v] of [
    ["client keepalive", keepaliveMs],
    ["client keepalive timeout", keepaliveTimeoutMs],
  ] as const) {
    if (!(Number.isInteger(v) && v >= KEEPALIVE_RANGE.min && v <= KEEPALIVE_RANGE.max)) throw new RangeError(`${name} must be ${KEEPALIVE_RANGE.min}..${KEEPALIVE_RANGE.max} ms, got ${v}`);
  }
  const vanisherCount = options.vanishers ?? DEFAULT_VANISHERS;
  if (!(Number.isInteger(vanisherCount) && vanisherCount >= 0 && vanisherCount <= MAX_VANISHERS)) throw new RangeError(`vanishers must be 0..${MAX_VANISHERS}, got ${vanisherCount}`);
  const settleMs = options.livenessSettleMs ?? livenessSettleMs(keepaliveMs, keepaliveTimeoutMs);
  if (!(settleMs >= 0)) throw new RangeError(`liveness settle time must be >= 0 ms, got ${settleMs}`);
  const historyPath = join(outDir, HISTORY_FILE);
  const recorder = await HistoryRecorder.open(historyPath);
  const cluster = new ChaosCluster({
    nodes: options.nodes,
    logDir: outDir,
    name: `chaos-${options.seed}`,
    nodeFlags: ["--client-keepalive-ms", String(keepaliveMs), "--client-keepalive-timeout-ms", String(keepaliveTimeoutMs)],
    ...(options.network === undefined ? {} : { network: options.network }),
    security,
  });
  let vanishers: VanishingConsumers | undefined;
  const queueState = queueStateThroughAdmin(cluster);
  const cleanup = async () => {
    vanishers?.kill();
    queueState.close();
    await cluster.cleanup();
  };
  options.onCleanup?.(cleanup);
  const nemesis = new Nemesis(cluster, recorder, say);
  let checked: CheckHistoryFileResult;
  let faults = 0;
  const liveness: LivenessCheck[] = [];
  let amqpStats: AmqpWorkloadStats | undefined;
  try {
    await cluster.start();
    const first = await cluster.waitForLeader(FIRST_LEADER_TIMEOUT_MS);
    if (first === undefined) throw new Error(`no leader among ${cluster.members().length} nodes within ${FIRST_LEADER_TIMEOUT_MS} ms`);
    say(`cluster of ${options.nodes} up, leader n${first}; run folder ${outDir}`);

    let workload: ChaosWorkload;
    if (kind === "amqp") {
      // Each connection goes to a random member's AMQP port; the node forwards to the leader.
      const amqp = new AmqpWorkload({ ...DEFAULT_AMQP_WORKLOAD, ...options.amqpWorkload }, recorder, () => cluster.members().map((id) => cluster.amqpUrl(id)), queueState.state, options.seed);
      amqpStats = amqp.stats;
      workload = amqp;
    } else {
      const seedsRng = new SeededRandom(options.seed);
      const seeds = () => {
        const all = cluster.clientAddresses();
        // Each client starts at a random member; the SDK finds the leader from there.
        const first = seedsRng.pick(all);
        return [first, ...all.filter((a) => a !== first)];
      };
      workload = new Workload({ ...DEFAULT_WORKLOAD, ...options.workload }, recorder, seeds, options.seed, () => cluster.clientOptions());
    }
    await workload.setup();
    workload.start();

    const schedule = planFaults(options.seed, options.nemeses, options.timeSec * 1000);
    faults = schedule.length;
    say(`${schedule.length} faults planned from seed ${options.seed} (${options.nemeses.join(",") || "none"}) over ${options.timeSec} s`);
    // A cut needs the client's own namespace; without the namespace network clients only freeze or die.
    const kinds: VanishKind[] = options.network === undefined ? ["freeze", "kill"] : ["freeze", "cut", "kill"];
    const vanisherPlans = planVanishers(options.seed, vanisherCount, schedule, options.timeSec * 1000, kinds, workload.queues);
    vanishers = new VanishingConsumers(vanisherPlans, cluster, recorder, say);
    vanishers.start();
    const faulting = nemesis.run(schedule);
    await Promise.race([faulting, sleep(options.timeSec * 1000)]);
    // Even a schedule that ended early leaves the workload running its full time.
    await sleep(Math.max(0, options.timeSec * 1000 - recorder.now()));
    nemesis.stop();
    await faulting;
    await vanishers.stop();
    await nemesis.heal();
    const healed = await cluster.waitForLeader(HEALED_LEADER_TIMEOUT_MS);
    say(healed === undefined ? `no leader ${HEALED_LEADER_TIMEOUT_MS} ms after the heal` : `healed; leader n${healed}`);

    await workload.stop();
    say(`workload stopped: ${workload.stats.publishes} publishes, ${workload.stats.deliveries} deliveries${amqpStats === undefined ? "" : `, ${describeAmqp(amqpStats)}`}; draining`);
    await workload.drain();
    // Frozen vanishers stay frozen through both checks: their connections are still up.
    const open = await consumerLiveness(cluster, "open", () => workload.openConsumers(), settleMs);
    liveness.push(open);
    say(`consumer liveness with the kept consumers open: ${describeLiveness([open])}`);
    await workload.closeKept();
    const closed = await consumerLiveness(cluster, "closed", () => workload.openConsumers(), settleMs);
    liveness.push(closed);
    say(`consumer liveness with every stream closed: ${describeLiveness([closed])}`);
    vanishers.kill();
    await recorder.close();
    checked = await checkHistoryFile(historyPath, { orderScope: "consumer", duplicates: duplicatePolicyOf(kind), ...(options.out === undefined ? {} : { out: options.out }) });
  } finally {
    await recorder.close().catch(() => undefined);
    await cleanup();
  }
  const crashes = [...cluster.crashes];
  for (const c of crashes) say(`node n${c.id} crashed: exit code ${c.code}, signal ${c.signal}; see ${join(outDir, `node-${c.id}.log`)}`);
  const valid = checked.result.valid && crashes.length === 0 && liveness.every((l) => l.valid);
  const result: ChaosRunResult = {
    valid,
    check: checked.result,
    outDir,
    crashes,
    nemesisErrors: [...nemesis.errors, ...(vanishers?.errors ?? [])],
    faults,
    liveness,
    vanishers: vanishers?.report() ?? [],
    workload: kind,
    ...(amqpStats === undefined ? {} : { amqp: { ...amqpStats } }),
    summaryLine: summaryLine(options, checked.result, valid, crashes.length, liveness, amqpStats),
  };
  await writeRunRecord(outDir, {
    valid,
    crashes,
    nemesisErrors: result.nemesisErrors,
    faults,
    summaryLine: result.summaryLine,
    liveness: result.liveness,
    vanishers: result.vanishers,
    workload: kind,
    ...(result.amqp === undefined ? {} : { amqp: result.amqp }),
  });
  return result;
}

/** The AMQP drain's emptiness check: QueueInfo through one admin client, opened again after a failed call. */
function queueStateThroughAdmin(cluster: ChaosCluster): { readonly state: QueueState; close(): void } {
  let admin: Promise<RaftmqClient> | undefined;
  return {
    state: async (queue) => {
      admin ??= cluster.admin();
      const opening = admin;
      try {
        const client = await opening;
        const q = await client.queueInfo(queue);
        return { ready: q.messagesReady, unacked: q.messagesUnacked };
      } catch (err) {
        if (admin === opening) admin = undefined;
        void opening.then((c) => c.close()).catch(() => undefined);
        throw err;
      }
    },
    close: () => {
      void admin?.then((c) => c.close()).catch(() => undefined);
      admin = undefined;
    },
  };
}

function describeAmqp(s: AmqpWorkloadStats): string {
  return `${s.confirmed} acked, ${s.nacked} nacked, ${s.unknown} unknown, ${s.reconnects} reconnects`;
}

/** One liveness check through an admin client of the live members, opened again when a call fails. */
async function consumerLiveness(cluster: ChaosCluster, phase: string, expected: () => ReadonlyMap<string, number>, settleMs: number): Promise<LivenessCheck> {
  let admin: RaftmqClient | undefined;
  try {
    return await checkConsumerLiveness({
      phase,
      expected,
      settleMs,
      listQueues: async () => {
        admin ??= await cluster.admin();
        try {
          return await admin.listQueues();
        } catch (err) {
          admin.close();
          admin = undefined;
          throw err;
        }
      },
    });
  } finally {
    admin?.close();
  }
}

function summaryLine(options: ChaosOptions, r: CheckResult, valid: boolean, crashes: number, liveness: readonly LivenessCheck[], amqp: AmqpWorkloadStats | undefined): string {
  // Distinct values consumed: every delivery beyond a value's first is a duplicate.
  const consumed = r.deliveries - r.duplicated.reduce((n, d) => n + d.count - 1, 0);
  return [
    `seed ${options.seed}`,
    `nodes ${options.nodes}`,
    ...(amqp === undefined ? [] : ["workload amqp"]),
    `nemesis ${options.nemeses.join(",") || "none"}:`,
    valid ? "VALID" : "INVALID",
    `ops ${r.ops}`,
    `confirmed ${r.publishes.confirmed}/${r.publishes.attempted}`,
    ...(amqp === undefined ? [] : [`nacked ${amqp.nacked}`, `unknown ${amqp.unknown}`, `consumed ${consumed}`]),
    `lost ${r.lost.length}`,
    `unexpected ${r.unexpected.length}`,
    `duplicated ${r.duplicated.length} (${r.duplicateCounts.notRedelivered} unmarked${r.duplicatePolicy === "any" ? ", allowed" : ""})`,
    `recovered ${r.recovered.length}`,
    `order violations ${r.orderViolationCount}`,
    `longest unavailability ${(r.longestUnavailabilityMs / 1000).toFixed(1)} s`,
    ...(amqp === undefined ? [] : [`reconnects ${amqp.reconnects}`]),
    `faults ${r.faults.length}`,
    `crashes ${crashes}`,
    describeLiveness(liveness),
  ].join(" ");
}

const USAGE = `usage: pnpm chaos [--workload ${WORKLOAD_KINDS.join("|")}] [--time s] [--nemesis ${NEMESES.join(",")}|all|none] [--seed n] [--nodes 3|5] [--out dir]
  --workload  whose clients: grpc (the SDK, idempotent producers; default) or amqp (amqplib on the
              nodes' AMQP ports: confirm channels, manual acks, at-least-once; with TLS it reaches
              plain AMQP only without namespaces, so with partition, loss or slow use --security insecure)
  --time      seconds of workload under faults (default 60); heal and drain follow
  --nemesis   faults to draw from (default all; all takes partition, loss and slow only where
              network namespaces work: root, ip, iptables, tc, nsenter)
  --seed      seeds the fault schedule and the workload (default: random, printed)
  --nodes     cluster size, 3 or 5 (default 3)
  --out       run folder (default runs/chaos-<seed>)
  --security  tls (mutual TLS between nodes, TLS and authentication for clients) or insecure
              (default: env RAFTMQ_TEST_SECURITY, else insecure)
  --client-keepalive-ms          the nodes ping their clients this often (default ${CHAOS_CLIENT_KEEPALIVE_MS})
  --client-keepalive-timeout-ms  and down a client that does not answer within this (default ${CHAOS_CLIENT_KEEPALIVE_TIMEOUT_MS})
  --liveness-settle-ms           how long the end-of-run consumer check waits for every queue to list
                                 exactly the open consumers (default keepalive + timeout + 10000,
                                 at most 60000)
  --vanishers                    consumer processes that vanish without closing during the faults:
                                 frozen, killed, or cut off in a namespace of their own (default ${DEFAULT_VANISHERS})
exit status: 0 valid, 1 invalid (lost, unexpected, unmarked duplicate (grpc), order, crash, a queue
             listing consumers that are gone or unacked messages they held), 2 bad arguments
`;

interface CliArgs {
  readonly help: boolean;
  /** As given: "all" is expanded once it is known whether the network nemeses can run. */
  readonly nemesisText: string;
  /** Set by the outer runner only: this process runs inside that layout's hub namespace. */
  readonly inHub: { readonly prefix: string; readonly subnet: number } | undefined;
  readonly options: Omit<ChaosOptions, "say" | "out" | "onCleanup" | "network">;
}

export function parseCli(argv: readonly string[]): CliArgs {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      time: { type: "string", default: "60" },
      workload: { type: "string", default: "grpc" },
      nemesis: { type: "string", default: "all" },
      seed: { type: "string" },
      nodes: { type: "string", default: "3" },
      out: { type: "string" },
      security: { type: "string" },
      "client-keepalive-ms": { type: "string" },
      "client-keepalive-timeout-ms": { type: "string" },
      "liveness-settle-ms": { type: "string" },
      vanishers: { type: "string" },
      "in-hub": { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  const workloadKind = parseWorkloadKind(values.workload);
  const timeSec = Number(values.time);
  if (!(timeSec > 0 && timeSec <= MAX_RUN_SECONDS)) throw new RangeError(`--time must be a number of seconds in (0, ${MAX_RUN_SECONDS}]`);
  const nodes = Number(values.nodes);
  if (nodes !== 3 && nodes !== 5) throw new RangeError("--nodes must be 3 or 5");
  const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
  if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError("--seed must be a non-negative integer");
  // Named network nemeses are kept here; main drops them when the machine cannot run them.
  const nemeses = parseNemeses(values.nemesis, { network: true });
  const outDir = values.out ?? join("runs", `chaos-${seed}`);
  let inHub: CliArgs["inHub"];
  if (values["in-hub"] !== undefined) {
    const m = /^([a-z0-9-]+):(\d+)$/.exec(values["in-hub"]);
    if (m === null) throw new RangeError("--in-hub must be <namespace prefix>:<subnet>");
    inHub = netLayout(m[1] ?? "", Number(m[2]));
  }
  const security = values.security ?? defaultSecurity();
  if (security !== "tls" && security !== "insecure") throw new RangeError("--security must be tls or insecure");
  const ms = (flag: string, text: string | undefined, min: number, max: number): number | undefined => {
    if (text === undefined) return undefined;
    const v = Number(text);
    if (!(Number.isInteger(v) && v >= min && v <= max)) throw new RangeError(`--${flag} must be an integer in [${min}, ${max}]`);
    return v;
  };
  const tuning = {
    clientKeepaliveMs: ms("client-keepalive-ms", values["client-keepalive-ms"], KEEPALIVE_RANGE.min, KEEPALIVE_RANGE.max),
    clientKeepaliveTimeoutMs: ms("client-keepalive-timeout-ms", values["client-keepalive-timeout-ms"], KEEPALIVE_RANGE.min, KEEPALIVE_RANGE.max),
    livenessSettleMs: ms("liveness-settle-ms", values["liveness-settle-ms"], 0, MAX_RUN_SECONDS * 1000),
    vanishers: ms("vanishers", values.vanishers, 0, MAX_VANISHERS),
  };
  const defined = Object.fromEntries(Object.entries(tuning).filter(([, v]) => v !== undefined)) as { [K in keyof typeof tuning]?: number };
  return { help: values.help === true, nemesisText: values.nemesis, inHub, options: { timeSec, nemeses, seed, nodes, outDir, security, workloadKind, ...defined } };
}

/** Drops the network nemeses, with one line saying why, when this machine cannot run them. */
async function usableNemeses(args: CliArgs, say: (line: string) => void): Promise<readonly NemesisName[]> {
  const asked = args.options.nemeses;
  if (!asked.some(isNetworkNemesis)) return asked;
  const support = await probeNetworkSupport();
  if (support.available) return asked;
  const named = args.nemesisText.trim() !== "all";
  say(`network faults unavailable: ${support.reason}; running process faults only${named ? ` (dropped ${asked.filter(isNetworkNemesis).join(", ")})` : ""}`);
  return asked.filter((n) => !isNetworkNemesis(n));
}

async function main(argv: readonly string[]): Promise<number> {
  let args: CliArgs;
  try {
    args = parseCli(argv);
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n${USAGE}`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  let cleanup: (() => Promise<void>) | undefined;
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    process.stderr.write(`${signal}: stopping the nodes${args.inHub === undefined ? " and removing the namespaces" : ""}\n`);
    void (cleanup?.() ?? Promise.resolve()).finally(() => process.exit(signal === "SIGINT" ? 130 : 143));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const say = (line: string) => process.stdout.write(`${line}\n`);
  const onCleanup = (c: () => Promise<void>) => {
    cleanup = c;
  };
  let run: ChaosRunResult;
  if (args.inHub !== undefined) {
    // The outer runner already knows the network works; this process lives in the hub.
    const network = await NamespaceNetwork.setup(args.inHub);
    if (!network.netem) say("netem is not available in this kernel: slow links get a rate limit (tbf) and no delay");
    run = await runChaos({ ...args.options, network, onCleanup });
    // The outer runner reports the run from run.json and the history.
    return run.valid ? 0 : 1;
  } else {
    const o = { ...args.options, nemeses: await usableNemeses(args, say) };
    const unreachable = o.workloadKind === "amqp" ? amqpUnreachable(o.security ?? defaultSecurity(), o.nemeses.some(isNetworkNemesis)) : undefined;
    if (unreachable !== undefined) {
      process.stderr.write(`${unreachable}\n${USAGE}`);
      return 2;
    }
    say(`chaos: seed ${o.seed}, ${o.nodes} nodes, workload ${o.workloadKind ?? "grpc"}, nemesis ${o.nemeses.join(",") || "none"}, ${o.timeSec} s, out ${o.outDir}`);
    run = o.nemeses.some(isNetworkNemesis) ? await runChaosInNamespaces({ ...o, say, onCleanup }) : await runChaos({ ...o, onCleanup });
  }
  process.stdout.write(`${run.summaryLine}\n`);
  if (run.nemesisErrors.length > 0) process.stdout.write(`nemesis errors (${run.nemesisErrors.length}):\n  ${run.nemesisErrors.join("\n  ")}\n`);
  return run.valid ? 0 : 1;
}

const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(entry).href) {
  process.exitCode = await main(process.argv.slice(2));
}
