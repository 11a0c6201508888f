// Crash safety: a writer process is killed with SIGKILL at random moments; after every kill
// the log must hold everything the writer was told is persisted, intact and contiguous.
// The kill times come from a printed seed; RAFTMQ_CRASH_SEED replays them.
import { type ChildProcess, spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createPrng, randomInt } from "@raftmq/raft";
import { afterAll, describe, expect, it } from "vitest";
import { RaftStorage } from "../src/index.ts";
import { entryData, isIntact } from "./fixtures/log-entries.ts";
import { TempDirs } from "./fixtures/temp-data-dir.ts";

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(here, "..", "..", "..");
const writer = join(here, "fixtures", "crash-writer.ts");
const KILLS = 24;

/** RAFTMQ_CRASH_SEED when set, otherwise a fresh seed for this run. */
function crashSeed(): number {
  const raw = process.env.RAFTMQ_CRASH_SEED;
  if (raw === undefined || raw === "") return Math.floor(Math.random() * 2 ** 32);
  const n = Number(raw);
  // createPrng keeps only 32 bits, so a larger seed would silently replay a different one.
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n) || n >= 2 ** 32) {
    throw new Error(`RAFTMQ_CRASH_SEED must be an integer from 0 to ${2 ** 32 - 1}, got "${raw}"`);
  }
  return n;
}

const seed = crashSeed();
const replay = `RAFTMQ_CRASH_SEED=${seed} pnpm vitest run packages/storage/test/crash.test.ts`;

/** Milliseconds after open at which each kill lands. */
function killSchedule(seed: number): number[] {
  const random = createPrng(seed);
  // Mostly mid-stream kills, some right after open (during load and first writes).
  return Array.from({ length: KILLS }, (_, round) => (round % 4 === 0 ? randomInt(random, 0, 20) : randomInt(random, 30, 430)));
}

/** Prefixes a failure that is not an expectation (a recovery error) with the replay line. */
function withReplay(error: unknown, where: string): Error {
  if (error instanceof Error && error.message.includes(where)) return error;
  return new Error(`${where}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
}

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
function runAndKill(dir: string, reported: Reported, killAfterMs: number, where: string): Promise<void> {
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
      else reject(new Error(`${where}: writer exited on its own (code ${code}): ${stderr}`));
    });
  });
}

describe("crash safety under SIGKILL", () => {
  it(`keeps every acknowledged entry across ${KILLS} kills`, async () => {
    const killTimes = killSchedule(seed);
    console.log(`crash test seed ${seed} (replay: ${replay})`);
    console.log(`crash test kill times (ms after open): ${killTimes.join(" ")}`);
    const dir = await temp.make("raftmq-crash-");
    const reported: Reported = { termOf: new Map(), maxIndex: 0, maxTerm: 0, maxCommit: 0, maxSnapshot: 0 };
    let previousHardState = { term: 0, vote: 0, commit: 0 };
    for (let round = 0; round < KILLS; round++) {
      const killAfterMs = killTimes[round] ?? 0;
      const where = `seed ${seed}, kill ${round + 1}/${KILLS} at ${killAfterMs}ms (replay: ${replay})`;
      await runAndKill(dir, reported, killAfterMs, where);

      const storage = await RaftStorage.open({ dir }).catch((error: unknown) => {
        throw withReplay(error, where);
      });
      try {
        const hardState = storage.initialState().hardState;
        expect(hardState.term, where).toBeGreaterThanOrEqual(Math.max(reported.maxTerm, previousHardState.term));
        expect(hardState.commit, where).toBeGreaterThanOrEqual(Math.max(reported.maxCommit, previousHardState.commit));
        previousHardState = hardState;

        const first = storage.firstIndex();
        const last = storage.lastIndex();
        expect(last, where).toBeGreaterThanOrEqual(reported.maxIndex);
        const snapshot = storage.snapshot();
        expect(snapshot.meta.index, where).toBeGreaterThanOrEqual(reported.maxSnapshot);
        expect(first - 1, where).toBeLessThanOrEqual(snapshot.meta.index);
        if (snapshot.meta.index > 0) {
          expect(Buffer.from(snapshot.data).equals(Buffer.from(entryData(snapshot.meta.index, 0, 9000))), where).toBe(true);
        }

        // Contiguous and intact: every held entry is exactly what the writer wrote; every
        // reported entry is either held with its reported term or covered by the snapshot.
        const entries = storage.entries(first, last + 1, Number.MAX_SAFE_INTEGER);
        expect(entries.length, where).toBe(last - first + 1);
        let previousTerm = 0;
        entries.forEach((entry, k) => {
          const at = `${where}, entry ${entry.index}`;
          expect(entry.index, at).toBe(first + k);
          expect(isIntact(entry, entry.index, entry.term), at).toBe(true);
          expect(entry.term, at).toBeGreaterThanOrEqual(previousTerm);
          previousTerm = entry.term;
          const term = reported.termOf.get(entry.index);
          if (term !== undefined) expect(entry.term, at).toBe(term);
        });
        for (const index of reported.termOf.keys()) {
          if (index < first) expect(index, `${where}, reported entry ${index}`).toBeLessThanOrEqual(snapshot.meta.index);
        }
      } catch (error) {
        throw withReplay(error, where);
      } finally {
        await storage.close();
      }
    }
    // The run must actually have exercised writes and snapshots across restarts.
    const afterAllKills = `seed ${seed}, after all ${KILLS} kills (replay: ${replay})`;
    expect(reported.maxIndex, afterAllKills).toBeGreaterThan(KILLS * 10);
    expect(reported.maxSnapshot, afterAllKills).toBeGreaterThan(0);
  }, 120_000);
});
