// Deliveries written to a Consume stream, counted in bytes until the transport takes them. A
// client that reads slower than deliveries arrive is cut off past a bound instead of being
// buffered for without end, as NATS does with a slow consumer (server/client.go).
import type { raftmq } from "@raftmq/proto";
import { SlowConsumerError } from "./node-errors.ts";

type ConsumeResponse = raftmq.v1.ConsumeResponse.$Properties;

export const DEFAULT_CONSUME_MAX_PENDING_BYTES = 16 * 1024 * 1024;

/** Tag, flags, counters and framing of one response, besides its body and names. */
const RESPONSE_OVERHEAD = 64;

/** What a grpc-js ServerDuplexStream offers: Node's Writable.write with a completion callback. */
export interface ResponseStream {
  write(response: ConsumeResponse, callback: (error?: Error | null) => void): boolean;
}

export class BoundedStreamWriter {
  private pending = 0;
  private flushWaiters: (() => void)[] = [];

  constructor(
    private readonly stream: ResponseStream,
    readonly maxPendingBytes: number,
  ) {
    if (!Number.isSafeInteger(maxPendingBytes) || maxPendingBytes <= 0) throw new RangeError(`maxPendingBytes must be a positive integer, got ${maxPendingBytes}`);
  }

  /** Bytes written and not yet taken by the transport. */
  get pendingBytes(): number {
    return this.pending;
  }

  /**
   * Writes unless that would pass the bound; then writes nothing and answers why, and the stream
   * should end. A single response larger than the bound still goes out on an idle stream, so the
   * largest message a queue accepts can always be delivered.
   */
  write(response: ConsumeResponse): SlowConsumerError | null {
    const bytes = responseBytes(response);
    if (this.pending > 0 && this.pending + bytes > this.maxPendingBytes) return new SlowConsumerError(this.pending + bytes, this.maxPendingBytes);
    this.pending += bytes;
    // The stream is in object mode: its own writableLength and write() answer count responses,
    // not bytes, so the bytes are counted here until each write completes.
    this.stream.write(response, () => {
      this.pending -= bytes;
      if (this.pending === 0) this.runFlushWaiters();
    });
    return null;
  }

  /** Calls `f` once everything written so far has been taken by the transport (never synchronously). */
  whenFlushed(f: () => void): void {
    this.flushWaiters.push(f);
    if (this.pending === 0) queueMicrotask(() => this.runFlushWaiters());
  }

  private runFlushWaiters(): void {
    if (this.pending > 0 || this.flushWaiters.length === 0) return;
    const waiters = this.flushWaiters;
    this.flushWaiters = [];
    for (const f of waiters) f();
  }
}

/** An estimate of a response's encoded size: bodies dominate, names are counted, the rest is overhead. */
export function responseBytes(response: ConsumeResponse): number {
  const d = response.delivery;
  if (d != null) return deliveryBytes(d);
  const batch = response.deliveries?.deliveries;
  if (batch == null) return RESPONSE_OVERHEAD;
  let bytes = RESPONSE_OVERHEAD;
  for (const b of batch) bytes += deliveryBytes(b);
  return bytes;
}

function deliveryBytes(d: raftmq.v1.Delivery.$Properties): number {
  return RESPONSE_OVERHEAD + (d.body?.byteLength ?? 0) + (d.exchange?.length ?? 0) + (d.routingKey?.length ?? 0) + (d.queue?.length ?? 0) + (d.consumerTag?.length ?? 0);
}
