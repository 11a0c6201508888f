// A queue's messages that were never taken, in order, as columns of numbers in chunks: a message
// here is 20 bytes of numbers (id, body key, body size), 8 more when any message of its chunk
// expires, and a reference to its head, with no object of its own, so a queue of millions costs
// the garbage collector millions of objects less to walk, and growing never copies what is
// there once a chunk is full. A message becomes a QueuedMessage object when it is taken (or
// looked at); its delivery count and redelivered flag are 0 and false until then.
//
// A snapshot's capture shares the chunks instead of copying them: a captured chunk's slots that
// hold messages are never written again (a push writes past them, a shift leaves them as they
// are, and an emptied ring drops a captured chunk rather than reusing it).
import { type MessageHead, QueuedMessage } from "./broker-message.ts";

/** Messages per full chunk (a power of two). */
const CHUNK_SHIFT = 13;
const CHUNK = 1 << CHUNK_SHIFT;
const MASK = CHUNK - 1;
/** Capacity of a ring's first chunk: it doubles up to CHUNK, so that a short queue stays small. */
const FIRST_CAPACITY = 16;

class Chunk {
  readonly ids: Float64Array;
  readonly bodyKeys: Float64Array;
  readonly bodySizes: Uint32Array;
  /** Expiry of each message, allocated when the first one that expires is pushed. */
  expires: Float64Array | null = null;
  readonly heads: (MessageHead | undefined)[];
  /** A snapshot's capture refers to this chunk: slots that held messages stay as they are. */
  captured = false;

  constructor(readonly capacity: number) {
    this.ids = new Float64Array(capacity);
    this.bodyKeys = new Float64Array(capacity);
    this.bodySizes = new Uint32Array(capacity);
    this.heads = new Array(capacity);
  }

  expiresAt(at: number): number {
    return this.expires === null ? 0 : (this.expires[at] as number);
  }
}

/** A ring's messages at the moment of a capture, head first; the ring goes on changing. */
export class ReadyView {
  constructor(
    private readonly chunks: readonly Chunk[],
    private readonly first: number,
    readonly length: number,
  ) {}

  private chunk(i: number): Chunk {
    return this.chunks[(this.first + i) >>> CHUNK_SHIFT] as Chunk;
  }

  id(i: number): number {
    return this.chunk(i).ids[(this.first + i) & MASK] as number;
  }

  bodyKey(i: number): number {
    return this.chunk(i).bodyKeys[(this.first + i) & MASK] as number;
  }

  bodySize(i: number): number {
    return this.chunk(i).bodySizes[(this.first + i) & MASK] as number;
  }

  expiresAt(i: number): number {
    return this.chunk(i).expiresAt((this.first + i) & MASK);
  }

  head(i: number): MessageHead {
    return this.chunk(i).heads[(this.first + i) & MASK] as MessageHead;
  }
}

export class ReadyRing {
  /** All of capacity CHUNK, except a lone first chunk, which may be smaller. */
  private chunks: Chunk[] = [];
  /** Position of the head message in chunks[0]. */
  private first = 0;
  private count = 0;

  get length(): number {
    return this.count;
  }

  push(id: number, head: MessageHead, bodyKey: number, bodySize: number, expiresAt: number): void {
    let pos = this.first + this.count;
    if (this.chunks.length === 0) this.chunks.push(new Chunk(FIRST_CAPACITY));
    else if (this.chunks.length === 1 && pos === (this.chunks[0] as Chunk).capacity && (this.chunks[0] as Chunk).capacity < CHUNK) {
      this.grow();
      pos = this.count;
    }
    const ci = pos >>> CHUNK_SHIFT;
    if (ci === this.chunks.length) this.chunks.push(new Chunk(CHUNK));
    const c = this.chunks[ci] as Chunk;
    const at = pos & MASK;
    c.ids[at] = id;
    c.bodyKeys[at] = bodyKey;
    c.bodySizes[at] = bodySize;
    if (expiresAt !== 0) {
      c.expires ??= new Float64Array(c.capacity);
      c.expires[at] = expiresAt;
    } else if (c.expires !== null) c.expires[at] = 0;
    c.heads[at] = head;
    this.count++;
  }

  /**
   * Moves the messages of the lone first chunk, whose last slot is taken, to the start of a new
   * one: twice its size when they fill more than half of it.
   */
  private grow(): void {
    const old = this.chunks[0] as Chunk;
    const c = new Chunk(this.count > old.capacity / 2 ? Math.min(CHUNK, old.capacity * 2) : old.capacity);
    const from = this.first;
    const to = from + this.count;
    c.ids.set(old.ids.subarray(from, to));
    c.bodyKeys.set(old.bodyKeys.subarray(from, to));
    c.bodySizes.set(old.bodySizes.subarray(from, to));
    if (old.expires !== null) {
      c.expires = new Float64Array(c.capacity);
      c.expires.set(old.expires.subarray(from, to));
    }
    for (let i = from; i < to; i++) c.heads[i - from] = old.heads[i];
    this.chunks[0] = c;
    this.first = 0;
  }

  /** The message at the head as an object, taken off the ring. */
  shift(): QueuedMessage | undefined {
    if (this.count === 0) return undefined;
    const c = this.chunks[0] as Chunk;
    const m = materialize(c, this.first);
    if (!c.captured) c.heads[this.first] = undefined;
    this.first++;
    this.count--;
    if (this.count === 0) {
      // Keep one chunk for the next push, unless a capture still reads it.
      this.chunks = c.captured ? [] : [c];
      this.first = 0;
    } else if (this.first === c.capacity) {
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
    return this.count === 0 ? undefined : (this.chunks[0] as Chunk).expiresAt(this.first);
  }

  bodyKeyAt(i: number): number {
    const pos = this.first + i;
    return (this.chunks[pos >>> CHUNK_SHIFT] as Chunk).bodyKeys[pos & MASK] as number;
  }

  bodySizeAt(i: number): number {
    const pos = this.first + i;
    return (this.chunks[pos >>> CHUNK_SHIFT] as Chunk).bodySizes[pos & MASK] as number;
  }

  /** Writes the body keys of the messages that have a body into `out` from `at`, head first; answers where it stopped. */
  copyBodyKeys(out: Float64Array, at: number): number {
    let left = this.count;
    for (let ci = 0; left > 0; ci++) {
      const c = this.chunks[ci] as Chunk;
      const from = ci === 0 ? this.first : 0;
      const to = Math.min(c.capacity, from + left);
      const keys = c.bodyKeys;
      const sizes = c.bodySizes;
      for (let i = from; i < to; i++) if ((sizes[i] as number) > 0) out[at++] = keys[i] as number;
      left -= to - from;
    }
    return at;
  }

  /** The i-th message from the head as an object (a new one each call). */
  at(i: number): QueuedMessage | undefined {
    if (i < 0 || i >= this.count) return undefined;
    const pos = this.first + i;
    return materialize(this.chunks[pos >>> CHUNK_SHIFT] as Chunk, pos & MASK);
  }

  /** The messages as they are now, sharing the chunks: no copy, whatever the length. */
  capture(): ReadyView {
    const chunks = this.chunks.slice(0, (this.first + this.count + MASK) >>> CHUNK_SHIFT);
    for (const c of chunks) c.captured = true;
    return new ReadyView(chunks, this.first, this.count);
  }

  clear(): void {
    this.chunks = [];
    this.first = 0;
    this.count = 0;
  }
}

function materialize(c: Chunk, at: number): QueuedMessage {
  return new QueuedMessage(c.ids[at] as number, c.heads[at] as MessageHead, c.bodyKeys[at] as number, c.bodySizes[at] as number, c.expiresAt(at), 0, false);
}
