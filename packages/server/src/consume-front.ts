// The node end of a client's Consume stream. Its session lives on the leader: here when this node
// leads (consumeStream), otherwise on the leader through a relayed stream. A leader change takes
// the session down (the new leader's LeaderTookOffice), not the client's stream: this node opens
// a session on the new leader, subscribes the stream's consumers again and announces the new
// session as resumed, as RabbitMQ keeps a channel's consumers when a quorum queue's leader moves.
// What the old session held unsettled was requeued and comes again; delivery tags keep rising
// per consumer across sessions (StreamConsumers), so an old tag never names a new delivery.
import { EventEmitter } from "node:events";
import * as grpc from "@grpc/grpc-js";
import type { raftmq } from "@raftmq/proto";
import { brokerServiceDefinition } from "@raftmq/proto/grpc";
import type { BrokerServiceContext } from "./broker-service.ts";
import { routeWrite } from "./call-routing.ts";
import { consumeStream, requestedHeartbeatMs } from "./consume-session.ts";
import { type GrpcFailure, relayedFailure, statusFailure, toGrpcFailure } from "./grpc-status.ts";
import { NodeUnavailableError } from "./node-errors.ts";
import { StreamConsumers } from "./stream-consumers.ts";

type ConsumeRequest = raftmq.v1.ConsumeRequest;
type ConsumeResponse = raftmq.v1.ConsumeResponse.$Properties;
type Delivery = raftmq.v1.Delivery.$Properties;
type ConsumeCall = grpc.ServerDuplexStream<ConsumeRequest, ConsumeResponse>;
type WriteCallback = (error?: Error | null) => void;

/** A session attempt that gets no `session` answer within this long is given up and tried again. */
const ATTEMPT_MS = 1500;
/** Pause between attempts, growing per attempt up to the second figure. */
const RETRY_STEP_MS = 25;
const MAX_RETRY_MS = 250;
/** Requests a stream may send while it waits for a session, beyond those this node records. */
const MAX_HELD_REQUESTS = 4096;

// A local session reads the oneof's `kind`, which decoded messages carry and plain objects lack:
// what this node makes itself for a session says it, and what a session writes is read by field.

/** A cancel request, with its `kind` said. */
export function cancellation(consumerTag: string): raftmq.v1.ConsumeRequest.$Properties {
  return { cancel: consumerTag, kind: "cancel" } as raftmq.v1.ConsumeRequest.$Properties;
}

export function subscription(subscribe: raftmq.v1.Subscription.$Properties): raftmq.v1.ConsumeRequest.$Properties {
  return { subscribe, kind: "subscribe" } as raftmq.v1.ConsumeRequest.$Properties;
}

export function settlement(kind: "ack" | "nack" | "reject", s: raftmq.v1.Settlement.$Properties): raftmq.v1.ConsumeRequest.$Properties {
  return { [kind]: s, kind } as raftmq.v1.ConsumeRequest.$Properties;
}

type ResponseKind = NonNullable<raftmq.v1.ConsumeResponse["kind"]>;

export function responseKind(r: ConsumeResponse): ResponseKind | undefined {
  const decoded = (r as raftmq.v1.ConsumeResponse).kind;
  if (decoded !== undefined) return decoded;
  if (r.delivery != null) return "delivery";
  if (r.deliveries != null) return "deliveries";
  if (r.heartbeat != null) return "heartbeat";
  if (r.subscribed != null) return "subscribed";
  if (r.error != null) return "error";
  if (r.cancelled != null) return "cancelled";
  if (r.session != null) return "session";
  return undefined;
}

/** One session behind the client's stream. */
interface Upstream {
  send(request: raftmq.v1.ConsumeRequest.$Properties): void;
  /** The client has no more requests. */
  end(): void;
  /** This node gives the session up (the client went away, or the attempt took too long). */
  cancel(): void;
  pause(): void;
  resume(): void;
}

/**
 * The call a local session (consumeStream) writes to: what it writes goes to the front; its
 * `error` event, which ends a grpc-js call with a status, ends the upstream.
 */
class LocalSessionCall extends EventEmitter {
  constructor(
    readonly metadata: grpc.Metadata,
    private readonly onResponse: (response: ConsumeResponse, callback?: WriteCallback) => boolean,
    private readonly onEnd: (failure: GrpcFailure | null) => void,
  ) {
    super();
  }

  write(response: ConsumeResponse, callback?: WriteCallback): boolean {
    return this.onResponse(response, callback);
  }

  end(): void {
    this.onEnd(null);
  }

  override emit(event: string | symbol, ...args: unknown[]): boolean {
    if (event === "error") {
      const status = args[0] as { code: grpc.status; details?: string; metadata?: grpc.Metadata };
      this.onEnd({ code: status.code, details: status.details ?? "", metadata: status.metadata ?? new grpc.Metadata() });
      // consumeStream may end a call before it listens (a refused heartbeat value, no room).
      if (this.listenerCount("error") === 0) return false;
    }
    return super.emit(event, ...args);
  }
}

/** Serves a client's Consume call on any node, keeping it across leader changes. */
export function consumeFront(ctx: BrokerServiceContext, call: ConsumeCall): void {
  new ConsumeFront(ctx, call).start();
}

class ConsumeFront {
  private readonly consumers = new StreamConsumers();
  private upstream: Upstream | null = null;
  private finished = false;
  /** Sessions that announced themselves on this stream. */
  private sessions = 0;
  /** Whether the current upstream announced its session and took the stream's subscriptions. */
  private announced = false;
  /** When the stream lost its session and began looking for the next one; 0 while it has one. */
  private resumeStartedAt = 0;
  private attempts = 0;
  private lastFailure: GrpcFailure | null = null;
  private attemptTimer: NodeJS.Timeout | null = null;
  private gapHeartbeat: NodeJS.Timeout | null = null;
  private readonly heartbeatMs: number;
  /** The client sent its last request: the session ends once it has answered them. */
  private clientEnded = false;
  /** Requests for the next session to answer, in arrival order (see hold). */
  private held: raftmq.v1.ConsumeRequest.$Properties[] = [];

  constructor(
    private readonly ctx: BrokerServiceContext,
    private readonly call: ConsumeCall,
  ) {
    let heartbeatMs = 0;
    try {
      heartbeatMs = requestedHeartbeatMs(call.metadata);
    } catch {
      // The first session refuses the value and ends the stream.
    }
    this.heartbeatMs = heartbeatMs;
  }

  start(): void {
    const { call } = this;
    call.on("data", (r: ConsumeRequest) => this.fromClient(r));
    call.on("end", () => {
      if (this.finished) return;
      this.clientEnded = true;
      // A session on its way gets what the client sent first (see sessionOpened).
      if (this.upstream !== null && this.announced) this.upstream.end();
      else if (this.upstream === null) this.finish(null);
    });
    // The client went away, or this node's access gate ended the stream with a status of its own.
    const gone = () => {
      if (this.finished) return;
      this.finished = true;
      this.stopTimers();
      this.upstream?.cancel();
      this.upstream = null;
    };
    call.on("cancelled", gone);
    call.on("error", gone);
    call.on("drain", () => this.upstream?.resume());
    void this.attempt();
  }

  private fromClient(r: ConsumeRequest): void {
    if (this.finished) return;
    const between = this.upstream === null || !this.announced;
    switch (r.kind) {
      case "subscribe": {
        const s = r.subscribe ?? {};
        const tracked = this.consumers.subscribe(s);
        if (tracked && !between) this.consumers.sent(s.consumerTag ?? "");
        this.pass(r, tracked);
        return;
      }
      case "cancel":
        this.pass(r, this.consumers.cancelled(r.cancel ?? ""));
        return;
      case "setPrefetch":
        this.pass(r, this.consumers.setPrefetch(r.setPrefetch?.consumerTag ?? "", r.setPrefetch?.prefetch ?? 0));
        return;
      case "ack":
      case "nack":
      case "reject": {
        const s = r[r.kind] ?? {};
        const consumerTag = s.consumerTag ?? "";
        const deliveryTag = Number(s.deliveryTag ?? 0);
        const target = this.consumers.settle(consumerTag, deliveryTag, between);
        if (target.kind === "void") {
          this.reportError(
            grpc.status.UNAVAILABLE,
            `delivery ${deliveryTag} of consumer "${consumerTag}" was requeued when leadership moved (its session went down); it comes again, marked redelivered, and settling it changes nothing`,
            consumerTag,
            deliveryTag,
          );
          return;
        }
        if (target.kind === "unknown") {
          this.reportError(grpc.status.FAILED_PRECONDITION, `unknown delivery tag ${deliveryTag} of consumer "${consumerTag}"`, consumerTag, deliveryTag);
          return;
        }
        this.pass(target.deliveryTag === deliveryTag ? r : settlement(r.kind, { ...s, deliveryTag: target.deliveryTag }), false);
        return;
      }
      default:
        // Malformed requests: the session answers them as it always has.
        this.pass(r, false);
    }
  }

  /**
   * Sends a request to the current session. Between sessions, one this node `recorded` (a
   * subscription, its prefetch, its cancel) is made by the next session with the others; any
   * other is held for it to answer.
   */
  private pass(r: raftmq.v1.ConsumeRequest.$Properties, recorded: boolean): void {
    if (this.upstream !== null && this.announced) this.upstream.send(r);
    else if (!recorded) this.hold(r);
  }

  /**
   * Keeps a request the next session must answer (about a consumer this node does not know) until
   * it has taken the stream's subscriptions.
   */
  private hold(r: raftmq.v1.ConsumeRequest.$Properties): void {
    if (this.held.length >= MAX_HELD_REQUESTS) {
      this.finish(
        statusFailure(grpc.status.RESOURCE_EXHAUSTED, `more than ${MAX_HELD_REQUESTS} requests arrived while the stream waited for a session; send fewer before it is announced`, {
          reason: "OVERLOADED",
          outcome: "unknown",
        }),
      );
      return;
    }
    this.held.push(r);
  }

  private reportError(code: grpc.status, message: string, consumerTag: string, deliveryTag: number): void {
    this.call.write({ error: { code, message, consumerTag, deliveryTag } });
  }

  /** A response of upstream `up`; false when the client's stream wants no more for now. */
  private fromUpstream(up: Upstream, r: ConsumeResponse, callback?: WriteCallback): boolean {
    if (up !== this.upstream || this.finished) {
      callback?.();
      return true;
    }
    switch (responseKind(r)) {
      case "session":
        return this.sessionOpened(up, r.session ?? {}, callback);
      case "subscribed":
        this.consumers.taken(r.subscribed ?? "");
        break;
      case "delivery": {
        const d = r.delivery;
        if (d != null) this.translate(d);
        break;
      }
      case "deliveries":
        for (const d of r.deliveries?.deliveries ?? []) this.translate(d);
        break;
      case "cancelled":
        this.consumers.cancelled(r.cancelled?.consumerTag ?? "");
        break;
      case "error": {
        const e = r.error ?? {};
        const consumerTag = e.consumerTag ?? "";
        const sessionTag = Number(e.deliveryTag ?? 0);
        if (sessionTag === 0) {
          const refused = this.consumers.refused(consumerTag);
          if (refused.subscribe && refused.wasTaken) {
            // A consumer the client had cannot come back: its queue went with the earlier
            // session (exclusive, auto-delete) or it is no longer allowed. The stream ends as a
            // leader change ended every stream before, and the client subscribes again.
            this.finish(
              statusFailure(
                grpc.status.UNAVAILABLE,
                `leadership moved and consumer "${consumerTag}" could not be subscribed again on the new leader: ${e.message ?? ""}; subscribe again`,
                { reason: "SESSION_LOST", outcome: "unknown", leader: this.ctx.driver.leaderClientAddress() },
              ),
            );
            callback?.();
            return true;
          }
        } else {
          const clientTag = this.consumers.clientTag(consumerTag, sessionTag);
          if (clientTag !== sessionTag) return this.call.write({ error: { ...e, deliveryTag: clientTag } }, callback);
        }
        break;
      }
      default:
        break;
    }
    return this.call.write(r, callback);
  }

  private translate(d: Delivery): void {
    const sessionTag = Number(d.deliveryTag ?? 0);
    const clientTag = this.consumers.delivered(d.consumerTag ?? "", sessionTag);
    if (clientTag !== sessionTag) d.deliveryTag = clientTag;
  }

  private sessionOpened(up: Upstream, s: raftmq.v1.SessionOpened.$Properties, callback?: WriteCallback): boolean {
    this.sessions++;
    this.clearAttemptTimer();
    this.stopGapHeartbeats();
    const resumed = this.sessions > 1;
    if (resumed) {
      this.ctx.log.info(
        { event: "consume-stream-resumed", session: s.sessionId, gapMs: Date.now() - this.resumeStartedAt, attempts: this.attempts },
        "a consume stream's consumers moved to a session on the new leader",
      );
      this.ctx.metrics?.consumeResumed.inc();
    }
    this.resumeStartedAt = 0;
    this.attempts = 0;
    const written = this.call.write(resumed ? { session: { ...s, resumed: true } } : { session: s }, callback);
    // The consumers the client had, and those it asked for between sessions, in this session;
    // after the current turn, when a local session, which announces itself first, listens.
    // Until then, requests are only recorded: the subscriptions sent are those recorded.
    queueMicrotask(() => {
      if (this.upstream !== up || this.finished) return;
      this.announced = true;
      for (const sub of this.consumers.subscriptions()) {
        this.consumers.sent(sub.consumerTag ?? "");
        up.send(subscription(sub));
      }
      const held = this.held;
      this.held = [];
      for (const r of held) up.send(r);
      if (this.clientEnded) up.end();
    });
    return written;
  }

  /** Upstream `up` ended: with the client's end (failure null), or its session went down. */
  private upstreamEnded(up: Upstream, failure: GrpcFailure | null): void {
    if (up !== this.upstream || this.finished) return;
    this.upstream = null;
    this.clearAttemptTimer();
    // Requests held back for the old session's sake flow again (recorded, or held for the next).
    this.call.resume();
    const hadSession = this.announced;
    this.announced = false;
    if (failure === null) {
      this.finish(null);
      return;
    }
    // Only a stream that had a session resumes, and only from a leadership failure: other ends
    // (a slow reader, a consumer timeout, a refused request) are the stream's own.
    const resumable = failure.code === grpc.status.UNAVAILABLE && this.sessions > 0 && !this.clientEnded && !this.ctx.stopping();
    if (!resumable) {
      this.finish(failure);
      return;
    }
    if (hadSession) this.consumers.sessionEnded();
    this.retryLater(failure);
  }

  /** Tries again for a session after a pause, within the resume deadline. */
  private retryLater(failure: GrpcFailure): void {
    this.lastFailure = failure;
    if (this.resumeStartedAt === 0) {
      this.resumeStartedAt = Date.now();
      this.startGapHeartbeats();
    }
    const delay = Math.min(MAX_RETRY_MS, RETRY_STEP_MS * this.attempts);
    this.attemptTimer = setTimeout(() => {
      this.attemptTimer = null;
      void this.attempt();
    }, delay);
  }

  /** Opens a session on the leader, waiting for one within the resume deadline. */
  private async attempt(): Promise<void> {
    if (this.finished) return;
    if (this.resumeStartedAt > 0 && Date.now() > this.resumeStartedAt + this.ctx.consumeResumeMs) {
      const last = this.lastFailure;
      this.finish(
        statusFailure(
          grpc.status.UNAVAILABLE,
          `leadership moved and no leader took this stream's consumers within ${this.ctx.consumeResumeMs} ms${last === null ? "" : ` (last: ${last.details})`}; subscribe again`,
          { reason: "SESSION_LOST", outcome: "unknown", leader: this.ctx.driver.leaderClientAddress() },
        ),
      );
      return;
    }
    this.attempts++;
    let route: Awaited<ReturnType<typeof routeWrite>>;
    try {
      route = await routeWrite(this.ctx, this.call.metadata);
    } catch (err) {
      if (this.finished) return;
      const failure = toGrpcFailure(err);
      if (this.sessions === 0) {
        this.finish(failure);
        return;
      }
      // No leader yet: try again within the deadline.
      this.retryLater(failure);
      return;
    }
    if (this.finished) return;
    const up = route.local ? this.openLocal() : this.openRelayed(route.address);
    // A local session answers at once; a relayed one may hang on a leader that vanished.
    if (!route.local && this.sessions > 0) {
      this.attemptTimer = setTimeout(() => {
        this.attemptTimer = null;
        if (this.upstream !== up || this.announced) return;
        up.cancel();
        this.upstreamEnded(up, statusFailure(grpc.status.UNAVAILABLE, `the leader did not open a session within ${ATTEMPT_MS} ms`, { reason: "LEADER_UNREACHABLE", outcome: "unknown" }));
      }, ATTEMPT_MS);
    }
  }

  /** A session on this node, the leader. */
  private openLocal(): Upstream {
    let local: LocalSessionCall | null = null;
    const up: Upstream = {
      send: (request) => local?.emit("data", request),
      end: () => local?.emit("end"),
      cancel: () => local?.emit("cancelled"),
      // The session paces itself by the write callbacks it gets (BoundedStreamWriter).
      pause: () => {},
      resume: () => {},
    };
    this.upstream = up;
    local = new LocalSessionCall(
      this.call.metadata,
      (response, callback) => this.fromUpstream(up, response, callback),
      (failure) => this.upstreamEnded(up, failure),
    );
    consumeStream(this.ctx, local as unknown as ConsumeCall);
    return up;
  }

  /** A session on the leader at `address`, through a relayed stream. */
  private openRelayed(address: string): Upstream {
    const def = brokerServiceDefinition.Consume as unknown as grpc.MethodDefinition<raftmq.v1.ConsumeRequest.$Properties, ConsumeResponse>;
    const stream = this.ctx.forwarder.openDuplex(address, def, this.call.metadata);
    const up: Upstream = {
      send: (request) => {
        // A client that sends faster than the leader takes is held back in turn.
        if (!stream.write(request)) this.call.pause();
      },
      end: () => stream.end(),
      cancel: () => stream.cancel(),
      pause: () => stream.pause(),
      resume: () => stream.resume(),
    };
    this.upstream = up;
    const leaderAtOpen = this.ctx.driver.leaderId;
    stream.on("data", (r: ConsumeResponse) => {
      if (up !== this.upstream) return;
      // This node knows a newer leader, which downs this session and requeues what it held: what
      // the old leader still sends (deliveries that sat in a partition until it healed) comes
      // again from the new one, so the stream moves there instead of passing stale copies on.
      const leader = this.ctx.driver.leaderId;
      if (leader !== 0 && leader !== leaderAtOpen) {
        stream.cancel();
        this.upstreamEnded(up, toGrpcFailure(new NodeUnavailableError("leadership moved while a relayed session was open", this.ctx.driver.leaderClientAddress())));
        return;
      }
      // A client that reads slowly holds the relayed stream back, and with it the leader's session.
      if (!this.fromUpstream(up, r)) stream.pause();
    });
    stream.on("drain", () => {
      if (this.upstream === up) this.call.resume();
    });
    stream.on("error", () => {});
    stream.on("status", (status: grpc.StatusObject) => {
      this.upstreamEnded(up, status.code === grpc.status.OK ? null : relayedFailure(status, this.ctx.driver.leaderClientAddress()));
    });
    return up;
  }

  private finish(failure: GrpcFailure | null): void {
    if (this.finished) return;
    this.finished = true;
    this.stopTimers();
    const up = this.upstream;
    this.upstream = null;
    up?.cancel();
    if (failure === null) this.call.end();
    else this.call.emit("error", { code: failure.code, details: failure.details, metadata: failure.metadata });
  }

  /** Between sessions the client still hears the heartbeats it asked for: the stream is alive. */
  private startGapHeartbeats(): void {
    if (this.heartbeatMs <= 0 || this.gapHeartbeat !== null) return;
    this.gapHeartbeat = setInterval(() => {
      if (!this.finished) this.call.write({ heartbeat: {} });
    }, this.heartbeatMs);
    this.gapHeartbeat.unref();
  }

  private stopGapHeartbeats(): void {
    if (this.gapHeartbeat !== null) clearInterval(this.gapHeartbeat);
    this.gapHeartbeat = null;
  }

  private clearAttemptTimer(): void {
    if (this.attemptTimer !== null) clearTimeout(this.attemptTimer);
    this.attemptTimer = null;
  }

  private stopTimers(): void {
    this.clearAttemptTimer();
    this.stopGapHeartbeats();
  }
}
