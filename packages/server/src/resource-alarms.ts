// RabbitMQ's resource alarms: a memory high watermark (a fraction of the container's memory
// limit, or of the machine's memory) and a free-disk low watermark on the data directory. While
// one is raised this node takes no publishes (gRPC answers RESOURCE_EXHAUSTED, AMQP connections
// are blocked); consumers go on, and the alarm clears by itself once the resource recovers.
import { readFileSync } from "node:fs";
import { statfs } from "node:fs/promises";
import { totalmem } from "node:os";

export type AlarmResource = "memory" | "disk";

export interface AlarmReadings {
  /** Resident memory of this process that no file backs, in bytes (see anonymousMemoryBytes). */
  rssBytes(): number;
  /** Bytes free for this process on the data directory's filesystem. */
  diskFreeBytes(): Promise<number>;
}

export interface ResourceAlarmOptions {
  /** Memory the node may use before its alarm is raised: watermark × limit. */
  memoryLimitBytes: number;
  memoryHighWatermark: number;
  diskFreeLimitBytes: number;
  readings: AlarmReadings;
  /** Called when the set of raised alarms changes. */
  changed: (raised: ReadonlySet<AlarmResource>, detail: string) => void;
}

/** The memory a process may use here: the cgroup's limit (v2, then v1) when one is set, else the machine's. */
export function memoryLimitBytes(read: (path: string) => string = (p) => readFileSync(p, "utf8")): number {
  const machine = totalmem();
  for (const path of ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]) {
    try {
      const n = Number(read(path).trim());
      // "max", or v1's "no limit" (a number near 2^63), leaves the machine's memory.
      if (Number.isFinite(n) && n > 0 && n < machine) return n;
    } catch {
      // No such cgroup file: not in a container, or another cgroup version.
    }
  }
  return machine;
}

/**
 * This process's resident memory that no file backs (Linux's RssAnon): what it allocated. Its
 * resident size also counts pages of files it maps (LevelDB maps the tables it reads), which
 * the kernel drops under memory pressure; they would raise the alarm without any risk of
 * running out. The whole resident size where /proc does not say.
 */
export function anonymousMemoryBytes(read: (path: string) => string = (p) => readFileSync(p, "utf8")): number {
  try {
    const m = /^RssAnon:\s+(\d+) kB$/m.exec(read("/proc/self/status"));
    if (m !== null) return Number(m[1]) * 1024;
  } catch {
    // No /proc: not Linux.
  }
  return process.memoryUsage.rss();
}

/** Readings of this process and the filesystem of `dataDir`. */
export function processReadings(dataDir: string): AlarmReadings {
  return {
    rssBytes: () => anonymousMemoryBytes(),
    diskFreeBytes: async () => {
      const s = await statfs(dataDir);
      return s.bavail * s.bsize;
    },
  };
}

const MiB = 1024 * 1024;

export class ResourceAlarms {
  private readonly raised = new Set<AlarmResource>();
  private detail = "";
  private timer: NodeJS.Timeout | null = null;
  private checking = false;

  constructor(private readonly options: ResourceAlarmOptions) {}

  /** The alarms raised now. */
  get active(): ReadonlySet<AlarmResource> {
    return this.raised;
  }

  /** What is raised and why, for an error message; "" when nothing is. */
  get reason(): string {
    return this.raised.size === 0 ? "" : this.detail;
  }

  start(intervalMs: number): void {
    this.timer = setInterval(() => void this.check(), intervalMs);
    this.timer.unref();
    void this.check();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** Reads the resources once and raises or clears the alarms. */
  async check(): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    try {
      const { memoryLimitBytes, memoryHighWatermark, diskFreeLimitBytes, readings } = this.options;
      const rss = readings.rssBytes();
      const memoryLimit = Math.floor(memoryLimitBytes * memoryHighWatermark);
      let free = Number.POSITIVE_INFINITY;
      try {
        free = await readings.diskFreeBytes();
      } catch {
        // A filesystem that cannot say how full it is raises nothing.
      }
      const now = new Set<AlarmResource>();
      const reasons: string[] = [];
      if (rss > memoryLimit) {
        now.add("memory");
        reasons.push(`memory alarm: the node uses ${Math.round(rss / MiB)} MiB, above its high watermark of ${Math.round(memoryLimit / MiB)} MiB (${memoryHighWatermark} of ${Math.round(memoryLimitBytes / MiB)} MiB)`);
      }
      if (free < diskFreeLimitBytes) {
        now.add("disk");
        reasons.push(`disk alarm: ${Math.round(free / MiB)} MiB free on the data directory's filesystem, below the limit of ${Math.round(diskFreeLimitBytes / MiB)} MiB`);
      }
      this.detail = reasons.join("; ");
      const same = now.size === this.raised.size && [...now].every((r) => this.raised.has(r));
      if (same) return;
      this.raised.clear();
      for (const r of now) this.raised.add(r);
      this.options.changed(this.raised, this.detail);
    } finally {
      this.checking = false;
    }
  }
}
