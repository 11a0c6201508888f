// A node's memory as its own /metrics reports it (prom-client's process metrics, node-metrics.ts),
// and whether it came back near a baseline.

export interface MemoryFigures {
  /** V8 heap in use: live objects plus garbage not yet collected. */
  heapUsed: number;
  /** Memory of Buffers and other objects held outside the V8 heap. */
  external: number;
  /** Resident set: everything the process holds, native allocations and freed-but-kept pages included. */
  rss: number;
}

const METRIC_OF: Readonly<Record<keyof MemoryFigures, string>> = {
  heapUsed: "nodejs_heap_size_used_bytes",
  external: "nodejs_external_memory_bytes",
  rss: "process_resident_memory_bytes",
};

/** The figures in a Prometheus text exposition; throws naming a metric that is missing. */
export function memoryFromMetrics(text: string): MemoryFigures {
  const value = (metric: string): number => {
    const m = new RegExp(`^${metric} ([0-9.e+]+)$`, "m").exec(text);
    if (m?.[1] === undefined) throw new Error(`/metrics has no ${metric}`);
    return Number(m[1]);
  };
  return { heapUsed: value(METRIC_OF.heapUsed), external: value(METRIC_OF.external), rss: value(METRIC_OF.rss) };
}

export async function nodeMemory(host: string, httpPort: number): Promise<MemoryFigures> {
  const res = await fetch(`http://${host}:${httpPort}/metrics`, { signal: AbortSignal.timeout(5_000) });
  if (!res.ok) throw new Error(`GET /metrics on ${host}:${httpPort}: HTTP ${res.status}`);
  return memoryFromMetrics(await res.text());
}

const MiB = 1024 * 1024;

export function mib(bytes: number): string {
  return `${(bytes / MiB).toFixed(1)} MiB`;
}

export function describeFigures(f: MemoryFigures): string {
  return `heap used ${mib(f.heapUsed)}, external ${mib(f.external)}, rss ${mib(f.rss)}`;
}

/** "heap used 41.2 MiB -> 48.9 MiB (+7.7 MiB), ..." for one node. */
export function describeMemory(baseline: MemoryFigures, now: MemoryFigures): string {
  const one = (name: string, key: keyof MemoryFigures) => {
    const delta = now[key] - baseline[key];
    return `${name} ${mib(baseline[key])} -> ${mib(now[key])} (${delta >= 0 ? "+" : "-"}${mib(Math.abs(delta))})`;
  };
  return `${one("heap used", "heapUsed")}, ${one("external", "external")}, ${one("rss", "rss")}`;
}

/** How far above `baseline + margin` each bounded figure is; empty when all are within. */
export function overBaseline(baseline: MemoryFigures, now: MemoryFigures, margins: Partial<Readonly<MemoryFigures>>): string[] {
  const over: string[] = [];
  for (const key of Object.keys(margins) as (keyof MemoryFigures)[]) {
    const margin = margins[key];
    if (margin === undefined) continue;
    const limit = baseline[key] + margin;
    if (now[key] > limit) over.push(`${METRIC_OF[key]} ${mib(now[key])} is above baseline ${mib(baseline[key])} + ${mib(margin)}`);
  }
  return over;
}
