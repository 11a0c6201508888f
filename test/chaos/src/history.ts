// The chaos history: one operation per JSON line, in the order the harness observed them.
// `time` is milliseconds since the run started, from a monotonic clock.

/** invoke opens an operation; ok, fail and info complete it (info: outcome unknown). */
export type OpType = "invoke" | "ok" | "fail" | "info";
export type CompletionType = Exclude<OpType, "invoke">;

/**
 * The error string a client records on a failed publish whose outcome is in fact unknown
 * (the broker may still have enqueued it). Any other error on a `fail` means "definitely
 * not enqueued".
 */
export const TIMEOUT_ERROR = "timeout";

/** A producer's publish of a unique integer value. ok = confirmed; fail = definitely not enqueued. */
export interface PublishOp {
  readonly f: "publish";
  readonly process: string;
  readonly type: OpType;
  readonly value: number;
  readonly queue?: string;
  readonly error?: string;
  readonly time: number;
}

/** A consumer observed a delivery. The end-of-run drain marks its deliveries with phase "drain". */
export interface DeliverOp {
  readonly f: "deliver";
  readonly process: string;
  readonly type: "ok";
  readonly value: number;
  readonly queue: string;
  readonly redelivered: boolean;
  readonly deliveryTag: number;
  readonly phase?: "drain";
  readonly time: number;
}

/** A consumer's ack of a delivered value. */
export interface AckOp {
  readonly f: "ack";
  readonly process: string;
  readonly type: OpType;
  readonly value: number;
  readonly queue?: string;
  readonly deliveryTag?: number;
  readonly error?: string;
  readonly time: number;
}

/** The end-of-run drain of one queue (or of all, when queue is absent); value counts deliveries. */
export interface DrainOp {
  readonly f: "drain";
  readonly process: string;
  readonly type: OpType;
  readonly queue?: string;
  readonly value?: number;
  readonly error?: string;
  readonly time: number;
}

/**
 * Each fault that has a duration: the op that starts it and the op that ends it.
 * A stop closes the oldest open fault of its kind; `heal` closes every open fault.
 */
export const FAULT_KINDS = {
  "start-partition": "stop-partition",
  kill: "restart",
  pause: "resume",
  "start-loss": "stop-loss",
  "start-slow": "stop-slow",
  "remove-member": "add-member",
  "start-transfer-storm": "stop-transfer-storm",
  corrupt: "repair",
} as const;

export type FaultStart = keyof typeof FAULT_KINDS;
export type FaultStop = (typeof FAULT_KINDS)[FaultStart];
export type NemesisF = FaultStart | FaultStop | "heal";

const FAULT_STARTS: ReadonlySet<string> = new Set(Object.keys(FAULT_KINDS));
const FAULT_STOPS: ReadonlyMap<string, FaultStart> = new Map(
  (Object.entries(FAULT_KINDS) as [FaultStart, FaultStop][]).map(([start, stop]) => [stop, start]),
);

export function isFaultStart(f: string): f is FaultStart {
  return FAULT_STARTS.has(f);
}

/** The start that a stop op ends, or undefined when f is no stop. */
export function faultStartOf(f: string): FaultStart | undefined {
  return FAULT_STOPS.get(f);
}

export function isNemesisF(f: string): f is NemesisF {
  return f === "heal" || FAULT_STARTS.has(f) || FAULT_STOPS.has(f);
}

/** What the nemesis did, with a human-readable value ("partition {n1} | {n2 n3}"). */
export interface NemesisOp {
  readonly f: NemesisF;
  readonly process: "nemesis";
  readonly type: "info";
  readonly value: string;
  readonly nodes?: readonly string[];
  /** On start-partition: a TCP connect tried across a cut link (and along a kept one). */
  readonly probe?: {
    readonly cut: string;
    readonly blocked: boolean;
    readonly open?: string;
    readonly connected?: boolean;
  };
  readonly time: number;
}

export type Op = PublishOp | DeliverOp | AckOp | DrainOp | NemesisOp;
export type OpF = Op["f"];

/** Omit applied to each member of a union, keeping it discriminated. */
export type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** An op as the harness hands it to the recorder, before the recorder stamps its time. */
export type OpInput = DistributiveOmit<Op, "time">;
