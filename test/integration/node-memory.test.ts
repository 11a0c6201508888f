import { describe, expect, it } from "vitest";
import { describeMemory, memoryFromMetrics, overBaseline } from "./node-memory.ts";

const MiB = 1024 * 1024;

const METRICS = `# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 157286400
# TYPE nodejs_heap_size_used_bytes gauge
nodejs_heap_size_used_bytes 3.5e7
nodejs_external_memory_bytes 3355443
nodejs_heap_space_size_used_bytes{space="old"} 1
`;

describe("a node's memory from /metrics", () => {
  it("reads the heap in use, external memory and the resident set", () => {
    expect(memoryFromMetrics(METRICS)).toEqual({ heapUsed: 35_000_000, external: 3_355_443, rss: 157_286_400 });
    expect(() => memoryFromMetrics("nodejs_heap_size_used_bytes 1\n")).toThrow(/nodejs_external_memory_bytes/);
  });

  it("names each bounded figure above baseline + margin, and only those", () => {
    const base = { heapUsed: 40 * MiB, external: 3 * MiB, rss: 150 * MiB };
    const margins = { heapUsed: 64 * MiB };
    expect(overBaseline(base, { ...base, heapUsed: 104 * MiB, rss: 900 * MiB }, margins)).toEqual([]);
    expect(overBaseline(base, { ...base, heapUsed: 104 * MiB + 1 }, margins)).toEqual(["nodejs_heap_size_used_bytes 104.0 MiB is above baseline 40.0 MiB + 64.0 MiB"]);
    expect(describeMemory(base, { ...base, heapUsed: 30 * MiB })).toBe("heap used 40.0 MiB -> 30.0 MiB (-10.0 MiB), external 3.0 MiB -> 3.0 MiB (+0.0 MiB), rss 150.0 MiB -> 150.0 MiB (+0.0 MiB)");
  });
});
