// Cuts a byte stream (after the protocol header) into frames. Chunks are kept as a list and
// only a frame that straddles chunks is copied, so reading is linear in the bytes pushed; a
// frame's size is checked against maxFrameSize before anything is allocated for it.
import { FRAME_BODY, FRAME_END, FRAME_ERROR, FRAME_HEADER, FRAME_HEARTBEAT, FRAME_METHOD } from "../gen/spec.ts";
import { AmqpCodecError } from "./errors.ts";
import { FRAME_OVERHEAD } from "./frames.ts";

export interface Frame {
  type: number;
  channel: number;
  /**
   * The frame's payload. When the frame arrived within one pushed chunk this is a view of that
   * chunk, not a copy: copy it before keeping it long, or the whole chunk stays in memory.
   */
  payload: Buffer;
}

export interface FrameReaderOptions {
  /** The largest frame accepted, header and frame-end included: the negotiated frame-max. */
  maxFrameSize: number;
}

const HEADER_SIZE = 7;
const FRAME_TYPES = new Set([FRAME_METHOD, FRAME_HEADER, FRAME_BODY, FRAME_HEARTBEAT]);
/**
 * Consumed chunks are dropped from the list's head in batches, once they are at least half the
 * list, so that dropping costs O(1) per chunk however long the list grows.
 */
const COMPACT_AFTER = 64;

export class FrameReader implements Iterable<Frame> {
  private chunks: Buffer[] = [];
  /** Index of the first chunk with unread bytes, and the unread offset within it. */
  private head = 0;
  private headOffset = 0;
  private buffered = 0;
  private max: number;
  private failure: AmqpCodecError | undefined;
  private readonly header = Buffer.alloc(HEADER_SIZE);

  constructor(options: FrameReaderOptions) {
    this.max = FrameReader.checkMax(options.maxFrameSize);
  }

  private static checkMax(n: number): number {
    if (!Number.isInteger(n) || n < FRAME_OVERHEAD || n > 0xffffffff + FRAME_OVERHEAD) {
      throw new RangeError(`maxFrameSize must be an integer in [${FRAME_OVERHEAD}, 2^32 + 7], got ${n}`);
    }
    return n;
  }

  get maxFrameSize(): number {
    return this.max;
  }

  /** Raises or lowers the limit, as when connection.tune-ok settles frame-max. */
  set maxFrameSize(n: number) {
    this.max = FrameReader.checkMax(n);
  }

  /** Bytes pushed and not yet returned as frames. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /**
   * The next complete frame, or undefined until more bytes are pushed. Throws AmqpCodecError 501
   * FRAME_ERROR for an unknown frame type, a frame larger than maxFrameSize, or a missing
   * frame-end octet; after that the stream has no frame boundaries left, and every call throws
   * the same error.
   */
  next(): Frame | undefined {
    if (this.failure) throw this.failure;
    if (this.buffered < HEADER_SIZE) return undefined;
    this.copyOut(this.header, HEADER_SIZE);
    const type = this.header[0]!;
    const channel = this.header.readUInt16BE(1);
    const size = this.header.readUInt32BE(3);
    if (!FRAME_TYPES.has(type)) return this.fail(`unknown frame type ${type}`);
    if (size + FRAME_OVERHEAD > this.max) {
      return this.fail(`frame of ${size + FRAME_OVERHEAD} bytes exceeds the frame-max of ${this.max}`);
    }
    if (this.buffered < size + FRAME_OVERHEAD) return undefined;
    const end = this.byteAt(HEADER_SIZE + size);
    if (end !== FRAME_END) return this.fail(`frame-end octet is ${end}, not ${FRAME_END}`);
    this.discard(HEADER_SIZE);
    const payload = this.take(size);
    this.discard(1);
    return { type, channel, payload };
  }

  *[Symbol.iterator](): Iterator<Frame> {
    for (let frame = this.next(); frame; frame = this.next()) yield frame;
  }

  private fail(detail: string): never {
    this.failure = new AmqpCodecError(FRAME_ERROR, detail);
    throw this.failure;
  }

  /** Copies the first n unread bytes into out without consuming them. */
  private copyOut(out: Buffer, n: number): void {
    let copied = 0;
    let offset = this.headOffset;
    for (let i = this.head; copied < n; i++) {
      const chunk = this.chunks[i]!;
      copied += chunk.copy(out, copied, offset, Math.min(chunk.length, offset + n - copied));
      offset = 0;
    }
  }

  /** The unread byte at offset i, which must be buffered. */
  private byteAt(i: number): number {
    let offset = this.headOffset + i;
    for (let c = this.head; ; c++) {
      const chunk = this.chunks[c]!;
      if (offset < chunk.length) return chunk[offset]!;
      offset -= chunk.length;
    }
  }

  /** Consumes n bytes without returning them. */
  private discard(n: number): void {
    this.buffered -= n;
    while (n > 0) {
      const chunk = this.chunks[this.head]!;
      const count = Math.min(chunk.length - this.headOffset, n);
      this.headOffset += count;
      n -= count;
      if (this.headOffset === chunk.length) this.dropHead();
    }
  }

  /** Consumes n bytes: a view when they lie in one chunk, else a copy of exactly n bytes. */
  private take(n: number): Buffer {
    const first = this.chunks[this.head]!;
    let out: Buffer;
    if (this.headOffset + n <= first.length) {
      out = first.subarray(this.headOffset, this.headOffset + n);
      this.headOffset += n;
      if (this.headOffset === first.length) this.dropHead();
    } else {
      out = Buffer.allocUnsafe(n);
      let copied = 0;
      while (copied < n) {
        const chunk = this.chunks[this.head]!;
        const count = Math.min(chunk.length - this.headOffset, n - copied);
        chunk.copy(out, copied, this.headOffset, this.headOffset + count);
        copied += count;
        this.headOffset += count;
        if (this.headOffset === chunk.length) this.dropHead();
      }
    }
    this.buffered -= n;
    return out;
  }

  private dropHead(): void {
    this.chunks[this.head] = EMPTY;
    this.head++;
    this.headOffset = 0;
    if (this.head === this.chunks.length) {
      this.chunks = [];
      this.head = 0;
    } else if (this.head >= COMPACT_AFTER && this.head * 2 >= this.chunks.length) {
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
  }
}

const EMPTY = Buffer.alloc(0);
