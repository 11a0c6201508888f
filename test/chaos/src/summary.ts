// The verdict of one run for people (a table on stdout) and for machines (summary.json).

import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import Table from "cli-table3";
import type { CheckResult } from "./checker.ts";

export const SUMMARY_FILE = "summary.json";

/** Values listed inline per row of the table before it says "and N more". */
const LISTED_VALUES = 8;

export function formatSummary(result: CheckResult): string {
  const table = new Table({
    head: ["check", "result"],
    // No rule between body rows, no colours: it reads the same in a terminal and in a CI log.
    chars: { mid: "", "left-mid": "", "mid-mid": "", "right-mid": "" },
    style: { head: [], border: [] },
  });
  const { publishes } = result;
  const dupAllowed = result.duplicateCounts.redelivered;
  const dupBad = result.duplicateCounts.notRedelivered;
  table.push(
    ["verdict", result.valid ? "VALID" : "INVALID"],
    ["ops", String(result.ops)],
    ["duration", `${seconds(result.durationMs)} s`],
    [
      "publishes",
      `${publishes.attempted} attempted, ${publishes.confirmed} confirmed, ${publishes.failed} failed, ${publishes.unknown} unknown`,
    ],
    ["deliveries", String(result.deliveries)],
    ["lost", listed(result.lost)],
    ["unexpected", listed(result.unexpected)],
    ["failed but delivered", listed(result.failedDelivered)],
    [
      "duplicated",
      `${dupAllowed + dupBad} (${dupAllowed} redelivered, ${dupBad} not marked redelivered${dupBad > 0 ? `: ${listed(result.duplicated.filter((d) => !d.allRedelivered).map((d) => d.value))}` : ""})${result.duplicatePolicy === "any" ? "; allowed: at-least-once" : ""}`,
    ],
    ["recovered", `${result.recovered.length} unknown-outcome publishes turned up`],
    [
      `order violations (${result.orderScope})`,
      result.orderViolationCount === 0
        ? "0"
        : `${result.orderViolationCount}, e.g. ${result.orderViolations
            .slice(0, 3)
            .map((v) => `${v.queue}/${v.producer}: ${v.before} after ${v.after}`)
            .join("; ")}`,
    ],
    ["availability", `${(result.availability * 100).toFixed(2)} % of publishes confirmed`],
    [
      "longest unavailability",
      result.longestUnavailability === null
        ? "no publishes"
        : `${seconds(result.longestUnavailabilityMs)} s (${seconds(result.longestUnavailability.start)} s to ${seconds(result.longestUnavailability.end)} s)`,
    ],
    ["faults", faultsLine(result)],
  );
  return table.toString();
}

/** Prints the table to out and writes summary.json into dir; returns the JSON's path. */
export async function summarize(
  result: CheckResult,
  dir: string,
  out: { write(text: string): unknown } = process.stdout,
): Promise<string> {
  out.write(`${formatSummary(result)}\n`);
  const path = join(dir, SUMMARY_FILE);
  await writeFile(path, `${JSON.stringify(result, null, 2)}\n`);
  return path;
}

function listed(values: readonly number[]): string {
  if (values.length === 0) return "0";
  const head = values.slice(0, LISTED_VALUES).join(", ");
  const more = values.length > LISTED_VALUES ? `, and ${values.length - LISTED_VALUES} more` : "";
  return `${values.length}: ${head}${more}`;
}

function faultsLine(result: CheckResult): string {
  if (result.faults.length === 0) return "none";
  const perKind = new Map<string, number>();
  for (const w of result.faults) perKind.set(w.f, (perKind.get(w.f) ?? 0) + 1);
  return [...perKind].map(([f, n]) => `${f} x${n}`).join(", ");
}

function seconds(ms: number): string {
  return (ms / 1000).toFixed(1);
}
