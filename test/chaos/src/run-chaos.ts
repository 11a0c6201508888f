// One chaos run: start a real cluster, run the workload while the nemesis breaks things, heal,
// drain, check the history, and leave history.jsonl, summary.json, timeline.svg and the node
// logs in the run folder.
//
//   pnpm chaos --time 60 --nemesis all --seed 7 --nodes 3 --out runs/7
//
// With network nemeses the runner re-runs itself inside the run's hub namespace (--in-hub) and
// the outer process only makes and removes the namespaces.

import { defaultSecurity, type HarnessSecurity } from "../../integration/cluster-harness.ts";
import { mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { ChaosCluster, type NodeCrash } from "./chaos-cluster.ts";
import { type CheckHistoryFileResult, checkHistoryFile } from "./check-history.ts";
import type { CheckResult } from "./checker.ts";
import { isNetworkNemesis, type Nemesis as NemesisName, NEMESES, parseNemeses, planFaults } from "./fault-schedule.ts";
import { HistoryRecorder } from "./history-recorder.ts";
import { Nemesis } from "./nemesis.ts";
import { runChaosInNamespaces } from "./net/hub-runner.ts";
import { NamespaceNetwork } from "./net/namespace-network.ts";
import { netLayout } from "./net/net-layout.ts";
import { probeNetworkSupport } from "./net/network-support.ts";
import { writeRunRecord } from "./run-record.ts";
import { SeededRandom } from "./seeded-random.ts";
import { DEFAULT_WORKLOAD, Workload, type WorkloadOptions } from "./workload.ts";

export const HISTORY_FILE = "history.jsonl";
/** After the heal, the cluster must elect a leader within this. */
const HEALED_LEADER_TIMEOUT_MS = 30_000;
const FIRST_LEADER_TIMEOUT_MS = 20_000;
export const MAX_RUN_SECONDS = 24 * 3600;

export interface ChaosOptions {
  /** Seconds of workload under faults (the heal and drain come after). */
  readonly timeSec: number;
  readonly nemeses: readonly NemesisName[];
  readonly seed: number;
  readonly nodes: number;
  readonly outDir: string;
  /** "tls" runs the cluster secure: mutual TLS, TLS clients, authentication. */
  readonly security?: HarnessSecurity;
  readonly workload?: Partial<WorkloadOptions>;
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
}

export interface ChaosRunResult {
  /** The checker found nothing and no node crashed. */
  readonly valid: boolean;
  readonly check: CheckResult;
  readonly outDir: string;
  readonly crashes: readonly NodeCrash[];
  readonly nemesisErrors: readonly string[];
  readonly faults: number;
  /** One line for a log: seed, nemeses and the figures that matter. */
  readonly summaryLine: string;
}

export async function runChaos(options: ChaosOptions): Promise<ChaosRunResult> {
  if (!(options.timeSec > 0 && options.timeSec <= MAX_RUN_SECONDS)) throw new RangeError(`time must be in (0, ${MAX_RUN_SECONDS}] s, got ${options.timeSec}`);
  const netNemeses = options.nemeses.filter(isNetworkNemesis);
  if (netNemeses.length > 0 && options.network === undefined) throw new RangeError(`${netNemeses.join(", ")} need the namespace network: run them through runChaosInNamespaces`);
  const say = options.say ?? ((line: string) => process.stdout.write(`${line}\n`));
  const outDir = resolve(options.outDir);
  await mkdir(outDir, { recursive: true });
  const historyPath = join(outDir, HISTORY_FILE);
  const recorder = await HistoryRecorder.open(historyPath);
  const cluster = new ChaosCluster({
    nodes: options.nodes,
    logDir: outDir,
    name: `chaos-${options.seed}`,
    ...(options.network === undefined ? {} : { network: options.network }),
    ...(options.security === undefined ? {} : { security: options.security }),
  });
  options.onCleanup?.(() => cluster.cleanup());
  const nemesis = new Nemesis(cluster, recorder, say);
  let checked: CheckHistoryFileResult;
  let faults = 0;
  try {
    await cluster.start();
    const first = await cluster.waitForLeader(FIRST_LEADER_TIMEOUT_MS);
    if (first === undefined) throw new Error(`no leader among ${cluster.members().length} nodes within ${FIRST_LEADER_TIMEOUT_MS} ms`);
    say(`cluster of ${options.nodes} up, leader n${first}; run folder ${outDir}`);

    const seedsRng = new SeededRandom(options.seed);
    const seeds = () => {
      const all = cluster.clientAddresses();
      // Each client starts at a random member; the SDK finds the leader from there.
      const first = seedsRng.pick(all);
      return [first, ...all.filter((a) => a !== first)];
    };
    const workload = new Workload({ ...DEFAULT_WORKLOAD, ...options.workload }, recorder, seeds, options.seed, () => cluster.clientOptions());
    await workload.setup();
    workload.start();

    const schedule = planFaults(options.seed, options.nemeses, options.timeSec * 1000);
    faults = schedule.length;
    say(`${schedule.length} faults planned from seed ${options.seed} (${options.nemeses.join(",") || "none"}) over ${options.timeSec} s`);
    const faulting = nemesis.run(schedule);
    await Promise.race([faulting, sleep(options.timeSec * 1000)]);
    // Even a schedule that ended early leaves the workload running its full time.
    await sleep(Math.max(0, options.timeSec * 1000 - recorder.now()));
    nemesis.stop();
    await faulting;
    await nemesis.heal();
    const healed = await cluster.waitForLeader(HEALED_LEADER_TIMEOUT_MS);
    say(healed === undefined ? `no leader ${HEALED_LEADER_TIMEOUT_MS} ms after the heal` : `healed; leader n${healed}`);

    await workload.stop();
    say(`workload stopped: ${workload.stats.publishes} publishes, ${workload.stats.deliveries} deliveries; draining`);
    await workload.drain();
    await recorder.close();
    checked = await checkHistoryFile(historyPath, { orderScope: "consumer", ...(options.out === undefined ? {} : { out: options.out }) });
  } finally {
    await recorder.close().catch(() => undefined);
    await cluster.cleanup();
  }
  const crashes = [...cluster.crashes];
  for (const c of crashes) say(`node n${c.id} crashed: exit code ${c.code}, signal ${c.signal}; see ${join(outDir, `node-${c.id}.log`)}`);
  const valid = checked.result.valid && crashes.length === 0;
  const result = {
    valid,
    check: checked.result,
    outDir,
    crashes,
    nemesisErrors: [...nemesis.errors],
    faults,
    summaryLine: summaryLine(options, checked.result, valid, crashes.length),
  };
  await writeRunRecord(outDir, { valid, crashes, nemesisErrors: result.nemesisErrors, faults, summaryLine: result.summaryLine });
  return result;
}

function summaryLine(options: ChaosOptions, r: CheckResult, valid: boolean, crashes: number): string {
  return [
    `seed ${options.seed}`,
    `nodes ${options.nodes}`,
    `nemesis ${options.nemeses.join(",") || "none"}:`,
    valid ? "VALID" : "INVALID",
    `ops ${r.ops}`,
    `confirmed ${r.publishes.confirmed}/${r.publishes.attempted}`,
    `lost ${r.lost.length}`,
    `unexpected ${r.unexpected.length}`,
    `duplicated ${r.duplicated.length} (${r.duplicateCounts.notRedelivered} unmarked)`,
    `recovered ${r.recovered.length}`,
    `order violations ${r.orderViolationCount}`,
    `longest unavailability ${(r.longestUnavailabilityMs / 1000).toFixed(1)} s`,
    `faults ${r.faults.length}`,
    `crashes ${crashes}`,
  ].join(" ");
}

const USAGE = `usage: pnpm chaos [--time s] [--nemesis ${NEMESES.join(",")}|all|none] [--seed n] [--nodes 3|5] [--out dir]
  --time      seconds of workload under faults (default 60); heal and drain follow
  --nemesis   faults to draw from (default all; all takes partition, loss and slow only where
              network namespaces work: root, ip, iptables, tc, nsenter)
  --seed      seeds the fault schedule and the workload (default: random, printed)
  --nodes     cluster size, 3 or 5 (default 3)
  --out       run folder (default runs/chaos-<seed>)
  --security  tls (mutual TLS between nodes, TLS and authentication for clients) or insecure
              (default: env RAFTMQ_TEST_SECURITY, else insecure)
exit status: 0 valid, 1 invalid (lost, unexpected, unmarked duplicate, order, crash), 2 bad arguments
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
      nemesis: { type: "string", default: "all" },
      seed: { type: "string" },
      nodes: { type: "string", default: "3" },
      out: { type: "string" },
      security: { type: "string" },
      "in-hub": { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
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
  return { help: values.help === true, nemesisText: values.nemesis, inHub, options: { timeSec, nemeses, seed, nodes, outDir, security } };
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
    say(`chaos: seed ${o.seed}, ${o.nodes} nodes, nemesis ${o.nemeses.join(",") || "none"}, ${o.timeSec} s, out ${o.outDir}`);
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
