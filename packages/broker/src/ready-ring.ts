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
  /** Slots written so far: the chunk is full when this reaches its capacity. */
  filled = 0;
  /** See alikeFrom(); -1 until it is first asked, once the chunk is full. */
  private alikeStart = -1;

  constructor(readonly capacity: number) {
    this.ids = new Float64Array(capacity);
    this.bodyKeys = new Float64Array(capacity);
    this.bodySizes = new Uint32Array(capacity);
    this.heads = new Array(capacity);
  }

  expiresAt(at: number): number {
    return this.expires === null ? 0 : (this.expires[at] as number);
  }

  /** Its slots are to be written again from the first. */
  emptied(): void {
    this.filled = 0;
    this.alikeStart = -1;
  }

  /**
   * For a full chunk: the first slot of the run of messages that ends it in which each message
   * has the head and body size of the one before, no expiry, and an id and body key that differ
   * from the one before's by the same two steps throughout (messages published one after
   * another). Found once: a full chunk's slots are not written again. A message with an expiry
   * is a run of its own.
   */
  alikeFrom(): number {
    if (this.alikeStart >= 0) return this.alikeStart;
    const last = this.capacity - 1;
    let i = last;
    if (last > 0 && this.expiresAt(last) === 0) {
      const { ids, bodyKeys, bodySizes, heads } = this;
      const head = heads[last];
      const size = bodySizes[last] as number;
      const idStep = (ids[last] as number) - (ids[last - 1] as number);
      const keyStep = (bodyKeys[last] as number) - (bodyKeys[last - 1] as number);
      while (i > 0 && heads[i - 1] === head && bodySizes[i - 1] === size && this.expiresAt(i - 1) === 0 && (ids[i] as number) - (ids[i - 1] as number) === idStep && (bodyKeys[i] as number) - (bodyKeys[i - 1] as number) === keyStep) i--;
    }
    this.alikeStart = i;
    return i;
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

  /**
   * How many messages from the i-th on (1 at least, within one chunk) are alike as
   * Chunk.alikeFrom() has it: their ids and body keys step evenly from the i-th's, and the rest
   * is the i-th's. Known without looking at them once their chunk is full; 1 in a chunk still
   * filling.
   */
  alikeRun(i: number): number {
    const pos = this.first + i;
    const c = this.chunks[pos >>> CHUNK_SHIFT] as Chunk;
    const at = pos & MASK;
    if (c.filled !== c.capacity || at < c.alikeFrom()) return 1;
    return Math.min(c.capacity - at, this.length - i);
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
    c.filled = at + 1;
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
    c.filled = this.count;
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
      if (c.captured) this.chunks = [];
      else {
        c.emptied();
        this.chunks = [c];
      }
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

  /** The messages as they are now, for a look that ends before the ring next changes. */
  view(): ReadyView {
    return new ReadyView(this.chunks, this.first, this.count);
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
