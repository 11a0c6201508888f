// The corruption nemesis: damage one member's data while it is down and walk the operator's way
// back. stop -> corrupt (flip bytes or truncate a table, or damage the write-ahead log) ->
// restart, which must be refused with the corrupt-data exit code -> `raftmqctl members replace`
// -> the node runs again under a new id and the leader promotes it to voter.
import { spawn } from "node:child_process";
import { open as openFile, readdir, stat, truncate } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { DATA_CORRUPT_EXIT_CODE } from "@raftmq/server";
import type { ChaosCluster } from "./chaos-cluster.ts";
import type { SeededRandom } from "./seeded-random.ts";

const RAFTMQCTL = fileURLToPath(new URL("../../../packages/cli/bin/raftmqctl.mjs", import.meta.url));
/** The replace command gives up after this. */
const REPLACE_TIMEOUT_MS = 60_000;
/** Bytes flipped in one place. */
const FLIP_BYTES = 16;

export type CorruptionKind = "flip-table" | "truncate-table" | "flip-wal";

/** What was damaged, for the run's report. */
export interface CorruptionDone {
  readonly kind: CorruptionKind;
  readonly file: string;
  readonly newId: number;
}

async function flip(path: string, at: number): Promise<void> {
  const handle = await openFile(path, "r+");
  try {
    const bytes = Buffer.alloc(FLIP_BYTES);
    const { bytesRead } = await handle.read(bytes, 0, FLIP_BYTES, at);
    for (let i = 0; i < bytesRead; i++) bytes[i] = (bytes[i] ?? 0) ^ 0xa5;
    await handle.write(bytes, 0, bytesRead, at);
  } finally {
    await handle.close();
  }
}

/**
 * Damages `dir` so that the node must notice: a table when there is one, else the first record
 * of the write-ahead log (a node that has run wrote several, so it cannot pass for a torn tail).
 */
async function corrupt(dir: string, rng: SeededRandom): Promise<{ kind: CorruptionKind; file: string }> {
  const names = (await readdir(dir)).sort();
  const tables = names.filter((n) => n.endsWith(".ldb"));
  const wals = names.filter((n) => /^\d+\.log$/.test(n));
  const wal = wals[wals.length - 1];
  if (tables.length === 0) {
    if (wal === undefined) throw new Error(`${dir} holds neither tables nor a write-ahead log: nothing to damage`);
    // Past the 7-byte header of the first record, inside its payload.
    await flip(join(dir, wal), 8);
    return { kind: "flip-wal", file: wal };
  }
  const file = rng.pick(tables);
  const path = join(dir, file);
  const { size } = await stat(path);
  if (rng.next() < 0.5) {
    await truncate(path, rng.int(0, Math.max(0, size - 1)));
    return { kind: "truncate-table", file };
  }
  // Not into the footer's last 48 bytes: part of them is padding nothing reads.
  await flip(path, rng.int(0, Math.max(0, size - 48 - FLIP_BYTES)));
  return { kind: "flip-table", file };
}

function raftmqctl(args: readonly string[]): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, [RAFTMQCTL, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (c: Buffer) => {
    output += c.toString();
  });
  child.stderr.on("data", (c: Buffer) => {
    output += c.toString();
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), REPLACE_TIMEOUT_MS);
  return new Promise((resolve) =>
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    }),
  );
}

/**
 * The first half of the fault on member `id` (a minority: the others must keep a quorum): stop
 * it, damage its data, start it again and see it refuse. Throws when the node starts on damaged
 * data or exits with another code than the one `raftmq node --help` promises.
 */
export async function corruptMember(cluster: ChaosCluster, id: number, rng: SeededRandom, say: (line: string) => void): Promise<{ kind: CorruptionKind; file: string }> {
  const dir = cluster.harness.spec(id).dataDir;
  say(`corruption: stopping node ${id}`);
  await cluster.kill(id);
  const damage = await corrupt(dir, rng);
  say(`corruption: ${damage.kind} ${damage.file} of node ${id}`);
  const refusal = await cluster.startExpectingRefusal(id);
  if (refusal.code !== DATA_CORRUPT_EXIT_CODE || !refusal.output.includes('"data-corrupt"')) {
    throw new Error(`node ${id} on damaged data exited with code ${refusal.code}, expected ${DATA_CORRUPT_EXIT_CODE} and a data-corrupt line:\n${refusal.output.slice(-2000)}`);
  }
  say(`corruption: node ${id} refused to start (exit ${refusal.code})`);
  return damage;
}

/** The operator's way back: `raftmqctl members replace`, then the node runs under a new id until it is a voter. */
export async function replaceMember(cluster: ChaosCluster, id: number, say: (line: string) => void): Promise<number> {
  const dir = cluster.harness.spec(id).dataDir;
  const newId = await cluster.planReplacement(id);
  const healthy = cluster.live().map((m) => cluster.clientAddress(m));
  const replaced = await raftmqctl([
    "--addresses",
    healthy.join(","),
    "members",
    "replace",
    String(id),
    String(newId),
    cluster.harness.peerAddress(newId),
    cluster.clientAddress(newId),
    "--data-dir",
    dir,
  ]);
  for (const line of replaced.output.trim().split("\n")) say(`corruption: ${line}`);
  if (replaced.code !== 0) throw new Error(`raftmqctl members replace ${id} ${newId} exited with code ${replaced.code}`);
  await cluster.adoptReplacement(id, newId);
  say(`corruption: node ${id} is back as voter ${newId}`);
  return newId;
}

/** Both halves at once. */
export async function corruptAndRecover(cluster: ChaosCluster, id: number, rng: SeededRandom, say: (line: string) => void): Promise<CorruptionDone> {
  const damage = await corruptMember(cluster, id, rng, say);
  const newId = await replaceMember(cluster, id, say);
  return { ...damage, newId };
}
