// Crash safety: a writer process is killed with SIGKILL at random moments; after every kill
// the log must hold everything the writer was told is persisted, intact and contiguous.
import { type ChildProcess, spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { RaftStorage } from "../src/index.ts";
import { entryData, isIntact } from "./fixtures/log-entries.ts";
import { TempDirs } from "./fixtures/temp-data-dir.ts";

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(here, "..", "..", "..");
const writer = join(here, "fixtures", "crash-writer.ts");
const KILLS = 24;

const temp = new TempDirs();
afterAll(() => temp.removeAll());

interface Reported {
  termOf: Map<number, number>;
  maxIndex: number;
  maxTerm: number;
  maxCommit: number;
  maxSnapshot: number;
}

/** Runs the writer until a random moment after it opened, then SIGKILLs it. */
function runAndKill(dir: string, reported: Reported, killAfterMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", writer, dir], { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"] });
    let pending = "";
    let stderr = "";
    let timer: NodeJS.Timeout | undefined;
    child.stderr?.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.stdout?.on("data", (chunk: Buffer) => {
      pending += chunk.toString();
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines) {
        const [kind, ...rest] = line.split(" ");
        const n = rest.map(Number);
        if (kind === "opened") {
          timer = setTimeout(() => child.kill("SIGKILL"), killAfterMs);
        } else if (kind === "persisted") {
          const [first = 0, last = 0, term = 0, commit = 0] = n;
          for (let i = first; i <= last; i++) reported.termOf.set(i, term);
          reported.maxIndex = Math.max(reported.maxIndex, last);
          reported.maxTerm = Math.max(reported.maxTerm, term);
          reported.maxCommit = Math.max(reported.maxCommit, commit);
        } else if (kind === "snapshot") {
          reported.maxSnapshot = Math.max(reported.maxSnapshot, n[0] ?? 0);
        }
      }
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      if (signal === "SIGKILL") resolve();
      else reject(new Error(`writer exited on its own (code ${code}): ${stderr}`));
    });
  });
}

describe("crash safety under SIGKILL", () => {
  it(`keeps every acknowledged entry across ${KILLS} kills`, async () => {
    const dir = await temp.make("raftmq-crash-");
    const reported: Reported = { termOf: new Map(), maxIndex: 0, maxTerm: 0, maxCommit: 0, maxSnapshot: 0 };
    let previousHardState = { term: 0, vote: 0, commit: 0 };
    for (let round = 0; round < KILLS; round++) {
      // Mostly mid-stream kills, some right after open (during load and first writes).
      const killAfterMs = round % 4 === 0 ? Math.floor(Math.random() * 20) : 30 + Math.floor(Math.random() * 400);
      await runAndKill(dir, reported, killAfterMs);

      const storage = await RaftStorage.open({ dir });
      try {
        const hardState = storage.initialState().hardState;
        expect(hardState.term).toBeGreaterThanOrEqual(Math.max(reported.maxTerm, previousHardState.term));
        expect(hardState.commit).toBeGreaterThanOrEqual(Math.max(reported.maxCommit, previousHardState.commit));
        previousHardState = hardState;

        const first = storage.firstIndex();
        const last = storage.lastIndex();
        expect(last).toBeGreaterThanOrEqual(reported.maxIndex);
        const snapshot = storage.snapshot();
        expect(snapshot.meta.index).toBeGreaterThanOrEqual(reported.maxSnapshot);
        expect(first - 1).toBeLessThanOrEqual(snapshot.meta.index);
        if (snapshot.meta.index > 0) {
          expect(Buffer.from(snapshot.data).equals(Buffer.from(entryData(snapshot.meta.index, 0, 9000)))).toBe(true);
        }

        // Contiguous and intact: every held entry is exactly what the writer wrote; every
        // reported entry is either held with its reported term or covered by the snapshot.
        const entries = storage.entries(first, last + 1, Number.MAX_SAFE_INTEGER);
        expect(entries.length).toBe(last - first + 1);
        let previousTerm = 0;
        entries.forEach((entry, k) => {
          expect(entry.index).toBe(first + k);
          expect(isIntact(entry, entry.index, entry.term)).toBe(true);
          expect(entry.term).toBeGreaterThanOrEqual(previousTerm);
          previousTerm = entry.term;
          const term = reported.termOf.get(entry.index);
          if (term !== undefined) expect(entry.term).toBe(term);
        });
        for (const index of reported.termOf.keys()) {
          if (index < first) expect(index).toBeLessThanOrEqual(snapshot.meta.index);
        }
      } finally {
        await storage.close();
      }
    }
    // The run must actually have exercised writes and snapshots across restarts.
    expect(reported.maxIndex).toBeGreaterThan(KILLS * 10);
    expect(reported.maxSnapshot).toBeGreaterThan(0);
  }, 120_000);
});
