// Per-interval figures of a run for its timeline plot: confirmed publishes and deliveries per
// second, and publish latency percentiles of the confirms in each interval.

import type { FaultWindow } from "./checker.ts";
import type { Op } from "./history.ts";

export interface TimelineOptions {
  /** Width of one interval. */
  readonly bucketMs?: number;
  /** Most intervals in a plot; a longer run gets wider intervals. */
  readonly maxBuckets?: number;
}

export const DEFAULT_BUCKET_MS = 1000;
export const DEFAULT_MAX_BUCKETS = 1800;

export interface TimelineBucket {
  /** Start of the interval, in seconds since the run started. */
  readonly t: number;
  readonly confirmedPerSec: number;
  readonly deliveredPerSec: number;
  /** Latency, invoke to confirm, of the publishes confirmed in this interval; null if none. */
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
}

export interface Timeline {
  readonly bucketMs: number;
  readonly durationMs: number;
  readonly buckets: TimelineBucket[];
  readonly faults: readonly FaultWindow[];
}

export function buildTimeline(
  ops: readonly Op[],
  faults: readonly FaultWindow[],
  options: TimelineOptions = {},
): Timeline {
  const maxBuckets = options.maxBuckets ?? DEFAULT_MAX_BUCKETS;
  let bucketMs = options.bucketMs ?? DEFAULT_BUCKET_MS;
  if (!(bucketMs > 0) || !(maxBuckets >= 1)) throw new RangeError("bucketMs must be > 0 and maxBuckets >= 1");

  let durationMs = 0;
  for (const op of ops) if (op.time > durationMs) durationMs = op.time;
  for (const w of faults) if (w.end > durationMs) durationMs = w.end;
  if (durationMs / bucketMs >= maxBuckets) bucketMs = Math.ceil(durationMs / maxBuckets / 1000 + 1e-9) * 1000;
  const n = Math.floor(durationMs / bucketMs) + 1;

  const confirmed = new Array<number>(n).fill(0);
  const delivered = new Array<number>(n).fill(0);
  const latencies: number[][] = Array.from({ length: n }, () => []);
  const invokedAt = new Map<number, number>();
  for (const op of ops) {
    const b = Math.floor(op.time / bucketMs);
    if (op.f === "publish") {
      if (op.type === "invoke") {
        invokedAt.set(op.value, op.time);
      } else if (op.type === "ok") {
        confirmed[b] = (confirmed[b] ?? 0) + 1;
        const started = invokedAt.get(op.value);
        if (started !== undefined) latencies[b]?.push(op.time - started);
      }
    } else if (op.f === "deliver") {
      delivered[b] = (delivered[b] ?? 0) + 1;
    }
  }

  const perSec = 1000 / bucketMs;
  const buckets: TimelineBucket[] = [];
  for (let b = 0; b < n; b++) {
    const l = Float64Array.from(latencies[b] ?? []).sort();
    buckets.push({
      t: (b * bucketMs) / 1000,
      confirmedPerSec: (confirmed[b] ?? 0) * perSec,
      deliveredPerSec: (delivered[b] ?? 0) * perSec,
      p50Ms: percentile(l, 0.5),
      p99Ms: percentile(l, 0.99),
    });
  }
  return { bucketMs, durationMs, buckets, faults };
}

/** Nearest-rank percentile of sorted values; null for none. */
export function percentile(sorted: ArrayLike<number>, q: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1] ?? null;
}
