// A chaos run with network faults, from the root namespace's side: make the run's hub namespace,
// run the chaos runner inside it (it builds the bridge and the node namespaces, runs the nodes,
// the workload and the nemesis there), then remove every namespace of the run, also when the
// runner fails or the run is interrupted. Nothing is ever added to the root namespace.

import { type ChildProcess, spawn } from "node:child_process";
import { mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { duplicatePolicyOf, type WorkloadKind } from "../chaos-workload.ts";
import { check } from "../checker.ts";
import type { Nemesis } from "../fault-schedule.ts";
import { readHistory } from "../read-history.ts";
import { readRunRecord } from "../run-record.ts";
import { type ChaosRunResult, HISTORY_FILE } from "../run-chaos.ts";
import { hubCreateCommand } from "./net-commands.ts";
import { hubNetns, type NetLayout, newNetLayout } from "./net-layout.ts";
import { removeNetns, sweepLeftovers } from "./netns-cleanup.ts";
import { runCommands } from "./run-command.ts";

const RUN_CHAOS = fileURLToPath(new URL("../run-chaos.ts", import.meta.url));
const REPO_ROOT = fileURLToPath(new URL("../../../..", import.meta.url));
/** An interrupted runner gets this long to stop its nodes before the namespaces go. */
const RUNNER_STOP_MS = 15_000;

export interface NamespaceRunOptions {
  readonly timeSec: number;
  readonly nemeses: readonly Nemesis[];
  readonly seed: number;
  readonly nodes: number;
  readonly outDir: string;
  readonly security?: "tls" | "insecure";
  /** The workload's clients (default grpc); amqp needs security insecure here. */
  readonly workloadKind?: WorkloadKind;
  /** Passed on to the runner as they are (see ChaosOptions). */
  readonly clientKeepaliveMs?: number;
  readonly clientKeepaliveTimeoutMs?: number;
  readonly livenessSettleMs?: number;
  readonly vanishers?: number;
  /** Every line the runner prints (faults, progress, the summary table); default stdout. */
  readonly say?: (line: string) => void;
  /** Hears the cleanup as soon as the namespaces exist, so an interrupt can remove them. */
  readonly onCleanup?: (cleanup: () => Promise<void>) => void;
}

/** The argument that tells run-chaos it runs inside this layout's hub. */
export function inHubArg(layout: NetLayout): string {
  return `${layout.prefix}:${layout.subnet}`;
}

export async function runChaosInNamespaces(options: NamespaceRunOptions): Promise<ChaosRunResult> {
  const say = options.say ?? ((line: string) => process.stdout.write(`${line}\n`));
  const outDir = resolve(options.outDir);
  await mkdir(outDir, { recursive: true });
  const swept = await sweepLeftovers();
  if (swept.length > 0) say(`removed ${swept.length} namespaces left by earlier runs: ${swept.join(" ")}`);
  const kind = options.workloadKind ?? "grpc";
  const layout = newNetLayout(process.pid, Math.floor(Math.random() * 2 ** 32));
  let child: ChildProcess | undefined;
  // One cleanup however many callers (the end of the run, a signal): each waits for all of it.
  let cleaning: Promise<void> | undefined;
  const cleanup = () => {
    cleaning ??= (async () => {
      if (child !== undefined && child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((r) => child?.once("exit", () => r()));
        child.kill("SIGTERM");
        await Promise.race([exited, new Promise<void>((r) => setTimeout(r, RUNNER_STOP_MS).unref())]);
      }
      await removeNetns(layout.prefix);
    })();
    return cleaning;
  };
  options.onCleanup?.(cleanup);
  try {
    await runCommands([hubCreateCommand(layout)]);
    say(`network namespaces ${layout.prefix}-*: hub ${hubNetns(layout)}, nodes on 10.203.${layout.subnet}.0/24`);
    const args = [
      `--net=/run/netns/${hubNetns(layout)}`,
      "--",
      process.execPath,
      "--import",
      "tsx",
      RUN_CHAOS,
      "--time",
      String(options.timeSec),
      "--nemesis",
      options.nemeses.join(",") || "none",
      "--seed",
      String(options.seed),
      "--nodes",
      String(options.nodes),
      "--out",
      outDir,
      ...(options.security === undefined ? [] : ["--security", options.security]),
      "--workload",
      kind,
      ...tuningArgs(options),
      "--in-hub",
      inHubArg(layout),
    ];
    const runner = spawn("nsenter", args, { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env } });
    child = runner;
    const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => runner.once("exit", (code, signal) => r({ code, signal })));
    forwardLines(runner, say);
    const { code, signal } = await exit;
    // 0 and 1 are verdicts (valid, invalid); anything else means the run itself broke.
    if (code !== 0 && code !== 1) throw new Error(`chaos runner in ${hubNetns(layout)} exited with code ${code} signal ${signal}; see ${outDir}`);
    const record = await readRunRecord(outDir);
    const { ops } = await readHistory(join(outDir, HISTORY_FILE));
    const result = check(ops, { orderScope: "consumer", duplicates: duplicatePolicyOf(kind) });
    return {
      valid: record.valid,
      check: result,
      outDir,
      crashes: record.crashes,
      nemesisErrors: record.nemesisErrors,
      faults: record.faults,
      liveness: record.liveness,
      vanishers: record.vanishers,
      workload: kind,
      ...(record.amqp === undefined ? {} : { amqp: record.amqp }),
      summaryLine: record.summaryLine,
    };
  } finally {
    await cleanup();
  }
}

function tuningArgs(options: NamespaceRunOptions): string[] {
  const flags = [
    ["--client-keepalive-ms", options.clientKeepaliveMs],
    ["--client-keepalive-timeout-ms", options.clientKeepaliveTimeoutMs],
    ["--liveness-settle-ms", options.livenessSettleMs],
    ["--vanishers", options.vanishers],
  ] as const;
  return flags.flatMap(([flag, v]) => (v === undefined ? [] : [flag, String(v)]));
}

function forwardLines(child: ChildProcess, say: (line: string) => void): void {
  for (const stream of [child.stdout, child.stderr]) {
    let pending = "";
    stream?.on("data", (chunk: Buffer) => {
      const parts = (pending + chunk.toString("utf8")).split("\n");
      pending = parts.pop() ?? "";
      for (const p of parts) say(p);
    });
    stream?.on("end", () => {
      if (pending !== "") say(pending);
    });
  }
}
