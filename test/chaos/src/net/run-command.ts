// Runs the network commands of a run (ip, iptables, tc) with a time limit; a failure is a typed
// error carrying the command line and what it printed.

import { execFile } from "node:child_process";
import { commandLine, type NetCommand } from "./net-commands.ts";

/** ip, iptables and tc answer in milliseconds; iptables -w may wait for another run's lock. */
export const COMMAND_TIMEOUT_MS = 15_000;

export class NetCommandError extends Error {
  override name = "NetCommandError";
  constructor(
    readonly argv: readonly string[],
    readonly output: string,
  ) {
    super(`${argv.join(" ")} failed: ${output.trim() || "no output"}`);
  }
}

/** Runs argv directly (no shell); resolves with stdout, rejects with NetCommandError. */
export function exec(argv: readonly string[], timeoutMs = COMMAND_TIMEOUT_MS): Promise<string> {
  const [file, ...args] = argv;
  if (file === undefined) return Promise.reject(new RangeError("empty command"));
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs, encoding: "utf8" }, (err, stdout, stderr) => {
      if (err === null) resolve(stdout);
      else reject(new NetCommandError(argv, `${stderr}${stdout}` || err.message));
    });
  });
}

/** Runs the commands one after another; a failure stops the list unless the command may fail. */
export async function runCommands(commands: readonly NetCommand[]): Promise<void> {
  for (const c of commands) {
    try {
      await exec(commandLine(c));
    } catch (err) {
      if (c.mayFail !== true) throw err;
    }
  }
}
