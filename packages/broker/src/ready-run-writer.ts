// The `ready_runs` of a snapshot piece, written straight to wire bytes: a queue of millions of
// messages is encoded without an object per message. The bytes are exactly those protobufjs
// writes for the same SnapshotReadyRun messages (fields in number order, zero values left out),
// so a piece is the BrokerSnapshot { messages, ready_runs } it always was.

/** BrokerSnapshot.ready_runs (field 13), SnapshotReadyRun.queue (1) and .ready (2). */
const READY_RUNS_TAG = (13 << 3) | 2;
const RUN_QUEUE_TAG = (1 << 3) | 0;
const RUN_READY_TAG = (2 << 3) | 2;
/** SnapshotQueuedMessage's fields 1 to 7, all varints. */
const ID_TAG = (1 << 3) | 0;
const REF_TAG = (2 << 3) | 0;
const EXPIRES_TAG = (3 << 3) | 0;
const DELIVERY_COUNT_TAG = (4 << 3) | 0;
const REDELIVERED_TAG = (5 << 3) | 0;
const BODY_KEY_TAG = (6 << 3) | 0;
const BODY_SIZE_TAG = (7 << 3) | 0;

/** Bytes of `v` (a non-negative safe integer) as a varint. */
function varintSize(v: number): number {
  if (v < 0x80) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x200000) return 3;
  if (v < 0x10000000) return 4;
  let n = 4;
  for (v = Math.floor(v / 0x10000000); v > 0; v = Math.floor(v / 0x80)) n++;
  return n;
}

/** Bytes of a varint field of value `v`, nothing when it is 0. */
function fieldSize(v: number): number {
  return v === 0 ? 0 : 1 + varintSize(v);
}

export class ReadyRunWriter {
  private buf = new Uint8Array(64 * 1024);
  private at = 0;
  /** Where the open run's body starts (its tag and length are written when it ends). */
  private runStart = -1;

  /** Starts a run of messages of the queue at `queue` in the first piece's list. */
  startRun(queue: number): void {
    this.endRun();
    this.runStart = this.at;
    // The run's tag and length go before its body once its length is known: room for both.
    this.ensure(16);
    this.at += 16;
    if (queue !== 0) {
      this.byte(RUN_QUEUE_TAG);
      this.varint(queue);
    }
  }

  message(id: number, messageRef: number, expiresAt: number, deliveryCount: number, redelivered: boolean, bodyKey: number, bodySize: number): void {
    const size = fieldSize(id) + fieldSize(messageRef) + fieldSize(expiresAt) + fieldSize(deliveryCount) + (redelivered ? 2 : 0) + fieldSize(bodyKey) + fieldSize(bodySize);
    this.ensure(2 + varintSize(size) + size);
    this.byte(RUN_READY_TAG);
    this.varint(size);
    if (id !== 0) this.field(ID_TAG, id);
    if (messageRef !== 0) this.field(REF_TAG, messageRef);
    if (expiresAt !== 0) this.field(EXPIRES_TAG, expiresAt);
    if (deliveryCount !== 0) this.field(DELIVERY_COUNT_TAG, deliveryCount);
    if (redelivered) {
      this.byte(REDELIVERED_TAG);
      this.byte(1);
    }
    if (bodyKey !== 0) this.field(BODY_KEY_TAG, bodyKey);
    if (bodySize !== 0) this.field(BODY_SIZE_TAG, bodySize);
  }

  /** The runs written since the last take, as the bytes of their `ready_runs` fields. */
  take(): Uint8Array {
    this.endRun();
    const out = this.buf.slice(0, this.at);
    this.at = 0;
    return out;
  }

  private endRun(): void {
    if (this.runStart < 0) return;
    const bodyStart = this.runStart + 16;
    const bodyLength = this.at - bodyStart;
    const header = 1 + varintSize(bodyLength);
    // Move the body back against its header.
    const headerAt = bodyStart - header;
    this.buf[headerAt] = READY_RUNS_TAG;
    this.writeVarintAt(headerAt + 1, bodyLength);
    const gap = headerAt - this.runStart;
    if (gap > 0) this.buf.copyWithin(this.runStart, headerAt, this.at);
    this.at -= gap;
    this.runStart = -1;
  }

  private field(tag: number, v: number): void {
    this.buf[this.at++] = tag;
    this.varint(v);
  }

  private byte(b: number): void {
    this.buf[this.at++] = b;
  }

  private varint(v: number): void {
    this.at = this.writeVarintAt(this.at, v);
  }

  private writeVarintAt(at: number, v: number): number {
    const buf = this.buf;
    while (v >= 0x80000000) {
      buf[at++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    while (v >= 0x80) {
      buf[at++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    buf[at++] = v;
    return at;
  }

  private ensure(bytes: number): void {
    if (this.at + bytes <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (this.at + bytes > size) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.buf.subarray(0, this.at));
    this.buf = grown;
  }
}

/** A SnapshotQueuedMessage's fields as read; one object reused for every message of a piece. */
export interface ReadyFields {
  id: number;
  messageRef: number;
  expiresAtMs: number;
  deliveryCount: number;
  redelivered: boolean;
  bodyKey: number;
  bodySize: number;
}

/** What a piece's reader hands on: each head in `messages`, then each queued message of each run. */
export interface ReadyPieceSink {
  message(bytes: Uint8Array): void;
  queued(queue: number, fields: Readonly<ReadyFields>): void;
}

/**
 * Reads a piece of ready messages (BrokerSnapshot { messages, ready_runs }) without an object per
 * message: the counterpart of ReadyRunWriter, for any encoder's bytes (fields in any order,
 * unknown ones skipped, as protobuf reads them). Throws RangeError on malformed bytes.
 */
export function readReadyPiece(bytes: Uint8Array, sink: ReadyPieceSink): void {
  const r = new WireReader(bytes, 0, bytes.length);
  const run = new WireReader(bytes, 0, 0);
  const message = new WireReader(bytes, 0, 0);
  const fields: ReadyFields = { id: 0, messageRef: 0, expiresAtMs: 0, deliveryCount: 0, redelivered: false, bodyKey: 0, bodySize: 0 };
  while (r.more()) {
    const tag = r.varint();
    if (tag === ((7 << 3) | 2)) {
      const [from, to] = r.span();
      sink.message(bytes.subarray(from, to));
    } else if (tag === READY_RUNS_TAG) {
      const [from, to] = r.span();
      // The run's queue first, wherever it is written; then its messages in order.
      let queue = 0;
      const scan = run.reset(from, to);
      while (scan.more()) {
        const t = scan.varint();
        if (t === RUN_QUEUE_TAG) queue = scan.varint();
        else scan.skip(t);
      }
      run.reset(from, to);
      while (run.more()) {
        const t = run.varint();
        if (t !== RUN_READY_TAG) {
          run.skip(t);
          continue;
        }
        const [mFrom, mTo] = run.span();
        fields.id = 0;
        fields.messageRef = 0;
        fields.expiresAtMs = 0;
        fields.deliveryCount = 0;
        fields.redelivered = false;
        fields.bodyKey = 0;
        fields.bodySize = 0;
        const m = message.reset(mFrom, mTo);
        while (m.more()) {
          const mt = m.varint();
          switch (mt) {
            case ID_TAG:
              fields.id = m.varint();
              break;
            case REF_TAG:
              fields.messageRef = m.varint();
              break;
            case EXPIRES_TAG:
              fields.expiresAtMs = m.varint();
              break;
            case DELIVERY_COUNT_TAG:
              fields.deliveryCount = m.varint();
              break;
            case REDELIVERED_TAG:
              fields.redelivered = m.varint() !== 0;
              break;
            case BODY_KEY_TAG:
              fields.bodyKey = m.varint();
              break;
            case BODY_SIZE_TAG:
              fields.bodySize = m.varint();
              break;
            default:
              m.skip(mt);
          }
        }
        sink.queued(queue, fields);
      }
    } else r.skip(tag);
  }
}

class WireReader {
  constructor(
    private readonly buf: Uint8Array,
    private at: number,
    private end: number,
  ) {}

  /** Reads [at, end) of the same bytes from now on. */
  reset(at: number, end: number): this {
    this.at = at;
    this.end = end;
    return this;
  }

  more(): boolean {
    return this.at < this.end;
  }

  /** A varint of at most 2^53 - 1 (every number these messages hold). */
  varint(): number {
    const buf = this.buf;
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      if (this.at >= this.end) throw new RangeError("snapshot piece: a varint runs past its end");
      const b = buf[this.at++] as number;
      value += (b & 0x7f) * scale;
      if (b < 0x80) {
        if (value > Number.MAX_SAFE_INTEGER) break;
        return value;
      }
      scale *= 0x80;
    }
    throw new RangeError("snapshot piece: a varint is larger than 2^53 - 1");
  }

  /** The bounds of a length-delimited value. */
  span(): [number, number] {
    const length = this.varint();
    const from = this.at;
    if (from + length > this.end) throw new RangeError("snapshot piece: a field runs past its end");
    this.at = from + length;
    return [from, this.at];
  }

  /** Skips the value of an unknown field. */
  skip(tag: number): void {
    switch (tag & 7) {
      case 0:
        this.varint();
        return;
      case 1:
        this.at += 8;
        break;
      case 2:
        this.span();
        return;
      case 5:
        this.at += 4;
        break;
      default:
        throw new RangeError(`snapshot piece: wire type ${tag & 7} is not one this reads`);
    }
    if (this.at > this.end) throw new RangeError("snapshot piece: a field runs past its end");
  }
}
