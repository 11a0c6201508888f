// The node's own Broker service, called from inside the node. A front end for another protocol
// (AMQP 0-9-1) translates its methods into these calls, which then take the same path as a gRPC
// client's: the access gate (as the user the front end authenticated), leader routing, forwarding
// from a follower, the consume front that outlives leader changes. The front ends translate;
// declaring, publishing with confirms, consuming with credit, settling and getting happen here once.
import { EventEmitter } from "node:events";
import * as grpc from "@grpc/grpc-js";
import type { raftmq } from "@raftmq/proto";
import { type CallAccess, presetAccess, VHOST_METADATA_KEY } from "./security/access-gate.ts";

/** How a call ended: null when it ended normally. */
export interface CallStatus {
  code: grpc.status;
  details: string;
  metadata: grpc.Metadata;
}

type WriteCallback = (error?: Error | null) => void;

/** The server side of an in-process stream, as a handler sees a gRPC ServerDuplexStream. */
class LocalServerStream extends EventEmitter {
  private finished = false;
  private readonly waiting: WriteCallback[] = [];

  constructor(
    readonly metadata: grpc.Metadata,
    private readonly remote: string,
    private readonly sink: LocalStream<unknown, unknown>,
  ) {
    super();
  }

  getPeer(): string {
    return this.remote;
  }

  getAuthContext(): object {
    return {};
  }

  getDeadline(): grpc.Deadline {
    return Number.POSITIVE_INFINITY;
  }

  write(response: unknown, callback?: WriteCallback): boolean {
    if (this.finished) return false;
    const room = this.sink.deliver(response);
    if (callback !== undefined) {
      if (room) queueMicrotask(() => callback());
      else this.waiting.push(callback);
    }
    return room;
  }

  /** The reader took what it was given: writers waiting for room go on. */
  drained(): void {
    const waiting = this.waiting.splice(0);
    for (const callback of waiting) callback();
    this.emit("drain");
  }

  end(): void {
    this.close(null);
  }

  pause(): void {
    this.sink.paused = true;
  }

  resume(): void {
    this.sink.paused = false;
    this.sink.emit("resume");
  }

  override emit(event: string | symbol, ...args: unknown[]): boolean {
    if (event === "error" && !this.finished) {
      const s = args[0] as { code: grpc.status; details?: string; metadata?: grpc.Metadata };
      this.close({ code: s.code, details: s.details ?? "", metadata: s.metadata ?? new grpc.Metadata() });
      if (this.listenerCount("error") === 0) return false;
    }
    return super.emit(event, ...args);
  }

  private close(status: CallStatus | null): void {
    if (this.finished) return;
    this.finished = true;
    this.waiting.length = 0;
    this.sink.closed(status);
  }
}

/**
 * The client side of an in-process stream: `send` requests, responses arrive through `onResponse`
 * (return false to be given no more until `drained()`), the end through `onEnd`.
 */
export class LocalStream<Q, R> extends EventEmitter {
  /** Set when the handler paused taking requests (its own backpressure towards the client). */
  paused = false;
  private server: LocalServerStream | null = null;
  private ended = false;
  /**
   * What the client sent before the handler listened (the access gate admits a call
   * asynchronously): handed over, in order, once it listens for requests.
   */
  private early: { event: "data" | "end"; request?: Q }[] | null = [];

  constructor(
    private readonly onResponse: (response: R) => boolean,
    private readonly onEnd: (status: CallStatus | null) => void,
  ) {
    super();
  }

  /** @internal */
  attach(server: LocalServerStream): void {
    this.server = server;
    const onListener = (event: string | symbol) => {
      if (event !== "data") return;
      server.off("newListener", onListener);
      // newListener fires before the listener is added.
      queueMicrotask(() => {
        const early = this.early ?? [];
        this.early = null;
        for (const e of early) {
          if (e.event === "data") server.emit("data", e.request);
          else server.emit("end");
        }
      });
    };
    server.on("newListener", onListener);
  }

  /** @internal */
  deliver(response: unknown): boolean {
    return this.ended ? false : this.onResponse(response as R);
  }

  /** @internal */
  closed(status: CallStatus | null): void {
    if (this.ended) return;
    this.ended = true;
    this.onEnd(status);
  }

  get isEnded(): boolean {
    return this.ended;
  }

  send(request: Q): void {
    if (this.ended) return;
    if (this.early !== null) this.early.push({ event: "data", request });
    else this.server?.emit("data", request);
  }

  /** No more requests: the handler finishes what it has and ends the stream. */
  end(): void {
    if (this.ended) return;
    if (this.early !== null) this.early.push({ event: "end" });
    else this.server?.emit("end");
  }

  /** Abandons the stream, as a client that went away. */
  cancel(): void {
    if (this.ended) return;
    this.ended = true;
    this.server?.emit("cancelled");
  }

  /** The reader has room again. */
  drained(): void {
    this.server?.drained();
  }
}

type BrokerMethod = "DeclareExchange" | "DeleteExchange" | "DeclareQueue" | "DeleteQueue" | "PurgeQueue" | "Bind" | "Unbind" | "Get" | "QueueInfo";

/** A front end's connection to the broker, as one authenticated user in one vhost. */
export class LocalBrokerCalls {
  constructor(
    /** The node's Broker handlers, behind the client port's access gate. */
    private readonly handlers: grpc.UntypedServiceImplementation,
    private readonly access: CallAccess,
  ) {}

  private metadata(extra: Record<string, string> = {}): grpc.Metadata {
    const metadata = new grpc.Metadata();
    metadata.set(VHOST_METADATA_KEY, this.access.vhost);
    for (const [key, value] of Object.entries(extra)) metadata.set(key, value);
    return metadata;
  }

  /** A unary call; rejects with the call's status. */
  unary<R>(method: BrokerMethod, request: object): Promise<R> {
    const handler = this.handlers[method] as grpc.handleUnaryCall<unknown, unknown> | undefined;
    if (handler === undefined) return Promise.reject(new Error(`no Broker.${method} handler`));
    const metadata = this.metadata();
    const call = {
      request,
      metadata,
      cancelled: false,
      getPeer: () => this.access.remote,
      getAuthContext: () => ({}),
      getDeadline: () => Number.POSITIVE_INFINITY,
      on: () => call,
      once: () => call,
    };
    presetAccess(call, this.access);
    return new Promise((resolve, reject) => {
      handler(call as unknown as grpc.ServerUnaryCall<unknown, unknown>, (err, value) => {
        if (err !== null && err !== undefined) {
          const e = err as Partial<grpc.StatusObject>;
          reject(statusError({ code: e.code ?? grpc.status.UNKNOWN, details: e.details ?? String((err as Error).message ?? err), metadata: e.metadata ?? new grpc.Metadata() }));
        } else resolve(value as R);
      });
    });
  }

  publishStream(onResponse: (r: raftmq.v1.PublishResponse) => boolean, onEnd: (s: CallStatus | null) => void): LocalStream<raftmq.v1.PublishRequest.$Properties, raftmq.v1.PublishResponse> {
    return this.duplex("PublishStream", {}, onResponse, onEnd);
  }

  consume(heartbeatMs: number, onResponse: (r: raftmq.v1.ConsumeResponse) => boolean, onEnd: (s: CallStatus | null) => void): LocalStream<raftmq.v1.ConsumeRequest.$Properties, raftmq.v1.ConsumeResponse> {
    return this.duplex("Consume", heartbeatMs > 0 ? { "raftmq-heartbeat-ms": String(heartbeatMs) } : {}, onResponse, onEnd);
  }

  private duplex<Q, R>(method: "PublishStream" | "Consume", extra: Record<string, string>, onResponse: (r: R) => boolean, onEnd: (s: CallStatus | null) => void): LocalStream<Q, R> {
    const handler = this.handlers[method] as grpc.handleBidiStreamingCall<unknown, unknown>;
    const client = new LocalStream<Q, R>(onResponse, onEnd);
    const server = new LocalServerStream(this.metadata(extra), this.access.remote, client as LocalStream<unknown, unknown>);
    client.attach(server);
    presetAccess(server, this.access);
    handler(server as unknown as grpc.ServerDuplexStream<unknown, unknown>);
    return client;
  }
}

/** A failed call's status as an Error, for promise rejections. */
export class CallStatusError extends Error {
  constructor(readonly status: CallStatus) {
    super(status.details);
  }
}

function statusError(status: CallStatus): CallStatusError {
  return new CallStatusError(status);
}
