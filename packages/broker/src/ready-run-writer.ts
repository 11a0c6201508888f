// The `ready_runs` and `ready_columns` of a snapshot piece, written straight to wire bytes: a
// queue of millions of messages is encoded without an object per message. The bytes are exactly
// those protobufjs writes for the same SnapshotReadyRun and SnapshotReadyColumns messages (fields
// in number order, zero values and empty columns left out), so a piece is a BrokerSnapshot.

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
/** BrokerSnapshot.ready_columns (field 21): its tag is two bytes of varint. */
const READY_COLUMNS_TAG = (21 << 3) | 2;
/** SnapshotReadyColumns.queue (1), .count (2), then the columns (3 to 7) in this order. */
const COLUMNS_QUEUE_TAG = (1 << 3) | 0;
const COLUMNS_COUNT_TAG = (2 << 3) | 0;
const COLUMN_TAGS = [(3 << 3) | 2, (4 << 3) | 2, (5 << 3) | 2, (6 << 3) | 2, (7 << 3) | 2] as const;
/**
 * Values a column holds: below 2^52, so a delta's zigzag code stays a safe integer. A message
 * with a larger number (none the broker hands out in practice) is written as a run's message.
 */
const COLUMN_VALUE_LIMIT = 2 ** 52;
/** The most messages a column block may hold: a bound for the reader's buffers. */
export const MAX_COLUMN_BLOCK = 1 << 20;

/** Whether a ready message's numbers fit in a column block. */
export function fitsColumns(id: number, expiresAt: number, bodyKey: number): boolean {
  return id < COLUMN_VALUE_LIMIT && expiresAt < COLUMN_VALUE_LIMIT && bodyKey < COLUMN_VALUE_LIMIT;
}

function zigzag(d: number): number {
  return d >= 0 ? d * 2 : -d * 2 - 1;
}

function unzigzag(z: number): number {
  return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
}

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

/** One column of a block being written: its (zigzag delta, repeat) pairs so far and the open pair. */
class ColumnEncoder {
  private buf = new Uint8Array(256);
  private at = 0;
  private last = 0;
  private delta = 0;
  private repeat = 0;
  private nonZero = false;

  push(v: number): void {
    const d = v - this.last;
    this.last = v;
    if (v !== 0) this.nonZero = true;
    if (this.repeat > 0 && d === this.delta) {
      this.repeat++;
      return;
    }
    this.closePair();
    this.delta = d;
    this.repeat = 1;
  }

  /** `count` values from `first` on, each `step` more than the one before: as many push()es, in a step. */
  pushRun(first: number, step: number, count: number): void {
    this.push(first);
    if (count === 1) return;
    if (step !== 0) this.nonZero = true;
    if (this.delta === step) this.repeat += count - 1;
    else {
      this.closePair();
      this.delta = step;
      this.repeat = count - 1;
    }
    this.last = first + step * (count - 1);
  }

  /** The column's bytes (empty when every value was 0), and a fresh start for the next block. */
  take(): Uint8Array {
    this.closePair();
    const out = this.nonZero ? this.buf.subarray(0, this.at) : new Uint8Array(0);
    this.at = 0;
    this.last = 0;
    this.repeat = 0;
    this.nonZero = false;
    return out;
  }

  private closePair(): void {
    if (this.repeat === 0) return;
    if (this.at + 20 > this.buf.length) {
      const grown = new Uint8Array(this.buf.length * 2);
      grown.set(this.buf.subarray(0, this.at));
      this.buf = grown;
    }
    this.at = writeVarint(this.buf, this.at, zigzag(this.delta));
    this.at = writeVarint(this.buf, this.at, this.repeat);
    this.repeat = 0;
  }
}

function writeVarint(buf: Uint8Array, at: number, v: number): number {
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

export class ReadyRunWriter {
  private buf = new Uint8Array(64 * 1024);
  private at = 0;
  /** Where the open run's body starts (its tag and length are written when it ends). */
  private runStart = -1;
  /** The open column block's queue and count; -1 when none is open. */
  private columnsQueue = -1;
  private columnsCount = 0;
  private readonly ids = new ColumnEncoder();
  private readonly refs = new ColumnEncoder();
  private readonly expires = new ColumnEncoder();
  private readonly bodyKeys = new ColumnEncoder();
  private readonly bodySizes = new ColumnEncoder();

  /** Starts a run of messages of the queue at `queue` in the first piece's list. */
  startRun(queue: number): void {
    this.endRun();
    this.endColumns();
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

  /**
   * Starts a block of ready messages never taken of the queue at `queue`, written as columns
   * (SnapshotReadyColumns); `column` adds to it. Ends the open run or block.
   */
  startColumns(queue: number): void {
    this.endRun();
    this.endColumns();
    this.columnsQueue = queue;
    this.columnsCount = 0;
  }

  /** A message of the open column block; its numbers must fit (fitsColumns). */
  column(id: number, messageRef: number, expiresAt: number, bodyKey: number, bodySize: number): void {
    this.ids.push(id);
    this.refs.push(messageRef);
    this.expires.push(expiresAt);
    this.bodyKeys.push(bodyKey);
    this.bodySizes.push(bodySize);
    this.columnsCount++;
  }

  /**
   * `count` messages of the open column block, as column() would write them one by one: ids and
   * body keys step evenly from the first's, head and body size are the first's, none expires.
   * The first and last message's numbers must fit (fitsColumns).
   */
  columnRun(count: number, id: number, idStep: number, messageRef: number, bodyKey: number, bodyKeyStep: number, bodySize: number): void {
    this.ids.pushRun(id, idStep, count);
    this.refs.pushRun(messageRef, 0, count);
    this.expires.pushRun(0, 0, count);
    this.bodyKeys.pushRun(bodyKey, bodyKeyStep, count);
    this.bodySizes.pushRun(bodySize, 0, count);
    this.columnsCount += count;
  }

  /** The runs and blocks written since the last take, as the bytes of their fields. */
  take(): Uint8Array {
    this.endRun();
    this.endColumns();
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

  private endColumns(): void {
    if (this.columnsQueue < 0) return;
    const queue = this.columnsQueue;
    const count = this.columnsCount;
    this.columnsQueue = -1;
    if (count === 0) return;
    // In field order, as COLUMN_TAGS.
    const bytes = [this.ids.take(), this.refs.take(), this.expires.take(), this.bodyKeys.take(), this.bodySizes.take()];
    let size = fieldSize(queue) + fieldSize(count);
    for (const b of bytes) if (b.length > 0) size += 1 + varintSize(b.length) + b.length;
    this.ensure(2 + varintSize(size) + size);
    this.varint(READY_COLUMNS_TAG);
    this.varint(size);
    if (queue !== 0) this.field(COLUMNS_QUEUE_TAG, queue);
    this.field(COLUMNS_COUNT_TAG, count);
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i] as Uint8Array;
      if (b.length === 0) continue;
      this.byte(COLUMN_TAGS[i] as number);
      this.varint(b.length);
      this.buf.set(b, this.at);
      this.at += b.length;
    }
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
    return writeVarint(this.buf, at, v);
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

/**
 * A column block's messages as read: message i is (ids[i], messageRefs[i], ...), for i below the
 * block's count. The arrays are reused for the next block: read them during the call only.
 */
export interface ReadyColumns {
  readonly ids: Float64Array;
  readonly messageRefs: Float64Array;
  readonly expiresAtMs: Float64Array;
  readonly bodyKeys: Float64Array;
  readonly bodySizes: Float64Array;
}

/**
 * What a piece's reader hands on, in the order written: each head in `messages`, each queued
 * message of each run, and each block of columns.
 */
export interface ReadyPieceSink {
  message(bytes: Uint8Array): void;
  queued(queue: number, fields: Readonly<ReadyFields>): void;
  columns(queue: number, count: number, columns: ReadyColumns): void;
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
  let columns: ColumnReader | null = null;
  while (r.more()) {
    const tag = r.varint();
    if (tag === READY_COLUMNS_TAG) {
      const [from, to] = r.span();
      columns ??= new ColumnReader(bytes);
      columns.read(from, to, sink);
    } else if (tag === ((7 << 3) | 2)) {
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

/** Reads SnapshotReadyColumns blocks into arrays that grow to the largest block read. */
class ColumnReader {
  private size = 0;
  private arrays: Float64Array[] = [];
  private readonly block: WireReader;
  private readonly column: WireReader;

  constructor(bytes: Uint8Array) {
    this.block = new WireReader(bytes, 0, 0);
    this.column = new WireReader(bytes, 0, 0);
  }

  read(from: number, to: number, sink: ReadyPieceSink): void {
    let queue = 0;
    let count = 0;
    const spans: [number, number][] = [
      [0, 0],
      [0, 0],
      [0, 0],
      [0, 0],
      [0, 0],
    ];
    const b = this.block.reset(from, to);
    while (b.more()) {
      const t = b.varint();
      if (t === COLUMNS_QUEUE_TAG) queue = b.varint();
      else if (t === COLUMNS_COUNT_TAG) count = b.varint();
      else {
        const at = COLUMN_TAGS.indexOf(t as (typeof COLUMN_TAGS)[number]);
        if (at >= 0) spans[at] = b.span();
        else b.skip(t);
      }
    }
    if (count > MAX_COLUMN_BLOCK) throw new RangeError(`snapshot piece: a column block of ${count} messages is more than ${MAX_COLUMN_BLOCK}`);
    if (count > this.size) {
      this.size = Math.max(count, this.size * 2);
      this.arrays = spans.map(() => new Float64Array(this.size));
    }
    for (let i = 0; i < spans.length; i++) {
      const [start, end] = spans[i] as [number, number];
      this.decode(start, end, count, this.arrays[i] as Float64Array);
    }
    const [ids, messageRefs, expiresAtMs, bodyKeys, bodySizes] = this.arrays as [Float64Array, Float64Array, Float64Array, Float64Array, Float64Array];
    if (count > 0) sink.columns(queue, count, { ids, messageRefs, expiresAtMs, bodyKeys, bodySizes });
  }

  /** Decodes one column's pairs into `out`: exactly `count` non-negative safe values, or zeros when empty. */
  private decode(from: number, to: number, count: number, out: Float64Array): void {
    if (from === to) {
      out.fill(0, 0, count);
      return;
    }
    const c = this.column.reset(from, to);
    let n = 0;
    let value = 0;
    while (c.more()) {
      const delta = unzigzag(c.varint());
      const repeat = c.varint();
      if (repeat === 0 || repeat > count - n) throw new RangeError(`snapshot piece: a column holds more values than its block's ${count}`);
      for (let k = 0; k < repeat; k++) {
        value += delta;
        out[n++] = value;
      }
      if (value < 0 || value > Number.MAX_SAFE_INTEGER) throw new RangeError("snapshot piece: a column value is out of range");
    }
    if (n !== count) throw new RangeError(`snapshot piece: a column holds ${n} values, its block ${count}`);
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
