import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { checkHistoryFile } from "../src/check-history.ts";
import type { Op } from "../src/history.ts";
import { HistoryBuilder } from "./history-builder.ts";

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
const cli = join(here, "../src/check-history.ts");
const tsx = join(here, "../../../node_modules/.bin/tsx");

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "raftmq-check-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function writeHistory(ops: readonly Op[], tail = ""): Promise<string> {
  const path = join(dir, "history.jsonl");
  await writeFile(path, `${ops.map((op) => JSON.stringify(op)).join("\n")}\n${tail}`);
  return path;
}

function sink(): { write(text: string): boolean; text(): string } {
  let out = "";
  return {
    write: (t) => {
      out += t;
      return true;
    },
    text: () => out,
  };
}

describe("check-history", () => {
  it("writes summary.json and timeline.svg next to the history and prints the table", async () => {
    const ops = new HistoryBuilder()
      .publish("p1", 1)
      .publish("p1", 2)
      .nemesis("kill", "kill n1")
      .consume("c1", 1)
      .nemesis("restart", "restart n1").ops;
    const out = sink();
    const path = await writeHistory(ops, '{"f":"deliver","pro');
    const { result, summaryPath, timelinePath } = await checkHistoryFile(path, { out });
    expect(result.lost).toEqual([2]);
    expect(summaryPath).toBe(join(dir, "summary.json"));
    const summary = JSON.parse(await readFile(summaryPath, "utf8")) as { valid: boolean; lost: number[] };
    expect(summary).toMatchObject({ valid: false, lost: [2] });
    expect(await readFile(timelinePath, "utf8")).toContain("kill n1");
    expect(out.text()).toMatch(/verdict\s+│ INVALID/);
    expect(out.text()).toMatch(/lost\s+│ 1: 2/);
    expect(out.text()).toContain("last line 10 was cut short");
  });

  it("exits 0 on a valid history, 1 on an invalid one, 2 on an unreadable one", async () => {
    const outDir = join(dir, "out");
    const valid = await writeHistory(new HistoryBuilder().publish("p1", 1).consume("c1", 1).ops);
    const ok = await run(tsx, [cli, valid, "--out", outDir]);
    expect(ok.stdout).toContain("VALID");
    expect(JSON.parse(await readFile(join(outDir, "summary.json"), "utf8"))).toMatchObject({ valid: true });

    const invalid = await writeHistory(new HistoryBuilder().publish("p1", 1).consume("c1", 1).consume("c1", 1).ops);
    await expect(run(tsx, [cli, invalid, "--out", outDir])).rejects.toMatchObject({ code: 1 });

    const garbage = join(dir, "garbage.jsonl");
    await writeFile(garbage, "nonsense\n{}\n");
    await expect(run(tsx, [cli, garbage])).rejects.toMatchObject({ code: 2, stderr: expect.stringContaining(":1: not JSON") });
  });
});
