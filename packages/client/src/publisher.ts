// The pipelined publisher on Broker.PublishStream. At most `window` messages await confirms;
// past that, publish() waits for a free slot (and fails fast once `maxQueued` callers wait).
// Every message carries the publisher's producer id and its own sequence; when a stream breaks,
// its unconfirmed messages are sent again with the same (producer id, sequence), and the broker
// answers a repeat with the original confirm instead of enqueueing twice.
import { randomUUID } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { raftmq } from "@raftmq/proto";
import { brokerServiceDefinition } from "@raftmq/proto/grpc";
import { Backoff } from "./backoff.ts";
import {
  ClosedError,
  DeadlineExceededError,
  DedupWindowPassedError,
  isAccessError,
  errorFromStatus,
  NotLeaderError,
  nackError,
  PublishOutcomeUnknownError,
  ResourceExhaustedError,
  type RaftmqError,
  UnavailableError,
} from "./client-errors.ts";
import { type ClusterConnection, MAX_QUICK_RETRIES } from "./cluster-connection.ts";
import { type Body, type MessageProperties, outboundMessage } from "./message-types.ts";

/**
 * The largest dedup window a cluster can be set to. The bound that counts is the cluster's own
 * setting (ClusterConnection.dedupWindow): a larger window could outrun deduplication.
 */
export const MAX_PUBLISHER_WINDOW = 65_536;

export interface PublisherOptions {
  /** Messages sent and awaiting their confirm. */
  window: number;
  /** Messages in one PublishRequest. */
  maxBatch: number;
  /** Body bytes in one PublishRequest; a larger message travels alone. */
  maxBatchBytes: number;
  /** publish() calls waiting for a slot; one more fails with ResourceExhaustedError. */
  maxQueued: number;
  /** A stream whose oldest request has no confirm after this long is abandoned and retried. */
  confirmTimeoutMs: number;
}

// 128 per request: with the default window that is two requests in flight, and against a local
// 3-node cluster one producer confirms about 13% more than with 64 (fewer, larger log entries).
export const DEFAULT_PUBLISHER_OPTIONS: Readonly<PublisherOptions> = { window: 256, maxBatch: 128, maxBatchBytes: 4 * 1024 * 1024, maxQueued: 100_000, confirmTimeoutMs: 15_000 };

/**
 * Who is publishing. A producer that restarts can keep its id and continue (or repeat) its
 * sequences; the broker deduplicates within its window of recent sequences per producer.
 */
export interface PublisherIdentity {
  /** Default: a random UUID. */
  producerId?: string;
  /** Sequence of the first publish. Default 1. */
  firstSequence?: number;
}

export interface PublishOptions {
  /** Return (NACK) the message when no queue takes it, instead of dropping it. */
  mandatory?: boolean;
  properties?: MessageProperties;
}

export interface PublishConfirm {
  /** Queues the message was enqueued in. */
  routedQueues: string[];
  /** A retry of an earlier publish: the broker answered the original confirm, nothing was enqueued again. */
  duplicate: boolean;
  sequence: number;
}

export interface PublisherStats {
  /** Messages sent or about to be sent, awaiting confirms. */
  inFlight: number;
  /** publish() calls waiting for a slot. */
  queued: number;
  /** The most messages ever in flight at once. */
  maxInFlight: number;
  /** Streams that broke and were replaced. */
  streamFailures: number;
  /** Messages sent more than once. */
  resent: number;
  /** PublishRequests sent. */
  requests: number;
}

interface PendingPublish {
  sequence: number;
  message: raftmq.v1.OutboundMessage.$Properties;
  sends: number;
  resolve: (confirm: PublishConfirm) => void;
  reject: (err: Error) => void;
}

interface OpenStream {
  call: grpc.ClientDuplexStream<raftmq.v1.PublishRequest.$Properties, raftmq.v1.PublishResponse.$Properties>;
  address: string;
  inFlight: Map<number, { sentAt: number; batch: PendingPublish[] }>;
  nextRequest: number;
  abandoned: boolean;
}

export function resolvePublisherOptions(options: Partial<PublisherOptions> = {}): PublisherOptions {
  const o = { ...DEFAULT_PUBLISHER_OPTIONS, ...options };
  if (!Number.isSafeInteger(o.window) || o.window < 1 || o.window > MAX_PUBLISHER_WINDOW) {
    throw new RangeError(`publisher window must be an integer in [1, ${MAX_PUBLISHER_WINDOW}], got ${o.window}`);
  }
  if (!Number.isSafeInteger(o.maxBatch) || o.maxBatch < 1 || o.maxBatch > 10_000) throw new RangeError(`maxBatch must be an integer in [1, 10000], got ${o.maxBatch}`);
  if (!Number.isSafeInteger(o.maxBatchBytes) || o.maxBatchBytes < 1 || o.maxBatchBytes > 32 * 1024 * 1024) {
    throw new RangeError(`maxBatchBytes must be an integer in [1, 33554432], got ${o.maxBatchBytes}`);
  }
  if (!Number.isSafeInteger(o.maxQueued) || o.maxQueued < 0) throw new RangeError(`maxQueued must be a non-negative integer, got ${o.maxQueued}`);
  if (!(o.confirmTimeoutMs > 0)) throw new RangeError(`confirmTimeoutMs must be positive, got ${o.confirmTimeoutMs}`);
  return o;
}

export class Publisher {
  readonly producerId: string;
  private readonly options: PublisherOptions;
  private nextSequence = 1;
  /** Waiting for a slot in the window. */
  private readonly queued: PendingPublish[] = [];
  /** In the window, not on the current stream yet (new, or taken back from a broken stream); by sequence. */
  private unsent: PendingPublish[] = [];
  private windowUsed = 0;
  private stream: OpenStream | null = null;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private watchdog: NodeJS.Timeout | null = null;
  private flushScheduled = false;
  private failingSince = 0;
  /** Stream failures since the last confirm: the first is retried at once where a leader is known. */
  private failures = 0;
  private closed = false;
  private readonly backoff: Backoff;
  private readonly idleWaiters: (() => void)[] = [];
  private readonly counters = { maxInFlight: 0, streamFailures: 0, resent: 0, requests: 0 };

  constructor(
    private readonly connection: ClusterConnection,
    options: Partial<PublisherOptions> = {},
    identity: PublisherIdentity = {},
  ) {
    const clusterWindow = connection.dedupWindow;
    // The default window fits itself to the cluster; a window asked for is refused below if it does not fit.
    this.options = resolvePublisherOptions(options.window === undefined ? { ...options, window: Math.min(DEFAULT_PUBLISHER_OPTIONS.window, clusterWindow) } : options);
    if (this.options.window > clusterWindow) {
      throw new RangeError(
        `publisher window ${this.options.window} exceeds the cluster's dedup window of ${clusterWindow} sequences per producer: a message resent after a broken stream could be enqueued twice. Use a window of at most ${clusterWindow}, or raise the cluster setting dedup_window`,
      );
    }
    this.producerId = identity.producerId ?? randomUUID();
    this.nextSequence = identity.firstSequence ?? 1;
    if (this.producerId === "") throw new RangeError("producerId must not be empty");
    if (!Number.isSafeInteger(this.nextSequence) || this.nextSequence < 1) throw new RangeError(`firstSequence must be a positive integer, got ${this.nextSequence}`);
    this.backoff = new Backoff({ initialMs: connection.options.backoffInitialMs, maxMs: connection.options.backoffMaxMs });
  }

  stats(): PublisherStats {
    return { inFlight: this.windowUsed, queued: this.queued.length, ...this.counters };
  }

  /**
   * Messages that may await confirms now: the configured window, narrowed to the cluster's dedup
   * window should a later discovery find it lowered.
   */
  get window(): number {
    return Math.min(this.options.window, this.connection.dedupWindow);
  }

  /** Resolves on the broker's confirm (the message is on a majority of disks); rejects on a NACK with a typed error. */
  publish(exchange: string, routingKey: string, body: Body, options: PublishOptions = {}): Promise<PublishConfirm> {
    if (this.closed) return Promise.reject(new ClosedError("the publisher"));
    if (this.queued.length > 0 || this.windowUsed >= this.window) {
      if (this.queued.length >= this.options.maxQueued) {
        return Promise.reject(
          new ResourceExhaustedError(grpc.status.RESOURCE_EXHAUSTED, `${this.queued.length} publishes already wait for a slot in the window of ${this.window}; await earlier confirms`),
        );
      }
    }
    return new Promise<PublishConfirm>((resolve, reject) => {
      const sequence = this.nextSequence++;
      const pending: PendingPublish = {
        sequence,
        sends: 0,
        resolve,
        reject,
        message: outboundMessage(exchange, routingKey, body, options, this.producerId, sequence),
      };
      this.queued.push(pending);
      this.admit();
    });
  }

  /** Resolves once every publish so far has been confirmed or failed. */
  flush(): Promise<void> {
    if (this.windowUsed === 0 && this.queued.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Waits for outstanding confirms, then ends the stream. Later publishes fail with ClosedError. */
  async close(): Promise<void> {
    await this.flush();
    this.shutdown(new ClosedError("the publisher"));
  }

  /** Fails everything outstanding with `reason` and stops. */
  shutdown(reason: Error = new ClosedError("the publisher")): void {
    if (this.closed) return;
    this.closed = true;
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    this.stopWatchdog();
    const s = this.stream;
    this.stream = null;
    if (s !== null) {
      s.abandoned = true;
      for (const { batch } of s.inFlight.values()) this.unsent.push(...batch);
      s.call.end();
      s.call.cancel();
    }
    this.failAll(reason);
  }

  /** Fails every pending publish with `reason`, or with what `sentReason` says for one sent already. */
  private failAll(reason: Error, sentReason?: (p: PendingPublish) => Error): void {
    const all = [...this.unsent, ...this.queued];
    if (this.stream !== null) for (const { batch } of this.stream.inFlight.values()) all.push(...batch);
    this.unsent = [];
    this.queued.length = 0;
    if (this.stream !== null) this.stream.inFlight.clear();
    this.windowUsed = 0;
    for (const p of all) p.reject(p.sends > 0 && sentReason !== undefined ? sentReason(p) : reason);
    this.notifyIdle();
  }

  private admit(): void {
    let added = false;
    const window = this.window;
    while (this.windowUsed < window && this.queued.length > 0) {
      const p = this.queued.shift();
      if (p === undefined) break;
      this.unsent.push(p);
      this.windowUsed++;
      added = true;
    }
    if (this.windowUsed > this.counters.maxInFlight) this.counters.maxInFlight = this.windowUsed;
    if (this.windowUsed > this.options.window) throw new Error(`publisher window overrun: ${this.windowUsed} > ${this.options.window}`);
    if (added) this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // One turn of the event loop gathers the publishes of a burst into few requests.
    setImmediate(() => {
      this.flushScheduled = false;
      this.send();
    });
  }

  private send(): void {
    if (this.closed || this.unsent.length === 0) return;
    if (this.stream === null) {
      if (this.reconnectTimer === null) this.open();
      return;
    }
    const s = this.stream;
    while (this.unsent.length > 0) {
      const batch = this.unsent.splice(0, this.batchLength());
      const id = ++s.nextRequest;
      this.counters.requests++;
      s.inFlight.set(id, { sentAt: Date.now(), batch });
      for (const p of batch) {
        if (p.sends > 0) {
          this.counters.resent++;
          // Sent on a stream that failed without its confirm: that attempt may have been applied.
          p.message.retry = true;
        }
        p.sends++;
      }
      s.call.write({ clientSequence: id, messages: batch.map((p) => p.message) });
    }
    this.startWatchdog();
  }

  /** How many of the unsent go in the next request: up to maxBatch, and maxBatchBytes of bodies (at least one). */
  private batchLength(): number {
    const limit = Math.min(this.options.maxBatch, this.unsent.length);
    let bytes = 0;
    for (let i = 0; i < limit; i++) {
      bytes += (this.unsent[i] as PendingPublish).message.body?.byteLength ?? 0;
      if (bytes > this.options.maxBatchBytes) return Math.max(1, i);
    }
    return limit;
  }

  private open(): void {
    if (this.connection.isClosed) {
      this.shutdown(new ClosedError("the client"));
      return;
    }
    const def = brokerServiceDefinition.PublishStream;
    const address = this.connection.address;
    const call = this.connection
      .channel(address)
      .makeBidiStreamRequest(def.path, def.requestSerialize, def.responseDeserialize, this.connection.metadata()) as OpenStream["call"];
    const s: OpenStream = { call, address, inFlight: new Map(), nextRequest: 0, abandoned: false };
    this.stream = s;
    call.on("data", (r: raftmq.v1.PublishResponse.$Properties) => this.onConfirms(s, r));
    call.on("error", () => {
      // The status event carries the same failure.
    });
    call.on("status", (status: grpc.StatusObject) => this.onStreamEnd(s, status));
    this.send();
  }

  private onConfirms(s: OpenStream, r: raftmq.v1.PublishResponse.$Properties): void {
    if (s.abandoned) return;
    const entry = s.inFlight.get(Number(r.clientSequence));
    if (entry === undefined) return;
    s.inFlight.delete(Number(r.clientSequence));
    this.failingSince = 0;
    this.failures = 0;
    this.backoff.reset();
    const confirms = r.confirms ?? [];
    entry.batch.forEach((p, i) => {
      const c = confirms[i];
      if (c === undefined) {
        p.reject(new UnavailableError(`the broker answered ${confirms.length} confirms for ${entry.batch.length} messages`, { address: s.address }));
      } else if (c.status === raftmq.v1.ConfirmStatus.CONFIRM_STATUS_ACK) {
        p.resolve({ routedQueues: c.routedQueues ?? [], duplicate: c.duplicate ?? false, sequence: p.sequence });
      } else if (c.status === raftmq.v1.ConfirmStatus.CONFIRM_STATUS_OUTCOME_UNKNOWN) {
        p.reject(new DedupWindowPassedError(c.reason ?? "", this.producerId, p.sequence, { address: s.address }));
      } else {
        p.reject(nackError(c.reason ?? ""));
      }
    });
    this.windowUsed -= entry.batch.length;
    this.admit();
    this.notifyIdle();
  }

  private onStreamEnd(s: OpenStream, status: grpc.StatusObject): void {
    if (this.stream !== s) return;
    this.stream = null;
    this.stopWatchdog();
    if (this.closed) return;
    const lost = [...s.inFlight.values()].flatMap((e) => e.batch);
    s.inFlight.clear();
    if (lost.length === 0 && this.unsent.length === 0) return;
    this.counters.streamFailures++;
    const err: RaftmqError = s.abandoned
      ? new DeadlineExceededError(grpc.status.DEADLINE_EXCEEDED, `no confirm within ${this.options.confirmTimeoutMs} ms`, { address: s.address })
      : status.code === grpc.status.OK
        ? new UnavailableError("the publish stream ended while confirms were outstanding", { address: s.address })
        : errorFromStatus(status.code, status.details, status.metadata, s.address);
    const retryable =
      err instanceof UnavailableError ||
      err instanceof NotLeaderError ||
      err instanceof DeadlineExceededError ||
      err instanceof ResourceExhaustedError ||
      err.code === grpc.status.CANCELLED ||
      err.code === grpc.status.INTERNAL;
    if (isAccessError(err)) {
      // Refused credentials or vhost refuse every message of this stream alike.
      for (const p of lost) p.reject(err);
      this.failAll(err);
      return;
    }
    if (!retryable) {
      // The request that failed validation is among these; none of them can be retried as is.
      for (const p of lost) p.reject(err);
      this.windowUsed -= lost.length;
      this.admit();
      this.notifyIdle();
    } else {
      // Unknown outcome: send again with the same sequences; the broker deduplicates.
      this.unsent = [...lost, ...this.unsent].sort((a, b) => a.sequence - b.sequence);
      if (err instanceof NotLeaderError && err.leaderAddress !== undefined) this.connection.useLeader(err.leaderAddress);
    }
    if (this.unsent.length === 0) return;
    if (this.failingSince === 0) this.failingSince = Date.now();
    if (Date.now() - this.failingSince > this.connection.options.retryTimeoutMs) {
      this.failingSince = 0;
      const details = `publishing failed for ${this.connection.options.retryTimeoutMs} ms; last error: ${err.details}`;
      this.failAll(new UnavailableError(`${details}; the message was never sent`, { address: s.address }), (p) =>
        new PublishOutcomeUnknownError(details, this.producerId, p.sequence, { address: s.address }),
      );
      return;
    }
    this.failures++;
    const delay = this.failures <= MAX_QUICK_RETRIES ? 0 : this.backoff.next();
    // A node refusing for want of resources (an alarm, a full pipeline) says when to come back.
    this.reconnect(err instanceof ResourceExhaustedError ? Math.max(delay, err.retryDelayMs ?? 0) : delay);
  }

  /**
   * Opens the stream again after `delay`, once a refresh finds the leader; while nobody leads or
   * names one (an election under way), it asks again after the next backoff delay.
   */
  private reconnect(delay: number): void {
    this.reconnectTimer = setTimeout(() => {
      void this.connection
        .refresh()
        .catch(() => [])
        .then(() => {
          this.reconnectTimer = null;
          if (this.closed || this.stream !== null || this.unsent.length === 0) return;
          const waiting = Date.now() - this.failingSince <= this.connection.options.retryTimeoutMs;
          if (!this.connection.leaderKnown && waiting) {
            this.reconnect(this.backoff.next());
            return;
          }
          this.open();
        });
    }, delay);
  }

  private startWatchdog(): void {
    if (this.watchdog !== null) return;
    const every = Math.max(50, Math.floor(this.options.confirmTimeoutMs / 4));
    this.watchdog = setInterval(() => {
      const s = this.stream;
      if (s === null || s.inFlight.size === 0) {
        this.stopWatchdog();
        return;
      }
      const oldest = s.inFlight.values().next();
      if (oldest.done !== true && Date.now() - oldest.value.sentAt > this.options.confirmTimeoutMs) {
        s.abandoned = true;
        s.call.cancel();
      }
    }, every);
    this.watchdog.unref();
  }

  private stopWatchdog(): void {
    if (this.watchdog !== null) clearInterval(this.watchdog);
    this.watchdog = null;
  }

  private notifyIdle(): void {
    if (this.windowUsed !== 0 || this.queued.length !== 0) return;
    for (const w of this.idleWaiters.splice(0)) w();
  }
}
