// Synced append throughput of RaftStorage.save against what the disk and plain classic-level
// can do at the same batch sizes. Prints medians of several runs; asserts nothing. CPU time is
// the whole process's, LevelDB's background threads included.
// Run: pnpm tsx packages/storage/bench/append.ts
import { closeSync, fdatasyncSync, openSync, writeSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ClassicLevel } from "classic-level";
import { type Entry, EntryType } from "@raftmq/raft";
import { DEFAULT_WRITE_BUFFER_BYTES, RaftStorage } from "../src/index.ts";

const RUNS = 3;
const ENTRY_BYTES = 1024;
const FSYNC_WRITES = 2000;
/** Batches per run, sized so each run takes roughly half a second on this machine kind. */
const CASES = [
  { batch: 1, batches: 2500 },
  { batch: 16, batches: 1000 },
  { batch: 256, batches: 200 },
] as const;

interface Measured {
  perSecond: number;
  cpuMicrosPerEntry: number;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

async function timed(count: number, body: () => Promise<void>): Promise<Measured> {
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  await body();
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const used = process.cpuUsage(cpu);
  return { perSecond: count / seconds, cpuMicrosPerEntry: (used.user + used.system) / count };
}

async function withTempDir<T>(body: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), "raftmq-bench-"));
  try {
    return await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function payload(seed: number): Uint8Array {
  return Uint8Array.from({ length: ENTRY_BYTES }, (_, i) => (seed * 131 + i * 7) & 0xff);
}

async function fdatasyncRate(): Promise<Measured> {
  return withTempDir(async (dir) => {
    const fd = openSync(join(dir, "sync-probe"), "a");
    const block = new Uint8Array(4096).fill(7);
    try {
      return await timed(FSYNC_WRITES, async () => {
        for (let i = 0; i < FSYNC_WRITES; i++) {
          writeSync(fd, block);
          fdatasyncSync(fd);
        }
      });
    } finally {
      closeSync(fd);
    }
  });
}

function rawKey(index: number): Uint8Array {
  const key = new Uint8Array(9);
  key[0] = 0x10;
  const view = new DataView(key.buffer);
  view.setUint32(1, Math.floor(index / 2 ** 32));
  view.setUint32(5, index >>> 0);
  return key;
}

async function classicLevelRate(batch: number, batches: number, values: Uint8Array[]): Promise<Measured> {
  return withTempDir(async (dir) => {
    // The same LevelDB options RaftStorage opens with, so the ratio measures our code alone.
    const db = new ClassicLevel<Uint8Array, Uint8Array>(join(dir, "db"), { keyEncoding: "view", valueEncoding: "view", writeBufferSize: DEFAULT_WRITE_BUFFER_BYTES });
    await db.open();
    try {
      let index = 0;
      return await timed(batch * batches, async () => {
        for (let b = 0; b < batches; b++) {
          const ops: { type: "put"; key: Uint8Array; value: Uint8Array }[] = [];
          for (let k = 0; k < batch; k++) {
            index++;
            ops.push({ type: "put", key: rawKey(index), value: values[index % values.length] as Uint8Array });
          }
          await db.batch(ops, { sync: true });
        }
      });
    } finally {
      await db.close();
    }
  });
}

async function storageRate(batch: number, batches: number, values: Uint8Array[], withHardState: boolean): Promise<Measured> {
  return withTempDir(async (dir) => {
    const storage = await RaftStorage.open({ dir: join(dir, "data") });
    try {
      let index = 0;
      return await timed(batch * batches, async () => {
        for (let b = 0; b < batches; b++) {
          const entries: Entry[] = [];
          for (let k = 0; k < batch; k++) {
            index++;
            entries.push({ index, term: 1, type: EntryType.ENTRY_TYPE_NORMAL, data: values[index % values.length] as Uint8Array });
          }
          const hardState = withHardState ? { term: 1, vote: 1, commit: index - batch } : null;
          await storage.save({ hardState, entries, snapshot: null });
        }
      });
    } finally {
      await storage.close();
    }
  });
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

async function main(): Promise<void> {
  const values = Array.from({ length: 64 }, (_, i) => payload(i));
  const fsync: number[] = [];
  const results = new Map<number, { raw: Measured[]; storage: Measured[]; storageHs: Measured[] }>();
  for (const c of CASES) results.set(c.batch, { raw: [], storage: [], storageHs: [] });

  // Runs interleave the variants so a burst of noise on the shared machine hits all of them.
  for (let run = 0; run < RUNS; run++) {
    fsync.push((await fdatasyncRate()).perSecond);
    for (const { batch, batches } of CASES) {
      const slot = results.get(batch);
      if (slot === undefined) throw new Error("unreachable: every case has a slot");
      // Alternate the order too: whichever variant runs right after another one's 50 MB of
      // writes pays for the disk's writeback of them.
      const variants = [
        async () => slot.raw.push(await classicLevelRate(batch, batches, values)),
        async () => slot.storage.push(await storageRate(batch, batches, values, false)),
        async () => slot.storageHs.push(await storageRate(batch, batches, values, true)),
      ];
      if (run % 2 === 1) variants.reverse();
      for (const variant of variants) await variant();
    }
  }

  console.log(`fdatasync, 4 KiB append: ${fmt(median(fsync))} syncs/s (median of ${RUNS})`);
  console.log(`synced batches of 1 KiB entries, entries/s, median of ${RUNS} runs (CPU µs per entry)`);
  console.log("");
  console.log("ratio: RaftStorage / classic-level, from the medians (in brackets: median of the per-run ratios,");
  console.log("each run measuring both back to back, which cancels slow drifts in the machine's load)");
  console.log("");
  console.log("| batch | fdatasync/s | classic-level | RaftStorage.save | ratio | save + hard state | ratio |");
  console.log("|---:|---:|---:|---:|---:|---:|---:|");
  for (const { batch } of CASES) {
    const slot = results.get(batch);
    if (slot === undefined) continue;
    const raw = median(slot.raw.map((m) => m.perSecond));
    const ours = median(slot.storage.map((m) => m.perSecond));
    const oursHs = median(slot.storageHs.map((m) => m.perSecond));
    const rawCpu = median(slot.raw.map((m) => m.cpuMicrosPerEntry));
    const oursCpu = median(slot.storage.map((m) => m.cpuMicrosPerEntry));
    const oursHsCpu = median(slot.storageHs.map((m) => m.cpuMicrosPerEntry));
    const paired = (runs: Measured[]) => median(runs.map((m, k) => m.perSecond / (slot.raw[k]?.perSecond ?? Number.NaN))).toFixed(2);
    console.log(
      `| ${batch} | ${fmt(median(fsync))} | ${fmt(raw)} (${rawCpu.toFixed(1)}) | ${fmt(ours)} (${oursCpu.toFixed(1)}) | ${(ours / raw).toFixed(2)} [${paired(slot.storage)}] | ${fmt(oursHs)} (${oursHsCpu.toFixed(1)}) | ${(oursHs / raw).toFixed(2)} [${paired(slot.storageHs)}] |`,
    );
  }
}

await main();
