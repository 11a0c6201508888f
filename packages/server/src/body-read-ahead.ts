// Bodies read ahead of their deliveries: when a consumer is sent messages, the bodies of the next
// ones its queue will hand it (up to its prefetch) are read from the body store off the event
// loop, so that the delivery finds them in memory instead of reading LevelDB synchronously. The
// memory they take is bounded (the oldest go first); a body not read ahead, or dropped, is read
// at delivery as before. A body's key is never reused, so a body read ahead is the right one for
// as long as it is held.
import type { BodyRef } from "@raftmq/broker";

/** The part of the body store this needs. */
export interface AsyncBodySource {
  readManyAsync(keys: readonly number[]): Promise<(Uint8Array | null)[]>;
}

/** Bodies held in memory at most, read ahead and not yet delivered. */
export const READ_AHEAD_MAX_BYTES = 32 * 1024 * 1024;
/** Messages read ahead of a consumer at most: its prefetch, up to this. */
export const READ_AHEAD_MESSAGES = 256;
/** Keys per read, and bytes of bodies per read. */
const KEYS_PER_READ = 256;
const BYTES_PER_READ = 4 * 1024 * 1024;

export class BodyReadAhead {
  /** Bodies read, by key, oldest first. */
  private readonly held = new Map<number, Uint8Array>();
  private heldBytes = 0;
  /** Keys being read, and the bytes of their bodies. */
  private readonly reading = new Set<number>();
  private readingBytes = 0;
  /** Deliveries that found their body read ahead, and bodies read ahead. */
  hits = 0;
  read = 0;

  constructor(
    private readonly source: AsyncBodySource,
    private readonly maxBytes = READ_AHEAD_MAX_BYTES,
  ) {}

  get bytes(): number {
    return this.heldBytes;
  }

  /** The body of `key` if it was read ahead; it is handed out once. */
  take(key: number): Uint8Array | undefined {
    const body = this.held.get(key);
    if (body === undefined) return undefined;
    this.held.delete(key);
    this.heldBytes -= body.byteLength;
    this.hits++;
    return body;
  }

  /**
   * Starts reading the bodies of `refs` that are neither held nor being read, in order, as far
   * as the memory bound allows.
   */
  want(refs: readonly BodyRef[]): void {
    let keys: number[] = [];
    let bytes = 0;
    for (const r of refs) {
      if (this.held.has(r.bodyKey) || this.reading.has(r.bodyKey)) continue;
      if (this.heldBytes + this.readingBytes + r.bodySize > this.maxBytes) break;
      keys.push(r.bodyKey);
      bytes += r.bodySize;
      this.reading.add(r.bodyKey);
      this.readingBytes += r.bodySize;
      if (keys.length === KEYS_PER_READ || bytes >= BYTES_PER_READ) {
        this.readKeys(keys, bytes);
        keys = [];
        bytes = 0;
      }
    }
    if (keys.length > 0) this.readKeys(keys, bytes);
  }

  private readKeys(keys: number[], bytes: number): void {
    const done = () => {
      for (const key of keys) this.reading.delete(key);
      this.readingBytes -= bytes;
    };
    this.source.readManyAsync(keys).then(
      (bodies) => {
        done();
        for (let i = 0; i < keys.length; i++) {
          const key = keys[i] as number;
          const body = bodies[i];
          if (body === null || body === undefined || this.held.has(key)) continue;
          this.held.set(key, body);
          this.heldBytes += body.byteLength;
          this.read++;
        }
        this.evict();
      },
      // A body that cannot be read ahead is read at delivery, which reports why.
      done,
    );
  }

  private evict(): void {
    for (const [key, body] of this.held) {
      if (this.heldBytes <= this.maxBytes) return;
      this.held.delete(key);
      this.heldBytes -= body.byteLength;
    }
  }

  clear(): void {
    this.held.clear();
    this.heldBytes = 0;
  }
}
