// How long reading, checking and plotting a large history take: medians of 3 runs.
//   tsx test/chaos/bench/check-large.ts [ops, default 1000000]

import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { check } from "../src/checker.ts";
import type { Op } from "../src/history.ts";
import { readHistory } from "../src/read-history.ts";
import { buildTimeline } from "../src/timeline.ts";
import { renderTimelineSvg } from "../src/timeline-plot.ts";
import { type Action, cleanHistory } from "../test/clean-history.ts";

const target = Number(process.argv[2] ?? 1_000_000);
const SIZE = { producers: 8, consumers: 8, queues: 4 };

/** A small seeded generator (mulberry32) so every run checks the same history. */
function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function* actions(rand: () => number, count: number): Generator<Action> {
  const pick = (n: number): number => Math.floor(rand() * n);
  for (let i = 0; i < count; i++) {
    const r = rand();
    if (r < 0.3) yield { kind: "invoke", producer: pick(SIZE.producers), queue: pick(SIZE.queues) };
    else if (r < 0.6) yield { kind: "complete", producer: pick(SIZE.producers), outcome: rand() < 0.95 ? "ok" : "info-enqueued" };
    else if (r < 0.8) yield { kind: "deliver", queue: pick(SIZE.queues), consumer: pick(SIZE.consumers) };
    else if (r < 0.9995) yield { kind: "ack", consumer: pick(SIZE.consumers) };
    else yield { kind: "crash", consumer: pick(SIZE.consumers) };
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
}

function time<T>(f: () => T): [T, number] {
  const t0 = performance.now();
  const r = f();
  return [r, performance.now() - t0];
}

// Each action yields about 0.75 ops: some find nothing to do (an idle producer, an empty queue).
const ops: Op[] = cleanHistory(actions(seeded(1), Math.round(target / 0.75)), SIZE, 0.05);
const dir = await mkdtemp(join(tmpdir(), "raftmq-bench-"));
try {
  const path = join(dir, "history.jsonl");
  await writeFile(path, `${ops.map((op) => JSON.stringify(op)).join("\n")}\n`);
  const reads: number[] = [];
  const checks: number[] = [];
  const timelines: number[] = [];
  const plots: number[] = [];
  let valid = false;
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    const { ops: read } = await readHistory(path);
    reads.push(performance.now() - t0);
    const [result, checkMs] = time(() => check(read));
    checks.push(checkMs);
    valid = result.valid;
    const [timeline, timelineMs] = time(() => buildTimeline(read, result.faults));
    timelines.push(timelineMs);
    const t1 = performance.now();
    await renderTimelineSvg(timeline);
    plots.push(performance.now() - t1);
  }
  const ms = (x: number): string => `${x.toFixed(0)} ms`;
  console.log(`history: ${ops.length} ops, ${((ops.at(-1)?.time ?? 0) / 1000).toFixed(0)} s of run time, valid=${valid}`);
  console.log(`readHistory   ${ms(median(reads))}  (${((ops.length / median(reads)) * 1000).toFixed(0)} ops/s)`);
  console.log(`check         ${ms(median(checks))}  (${((ops.length / median(checks)) * 1000).toFixed(0)} ops/s)`);
  console.log(`buildTimeline ${ms(median(timelines))}`);
  console.log(`render SVG    ${ms(median(plots))}`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
