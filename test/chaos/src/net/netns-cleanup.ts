// Removes a run's namespaces, and the leftovers of runs that died without removing theirs: any
// process still inside a node namespace is killed by pid first, the hub goes last.

import { ownerPid } from "./net-layout.ts";
import { exec } from "./run-command.ts";

/** Names of every namespace on the machine, from `ip netns list` ("name (id: 3)" lines). */
export async function listNetns(): Promise<string[]> {
  const out = await exec(["ip", "netns", "list"]);
  return parseNetnsList(out);
}

export function parseNetnsList(out: string): string[] {
  return out
    .split("\n")
    .map((line) => line.trim().split(/\s+/)[0] ?? "")
    .filter((name) => name !== "")
    .sort();
}

/** Kills what runs in each namespace starting with `prefix-` and deletes them; returns their names. */
export async function removeNetns(prefix: string): Promise<string[]> {
  return removeNamed((await listNetns()).filter((n) => n.startsWith(`${prefix}-`)));
}

/** Namespaces of earlier runs whose owning process no longer exists; removes them. */
export async function sweepLeftovers(): Promise<string[]> {
  return removeNamed(
    (await listNetns()).filter((ns) => {
      const pid = ownerPid(ns);
      return pid !== undefined && !alive(pid);
    }),
  );
}

async function removeNamed(names: readonly string[]): Promise<string[]> {
  // Nodes before hubs: deleting a node namespace takes its veth pair off the hub's bridge.
  const isHub = (n: string) => n.endsWith("-hub");
  const order = [...names.filter((n) => !isHub(n)), ...names.filter(isHub)];
  for (const ns of order) {
    const pids = await exec(["ip", "netns", "pids", ns]).catch(() => "");
    for (const pid of pids.split("\n").map(Number)) {
      if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid) continue;
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone already
      }
    }
    await exec(["ip", "netns", "del", ns]).catch(() => undefined);
  }
  return order;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return err instanceof Error && "code" in err && err.code === "EPERM";
  }
}
