// The resource alarms raise and clear by themselves as the readings cross their watermarks.
import { describe, expect, it } from "vitest";
import { type AlarmResource, memoryLimitBytes, ResourceAlarms } from "../src/resource-alarms.ts";

const MiB = 1024 * 1024;

function alarms(read: { rss: number; free: number }) {
  const changes: { raised: AlarmResource[]; detail: string }[] = [];
  const a = new ResourceAlarms({
    memoryLimitBytes: 1000 * MiB,
    memoryHighWatermark: 0.4,
    diskFreeLimitBytes: 50 * MiB,
    readings: { rssBytes: () => read.rss, diskFreeBytes: async () => read.free },
    changed: (raised, detail) => changes.push({ raised: [...raised].sort(), detail }),
  });
  return { a, changes };
}

describe("resource alarms", () => {
  it("raise above the memory watermark and below the free-disk limit, and clear by themselves", async () => {
    const read = { rss: 100 * MiB, free: 10_000 * MiB };
    const { a, changes } = alarms(read);
    await a.check();
    expect(a.active.size).toBe(0);
    expect(changes).toEqual([]);

    read.rss = 401 * MiB;
    await a.check();
    expect([...a.active]).toEqual(["memory"]);
    expect(a.reason).toMatch(/memory alarm: the node uses 401 MiB, above its high watermark of 400 MiB \(0.4 of 1000 MiB\)/);

    read.free = 49 * MiB;
    await a.check();
    expect([...a.active].sort()).toEqual(["disk", "memory"]);
    await a.check();
    expect(changes).toHaveLength(2);

    read.rss = 100 * MiB;
    read.free = 51 * MiB;
    await a.check();
    expect(a.active.size).toBe(0);
    expect(a.reason).toBe("");
    expect(changes.map((c) => c.raised)).toEqual([["memory"], ["disk", "memory"], []]);
  });

  it("raises nothing when the filesystem cannot be read", async () => {
    const a = new ResourceAlarms({
      memoryLimitBytes: 1000 * MiB,
      memoryHighWatermark: 0.4,
      diskFreeLimitBytes: 50 * MiB,
      readings: { rssBytes: () => MiB, diskFreeBytes: () => Promise.reject(new Error("EIO")) },
      changed: () => {},
    });
    await a.check();
    expect(a.active.size).toBe(0);
  });

  it("takes the container's memory limit when a cgroup sets one, else the machine's", () => {
    const files = (v2: string | null, v1: string | null) => (path: string) => {
      const v = path.endsWith("memory.max") ? v2 : v1;
      if (v === null) throw new Error("ENOENT");
      return v;
    };
    expect(memoryLimitBytes(files("536870912\n", null))).toBe(512 * MiB);
    expect(memoryLimitBytes(files(null, "268435456\n"))).toBe(256 * MiB);
    const machine = memoryLimitBytes(files(null, null));
    expect(machine).toBeGreaterThan(0);
    expect(memoryLimitBytes(files("max\n", "9223372036854771712\n"))).toBe(machine);
  });
});
