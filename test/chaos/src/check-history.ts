// Checks a recorded history: prints the summary, writes summary.json and timeline.svg, and
// exits 1 when the history is invalid (2 when it cannot be read or the arguments are wrong).
//
//   tsx test/chaos/src/check-history.ts <history.jsonl> [--out dir] [--order-scope queue|consumer] [--duplicates redelivered|any]

import { mkdir, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { type CheckOptions, check, type CheckResult, type DuplicatePolicy, type OrderScope } from "./checker.ts";
import { HistoryParseError, MalformedHistoryError } from "./history-errors.ts";
import { readHistory } from "./read-history.ts";
import { summarize } from "./summary.ts";
import { buildTimeline } from "./timeline.ts";
import { renderTimelineSvg } from "./timeline-plot.ts";

export const TIMELINE_FILE = "timeline.svg";

export interface CheckHistoryFileResult {
  readonly result: CheckResult;
  readonly summaryPath: string;
  readonly timelinePath: string;
}

/** Reads, checks, summarizes and plots one history file into outDir (default: its folder). */
export async function checkHistoryFile(
  historyPath: string,
  options: { outDir?: string; orderScope?: OrderScope; duplicates?: DuplicatePolicy; out?: { write(text: string): unknown } } = {},
): Promise<CheckHistoryFileResult> {
  const out = options.out ?? process.stdout;
  const outDir = options.outDir ?? dirname(historyPath);
  const { ops, truncated } = await readHistory(historyPath);
  if (truncated !== undefined) {
    out.write(`note: last line ${truncated.lineNumber} was cut short (${truncated.text.length} bytes) and is ignored\n`);
  }
  const checkOptions: CheckOptions = {
    ...(options.orderScope === undefined ? {} : { orderScope: options.orderScope }),
    ...(options.duplicates === undefined ? {} : { duplicates: options.duplicates }),
  };
  const result = check(ops, checkOptions);
  await mkdir(outDir, { recursive: true });
  const summaryPath = await summarize(result, outDir, out);
  const timeline = buildTimeline(ops, result.faults);
  const svg = await renderTimelineSvg(timeline, {
    title: `${basename(historyPath)}: ${result.valid ? "valid" : "INVALID"}`,
    subtitle: `${result.publishes.confirmed} confirmed, ${result.lost.length} lost, ${result.unexpected.length} unexpected, ${result.duplicated.length} duplicated; longest unavailability ${(result.longestUnavailabilityMs / 1000).toFixed(1)} s`,
  });
  const timelinePath = join(outDir, TIMELINE_FILE);
  await writeFile(timelinePath, svg);
  out.write(`wrote ${summaryPath} and ${timelinePath}\n`);
  return { result, summaryPath, timelinePath };
}

async function main(argv: readonly string[]): Promise<number> {
  let parsed: ReturnType<typeof parseCli>;
  try {
    parsed = parseCli(argv);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (parsed.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  try {
    const { result } = await checkHistoryFile(parsed.history, {
      ...(parsed.outDir === undefined ? {} : { outDir: parsed.outDir }),
      orderScope: parsed.orderScope,
      duplicates: parsed.duplicates,
    });
    return result.valid ? 0 : 1;
  } catch (err) {
    if (err instanceof HistoryParseError || err instanceof MalformedHistoryError) {
      process.stderr.write(`cannot check ${parsed.history}: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}

const USAGE = `usage: check-history <history.jsonl> [--out dir] [--order-scope queue|consumer] [--duplicates redelivered|any]
  --out dir            where summary.json and timeline.svg go (default: the history's folder)
  --order-scope        compare first deliveries per queue (default) or per consumer
  --duplicates         a value may come again only redelivered (default), or any number of times
                       (at-least-once without idempotent producers, the AMQP workload's histories)
`;

function parseCli(argv: readonly string[]): {
  help: boolean;
  history: string;
  outDir: string | undefined;
  orderScope: OrderScope;
  duplicates: DuplicatePolicy;
} {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      out: { type: "string" },
      "order-scope": { type: "string", default: "queue" },
      duplicates: { type: "string", default: "redelivered" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  const scope = values["order-scope"];
  if (scope !== "queue" && scope !== "consumer") throw new Error(`--order-scope must be queue or consumer`);
  const duplicates = values.duplicates;
  if (duplicates !== "redelivered" && duplicates !== "any") throw new Error(`--duplicates must be redelivered or any`);
  if (values.help === true) return { help: true, history: "", outDir: undefined, orderScope: scope, duplicates };
  const [history, ...rest] = positionals;
  if (history === undefined || rest.length > 0) throw new Error("expected exactly one history file");
  return { help: false, history, outDir: values.out, orderScope: scope, duplicates };
}

const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(entry).href) {
  process.exitCode = await main(process.argv.slice(2));
}
