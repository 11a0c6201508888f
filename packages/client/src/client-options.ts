// Options of `connect`, with their defaults and limits in one place.
import type { SecurityOptions } from "./connection-security.ts";

export interface ClientOptions {
  /** Deadline of every unary call, per attempt. */
  callTimeoutMs: number;
  /** How long a call keeps retrying UNAVAILABLE (elections, a node down) before giving up. */
  retryTimeoutMs: number;
  /** Deadline of Cluster.Status while discovering the cluster. */
  discoveryTimeoutMs: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
  /** HTTP/2 keepalive, so a stream to a vanished node fails instead of hanging. */
  keepaliveMs: number;
}

/** What `connect` takes: the limits above, and who the client is (credentials, vhost, TLS). */
export interface ConnectOptions extends Partial<ClientOptions>, SecurityOptions {}

export const DEFAULT_CLIENT_OPTIONS: Readonly<ClientOptions> = {
  callTimeoutMs: 10_000,
  retryTimeoutMs: 30_000,
  discoveryTimeoutMs: 2_000,
  backoffInitialMs: 50,
  backoffMaxMs: 2_000,
  keepaliveMs: 10_000,
};

export function resolveClientOptions(options: Partial<ClientOptions> = {}): ClientOptions {
  const resolved = { ...DEFAULT_CLIENT_OPTIONS, ...options };
  for (const [key, value] of Object.entries(resolved)) {
    if (!Number.isFinite(value) || value <= 0) throw new RangeError(`client option ${key} must be a positive number, got ${value}`);
  }
  return resolved;
}

const HOST_PORT = /^[A-Za-z0-9.\-_[\]:]+:\d{1,5}$/;

/** Checks and normalises `host:port` addresses; an empty list is a mistake worth a clear message. */
export function checkAddresses(addresses: readonly string[]): string[] {
  const out = addresses.map((a) => a.trim()).filter((a) => a !== "");
  if (out.length === 0) throw new RangeError("connect needs at least one address (host:port)");
  for (const a of out) {
    if (!HOST_PORT.test(a)) throw new RangeError(`${JSON.stringify(a)} is not host:port`);
  }
  return [...new Set(out)];
}
