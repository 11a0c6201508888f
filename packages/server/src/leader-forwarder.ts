// Relays client calls from a follower to the leader's peer port, which serves the same services,
// and relays the answer and the status back. Forwarded calls carry `raftmq-forwarded`, so a call
// that lands on a node that is not the leader (anymore) is answered, never forwarded again.
import * as grpc from "@grpc/grpc-js";
import { FORWARDED_METADATA_KEY, RelayedStatusError, relayedFailure } from "./grpc-status.ts";

const MiB = 1024 * 1024;

export interface ForwarderOptions {
  selfId: number;
  /** Of calls to other nodes (mutual TLS with this node's certificate, unless insecure). */
  credentials?: grpc.ChannelCredentials;
  channelOptions?: grpc.ChannelOptions;
  maxMessageBytes?: number;
  /** Deadline of a forwarded unary call. */
  unaryTimeoutMs?: number;
  /** The leader's client address as this node knows it ("" when unknown), for relayed failures. */
  leaderClientAddress?: () => string;
}

function forwardedMetadata(incoming: grpc.Metadata, selfId: number): grpc.Metadata {
  const out = incoming.clone();
  // Transport-level headers must not be copied onto a new call.
  for (const key of Object.keys(out.getMap())) if (key.startsWith(":") || key === "content-type" || key === "te" || key === "user-agent" || key.startsWith("grpc-")) out.remove(key);
  out.set(FORWARDED_METADATA_KEY, String(selfId));
  return out;
}

export class LeaderForwarder {
  private readonly clients = new Map<string, grpc.Client>();
  private readonly maxMessageBytes: number;
  private readonly unaryTimeoutMs: number;

  constructor(private readonly options: ForwarderOptions) {
    this.maxMessageBytes = options.maxMessageBytes ?? 64 * MiB;
    this.unaryTimeoutMs = options.unaryTimeoutMs ?? 30_000;
  }

  private client(address: string): grpc.Client {
    let client = this.clients.get(address);
    if (client === undefined) {
      client = new grpc.Client(address, this.options.credentials ?? grpc.credentials.createInsecure(), {
        "grpc.max_send_message_length": this.maxMessageBytes,
        "grpc.max_receive_message_length": this.maxMessageBytes,
        "grpc.enable_retries": 0,
        "grpc.initial_reconnect_backoff_ms": 100,
        "grpc.max_reconnect_backoff_ms": 1000,
        // A leader that vanished without closing ends the streams relayed to it.
        "grpc.keepalive_time_ms": 10_000,
        "grpc.keepalive_timeout_ms": 5_000,
        "grpc.keepalive_permit_without_calls": 1,
        ...this.options.channelOptions,
      });
      this.clients.set(address, client);
    }
    return client;
  }

  /**
   * Forwards a unary call; resolves to the leader's answer, rejects with its status. The caller's
   * deadline, when it has one, bounds the forwarded call too.
   */
  unary<Q, R>(address: string, method: grpc.MethodDefinition<Q, R>, request: Q, metadata: grpc.Metadata, callerDeadline?: grpc.Deadline): Promise<R> {
    let deadline = Date.now() + this.unaryTimeoutMs;
    if (callerDeadline !== undefined) {
      const ms = callerDeadline instanceof Date ? callerDeadline.getTime() : callerDeadline;
      if (Number.isFinite(ms)) deadline = Math.min(deadline, ms);
    }
    return new Promise((resolve, reject) => {
      this.client(address).makeUnaryRequest(
        method.path,
        method.requestSerialize,
        method.responseDeserialize,
        request,
        forwardedMetadata(metadata, this.options.selfId),
        { deadline },
        (err, value) => {
          if (err !== null) reject(new RelayedStatusError(relayedFailure(err, this.leaderClientAddress())));
          else if (value === undefined) reject(new Error("empty answer from the leader"));
          else resolve(value);
        },
      );
    });
  }

  /** Opens a bidirectional stream to the leader at `address` for a client call with `metadata`. */
  openDuplex<Q, R>(address: string, method: grpc.MethodDefinition<Q, R>, metadata: grpc.Metadata): grpc.ClientDuplexStream<Q, R> {
    return this.client(address).makeBidiStreamRequest(method.path, method.requestSerialize, method.responseDeserialize, forwardedMetadata(metadata, this.options.selfId));
  }

  /** Pipes a bidirectional stream to the leader and back, status included. */
  duplex<Q, R>(address: string, method: grpc.MethodDefinition<Q, R>, call: grpc.ServerDuplexStream<Q, R>): void {
    const upstream = this.openDuplex(address, method, call.metadata);
    let finished = false;
    call.on("data", (request: Q) => {
      if (!upstream.write(request)) call.pause();
    });
    upstream.on("drain", () => call.resume());
    call.on("end", () => upstream.end());
    // The client went away, or this node ended the stream with a status of its own (its access
    // gate refused a request): that status stands, not the CANCELLED of the leader-side call.
    const stop = () => {
      finished = true;
      upstream.cancel();
    };
    call.on("cancelled", stop);
    call.on("error", stop);
    upstream.on("data", (response: R) => {
      if (!finished) call.write(response);
    });
    upstream.on("error", () => {});
    upstream.on("status", (status: grpc.StatusObject) => {
      if (finished) return;
      finished = true;
      if (status.code === grpc.status.OK) call.end(status.metadata);
      else call.emit("error", relayedFailure(status, this.leaderClientAddress()));
    });
  }

  private leaderClientAddress(): string {
    return this.options.leaderClientAddress?.() ?? "";
  }

  close(): void {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }
}
