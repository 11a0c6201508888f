// Checks a history against total-queue semantics with at-least-once delivery: every confirmed
// publish is delivered and acked by the end of the drain, nothing appears that was not
// published, duplicates are redeliveries, and each producer's confirmed order survives in
// each queue. Two passes over the ops and hash maps keyed by value: linear in history size,
// plus sorting the reported lists.

import { MalformedHistoryError } from "./history-errors.ts";
import { type FaultStart, faultStartOf, isFaultStart, type NemesisF, type Op, TIMEOUT_ERROR } from "./history.ts";

/**
 * Which first deliveries are compared for order.
 * - "queue": every pair in the queue, by position in the history, whichever consumer saw them.
 * - "consumer": only pairs first delivered to the same consumer process. Use it when
 *   consumers record deliveries with skew between them (observation order across two
 *   consumer streams is not dispatch order).
 */
export type OrderScope = "queue" | "consumer";

/**
 * Which repeated deliveries of a value are allowed.
 * - "redelivered": only redeliveries. Producers with idempotent ids never enqueue a value twice,
 *   so a second delivery without the redelivered flag is a broker bug.
 * - "any": at-least-once without idempotent producers (AMQP 0-9-1): every duplicate is counted
 *   and reported, none makes the history invalid.
 */
export type DuplicatePolicy = "redelivered" | "any";

export interface CheckOptions {
  readonly orderScope?: OrderScope;
  /** Default "redelivered". */
  readonly duplicates?: DuplicatePolicy;
  /** Order violations listed in the result; all of them are counted. */
  readonly maxOrderViolations?: number;
}

export const DEFAULT_MAX_ORDER_VIOLATIONS = 10_000;

export interface Duplicate {
  readonly value: number;
  /** Deliveries observed, the first included. */
  readonly count: number;
  /** Every delivery after the first carried the redelivered flag: allowed. */
  readonly allRedelivered: boolean;
}

/** `before` was confirmed before `after` was invoked, yet `after` was first delivered earlier. */
export interface OrderViolation {
  readonly queue: string;
  readonly producer: string;
  readonly before: number;
  readonly after: number;
}

/** A fault window: from the op that started it to the op that ended it (or the end of the run). */
export interface FaultWindow {
  readonly f: FaultStart;
  readonly value: string;
  readonly start: number;
  readonly end: number;
  /** False when no stop or heal ended it before the history did. */
  readonly healed: boolean;
}

export interface PublishCounts {
  /** Publish invokes. */
  readonly attempted: number;
  readonly confirmed: number;
  /** Definite failures (a failure with the timeout error counts as unknown). */
  readonly failed: number;
  /** Outcome info, failure with the timeout error, or no completion at all. */
  readonly unknown: number;
}

export interface CheckResult {
  readonly valid: boolean;
  readonly ops: number;
  /** Time of the last op, in ms since the run started. */
  readonly durationMs: number;
  readonly publishes: PublishCounts;
  readonly deliveries: number;
  /** Confirmed publishes never delivered and acked (ack ok or info) by the end of the history. */
  readonly lost: number[];
  /** Delivered values that no publish invoked. */
  readonly unexpected: number[];
  /** Delivered values whose publish failed definitely: the broker said no and enqueued anyway. */
  readonly failedDelivered: number[];
  readonly duplicated: Duplicate[];
  /** Duplicated values split by whether they are allowed. */
  readonly duplicateCounts: { readonly redelivered: number; readonly notRedelivered: number };
  readonly duplicatePolicy: DuplicatePolicy;
  /** Publishes with an unknown outcome that turned up in deliveries. */
  readonly recovered: number[];
  readonly orderScope: OrderScope;
  readonly orderViolations: OrderViolation[];
  readonly orderViolationCount: number;
  /** Confirmed / attempted publishes; 0 when nothing was attempted. */
  readonly availability: number;
  /** Longest stretch between first publish invoke and last publish op without a confirm. */
  readonly longestUnavailabilityMs: number;
  readonly longestUnavailability: { readonly start: number; readonly end: number } | null;
  readonly faults: FaultWindow[];
}

interface PublishRecord {
  readonly process: string;
  readonly invokeIndex: number;
  outcome: "pending" | "ok" | "fail" | "info";
  timeoutFail: boolean;
}

interface DeliveryRecord {
  readonly firstIndex: number;
  readonly queue: string;
  readonly consumer: string;
  count: number;
  allRedelivered: boolean;
  /**
   * The first delivery seen already carried redelivered: the broker had dispatched the value
   * before (to a consumer whose stream died before it was read), so its place is not ordered.
   */
  readonly firstRedelivered: boolean;
}

interface OpenFault {
  readonly f: FaultStart;
  readonly value: string;
  readonly start: number;
}

export function check(ops: readonly Op[], options: CheckOptions = {}): CheckResult {
  const orderScope = options.orderScope ?? "queue";
  const duplicatePolicy = options.duplicates ?? "redelivered";
  const maxOrderViolations = options.maxOrderViolations ?? DEFAULT_MAX_ORDER_VIOLATIONS;
  if (!(maxOrderViolations >= 0)) throw new RangeError(`maxOrderViolations must be >= 0 (got ${maxOrderViolations})`);

  const publishes = new Map<number, PublishRecord>();
  const delivered = new Map<number, DeliveryRecord>();
  const acked = new Set<number>();
  const confirmTimes: number[] = [];
  const faults: FaultWindow[] = [];
  const open = new Map<FaultStart, OpenFault[]>();
  let deliveries = 0;
  let firstPublishTime = Number.POSITIVE_INFINITY;
  let lastPublishTime = Number.NEGATIVE_INFINITY;
  let lastTime = 0;

  for (let i = 0; i < ops.length; i++) {
    const op = ops[i] as Op;
    if (op.time > lastTime) lastTime = op.time;
    switch (op.f) {
      case "publish": {
        if (op.time < firstPublishTime) firstPublishTime = op.time;
        if (op.time > lastPublishTime) lastPublishTime = op.time;
        const rec = publishes.get(op.value);
        if (op.type === "invoke") {
          if (rec !== undefined) throw new MalformedHistoryError(i, `value ${op.value} published twice`);
          publishes.set(op.value, { process: op.process, invokeIndex: i, outcome: "pending", timeoutFail: false });
          break;
        }
        if (rec === undefined) throw new MalformedHistoryError(i, `publish ${op.type} of ${op.value} without invoke`);
        if (rec.outcome !== "pending") throw new MalformedHistoryError(i, `publish of ${op.value} completed twice`);
        if (rec.process !== op.process) {
          throw new MalformedHistoryError(i, `publish of ${op.value} invoked by ${rec.process}, completed by ${op.process}`);
        }
        rec.outcome = op.type;
        if (op.type === "ok") confirmTimes.push(op.time);
        if (op.type === "fail" && op.error === TIMEOUT_ERROR) rec.timeoutFail = true;
        break;
      }
      case "deliver": {
        deliveries += 1;
        const rec = delivered.get(op.value);
        if (rec === undefined) {
          delivered.set(op.value, {
            firstIndex: i,
            queue: op.queue,
            consumer: op.process,
            count: 1,
            allRedelivered: true,
            firstRedelivered: op.redelivered,
          });
        } else {
          rec.count += 1;
          if (!op.redelivered) rec.allRedelivered = false;
        }
        break;
      }
      case "ack":
        // An ack of unknown outcome may have taken effect; if it did not, the message comes
        // back and the drain acks it. Either way the value reached a consumer.
        if (op.type === "ok" || op.type === "info") acked.add(op.value);
        break;
      case "drain":
        break;
      default: {
        const action = nemesisAction(op.f);
        switch (action.kind) {
          case "start": {
            const list = open.get(action.f) ?? [];
            list.push({ f: action.f, value: op.value, start: op.time });
            open.set(action.f, list);
            break;
          }
          case "stop": {
            // A stop with nothing open (a defensive heal by the nemesis) ends nothing.
            const w = open.get(action.start)?.shift();
            if (w !== undefined) faults.push({ ...w, end: op.time, healed: true });
            break;
          }
          case "heal":
            for (const list of open.values()) {
              for (const w of list) faults.push({ ...w, end: op.time, healed: true });
            }
            open.clear();
            break;
          default:
            assertNever(action);
        }
      }
    }
  }
  for (const list of open.values()) {
    for (const w of list) faults.push({ ...w, end: lastTime, healed: false });
  }
  faults.sort((a, b) => a.start - b.start || a.end - b.end);

  // Verdicts per value.
  const lost: number[] = [];
  const recovered: number[] = [];
  const failedDelivered: number[] = [];
  let confirmed = 0;
  let failed = 0;
  for (const [value, rec] of publishes) {
    const d = delivered.get(value);
    switch (rec.outcome) {
      case "ok":
        confirmed += 1;
        if (d === undefined || !acked.has(value)) lost.push(value);
        break;
      case "fail":
        if (!rec.timeoutFail) {
          failed += 1;
          if (d !== undefined) failedDelivered.push(value);
          break;
        }
        if (d !== undefined) recovered.push(value);
        break;
      case "info":
      case "pending":
        if (d !== undefined) recovered.push(value);
        break;
      default:
        assertNever(rec.outcome);
    }
  }

  const unexpected: number[] = [];
  const duplicated: Duplicate[] = [];
  let notRedelivered = 0;
  for (const [value, d] of delivered) {
    if (!publishes.has(value)) unexpected.push(value);
    if (d.count > 1) {
      duplicated.push({ value, count: d.count, allRedelivered: d.allRedelivered });
      if (!d.allRedelivered) notRedelivered += 1;
    }
  }

  const order = checkOrder(ops, publishes, delivered, orderScope, maxOrderViolations);

  const unavailability = longestGap(confirmTimes, firstPublishTime, lastPublishTime);
  const attempted = publishes.size;
  const valid =
    lost.length === 0 &&
    unexpected.length === 0 &&
    failedDelivered.length === 0 &&
    (notRedelivered === 0 || duplicatePolicy === "any") &&
    order.count === 0;

  return {
    valid,
    ops: ops.length,
    durationMs: lastTime,
    publishes: { attempted, confirmed, failed, unknown: attempted - confirmed - failed },
    deliveries,
    lost: ascending(lost),
    unexpected: ascending(unexpected),
    failedDelivered: ascending(failedDelivered),
    duplicated: duplicated.sort((a, b) => a.value - b.value),
    duplicateCounts: { redelivered: duplicated.length - notRedelivered, notRedelivered },
    duplicatePolicy,
    recovered: ascending(recovered),
    orderScope,
    orderViolations: order.listed,
    orderViolationCount: order.count,
    availability: attempted === 0 ? 0 : confirmed / attempted,
    longestUnavailabilityMs: unavailability === null ? 0 : unavailability.end - unavailability.start,
    longestUnavailability: unavailability,
    faults,
  };
}

/**
 * Per queue and producer (and consumer, in "consumer" scope): walking the history in order,
 * when a's confirm precedes b's invoke, a's first delivery must precede b's. Tracking, per
 * group, the latest first delivery among values confirmed so far finds every b that some
 * earlier-confirmed a overtook, in one pass; each such b is one violation, reported against
 * the a delivered latest.
 */
function checkOrder(
  ops: readonly Op[],
  publishes: ReadonlyMap<number, PublishRecord>,
  delivered: ReadonlyMap<number, DeliveryRecord>,
  scope: OrderScope,
  maxListed: number,
): { listed: OrderViolation[]; count: number } {
  const latest = new Map<string, { readonly firstIndex: number; readonly value: number }>();
  const listed: OrderViolation[] = [];
  let count = 0;
  for (const op of ops) {
    if (op.f !== "publish" || (op.type !== "invoke" && op.type !== "ok")) continue;
    const d = delivered.get(op.value);
    const rec = publishes.get(op.value);
    if (d === undefined || rec === undefined || d.firstRedelivered) continue;
    const key = scope === "queue" ? `${d.queue}\u0000${rec.process}` : `${d.queue}\u0000${rec.process}\u0000${d.consumer}`;
    const seen = latest.get(key);
    if (op.type === "ok") {
      if (seen === undefined || d.firstIndex > seen.firstIndex) latest.set(key, { firstIndex: d.firstIndex, value: op.value });
    } else if (seen !== undefined && seen.firstIndex > d.firstIndex) {
      count += 1;
      if (listed.length < maxListed) {
        listed.push({ queue: d.queue, producer: rec.process, before: seen.value, after: op.value });
      }
    }
  }
  return { listed, count };
}

/** The longest interval in [from, to] containing no confirm time, or null without publishes. */
function longestGap(times: number[], from: number, to: number): { start: number; end: number } | null {
  if (!(from <= to)) return null;
  const sorted = Float64Array.from(times).sort();
  let best = { start: from, end: from };
  let prev = from;
  for (const t of sorted) {
    if (t - prev > best.end - best.start) best = { start: prev, end: t };
    prev = t;
  }
  if (to - prev > best.end - best.start) best = { start: prev, end: to };
  return best;
}

type NemesisAction =
  | { readonly kind: "start"; readonly f: FaultStart }
  | { readonly kind: "stop"; readonly start: FaultStart }
  | { readonly kind: "heal" };

function nemesisAction(f: NemesisF): NemesisAction {
  if (f === "heal") return { kind: "heal" };
  if (isFaultStart(f)) return { kind: "start", f };
  const start = faultStartOf(f);
  if (start === undefined) throw new Error(`nemesis op ${f} neither starts nor stops a fault`);
  return { kind: "stop", start };
}

function ascending(values: number[]): number[] {
  return values.sort((a, b) => a - b);
}

function assertNever(x: never): never {
  throw new Error(`unhandled history case: ${JSON.stringify(x)}`);
}
