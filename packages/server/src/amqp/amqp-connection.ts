// One AMQP 0-9-1 client connection: protocol header, start / tune / open, heartbeats both ways,
// channels, and the close handshakes. Bad input ends in connection.close with the spec's code;
// nothing a client sends reaches the log before it has been decoded and checked.
import type { Socket } from "node:net";
import {
  AmqpCodecError,
  type AmqpMethod,
  type BasicProperties,
  decodeContentHeader,
  decodeMethod,
  encodeBodyFrames,
  encodeContentHeader,
  encodeMethod,
  FRAME_BODY,
  FRAME_HEADER,
  FRAME_HEARTBEAT,
  FRAME_METHOD,
  FRAME_MIN_SIZE,
  FrameReader,
  fromFieldTable,
  heartbeatFrame,
  PROTOCOL_HEADER,
  PROTOCOL_HEADER_SIZE,
  readProtocolHeader,
  toFieldTable,
} from "@raftmq/amqp";
import type { Logger } from "pino";
import { type CallStatus, LocalBrokerCalls } from "../local-calls.ts";
import type { CallAccess } from "../security/access-gate.ts";
import { AmqpChannel, type ChannelHost, MAX_INFLIGHT_BATCHES } from "./amqp-channel.ts";
import { AmqpError, amqpErrorOfStatus, commandInvalid, REPLY, toAmqpError } from "./amqp-errors.ts";
import { ConnectionSession } from "./amqp-session.ts";

/** Who a client is, from its start-ok: the caller checks the mechanism's response. */
export type Authenticate = (mechanism: string, response: Buffer, remote: string) => Promise<Omit<CallAccess, "vhost">>;

export interface AmqpConnectionOptions {
  handlers: import("@grpc/grpc-js").UntypedServiceImplementation;
  authenticate: Authenticate;
  /** Throws AmqpError when the user may not use the vhost. */
  openVhost: (access: Omit<CallAccess, "vhost">, vhost: string) => void;
  mechanisms: readonly string[];
  serverProperties: Record<string, unknown>;
  frameMax: number;
  channelMax: number;
  heartbeatSeconds: number;
  /** Unconfirmed publishes on a connection above which it is not read until confirms come. */
  maxUnconfirmed: number;
  maxBodyBytes: () => number;
  log: Logger;
  onOpened?: () => void;
  /** This side closed the connection with `code` (not the client's own close). */
  onError?: (code: number) => void;
  onClosed: (connection: AmqpConnection) => void;
}

type State = "header" | "start" | "secure" | "tune" | "open" | "running" | "closing" | "closed";

/** A reason as a shortstr: at most 255 bytes. */
function shortReason(reason: string): string {
  return Buffer.byteLength(reason) <= 255 ? reason : `${Buffer.from(reason).subarray(0, 250).toString("utf8").replace(/\uFFFD$/, "")}...`;
}

/** Bytes of unconfirmed publishes above which a connection is not read (as maxUnconfirmed counts them). */
const MAX_UNCONFIRMED_BYTES = 64 * 1024 * 1024;
/** Bytes of content received for unfinished publishes, across channels, above which a connection closes (at least twice the largest message). */
const MAX_PARTIAL_CONTENT_BYTES = 64 * 1024 * 1024;

/** How long a client has to answer connection.close (or finish the handshake) before the socket is cut. */
const CLOSE_TIMEOUT_MS = 3000;
const HANDSHAKE_TIMEOUT_MS = 10_000;

export class AmqpConnection implements ChannelHost {
  private state: State = "header";
  private header = Buffer.alloc(0);
  private readonly reader = new FrameReader({ maxFrameSize: FRAME_MIN_SIZE });
  private readonly channelsById = new Map<number, AmqpChannel>();
  /** Channels this side closed, waiting for the client's close-ok. */
  private readonly closingChannels = new Set<number>();
  private access: Omit<CallAccess, "vhost"> | null = null;
  private brokerCalls: LocalBrokerCalls | null = null;
  private sessionPromise: Promise<ConnectionSession> | null = null;
  private openedSession: ConnectionSession | null = null;
  private frameMax = FRAME_MIN_SIZE;
  private channelMax = 0;
  private heartbeatMs = 0;
  private lastRead = Date.now();
  private lastWrite = Date.now();
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private closeTimer: NodeJS.Timeout | null;
  private unconfirmed = 0;
  private unconfirmedBytes = 0;
  private partialBytes = 0;
  private readingPaused = false;
  /** Why publishing is blocked (a resource alarm), "" when it is not. */
  private blockedReason = "";
  /** Whether the client has published on this connection: only publishers are held back by an alarm. */
  private publishes = false;
  private notifiedBlocked = false;
  private finished = false;
  private clientCapabilities: Record<string, unknown> = {};
  readonly remote: string;

  constructor(
    private readonly socket: Socket,
    private readonly options: AmqpConnectionOptions,
  ) {
    this.remote = `${socket.remoteAddress ?? ""}:${socket.remotePort ?? 0}`;
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("drain", () => this.openedSession?.drained());
    socket.on("error", () => {});
    socket.on("close", () => this.closed());
    this.closeTimer = setTimeout(() => this.abort("handshake timed out"), HANDSHAKE_TIMEOUT_MS);
    this.closeTimer.unref();
  }

  get calls(): LocalBrokerCalls {
    if (this.brokerCalls === null) throw new Error("connection not open");
    return this.brokerCalls;
  }

  get serverCancelNotify(): boolean {
    return this.clientCapabilities.consumer_cancel_notify === true;
  }

  private onData(chunk: Buffer): void {
    this.lastRead = Date.now();
    if (this.state === "closed") return;
    if (this.state === "header") {
      this.header = Buffer.concat([this.header, chunk]);
      const check = readProtocolHeader(this.header);
      if (!check.ok && check.reason === "incomplete") return;
      if (!check.ok) {
        // The spec's answer to a protocol it does not speak: its own header, then close.
        this.socket.end(PROTOCOL_HEADER);
        this.state = "closed";
        return;
      }
      chunk = this.header.subarray(PROTOCOL_HEADER_SIZE);
      this.header = Buffer.alloc(0);
      this.state = "start";
      this.sendMethod(0, {
        name: "connection.start",
        args: { versionMajor: 0, versionMinor: 9, serverProperties: toFieldTable(this.options.serverProperties as never), mechanisms: Buffer.from(this.options.mechanisms.join(" ")), locales: Buffer.from("en_US") },
      });
      if (chunk.length === 0) return;
    }
    try {
      this.reader.push(chunk);
      for (const frame of this.reader) {
        if ((this.state as State) === "closed") return;
        this.frame(frame.type, frame.channel, frame.payload);
      }
    } catch (err) {
      const e = err instanceof AmqpCodecError ? new AmqpError(err.code, err.detail) : toAmqpError(err);
      const classId = err instanceof AmqpCodecError ? err.classId : 0;
      const methodId = err instanceof AmqpCodecError ? err.methodId : 0;
      this.connectionError(e.closesChannel ? new AmqpError(REPLY.INTERNAL_ERROR, e.message) : e, classId, methodId);
    }
    this.checkFlow();
  }

  private frame(type: number, channel: number, payload: Buffer): void {
    if (type === FRAME_HEARTBEAT) {
      if (channel !== 0) throw new AmqpError(REPLY.FRAME_ERROR, `heartbeat frame on channel ${channel}`);
      return;
    }
    if (this.state === "closing") {
      // After connection.close only close and close-ok count.
      if (type === FRAME_METHOD && channel === 0) {
        const m = decodeMethod(payload);
        if (m.name === "connection.close-ok") this.abort(null);
        else if (m.name === "connection.close") {
          this.sendMethod(0, { name: "connection.close-ok", args: {} });
          this.abort(null);
        }
      }
      return;
    }
    if (channel === 0) {
      if (type !== FRAME_METHOD) throw new AmqpError(REPLY.UNEXPECTED_FRAME, `content frame on channel 0`);
      this.connectionMethod(decodeMethod(payload));
      return;
    }
    if (this.state !== "running") throw new AmqpError(REPLY.CHANNEL_ERROR, `a frame on channel ${channel} before connection.open`);
    if (this.closingChannels.has(channel)) {
      // Until its close-ok, a channel this side closed ignores everything else.
      if (type === FRAME_METHOD) {
        const m = decodeMethod(payload);
        if (m.name === "channel.close-ok") this.closingChannels.delete(channel);
        else if (m.name === "channel.close") this.sendMethod(channel, { name: "channel.close-ok", args: {} });
      }
      return;
    }
    const ch = this.channelsById.get(channel);
    if (type === FRAME_METHOD) {
      const m = decodeMethod(payload);
      if (m.name === "channel.open") {
        if (ch !== undefined) throw new AmqpError(REPLY.CHANNEL_ERROR, `second 'channel.open' seen on channel ${channel}`);
        if (channel > this.channelMax) throw new AmqpError(REPLY.CHANNEL_ERROR, `channel ${channel} is above the negotiated channel_max ${this.channelMax}`);
        this.channelsById.set(channel, new AmqpChannel(channel, this));
        this.sendMethod(channel, { name: "channel.open-ok", args: { channelId: Buffer.alloc(0) } });
        return;
      }
      if (ch === undefined) throw new AmqpError(REPLY.CHANNEL_ERROR, `expected 'channel.open' on channel ${channel}, got ${m.name}`);
      if (m.name === "channel.close") {
        this.channelsById.delete(channel);
        this.releaseChannel(ch).then(() => this.sendMethod(channel, { name: "channel.close-ok", args: {} }));
        return;
      }
      if (m.name === "channel.close-ok") return;
      try {
        ch.method(m);
      } catch (err) {
        this.fail(ch, toAmqpError(err), m.classId, m.methodId);
      }
      return;
    }
    if (ch === undefined) throw new AmqpError(REPLY.CHANNEL_ERROR, `content frame on channel ${channel}, which is not open`);
    try {
      if (type === FRAME_HEADER) {
        this.publishes = true;
        const h = decodeContentHeader(payload);
        ch.header(h.bodySize, h.properties);
      } else if (type === FRAME_BODY) ch.body(payload);
    } catch (err) {
      if (err instanceof AmqpCodecError) throw err;
      this.fail(ch, toAmqpError(err), 60, 40);
    }
  }

  private connectionMethod(m: ReturnType<typeof decodeMethod>): void {
    const expect = (state: State, name: string) => {
      if (this.state !== state || m.name !== name) throw commandInvalid(`expected '${name}', got '${m.name}'`);
    };
    switch (this.state) {
      case "start": {
        expect("start", "connection.start-ok");
        if (m.name !== "connection.start-ok") return;
        const a = m.args;
        const caps = fromFieldTable(a.clientProperties ?? {}).capabilities;
        this.clientCapabilities = caps !== null && typeof caps === "object" && !Array.isArray(caps) && !(caps instanceof Uint8Array) && !(caps instanceof Date) ? (caps as Record<string, unknown>) : {};
        if (!this.options.mechanisms.includes(a.mechanism)) {
          this.connectionError(new AmqpError(REPLY.ACCESS_REFUSED, `unknown authentication mechanism '${a.mechanism}'; this server offers ${this.options.mechanisms.join(", ")}`), m.classId, m.methodId);
          return;
        }
        this.state = "secure";
        this.options.authenticate(a.mechanism, Buffer.from(a.response), this.remote).then(
          (access) => {
            if (this.state !== "secure") return;
            this.access = access;
            this.state = "tune";
            this.sendMethod(0, { name: "connection.tune", args: { channelMax: this.options.channelMax, frameMax: this.options.frameMax, heartbeat: this.options.heartbeatSeconds } });
          },
          (err: unknown) => {
            if (this.state !== "secure") return;
            const e = err instanceof AmqpError ? err : new AmqpError(REPLY.ACCESS_REFUSED, `Login was refused using authentication mechanism ${a.mechanism}`);
            this.options.log.info({ event: "amqp-login-refused", remote: this.remote, mechanism: a.mechanism }, e.message);
            this.connectionError(e, m.classId, m.methodId);
          },
        );
        return;
      }
      case "secure":
        throw commandInvalid(`'${m.name}' while authentication is in progress`);
      case "tune": {
        expect("tune", "connection.tune-ok");
        if (m.name !== "connection.tune-ok") return;
        const a = m.args;
        const frameMax = a.frameMax === 0 ? this.options.frameMax : a.frameMax;
        if (frameMax < FRAME_MIN_SIZE || frameMax > this.options.frameMax) {
          throw new AmqpError(REPLY.NOT_ALLOWED, `negotiated frame_max = ${a.frameMax} is outside ${FRAME_MIN_SIZE}..${this.options.frameMax}`);
        }
        const channelMax = a.channelMax === 0 ? this.options.channelMax : Math.min(a.channelMax, this.options.channelMax);
        if (a.channelMax > this.options.channelMax) throw new AmqpError(REPLY.NOT_ALLOWED, `negotiated channel_max = ${a.channelMax} is higher than the maximum allowed value (${this.options.channelMax})`);
        this.frameMax = frameMax;
        this.reader.maxFrameSize = frameMax;
        this.channelMax = channelMax;
        this.heartbeatMs = a.heartbeat * 1000;
        this.state = "open";
        return;
      }
      case "open": {
        expect("open", "connection.open");
        if (m.name !== "connection.open" || this.access === null) return;
        const vhost = m.args.virtualHost;
        this.options.openVhost(this.access, vhost);
        this.brokerCalls = new LocalBrokerCalls(this.options.handlers, { ...this.access, vhost });
        this.state = "running";
        if (this.closeTimer !== null) clearTimeout(this.closeTimer);
        this.closeTimer = null;
        this.startHeartbeats();
        this.sendMethod(0, { name: "connection.open-ok", args: { knownHosts: "" } });
        this.options.onOpened?.();
        this.options.log.debug({ event: "amqp-connection-opened", remote: this.remote, user: this.access.user, vhost }, "AMQP connection opened");
        return;
      }
      case "running":
        if (m.name === "connection.close") {
          this.state = "closing";
          this.releaseAll().finally(() => {
            this.sendMethod(0, { name: "connection.close-ok", args: {} });
            this.abort(null);
          });
          return;
        }
        if (m.name === "connection.update-secret") throw new AmqpError(REPLY.NOT_IMPLEMENTED, "connection.update-secret");
        if (m.name === "connection.blocked" || m.name === "connection.unblocked") return;
        throw commandInvalid(`'${m.name}' on channel 0`);
      default:
        throw commandInvalid(`'${m.name}' in state ${this.state}`);
    }
  }

  private startHeartbeats(): void {
    if (this.heartbeatMs <= 0) return;
    const beat = Buffer.from(heartbeatFrame());
    this.heartbeatTimer = setInterval(
      () => {
        const now = Date.now();
        // Two intervals without a byte from the client: it is gone (RabbitMQ closes the socket).
        if (!this.readingPaused && now - this.lastRead > 2 * this.heartbeatMs) {
          this.options.log.info({ event: "amqp-heartbeat-missed", remote: this.remote }, "AMQP client missed heartbeats; closing its connection");
          this.abort("missed heartbeats");
          return;
        }
        if (now - this.lastWrite >= this.heartbeatMs / 2) this.write(beat);
      },
      Math.max(100, this.heartbeatMs / 2),
    );
    this.heartbeatTimer.unref();
  }

  private write(buf: Buffer): boolean {
    this.lastWrite = Date.now();
    return this.socket.write(buf);
  }

  sendMethod(channel: number, method: AmqpMethod): void {
    if (this.state === "closed" || (channel !== 0 && !this.channelsById.has(channel) && method.name !== "channel.close-ok")) return;
    this.write(encodeMethod(channel, method));
  }

  /**
   * Sends a method with content. Throws AmqpError 541 when the message has no AMQP form (a
   * routing key or property a gRPC publisher set beyond AMQP's bounds); nothing is sent then.
   */
  sendContent(channel: number, method: AmqpMethod, properties: BasicProperties, body: Uint8Array): void {
    if (this.state === "closed" || !this.channelsById.has(channel)) return;
    const b = Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    let frames: Buffer[];
    try {
      frames = [encodeMethod(channel, method), encodeContentHeader(channel, 60, b.length, properties), ...encodeBodyFrames(channel, b, this.frameMax)];
    } catch (err) {
      if (err instanceof AmqpCodecError) throw new AmqpError(REPLY.INTERNAL_ERROR, `a message cannot be sent over AMQP: ${err.detail}`);
      throw err;
    }
    this.socket.cork();
    for (const frame of frames) this.write(frame);
    process.nextTick(() => this.socket.uncork());
  }

  undeliverable(consumerTag: string, reason: string): void {
    this.options.log.warn({ event: "amqp-undeliverable", remote: this.remote, consumer: consumerTag, reason }, `a message was not sent to an AMQP client: ${reason}`);
  }

  maxBodyBytes(): number {
    return this.options.maxBodyBytes();
  }

  publishing(messages: number, bytes: number): void {
    this.unconfirmed += messages;
    this.unconfirmedBytes += bytes;
    if (messages < 0) this.checkFlow();
  }

  receiving(delta: number): void {
    this.partialBytes += delta;
    const max = Math.max(MAX_PARTIAL_CONTENT_BYTES, 2 * this.options.maxBodyBytes());
    if (this.partialBytes > max) throw new AmqpError(REPLY.RESOURCE_ERROR, `more than ${max} bytes of unfinished message content across the connection's channels`);
  }

  /** Stops reading while too much is unconfirmed: the client's writes back up into TCP. */
  private checkFlow(): void {
    let batches = 0;
    for (const ch of this.channelsById.values()) batches = Math.max(batches, ch.inflightBatches);
    // As RabbitMQ does, an alarm holds back the connections that publish, and says so to each.
    const alarmed = this.blockedReason !== "" && this.publishes;
    this.notifyBlocked(alarmed);
    const over = alarmed || this.unconfirmed > this.options.maxUnconfirmed || this.unconfirmedBytes > MAX_UNCONFIRMED_BYTES || batches >= MAX_INFLIGHT_BATCHES;
    if (over && !this.readingPaused && this.state === "running") {
      this.readingPaused = true;
      this.socket.pause();
    } else if (!over && this.readingPaused) {
      this.readingPaused = false;
      // What the client sent while it was not read counts as heard from it.
      this.lastRead = Date.now();
      this.socket.resume();
    }
  }

  session(): Promise<ConnectionSession> {
    this.sessionPromise ??= ConnectionSession.open(this.calls, {
      writable: () => !this.socket.writableNeedDrain,
      channels: () => this.channelsById.values(),
      lost: (status) => this.sessionLost(status),
    }).then((s) => {
      this.openedSession = s;
      return s;
    });
    return this.sessionPromise;
  }

  openSessionId(): string {
    return this.openedSession?.id ?? "";
  }

  forgetExclusive(queue: string): void {
    this.openedSession?.exclusiveQueues.delete(queue);
  }

  private sessionLost(status: CallStatus | null): void {
    if (this.state !== "running") return;
    const e = status === null ? new AmqpError(REPLY.CONNECTION_FORCED, "the consume session ended") : amqpErrorOfStatus(status);
    this.connectionError(e.closesChannel ? new AmqpError(REPLY.CONNECTION_FORCED, e.message) : e, 0, 0);
  }

  /** A channel error closes the channel; any other closes the connection. */
  fail(channel: AmqpChannel, error: AmqpError, classId: number, methodId: number): void {
    if (!error.closesChannel) {
      this.connectionError(error, classId, methodId);
      return;
    }
    if (this.channelsById.get(channel.id) !== channel || channel.state !== "open") return;
    channel.state = "closing";
    this.sendMethod(channel.id, { name: "channel.close", args: { replyCode: error.code, replyText: error.replyText, classId, methodId } });
    this.channelsById.delete(channel.id);
    this.closingChannels.add(channel.id);
    this.releaseChannel(channel);
  }

  private releaseChannel(channel: AmqpChannel): Promise<void> {
    return channel.release().catch((err: unknown) => this.options.log.warn({ err, remote: this.remote }, "could not release an AMQP channel's consumers"));
  }

  private async releaseAll(): Promise<void> {
    const channels = [...this.channelsById.values()];
    this.channelsById.clear();
    await Promise.all(channels.map((c) => this.releaseChannel(c)));
    await this.sessionPromise?.then(
      (s) => s.close(),
      () => {},
    );
  }

  /** Sends connection.close; the socket is cut when the client answers or does not in time. */
  connectionError(error: AmqpError, classId: number, methodId: number): void {
    if (this.state === "closing" || this.state === "closed") return;
    this.options.log.info({ event: "amqp-connection-error", remote: this.remote, code: error.code, reason: error.message }, `AMQP connection closed: ${error.replyText}`);
    this.options.onError?.(error.code);
    if (this.state === "header") {
      this.abort(error.message);
      return;
    }
    this.state = "closing";
    this.write(encodeMethod(0, { name: "connection.close", args: { replyCode: error.code, replyText: error.replyText, classId, methodId } }));
    this.releaseAll().catch(() => {});
    if (this.readingPaused) this.socket.resume();
    if (this.closeTimer !== null) clearTimeout(this.closeTimer);
    this.closeTimer = setTimeout(() => this.abort("no close-ok"), CLOSE_TIMEOUT_MS);
    this.closeTimer.unref();
  }

  /**
   * A resource alarm raised ("" when it cleared): a connection that publishes is not read
   * meanwhile and, if its client understands them, is sent connection.blocked and, once the alarm
   * clears, connection.unblocked, as in RabbitMQ; connections that only consume go on.
   */
  setBlocked(reason: string): void {
    if (reason === this.blockedReason) return;
    this.blockedReason = reason;
    this.checkFlow();
  }

  /** Tells a client that understands it that its publishing is held back by an alarm, or no longer. */
  private notifyBlocked(blocked: boolean): void {
    if (blocked === this.notifiedBlocked) return;
    this.notifiedBlocked = blocked;
    if (this.state !== "running" || this.clientCapabilities["connection.blocked"] !== true) return;
    this.sendMethod(0, blocked ? { name: "connection.blocked", args: { reason: shortReason(this.blockedReason) } } : { name: "connection.unblocked", args: {} });
  }

  /** Closes from this side (the node is stopping): connection.close with CONNECTION_FORCED. */
  shutdown(reason: string): void {
    this.connectionError(new AmqpError(REPLY.CONNECTION_FORCED, reason), 0, 0);
  }

  private abort(_reason: string | null): void {
    if (this.state === "closed") return;
    this.state = "closed";
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1000).unref();
    this.closed();
  }

  private closed(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.heartbeatTimer !== null) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
    if (this.closeTimer !== null) clearTimeout(this.closeTimer);
    this.closeTimer = null;
    this.state = "closed";
    this.releaseAll().catch(() => {});
    this.options.onClosed(this);
  }
}
