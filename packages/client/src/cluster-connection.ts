// Channels to the cluster's nodes and the choice of where calls go: the leader when known (a
// follower would forward, costing a hop), any reachable node otherwise. Unary calls get a
// deadline each and are retried with backoff while the cluster is unavailable. Every call carries
// the connection's credentials and vhost (connection-security.ts).
import * as grpc from "@grpc/grpc-js";
import { raftmq } from "@raftmq/proto";
import { clusterServiceDefinition } from "@raftmq/proto/grpc";
import { Backoff, sleep } from "./backoff.ts";
import { ClosedError, DeadlineExceededError, fromGrpcError, NotLeaderError, RaftmqError, UnavailableError } from "./client-errors.ts";
import type { ClientOptions } from "./client-options.ts";
import { ConnectionSecurity } from "./connection-security.ts";

/** Addresses remembered from discovery, beyond the seeds; a cluster is a handful of nodes. */
const MAX_KNOWN_ADDRESSES = 64;
/** Leader hints followed in a row without a pause, so two confused nodes cannot bounce a call forever. */
const MAX_HINTS_IN_A_ROW = 3;
/** Retries of one call made at once because a refresh found the leader, before backing off. */
export const MAX_QUICK_RETRIES = 2;
/** Failures kept for the message of an UnavailableError. */
const MAX_REPORTED_ATTEMPTS = 8;
/**
 * Sequences per producer that a cluster remembers when its Status does not say: every release
 * before the dedup window became a cluster setting remembered this many.
 */
export const UNREPORTED_DEDUP_WINDOW = 4096;

export interface Attempt {
  address: string;
  error: string;
  /** The typed error, so a caller can tell a refusal of its credentials from an unreachable node. */
  cause?: Error;
}

export interface UnaryCallOptions {
  /** Call this node only, without retries or redirection. */
  address?: string;
  /** Also retry DEADLINE_EXCEEDED: only for calls whose repetition is harmless (idempotent publish). */
  retryDeadline?: boolean;
  timeoutMs?: number;
}

export interface NodeStatus {
  address: string;
  status: raftmq.v1.StatusResponse.$Properties;
}

export class ClusterConnection {
  private readonly channels = new Map<string, grpc.Client>();
  private readonly known: string[];
  private current: string;
  private refreshing: Promise<Attempt[]> | null = null;
  private closed = false;
  private reportedDedupWindow: number | undefined;
  /** Whether the last refresh found a node that leads or names a reachable leader. */
  private leaderFound = false;

  constructor(
    seeds: readonly string[],
    readonly options: ClientOptions,
    readonly security: ConnectionSecurity = ConnectionSecurity.NONE,
  ) {
    this.known = [...seeds];
    this.current = seeds[0] ?? "";
  }

  /** Where calls go now. */
  get address(): string {
    return this.current;
  }

  get addresses(): readonly string[] {
    return this.known;
  }

  /**
   * Sequences per producer the cluster remembers, as of the last discovery: the smallest any node
   * reported, since a node that has applied a lowered setting deduplicates only that far.
   */
  get dedupWindow(): number {
    return this.reportedDedupWindow ?? UNREPORTED_DEDUP_WINDOW;
  }

  channel(address: string): grpc.Client {
    if (this.closed) throw new ClosedError("the client");
    let c = this.channels.get(address);
    if (c === undefined) {
      c = new grpc.Client(address, this.security.channelCredentials, {
        ...this.security.channelOptions,
        "grpc.keepalive_time_ms": this.options.keepaliveMs,
        "grpc.keepalive_timeout_ms": Math.max(1000, Math.floor(this.options.keepaliveMs / 2)),
        "grpc.keepalive_permit_without_calls": 1,
        "grpc.initial_reconnect_backoff_ms": 200,
        "grpc.max_reconnect_backoff_ms": this.options.backoffMaxMs,
        "grpc.max_receive_message_length": 64 * 1024 * 1024,
        "grpc.max_send_message_length": 64 * 1024 * 1024,
      });
      this.channels.set(address, c);
    }
    return c;
  }

  /** The metadata every call carries: credentials and vhost. */
  metadata(): grpc.Metadata {
    return this.security.metadata();
  }

  private remember(address: string): void {
    if (address === "" || this.known.includes(address)) return;
    if (this.known.length >= MAX_KNOWN_ADDRESSES) return;
    this.known.push(address);
  }

  /** Follows a leader hint from trailing metadata. */
  /** True when the last refresh found the leader: a retry can go there at once. */
  get leaderKnown(): boolean {
    return this.leaderFound;
  }

  useLeader(address: string): void {
    this.remember(address);
    this.current = address;
  }

  unaryOnce<Q, R>(address: string, def: grpc.MethodDefinition<Q, R>, request: Q, timeoutMs = this.options.callTimeoutMs): Promise<R> {
    return new Promise((resolve, reject) => {
      this.channel(address).makeUnaryRequest(def.path, def.requestSerialize, def.responseDeserialize, request, this.metadata(), { deadline: Date.now() + timeoutMs }, (err, value) => {
        if (err !== null) reject(fromGrpcError(err, address));
        else if (value === undefined) reject(new UnavailableError(`empty answer to ${def.path}`, { address }));
        else resolve(value);
      });
    });
  }

  /** A unary call with a deadline per attempt, retried with backoff while the cluster is unavailable. */
  async unary<Q, R>(def: grpc.MethodDefinition<Q, R>, request: Q, options: UnaryCallOptions = {}): Promise<R> {
    if (options.address !== undefined) return this.unaryOnce(options.address, def, request, options.timeoutMs);
    return this.retrying(def.path, (address) => this.unaryOnce(address, def, request, options.timeoutMs), options.retryDeadline === true);
  }

  /**
   * Runs `attempt` against the preferred node until it succeeds, fails for a reason retrying
   * cannot fix, or `retryTimeoutMs` passes.
   */
  async retrying<T>(what: string, attempt: (address: string) => Promise<T>, retryDeadline = false): Promise<T> {
    const until = Date.now() + this.options.retryTimeoutMs;
    const backoff = new Backoff({ initialMs: this.options.backoffInitialMs, maxMs: this.options.backoffMaxMs });
    const attempts: Attempt[] = [];
    let hints = 0;
    let quick = 0;
    for (;;) {
      const address = this.current;
      try {
        return await attempt(address);
      } catch (raw) {
        const err = fromGrpcError(raw, address);
        const retryable = err instanceof UnavailableError || err instanceof NotLeaderError || (retryDeadline && err instanceof DeadlineExceededError);
        if (!retryable || this.closed) throw err;
        attempts.push({ address, error: (err as RaftmqError).details });
        if (attempts.length > MAX_REPORTED_ATTEMPTS) attempts.shift();
        if (err instanceof NotLeaderError && err.leaderAddress !== undefined && err.leaderAddress !== address && hints < MAX_HINTS_IN_A_ROW) {
          hints++;
          this.useLeader(err.leaderAddress);
          continue;
        }
        hints = 0;
        // Ask the members first: when one leads or names the leader, go there at once. The
        // backoff is for while nobody does (an election under way, the cluster down).
        if (quick < MAX_QUICK_RETRIES) {
          quick++;
          await this.refresh();
          if (this.leaderFound) continue;
        }
        const delay = backoff.next();
        if (Date.now() + delay > until) {
          throw new UnavailableError(`${what} did not succeed within ${this.options.retryTimeoutMs} ms`, { attempts });
        }
        await sleep(delay);
        await this.refresh();
      }
    }
  }

  /** Cluster.Status of every known node, in parallel, each with the discovery deadline. */
  statuses(): Promise<{ answers: NodeStatus[]; failures: Attempt[] }> {
    return this.statusesOf([...this.known]);
  }

  /**
   * Asks every known node for its status, learns the members' client addresses and points calls
   * at the leader (or at a reachable node). Resolves with the failures when no node answered.
   */
  refresh(): Promise<Attempt[]> {
    if (this.refreshing !== null) return this.refreshing;
    const run = async (): Promise<Attempt[]> => {
      const first = await this.statuses();
      for (const a of first.answers) for (const m of a.status.members ?? []) this.remember(m.clientAddress ?? "");
      // Members learned just now are asked too, so a seed list of one node still finds the leader.
      const asked = new Set([...first.answers, ...first.failures].map((x) => x.address));
      const fresh = this.known.filter((a) => !asked.has(a));
      let answers = first.answers;
      let failures = first.failures;
      if (fresh.length > 0) {
        const more = await this.statusesOf(fresh);
        answers = [...answers, ...more.answers];
        failures = [...failures, ...more.failures];
      }
      if (answers.length === 0) {
        this.leaderFound = false;
        return failures;
      }
      const windows = answers.map((a) => a.status.settings?.dedupWindow ?? 0).filter((w) => w > 0);
      if (windows.length > 0) this.reportedDedupWindow = Math.min(...windows);
      const reachable = new Set(answers.map((a) => a.address));
      const selfLeader = answers.find((a) => a.status.role === "leader");
      const hinted = answers.map((a) => a.status.leaderClientAddress ?? "").find((l) => l !== "" && reachable.has(l));
      this.current = selfLeader?.address ?? hinted ?? answers[0]?.address ?? this.current;
      this.leaderFound = selfLeader !== undefined || hinted !== undefined;
      return [];
    };
    this.refreshing = run().finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  async statusesOf(addresses: string[]): Promise<{ answers: NodeStatus[]; failures: Attempt[] }> {
    const def = clusterServiceDefinition.Status;
    const answers: NodeStatus[] = [];
    const failures: Attempt[] = [];
    await Promise.all(
      addresses.map(async (address) => {
        try {
          answers.push({ address, status: await this.unaryOnce(address, def, raftmq.v1.StatusRequest.create(), this.options.discoveryTimeoutMs) });
        } catch (err) {
          const error = err instanceof RaftmqError ? err.details : err instanceof Error ? err.message : String(err);
          failures.push(err instanceof Error ? { address, error, cause: err } : { address, error });
        }
      }),
    );
    return { answers, failures };
  }

  close(): void {
    this.closed = true;
    for (const c of this.channels.values()) c.close();
    this.channels.clear();
  }

  get isClosed(): boolean {
    return this.closed;
  }
}
