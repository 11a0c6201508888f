// A queue's messages that were never taken, in order, as columns of numbers in fixed-size chunks:
// a message here is about 36 bytes (id, body key, body size, expiry, and a reference to its head)
// and no object of its own, so a queue of millions costs the garbage collector millions of
// objects less to walk, and growing never copies (or doubles) what is there. A message becomes a
// QueuedMessage object when it is taken (or looked at); its delivery count and redelivered flag
// are 0 and false until then.
import { type MessageHead, QueuedMessage } from "./broker-message.ts";

/** Messages per chunk (a power of two). */
const CHUNK_SHIFT = 13;
const CHUNK = 1 << CHUNK_SHIFT;
const MASK = CHUNK - 1;

/** The columns of a ring's messages at one moment, head first, copied: the ring goes on changing. */
export interface ReadyColumns {
  readonly length: number;
  readonly ids: Float64Array;
  readonly bodyKeys: Float64Array;
  readonly bodySizes: Uint32Array;
  readonly expiresAt: Float64Array;
  readonly heads: MessageHead[];
}

class Chunk {
  readonly ids = new Float64Array(CHUNK);
  readonly bodyKeys = new Float64Array(CHUNK);
  readonly bodySizes = new Uint32Array(CHUNK);
  readonly expires = new Float64Array(CHUNK);
  readonly heads: (MessageHead | undefined)[] = new Array(CHUNK);
}

export class ReadyRing {
  private chunks: Chunk[] = [];
  /** Position of the head message in chunks[0]. */
  private first = 0;
  private count = 0;

  get length(): number {
    return this.count;
  }

  push(id: number, head: MessageHead, bodyKey: number, bodySize: number, expiresAt: number): void {
    const pos = this.first + this.count;
    const ci = pos >>> CHUNK_SHIFT;
    if (ci === this.chunks.length) this.chunks.push(new Chunk());
    const c = this.chunks[ci] as Chunk;
    const at = pos & MASK;
    c.ids[at] = id;
    c.bodyKeys[at] = bodyKey;
    c.bodySizes[at] = bodySize;
    c.expires[at] = expiresAt;
    c.heads[at] = head;
    this.count++;
  }

  /** The message at the head as an object, taken off the ring. */
  shift(): QueuedMessage | undefined {
    if (this.count === 0) return undefined;
    const c = this.chunks[0] as Chunk;
    const m = materialize(c, this.first);
    c.heads[this.first] = undefined;
    this.first++;
    this.count--;
    if (this.count === 0) {
      // Keep one chunk for the next push.
      this.chunks.length = Math.min(this.chunks.length, 1);
      this.first = 0;
    } else if (this.first === CHUNK) {
      this.chunks.shift();
      this.first = 0;
    }
    return m;
  }

  /** The message at the head as an object, left on the ring. */
  peek(): QueuedMessage | undefined {
    return this.count === 0 ? undefined : materialize(this.chunks[0] as Chunk, this.first);
  }

  /** Expiry of the message at the head (0: never); undefined when empty. */
  headExpiresAt(): number | undefined {
    return this.count === 0 ? undefined : ((this.chunks[0] as Chunk).expires[this.first] as number);
  }

  bodyKeyAt(i: number): number {
    const pos = this.first + i;
    return (this.chunks[pos >>> CHUNK_SHIFT] as Chunk).bodyKeys[pos & MASK] as number;
  }

  bodySizeAt(i: number): number {
    const pos = this.first + i;
    return (this.chunks[pos >>> CHUNK_SHIFT] as Chunk).bodySizes[pos & MASK] as number;
  }

  /** The i-th message from the head as an object (a new one each call). */
  at(i: number): QueuedMessage | undefined {
    if (i < 0 || i >= this.count) return undefined;
    const pos = this.first + i;
    return materialize(this.chunks[pos >>> CHUNK_SHIFT] as Chunk, pos & MASK);
  }

  /** A copy of every column, head first: a memory copy per chunk, whatever the length. */
  columns(): ReadyColumns {
    const n = this.count;
    const out = { length: n, ids: new Float64Array(n), bodyKeys: new Float64Array(n), bodySizes: new Uint32Array(n), expiresAt: new Float64Array(n), heads: new Array<MessageHead>(n) };
    let done = 0;
    for (let ci = 0; done < n; ci++) {
      const c = this.chunks[ci] as Chunk;
      const from = ci === 0 ? this.first : 0;
      const to = Math.min(CHUNK, from + (n - done));
      out.ids.set(c.ids.subarray(from, to), done);
      out.bodyKeys.set(c.bodyKeys.subarray(from, to), done);
      out.bodySizes.set(c.bodySizes.subarray(from, to), done);
      out.expiresAt.set(c.expires.subarray(from, to), done);
      for (let i = from; i < to; i++) out.heads[done + i - from] = c.heads[i] as MessageHead;
      done += to - from;
    }
    return out;
  }

  clear(): void {
    this.chunks = [];
    this.first = 0;
    this.count = 0;
  }
}

function materialize(c: Chunk, at: number): QueuedMessage {
  return new QueuedMessage(c.ids[at] as number, c.heads[at] as MessageHead, c.bodyKeys[at] as number, c.bodySizes[at] as number, c.expires[at] as number, 0, false);
}
