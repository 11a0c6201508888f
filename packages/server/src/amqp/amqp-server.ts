// The node's AMQP 0-9-1 listener (and its TLS twin): every connection authenticates against the
// cluster's users and vhosts, then speaks to the broker through the same gated handlers as gRPC.
import { createServer, type Server, type Socket } from "node:net";
import * as tls from "node:tls";
import { AmqpCodecError, decodeFieldTable, fromFieldTable } from "@raftmq/amqp";
import type { Logger } from "pino";
import type * as grpc from "@grpc/grpc-js";
import type { AccessView } from "../access/access-view.ts";
import type { AuditLog } from "../access/audit-log.ts";
import { AuthenticationError, type Authenticator } from "../access/authenticator.ts";
import { authorize, PermissionDeniedError } from "../access/permission-table.ts";
import type { CallAccess } from "../security/access-gate.ts";
import { commonNameOfCertificate } from "../tls/cert-identity.ts";
import { AmqpConnection } from "./amqp-connection.ts";
import { AmqpError, REPLY } from "./amqp-errors.ts";
import type { NodeMetrics } from "../node-metrics.ts";

export interface AmqpServerOptions {
  host: string;
  /** Plain AMQP port; 0 picks a free one, -1 serves none. */
  port: number;
  /** AMQPS port and TLS settings; null serves none. */
  tls: { port: number; context: tls.SecureContextOptions; requestCert: boolean } | null;
  /** The Broker handlers behind the client port's access gate. */
  handlers: grpc.UntypedServiceImplementation;
  insecure: boolean;
  authenticator: Authenticator;
  view: () => AccessView;
  audit: AuditLog;
  log: Logger;
  version: string;
  clusterName: string;
  maxBodyBytes: () => number;
  frameMax?: number;
  channelMax?: number;
  heartbeatSeconds?: number;
  maxUnconfirmed?: number;
  metrics?: NodeMetrics;
}

export interface AmqpPorts {
  amqp: number;
  amqps: number;
}

/** RabbitMQ's defaults: 128 KiB frames, 2047 channels, 60 s heartbeats. */
export const DEFAULT_FRAME_MAX = 131_072;
export const DEFAULT_CHANNEL_MAX = 2047;
export const DEFAULT_HEARTBEAT_SECONDS = 60;
const DEFAULT_MAX_UNCONFIRMED = 10_000;

export class AmqpServer {
  private readonly servers: Server[] = [];
  private readonly connections = new Set<AmqpConnection>();
  private blocked = "";
  ports: AmqpPorts = { amqp: 0, amqps: 0 };

  constructor(private readonly options: AmqpServerOptions) {
    if (options.metrics !== undefined) options.metrics.amqpConnections = () => this.connections.size;
  }

  async listen(): Promise<AmqpPorts> {
    const { options } = this;
    if (options.port >= 0) {
      const server = createServer((socket) => this.accept(socket, null));
      this.ports.amqp = await this.bind(server, options.port);
    }
    if (options.tls !== null) {
      const t = options.tls;
      const server = tls.createServer({ ...t.context, requestCert: t.requestCert, rejectUnauthorized: false }, (socket) => this.accept(socket, socket));
      // A handshake that fails ends the socket; the node does not hear of it otherwise.
      server.on("tlsClientError", () => {});
      this.ports.amqps = await this.bind(server, t.port);
    }
    return this.ports;
  }

  private bind(server: Server, port: number): Promise<number> {
    this.servers.push(server);
    server.maxConnections = 10_000;
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, this.options.host, () => {
        server.off("error", reject);
        const address = server.address();
        resolve(typeof address === "object" && address !== null ? address.port : port);
      });
    });
  }

  private accept(socket: Socket, secure: tls.TLSSocket | null): void {
    const { options } = this;
    const mechanisms = secure?.authorized && secure.getPeerCertificate()?.subject !== undefined ? ["PLAIN", "AMQPLAIN", "EXTERNAL"] : ["PLAIN", "AMQPLAIN"];
    const connection = new AmqpConnection(socket, {
      handlers: options.handlers,
      authenticate: (mechanism, response, remote) => this.authenticate(mechanism, response, remote, secure),
      openVhost: (access, vhost) => this.openVhost(access, vhost),
      mechanisms,
      serverProperties: {
        product: "raftmq",
        version: options.version,
        platform: `Node.js ${process.version}`,
        cluster_name: options.clusterName,
        capabilities: {
          publisher_confirms: true,
          exchange_exchange_bindings: true,
          "basic.nack": true,
          consumer_cancel_notify: true,
          "connection.blocked": true,
          authentication_failure_close: true,
          per_consumer_qos: true,
        },
      },
      frameMax: options.frameMax ?? DEFAULT_FRAME_MAX,
      channelMax: options.channelMax ?? DEFAULT_CHANNEL_MAX,
      heartbeatSeconds: options.heartbeatSeconds ?? DEFAULT_HEARTBEAT_SECONDS,
      maxUnconfirmed: options.maxUnconfirmed ?? DEFAULT_MAX_UNCONFIRMED,
      maxBodyBytes: options.maxBodyBytes,
      log: options.log,
      onOpened: () => options.metrics?.amqpConnectionsOpened.inc(),
      onError: (code) => options.metrics?.amqpConnectionsClosed.inc({ code: String(code) }),
      onClosed: (c) => this.connections.delete(c),
    });
    this.connections.add(connection);
    if (this.blocked !== "") connection.setBlocked(this.blocked);
  }

  /** A resource alarm raised (its reason) or cleared (""): every connection hears of it. */
  setBlocked(reason: string): void {
    this.blocked = reason;
    for (const c of this.connections) c.setBlocked(reason);
  }

  private async authenticate(mechanism: string, response: Buffer, remote: string, secure: tls.TLSSocket | null): Promise<Omit<CallAccess, "vhost">> {
    const { options } = this;
    if (options.insecure) return { user: "", tags: ["administrator"], mechanism: "none", remote };
    let input: { authorization?: string; certificateUser?: string };
    if (mechanism === "EXTERNAL") {
      const cert = secure?.getPeerCertificate();
      if (secure === null || !secure.authorized || cert === undefined) throw new AmqpError(REPLY.ACCESS_REFUSED, "EXTERNAL needs a client certificate signed by the cluster CA");
      input = { certificateUser: commonNameOfCertificate(cert) };
    } else {
      const { user, password } = credentials(mechanism, response);
      input = { authorization: `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}` };
    }
    try {
      const principal = await options.authenticator.authenticate({ ...input, remoteAddress: remote });
      options.audit.write({ event: "auth.success", user: principal.user, mechanism: principal.mechanism, remote, result: "ok" });
      return { user: principal.user, tags: principal.tags, mechanism: principal.mechanism, remote };
    } catch (err) {
      if (err instanceof AuthenticationError) {
        options.audit.write({
          event: "auth.failure",
          ...(err.attemptedUser === undefined ? {} : { user: err.attemptedUser }),
          mechanism: mechanism === "EXTERNAL" ? "certificate" : "password",
          remote,
          reason: err.failure,
          result: "denied",
        });
        throw new AmqpError(REPLY.ACCESS_REFUSED, `Login was refused using authentication mechanism ${mechanism}`);
      }
      throw err;
    }
  }

  private openVhost(access: Omit<CallAccess, "vhost">, vhost: string): void {
    const view = this.options.view();
    if (access.mechanism === "none" || access.mechanism === "node") {
      if (!view.hasVhost(vhost)) throw new AmqpError(REPLY.NOT_ALLOWED, `vhost '${vhost}' not found`);
      return;
    }
    try {
      authorize({ user: access.user, tags: access.tags, mechanism: access.mechanism === "certificate" ? "certificate" : "password" }, vhost, [{ kind: "vhost-access" }], view);
    } catch (err) {
      if (err instanceof PermissionDeniedError) {
        this.options.audit.write({ event: "access.denied", user: access.user, remote: access.remote, vhost, resource: "amqp.connection.open", reason: err.message, result: "denied" });
        throw new AmqpError(REPLY.NOT_ALLOWED, view.hasVhost(vhost) ? `access to vhost '${vhost}' refused for user '${access.user}'` : `vhost '${vhost}' not found`);
      }
      throw err;
    }
  }

  /** Closes every connection with CONNECTION_FORCED and stops listening. */
  async close(reason: string): Promise<void> {
    for (const server of this.servers) server.close();
    for (const c of this.connections) c.shutdown(reason);
    const deadline = Date.now() + 1000;
    while (this.connections.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  }
}

/** The user and password of a PLAIN ("\0user\0password") or AMQPLAIN (LOGIN, PASSWORD table) response. */
export function credentials(mechanism: string, response: Buffer): { user: string; password: string } {
  if (mechanism === "PLAIN") {
    const parts = response.toString("utf8").split("\u0000");
    if (parts.length !== 3) throw new AmqpError(REPLY.ACCESS_REFUSED, "a PLAIN response is authzid NUL user NUL password");
    return { user: parts[1] ?? "", password: parts[2] ?? "" };
  }
  if (mechanism === "AMQPLAIN") {
    // A field table without its length prefix.
    const framed = Buffer.alloc(4 + response.length);
    framed.writeUInt32BE(response.length, 0);
    response.copy(framed, 4);
    let table: ReturnType<typeof fromFieldTable>;
    try {
      table = fromFieldTable(decodeFieldTable(framed));
    } catch (err) {
      if (err instanceof AmqpCodecError) throw new AmqpError(REPLY.ACCESS_REFUSED, "an AMQPLAIN response is a field table with LOGIN and PASSWORD");
      throw err;
    }
    const user = table.LOGIN;
    const password = table.PASSWORD;
    if (typeof user !== "string" || typeof password !== "string") throw new AmqpError(REPLY.ACCESS_REFUSED, "an AMQPLAIN response needs LOGIN and PASSWORD strings");
    return { user, password };
  }
  throw new AmqpError(REPLY.ACCESS_REFUSED, `unknown authentication mechanism '${mechanism}'`);
}
