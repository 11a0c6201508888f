// What every raftmqctl command shares: the global options and a connected client.
import { connect, type RaftmqClient } from "@raftmq/client";
import { type Command, InvalidArgumentError } from "commander";
import { DEV_ADDRESSES } from "./dev-layout.ts";

export const ADDRESSES_ENV = "RAFTMQ_ADDRESSES";

export interface GlobalOptions {
  addresses: string;
  timeoutMs: number;
}

export function defaultAddresses(): string {
  return process.env[ADDRESSES_ENV] ?? DEV_ADDRESSES.join(",");
}

function globals(command: Command): GlobalOptions {
  return command.optsWithGlobals<GlobalOptions>();
}

/** Connects with the global options, runs `body`, and closes the client whatever happens. */
export async function withClient<T>(command: Command, body: (client: RaftmqClient) => Promise<T>): Promise<T> {
  const o = globals(command);
  const client = await connect(o.addresses.split(","), { callTimeoutMs: o.timeoutMs, retryTimeoutMs: Math.max(o.timeoutMs, 1000) });
  try {
    return await body(client);
  } finally {
    client.close();
  }
}

export function positiveInteger(name: string, min = 1): (raw: string) => number {
  return (raw) => {
    const n = Number(raw);
    if (!Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`);
    return n;
  };
}
