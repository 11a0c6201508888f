// Proposals per second through a 3-node in-memory cluster (messages delivered in-process,
// MemoryStorage), with the bytes the process allocates per entry. Prints figures only.
import { spawnSync } from "node:child_process";
import { MemoryStorage, type Message, RaftNode, createPrng } from "../src/index.ts";

// Re-run with a GC handle and a young generation large enough that allocation can be read
// from heap growth between collections.
if (typeof globalThis.gc !== "function") {
  const child = spawnSync(process.execPath, [...process.execArgv, "--expose-gc", "--max-semi-space-size=64", ...process.argv.slice(1)], {
    stdio: "inherit",
  });
  process.exit(child.status ?? 1);
}
const gc = globalThis.gc as () => void;

const ENTRIES = Number(process.env.BENCH_ENTRIES ?? 100_000);
const BATCH = Number(process.env.BENCH_BATCH ?? 256);
const PAYLOAD = Number(process.env.BENCH_PAYLOAD ?? 128);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);

interface Node {
  raft: RaftNode;
  storage: MemoryStorage;
  applied: number;
}

function cluster(): Map<number, Node> {
  const nodes = new Map<number, Node>();
  for (const id of [1, 2, 3]) {
    const storage = new MemoryStorage();
    nodes.set(id, { raft: new RaftNode({ id, peers: [1, 2, 3], random: createPrng(id) }, storage), storage, applied: 0 });
  }
  return nodes;
}

/** Handles every Ready and delivers every message until the cluster is quiet. */
function pump(nodes: Map<number, Node>): void {
  let queue: Message[] = [];
  for (;;) {
    let worked = false;
    for (const node of nodes.values()) {
      if (!node.raft.hasReady()) continue;
      worked = true;
      const rd = node.raft.ready();
      node.storage.append(rd.entries);
      if (rd.hardState !== null) node.storage.setHardState(rd.hardState);
      for (const m of [...rd.messages, ...rd.messagesAfterPersist]) queue.push(m);
      const last = rd.committedEntries[rd.committedEntries.length - 1];
      if (last !== undefined) node.applied = last.index;
      node.raft.advance(rd);
    }
    const batch = queue;
    queue = [];
    for (const m of batch) nodes.get(m.to)?.raft.step(m);
    if (!worked && batch.length === 0) return;
  }
}

interface RunResult {
  perSecond: number;
  cpuMicrosPerEntry: number;
  allocatedPerEntry: number;
  retainedPerEntry: number;
}

function runOnce(): RunResult {
  const nodes = cluster();
  const leader = nodes.get(1);
  if (leader === undefined) throw new Error("no node 1");
  leader.raft.campaign();
  pump(nodes);
  const payload = new Uint8Array(PAYLOAD).fill(7);
  gc();
  const heapBefore = process.memoryUsage().heapUsed;
  let allocated = 0;
  let lastHeap = heapBefore;
  const cpuBefore = process.cpuUsage();
  const began = performance.now();
  let proposed = 0;
  while (proposed < ENTRIES) {
    const n = Math.min(BATCH, ENTRIES - proposed);
    for (let i = 0; i < n; i++) leader.raft.propose(payload);
    proposed += n;
    pump(nodes);
    // Heap growth between samples is allocation; a drop means a collection ran in between,
    // so that window is counted from the new baseline (an undercount, never an overcount).
    const heap = process.memoryUsage().heapUsed;
    if (heap > lastHeap) allocated += heap - lastHeap;
    lastHeap = heap;
  }
  const seconds = (performance.now() - began) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const target = leader.raft.status().lastIndex;
  for (const [id, node] of nodes) {
    if (node.applied !== target) throw new Error(`node ${id} applied ${node.applied}, expected ${target}`);
  }
  gc();
  const retained = process.memoryUsage().heapUsed - heapBefore;
  return {
    perSecond: ENTRIES / seconds,
    cpuMicrosPerEntry: ((cpu.user + cpu.system) / ENTRIES),
    allocatedPerEntry: allocated / ENTRIES,
    retainedPerEntry: retained / ENTRIES,
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

console.log(`raft propose benchmark: 3 nodes in one process, ${ENTRIES} entries of ${PAYLOAD} bytes, ${BATCH} proposals per Ready round, ${RUNS} runs`);
runOnce(); // warm-up: JIT and allocation sites
const results: RunResult[] = [];
for (let r = 0; r < RUNS; r++) {
  const result = runOnce();
  results.push(result);
  console.log(
    `  run ${r + 1}: ${Math.round(result.perSecond).toLocaleString("en-US")} entries/s, ${result.cpuMicrosPerEntry.toFixed(2)} µs CPU/entry, ` +
      `${Math.round(result.allocatedPerEntry)} B allocated/entry, ${Math.round(result.retainedPerEntry)} B retained/entry`,
  );
}
console.log(`median: ${Math.round(median(results.map((r) => r.perSecond))).toLocaleString("en-US")} entries/s committed and applied on all 3 nodes`);
console.log(`median: ${median(results.map((r) => r.cpuMicrosPerEntry)).toFixed(2)} µs CPU per entry (all 3 nodes, one thread)`);
console.log(`median: ${Math.round(median(results.map((r) => r.allocatedPerEntry)))} bytes allocated per entry (heap growth between samples; a lower bound)`);
console.log(`median: ${Math.round(median(results.map((r) => r.retainedPerEntry)))} bytes retained per entry after GC (three MemoryStorage copies of the log)`);
