// The security audit trail: one JSON object per line for each login, refusal and change to users,
// vhosts, permissions, topology and membership. Writing never blocks the event loop and never
// grows without bound: past the buffer limit, lines are dropped and the drop itself is logged.
import { closeSync, createWriteStream, openSync, type WriteStream } from "node:fs";

export type AuditResult = "ok" | "denied" | "error";
/** "node": a node of the cluster, by its certificate; "none": a node started with --insecure. */
export type AuditMechanism = "password" | "certificate" | "node" | "none";

export type TopologyEventName = "exchange.declare" | "exchange.delete" | "queue.declare" | "queue.delete" | "queue.purge" | "binding.add" | "binding.remove";
export type UserEventName = "user.add" | "user.delete" | "user.password" | "user.tags";
export type ClusterEventName = "member.add" | "member.remove" | "leadership.transfer" | "settings.set" | "snapshot.trigger";

/** Extra facts of an event (member id, machine version, routing key). Secret-looking keys are dropped. */
export type AuditDetail = Readonly<Record<string, string | number | boolean>>;

export type AuditEventName =
  | "auth.success"
  | "auth.failure"
  | "access.denied"
  | UserEventName
  | "vhost.add"
  | "vhost.delete"
  | "permissions.set"
  | "permissions.clear"
  | TopologyEventName
  | ClusterEventName;

/**
 * One event. Fields by event: auth.* carry `remote` and `mechanism`; user.* name the user acted on
 * in `resource`; permissions.* the user in `resource` and the vhost in `vhost`; topology events
 * the vhost and "exchange 'x'", "queue 'q'" or "exchange 'x' -> queue 'q'" in `resource`.
 */
export interface AuditEvent {
  event: AuditEventName;
  /** The acting user: who logged in, or who made the change. */
  user?: string;
  mechanism?: AuditMechanism;
  /** The caller's address (`call.getPeer()`). */
  remote?: string;
  vhost?: string;
  resource?: string;
  result: AuditResult;
  reason?: string;
  detail?: AuditDetail;
  // Secrets have no place in an audit line; these make passing one a type error.
  password?: never;
  authorization?: never;
  passwordHash?: never;
}

/** Written by the log itself when lines were dropped: `detail.lines` says how many. */
export const AUDIT_DROPPED_EVENT = "audit.dropped";

/** The fields of an audit line, in the order they are written, for the docs. */
export const AUDIT_FIELDS: readonly { name: string; meaning: string }[] = [
  { name: "ts", meaning: "When the node recorded the event (ISO 8601, UTC)." },
  { name: "node", meaning: "The id of the node that recorded it." },
  { name: "event", meaning: "What happened: auth.success, auth.failure, access.denied, user.*, vhost.*, permissions.*, exchange.*, queue.*, binding.*, member.*, leadership.transfer, settings.set, snapshot.trigger, or audit.dropped." },
  { name: "user", meaning: "The acting user: who logged in or tried to, or who made the change." },
  { name: "mechanism", meaning: "How the caller authenticated: password, certificate, node (a node of the cluster, by its certificate), or none (a node started with --insecure)." },
  { name: "remote", meaning: "The caller's address as the transport reports it." },
  { name: "vhost", meaning: "The virtual host the event concerns." },
  { name: "resource", meaning: "What was acted on: a user name, an exchange, a queue, a binding, a member." },
  { name: "result", meaning: "ok, denied (refused by authentication or authorization), or error (the action failed)." },
  { name: "reason", meaning: "Why it was denied or failed, as a person would read it." },
  { name: "detail", meaning: "Extra facts of the event (member id, settings); never secrets." },
];

export const DEFAULT_AUDIT_MAX_BUFFERED_BYTES = 8 * 1024 * 1024;
/** Longer strings are cut: a client chooses user names and resource names. */
export const MAX_AUDIT_FIELD_CHARS = 1024;
const MAX_DETAIL_KEYS = 32;
const SECRET_KEY = /pass(?:word|wd|phrase)?|authori[sz]ation|secret|token|credential|cookie|hash/i;
const STRING_FIELDS = ["event", "user", "mechanism", "remote", "vhost", "resource", "result", "reason"] as const;

export type AuditLogOptions = {
  node: number;
  clock?: () => number;
  /** Bytes waiting for the disk past which new lines are dropped (file target only). */
  maxBufferedBytes?: number;
  /** Told once per failure of the target (disk full, sink threw); the log stops writing to a failed file. */
  onError?: (err: Error) => void;
} & (
  | {
      /** Appended to; created with mode 0600 (an existing file keeps its mode). */
      file: string;
    }
  | {
      /** Receives each line, without the trailing newline. */
      sink: (line: string) => void;
    }
);

export class AuditLog {
  private readonly node: number;
  private readonly clock: () => number;
  private readonly maxBufferedBytes: number;
  private readonly onError: (err: Error) => void;
  private readonly stream: WriteStream | undefined;
  private readonly sink: ((line: string) => void) | undefined;
  private droppedTotal = 0;
  /** Dropped since the last line that made it out; reported in the next one that does. */
  private droppedUnreported = 0;
  private failed = false;
  private closing: Promise<void> | undefined;

  constructor(options: AuditLogOptions) {
    this.node = options.node;
    this.clock = options.clock ?? Date.now;
    this.maxBufferedBytes = options.maxBufferedBytes ?? DEFAULT_AUDIT_MAX_BUFFERED_BYTES;
    this.onError = options.onError ?? (() => {});
    if (!Number.isSafeInteger(this.maxBufferedBytes) || this.maxBufferedBytes <= 0) throw new RangeError(`maxBufferedBytes must be a positive integer, got ${this.maxBufferedBytes}`);
    if ("file" in options) {
      // Opened now so a bad path fails the start, not the first event.
      const fd = openSync(options.file, "a", 0o600);
      try {
        this.stream = createWriteStream(options.file, { fd, flags: "a" });
      } catch (err) {
        closeSync(fd);
        throw err;
      }
      this.stream.on("error", (err) => this.fail(err));
    } else {
      this.sink = options.sink;
    }
  }

  /** Records one event; never throws and never waits. */
  write(event: AuditEvent): void {
    if (this.closing !== undefined || this.failed) {
      this.drop();
      return;
    }
    const line = this.format(event as unknown as Record<string, unknown>);
    if (this.stream !== undefined && this.stream.writableLength + Buffer.byteLength(line) + 1 > this.maxBufferedBytes) {
      this.drop();
      return;
    }
    if (this.droppedUnreported > 0) {
      const lines = this.droppedUnreported;
      this.droppedUnreported = 0;
      this.emit(this.format({ event: AUDIT_DROPPED_EVENT, result: "error", reason: "the audit target could not keep up", detail: { lines } }));
    }
    this.emit(line);
  }

  /** Bytes handed to the file and not yet written (0 for a sink). */
  get bufferedBytes(): number {
    return this.stream?.writableLength ?? 0;
  }

  /** Lines dropped since the log was opened. */
  get dropped(): number {
    return this.droppedTotal;
  }

  /** Flushes what is buffered and closes the file. Later events are dropped. */
  close(): Promise<void> {
    if (this.closing === undefined) {
      const stream = this.stream;
      this.closing =
        stream === undefined || stream.destroyed
          ? Promise.resolve()
          : new Promise<void>((resolve) => {
              stream.once("close", () => resolve());
              stream.end();
            });
    }
    return this.closing;
  }

  /** One JSON line: known fields only, strings cut to length, secret-looking detail keys dropped. */
  private format(event: Record<string, unknown>): string {
    const out: Record<string, unknown> = { ts: new Date(this.clock()).toISOString(), node: this.node };
    for (const key of STRING_FIELDS) {
      const value = event[key];
      if (typeof value === "string") out[key] = cut(value);
    }
    const detail = event.detail;
    if (typeof detail === "object" && detail !== null && !Array.isArray(detail)) {
      const kept: Record<string, string | number | boolean> = {};
      let n = 0;
      for (const [k, v] of Object.entries(detail)) {
        if (n >= MAX_DETAIL_KEYS) break;
        if (SECRET_KEY.test(k)) continue;
        if (typeof v === "string") kept[cut(k)] = cut(v);
        else if ((typeof v === "number" && Number.isFinite(v)) || typeof v === "boolean") kept[cut(k)] = v;
        else continue;
        n++;
      }
      if (n > 0) out.detail = kept;
    }
    return JSON.stringify(out);
  }

  private emit(line: string): void {
    if (this.stream !== undefined) {
      this.stream.write(`${line}\n`);
      return;
    }
    try {
      this.sink?.(line);
    } catch (err) {
      this.drop();
      this.onError(err instanceof Error ? err : new Error(String(err)));
    }
  }

  private drop(): void {
    this.droppedTotal++;
    this.droppedUnreported++;
  }

  private fail(err: Error): void {
    if (this.failed) return;
    this.failed = true;
    this.onError(err);
  }
}

function cut(s: string): string {
  return s.length <= MAX_AUDIT_FIELD_CHARS ? s : `${s.slice(0, MAX_AUDIT_FIELD_CHARS)}…`;
}
