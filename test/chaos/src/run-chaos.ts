// One chaos run: start a real cluster, run the workload while the nemesis breaks things, heal,
// drain, check the history, and leave history.jsonl, summary.json, timeline.svg and the node
// logs in the run folder.
//
//   pnpm chaos --time 60 --nemesis all --seed 7 --nodes 3 --out runs/7

import { mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { ChaosCluster, type NodeCrash } from "./chaos-cluster.ts";
import { type CheckHistoryFileResult, checkHistoryFile } from "./check-history.ts";
import type { CheckResult } from "./checker.ts";
import { type Nemesis as NemesisName, parseNemeses, planFaults } from "./fault-schedule.ts";
import { HistoryRecorder } from "./history-recorder.ts";
import { Nemesis } from "./nemesis.ts";
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
  readonly workload?: Partial<WorkloadOptions>;
  /** Live lines (one per fault, progress); default stdout. */
  readonly say?: (line: string) => void;
  /** Where the summary table goes; default stdout. */
  readonly out?: { write(text: string): unknown };
  /** Hears the cluster's cleanup as soon as nodes exist, so an interrupt can stop them. */
  readonly onCleanup?: (cleanup: () => Promise<void>) => void;
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
  const say = options.say ?? ((line: string) => process.stdout.write(`${line}\n`));
  const outDir = resolve(options.outDir);
  await mkdir(outDir, { recursive: true });
  const historyPath = join(outDir, HISTORY_FILE);
  const recorder = await HistoryRecorder.open(historyPath);
  const cluster = new ChaosCluster({ nodes: options.nodes, logDir: outDir, name: `chaos-${options.seed}` });
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
    const workload = new Workload({ ...DEFAULT_WORKLOAD, ...options.workload }, recorder, seeds, options.seed);
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
  return {
    valid,
    check: checked.result,
    outDir,
    crashes,
    nemesisErrors: [...nemesis.errors],
    faults,
    summaryLine: summaryLine(options, checked.result, valid, crashes.length),
  };
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

const USAGE = `usage: pnpm chaos [--time s] [--nemesis kill,pause,transfer,membership|all|none] [--seed n] [--nodes 3|5] [--out dir]
  --time      seconds of workload under faults (default 60); heal and drain follow
  --nemesis   faults to draw from (default all)
  --seed      seeds the fault schedule and the workload (default: random, printed)
  --nodes     cluster size, 3 or 5 (default 3)
  --out       run folder (default runs/chaos-<seed>)
exit status: 0 valid, 1 invalid (lost, unexpected, unmarked duplicate, order, crash), 2 bad arguments
`;

interface CliArgs {
  readonly help: boolean;
  readonly options: Omit<ChaosOptions, "say" | "out" | "onCleanup">;
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
      help: { type: "boolean", short: "h", default: false },
    },
  });
  const timeSec = Number(values.time);
  if (!(timeSec > 0 && timeSec <= MAX_RUN_SECONDS)) throw new RangeError(`--time must be a number of seconds in (0, ${MAX_RUN_SECONDS}]`);
  const nodes = Number(values.nodes);
  if (nodes !== 3 && nodes !== 5) throw new RangeError("--nodes must be 3 or 5");
  const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
  if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError("--seed must be a non-negative integer");
  const nemeses = parseNemeses(values.nemesis);
  const outDir = values.out ?? join("runs", `chaos-${seed}`);
  return { help: values.help === true, options: { timeSec, nemeses, seed, nodes, outDir } };
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
  process.once("SIGINT", () => {
    process.stderr.write("interrupted: stopping the nodes\n");
    void (cleanup?.() ?? Promise.resolve()).finally(() => process.exit(130));
  });
  const o = args.options;
  process.stdout.write(`chaos: seed ${o.seed}, ${o.nodes} nodes, nemesis ${o.nemeses.join(",") || "none"}, ${o.timeSec} s, out ${o.outDir}\n`);
  const run = await runChaos({
    ...o,
    onCleanup: (c) => {
      cleanup = c;
    },
  });
  process.stdout.write(`${run.summaryLine}\n`);
  if (run.nemesisErrors.length > 0) process.stdout.write(`nemesis errors (${run.nemesisErrors.length}):\n  ${run.nemesisErrors.join("\n  ")}\n`);
  return run.valid ? 0 : 1;
}

const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(entry).href) {
  process.exitCode = await main(process.argv.slice(2));
}
