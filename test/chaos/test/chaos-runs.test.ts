// Short chaos runs against real node processes, one per nemesis mix: each must end with nothing
// lost, nothing unexpected, no unmarked duplicate, no order violation and no node crash. A
// failing run keeps its folder (history, summary, timeline, node logs) and names it.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseNemeses } from "../src/fault-schedule.ts";
import { runChaos } from "../src/run-chaos.ts";

const RUNS = [
  { nemesis: "kill", seed: 11 },
  { nemesis: "pause,transfer", seed: 12 },
  { nemesis: "membership", seed: 13 },
  { nemesis: "all", seed: 14 },
] as const;
const RUN_SECONDS = 10;

describe("chaos runs on a real 3-node cluster", () => {
  for (const { nemesis, seed } of RUNS) {
    it(`nemesis ${nemesis}, seed ${seed}: no confirmed message lost, nothing unexpected`, { timeout: 90_000 }, async () => {
      const outDir = mkdtempSync(join(tmpdir(), `raftmq-chaos-run-${seed}-`));
      const lines: string[] = [];
      const run = await runChaos({
        timeSec: RUN_SECONDS,
        nemeses: parseNemeses(nemesis),
        seed,
        nodes: 3,
        outDir,
        say: (line) => lines.push(line),
        out: { write: (text: string) => lines.push(text) },
      });
      process.stdout.write(`${run.summaryLine}\n`);
      if (!run.valid) process.stdout.write(`run kept in ${outDir}:\n${lines.join("\n")}\n`);
      expect(run.check.publishes.confirmed).toBeGreaterThan(0);
      expect(run.check.lost).toEqual([]);
      expect(run.check.unexpected).toEqual([]);
      expect(run.check.failedDelivered).toEqual([]);
      expect(run.check.duplicateCounts.notRedelivered).toBe(0);
      expect(run.check.orderViolationCount).toBe(0);
      expect(run.crashes).toEqual([]);
      expect(run.valid).toBe(true);
      rmSync(outDir, { recursive: true, force: true });
    });
  }
});
