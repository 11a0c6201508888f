// Whether this machine can run network faults: root, the tools on PATH, and a namespace that can
// actually be made (a container may forbid it). The answer carries one line that says why not.

import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";
import { NETNS_BASE } from "./net-layout.ts";
import { exec } from "./run-command.ts";

export const REQUIRED_TOOLS = ["ip", "iptables", "tc", "nsenter"] as const;

export type NetworkSupport = { readonly available: true } | { readonly available: false; readonly reason: string };

export async function probeNetworkSupport(): Promise<NetworkSupport> {
  if (process.platform !== "linux") return { available: false, reason: `not Linux (${process.platform})` };
  if (process.getuid?.() !== 0) return { available: false, reason: "not root (namespaces, iptables and tc need it)" };
  const missing = REQUIRED_TOOLS.filter((tool) => onPath(tool) === undefined);
  if (missing.length > 0) return { available: false, reason: `${missing.join(", ")} not on PATH (packages iproute2, iptables, util-linux)` };
  const probe = `${NETNS_BASE}-${process.pid}-probe`;
  try {
    await exec(["ip", "netns", "add", probe]);
  } catch (err) {
    return { available: false, reason: `ip netns add failed: ${err instanceof Error ? err.message : String(err)}` };
  }
  try {
    await exec(["ip", "netns", "exec", probe, "iptables", "-w", "-L", "INPUT", "-n"]);
  } catch (err) {
    return { available: false, reason: `iptables does not work in a namespace: ${err instanceof Error ? err.message : String(err)}` };
  } finally {
    await exec(["ip", "netns", "del", probe]).catch(() => undefined);
  }
  return { available: true };
}

function onPath(tool: string): string | undefined {
  // Commands run by name, so only PATH counts (Debian puts ip, iptables and tc in /usr/sbin).
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir === "") continue;
    const file = join(dir, tool);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not in this folder
    }
  }
  return undefined;
}
