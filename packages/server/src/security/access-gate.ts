// Authentication and authorization in front of every handler of the client and peer ports,
// checked once per call (once per request on a stream) before any command is built.
//
// Client port: a password (`authorization: Basic ...`) or a verified client certificate names
// the user; a verified node certificate is a node of this cluster, allowed everything.
// Peer port: only nodes of this cluster (a verified node certificate) get in; a call a follower
// forwarded acts as the user the follower authenticated (`raftmq-authenticated-user`).
// Insecure mode: nobody is authenticated and everything is allowed.
import type * as grpc from "@grpc/grpc-js";
import type { raftmq } from "@raftmq/proto";
import type { Logger } from "pino";
import type { AccessView } from "../access/access-view.ts";
import { AuthenticationError, type Authenticator } from "../access/authenticator.ts";
import type { AuditEvent, AuditLog } from "../access/audit-log.ts";
import { authorize, PermissionDeniedError, requirementsFor } from "../access/permission-table.ts";
import { toServiceError } from "../grpc-status.ts";
import { MalformedRequest } from "@raftmq/proto/grpc";
import { AccessDeniedError, CommandFailedError, InvalidRequestError, NodeUnavailableError, UnauthenticatedError } from "../node-errors.ts";
import { commonNameOfCertificate, nodeIdOfCertificate } from "../tls/cert-identity.ts";

export const VHOST_METADATA_KEY = "raftmq-vhost";
/** Set by the gate on the node that authenticated a call; believed only from a node's certificate. */
export const AUTHENTICATED_USER_METADATA_KEY = "raftmq-authenticated-user";
export const DEFAULT_VHOST = "/";

export type Mechanism = "password" | "certificate" | "node" | "none";

export interface CallAccess {
  /** "" for a node of the cluster and in insecure mode. */
  user: string;
  tags: readonly string[];
  mechanism: Mechanism;
  vhost: string;
  remote: string;
}

const accessOfCall = new WeakMap<object, CallAccess>();

/** The access the gate admitted a call with; a call the gate did not see is the node's own. */
export function callAccess(call: object): CallAccess {
  return accessOfCall.get(call) ?? { user: "", tags: ["administrator"], mechanism: "none", vhost: DEFAULT_VHOST, remote: "" };
}

const presetAccessOfCall = new WeakMap<object, CallAccess>();

/**
 * Admits an in-process call as `access`: a front end of another protocol (AMQP) authenticated
 * its connection itself, once, and its calls act as that user in its vhost.
 */
export function presetAccess(call: object, access: CallAccess): void {
  presetAccessOfCall.set(call, access);
}

/** The vhost a call names (metadata `raftmq-vhost`), "/" by default. */
export function vhostOf(metadata: grpc.Metadata): string {
  const value = metadata.get(VHOST_METADATA_KEY)[0];
  return typeof value === "string" && value !== "" ? value : DEFAULT_VHOST;
}

export interface AccessGateOptions {
  port: "client" | "peer";
  insecure: boolean;
  nodeId: number;
  authenticator: Authenticator;
  view: () => AccessView;
  audit: AuditLog;
  log: Logger;
}

type ServiceName = "Broker" | "Cluster" | "Access";

// What each state-changing call is called in the audit log.
const AUDITED: Readonly<Record<string, AuditEvent["event"]>> = {
  "Broker/DeclareExchange": "exchange.declare",
  "Broker/DeleteExchange": "exchange.delete",
  "Broker/DeclareQueue": "queue.declare",
  "Broker/DeleteQueue": "queue.delete",
  "Broker/PurgeQueue": "queue.purge",
  "Broker/Bind": "binding.add",
  "Broker/Unbind": "binding.remove",
  "Cluster/AddMember": "member.add",
  "Cluster/RemoveMember": "member.remove",
  "Cluster/TransferLeadership": "leadership.transfer",
  "Cluster/SetSettings": "settings.set",
  "Cluster/TriggerSnapshot": "snapshot.trigger",
  "Access/AddUser": "user.add",
  "Access/DeleteUser": "user.delete",
  "Access/ChangePassword": "user.password",
  "Access/SetUserTags": "user.tags",
  "Access/AddVhost": "vhost.add",
  "Access/DeleteVhost": "vhost.delete",
  "Access/SetPermissions": "permissions.set",
  "Access/ClearPermissions": "permissions.clear",
};

/** The resource an audited call acts on, for the audit line. */
function resourceOf(request: Record<string, unknown>): string {
  for (const key of ["name", "queue", "exchange", "id", "to", "user"]) {
    const v = request[key];
    if (typeof v === "string" && v !== "") return key === "queue" && typeof request.exchange === "string" ? `${request.exchange} -> ${v}` : v;
    if (typeof v === "number" && v !== 0) return `${key} ${v}`;
  }
  const p = request.permissions as Record<string, unknown> | undefined;
  if (p !== undefined && p !== null) return `${String(p.user)}@${String(p.vhost)}`;
  return "";
}

/** Successful logins are audited once per user, address and mechanism in this window, not per call. */
const AUTH_SUCCESS_AUDIT_MS = 60_000;
const MAX_REMEMBERED_LOGINS = 10_000;

/** What a stream's requests were allowed, under one version of users, vhosts and permissions. */
interface StreamDecisions {
  accessVersion: number;
  vhostAccess: boolean;
  exchanges: Set<string>;
}

const MAX_REMEMBERED_EXCHANGES = 64;

/** How often open streams are checked against deleted users. */
const REVOKE_CHECK_MS = 500;

export class AccessGate {
  private readonly recentLogins = new Map<string, number>();
  /** Open streams per user, ended when the user is deleted (RabbitMQ closes its connections). */
  private readonly streams = new Map<string, Set<grpc.ServerDuplexStream<unknown, unknown>>>();
  private seenAccessVersion = -1;
  private revokeTimer: NodeJS.Timeout | null = null;

  constructor(private readonly options: AccessGateOptions) {}

  /** Stops watching open streams. */
  close(): void {
    if (this.revokeTimer !== null) clearInterval(this.revokeTimer);
    this.revokeTimer = null;
  }

  private track(user: string, call: grpc.ServerDuplexStream<unknown, unknown>): void {
    let calls = this.streams.get(user);
    if (calls === undefined) {
      calls = new Set();
      this.streams.set(user, calls);
    }
    calls.add(call);
    const untrack = () => {
      calls.delete(call);
      if (calls.size === 0 && this.streams.get(user) === calls) this.streams.delete(user);
    };
    for (const event of ["finish", "close", "cancelled", "error"]) call.once(event, untrack);
    if (this.revokeTimer === null) {
      this.revokeTimer = setInterval(() => this.revokeDeleted(), REVOKE_CHECK_MS);
      this.revokeTimer.unref();
    }
  }

  /** Ends the open streams of users deleted since the last check (also checked every REVOKE_CHECK_MS). */
  revokeDeleted(): void {
    const view = this.options.view();
    if (view.accessVersion === this.seenAccessVersion) return;
    this.seenAccessVersion = view.accessVersion;
    for (const [user, calls] of this.streams) {
      if (view.user(user) !== undefined) continue;
      this.streams.delete(user);
      for (const call of calls) call.emit("error", toServiceError(new UnauthenticatedError(`user "${user}" was deleted`)));
      this.options.log.info({ event: "streams-revoked", user, streams: calls.size }, `ended ${calls.size} streams of deleted user ${user}`);
    }
  }

  /** The handlers of `service`, each behind the gate. */
  wrap(service: ServiceName, definition: grpc.ServiceDefinition, handlers: grpc.UntypedServiceImplementation): grpc.UntypedServiceImplementation {
    const out: grpc.UntypedServiceImplementation = {};
    for (const [method, handler] of Object.entries(handlers)) {
      const def = definition[method];
      if (def === undefined) throw new Error(`${service}.${method} is not in the service definition`);
      const name = `${service}/${method}`;
      if (def.requestStream && def.responseStream) out[method] = this.guardDuplex(name, handler as grpc.handleBidiStreamingCall<unknown, unknown>);
      else if (!def.requestStream && !def.responseStream) out[method] = this.guardUnary(name, handler as grpc.handleUnaryCall<unknown, unknown>);
      else throw new Error(`${name}: only unary and bidirectional calls are served`);
    }
    return out;
  }

  private guardUnary(name: string, handler: grpc.handleUnaryCall<unknown, unknown>): grpc.handleUnaryCall<unknown, unknown> {
    const audited = AUDITED[name];
    return (call, callback) => {
      if (call.request instanceof MalformedRequest) {
        callback(toServiceError(new InvalidRequestError(call.request.reason)));
        return;
      }
      this.admit(call, name).then(
        (access) => {
          try {
            this.check(access, name, call.request);
          } catch (err) {
            callback(toServiceError(err));
            return;
          }
          if (audited === undefined || this.options.port === "peer") {
            handler(call, callback);
            return;
          }
          const request = (call.request ?? {}) as Record<string, unknown>;
          handler(call, (err, value, trailer, flags) => {
            this.options.audit.write({
              event: audited,
              user: access.user,
              remote: access.remote,
              vhost: access.vhost,
              resource: resourceOf(request),
              result: err === null || err === undefined ? "ok" : "error",
              ...(err ? { reason: (err as Partial<grpc.ServiceError>).details ?? "" } : {}),
            });
            callback(err, value, trailer, flags);
          });
        },
        (err: unknown) => callback(toServiceError(err)),
      );
    };
  }

  private guardDuplex(name: string, handler: grpc.handleBidiStreamingCall<unknown, unknown>): grpc.handleBidiStreamingCall<unknown, unknown> {
    return (call) => {
      this.admit(call, name).then(
        (access) => {
          // Every request on the stream is checked before the handler sees it; the first one
          // refused ends the stream, as RabbitMQ closes a channel on a refused publish.
          let refused = false;
          const decisions: StreamDecisions = { accessVersion: -1, vhostAccess: false, exchanges: new Set() };
          const on = call.on.bind(call);
          const guarded = (event: string | symbol, listener: (...args: unknown[]) => void) => {
            if (event !== "data") return on(event, listener);
            return on("data", (request: unknown) => {
              if (refused) return;
              if (request instanceof MalformedRequest) {
                refused = true;
                call.emit("error", toServiceError(new InvalidRequestError(request.reason)));
                return;
              }
              try {
                if (!this.alreadyAllowed(access, name, request, decisions)) this.check(access, name, request);
              } catch (err) {
                refused = true;
                call.emit("error", toServiceError(err));
                return;
              }
              listener(request);
            });
          };
          call.on = guarded as typeof call.on;
          call.addListener = guarded as typeof call.addListener;
          if (access.user !== "") this.track(access.user, call);
          handler(call);
        },
        (err: unknown) => call.emit("error", toServiceError(err)),
      );
    };
  }

  /** Authenticates a call; on success its metadata names the user for a forwarded copy. */
  private async admit(call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>, name: string): Promise<CallAccess> {
    const { options } = this;
    const metadata = call.metadata;
    const remote = call.getPeer();
    const vhost = vhostOf(metadata);
    const claimedUser = metadata.get(AUTHENTICATED_USER_METADATA_KEY)[0];
    metadata.remove(AUTHENTICATED_USER_METADATA_KEY);
    let access: CallAccess;
    const preset = presetAccessOfCall.get(call);
    if (preset !== undefined) {
      access = preset;
    } else if (options.insecure) {
      access = { user: "", tags: ["administrator"], mechanism: "none", vhost, remote };
    } else {
      const cert = call.getAuthContext().sslPeerCertificate;
      const nodeId = nodeIdOfCertificate(cert);
      if (options.port === "peer") {
        if (nodeId === 0) {
          const reason = cert === undefined ? "no certificate signed by the cluster CA" : `the certificate of "${commonNameOfCertificate(cert)}" names no node`;
          options.log.warn({ event: "peer-call-refused", remote, method: name, reason }, `refused ${name} on the peer port from ${remote}: ${reason}`);
          options.audit.write({ event: "auth.failure", mechanism: "certificate", remote, reason: `peer port: ${reason}`, result: "denied" });
          throw new UnauthenticatedError(`the peer port serves only nodes of this cluster: ${reason}`);
        }
        access = typeof claimedUser === "string" && claimedUser !== "" ? this.forwardedUser(claimedUser, vhost, remote) : { user: "", tags: ["administrator"], mechanism: "node", vhost, remote };
      } else {
        const authorization = metadata.get("authorization")[0];
        if (nodeId !== 0 && authorization === undefined) {
          access = { user: "", tags: ["administrator"], mechanism: "node", vhost, remote };
        } else {
          try {
            const principal = await options.authenticator.authenticate({
              ...(typeof authorization === "string" ? { authorization } : {}),
              ...(cert !== undefined && nodeId === 0 ? { certificateUser: commonNameOfCertificate(cert) } : {}),
              remoteAddress: remote,
            });
            access = { user: principal.user, tags: principal.tags, mechanism: principal.mechanism, vhost, remote };
            this.auditLogin(access);
          } catch (err) {
            // A node that knows no user at all has not applied the log that holds them yet
            // (it is starting, or the bootstrap administrator is still to come): that is no
            // verdict on the caller's credentials.
            if (err instanceof AuthenticationError && err.failure === "unknown-user" && options.view().userCount === 0) {
              throw new NodeUnavailableError("this node knows no users yet (it is starting or catching up); retry");
            }
            if (err instanceof AuthenticationError) {
              options.audit.write({
                event: "auth.failure",
                ...(err.attemptedUser === undefined ? {} : { user: err.attemptedUser }),
                mechanism: typeof authorization === "string" ? "password" : "certificate",
                remote,
                reason: err.failure,
                result: "denied",
              });
              throw new UnauthenticatedError(err.message);
            }
            throw err;
          }
        }
      }
    }
    // A copy forwarded to the leader travels without the password, naming the user instead.
    metadata.remove("authorization");
    if (access.user !== "") metadata.set(AUTHENTICATED_USER_METADATA_KEY, access.user);
    accessOfCall.set(call, access);
    return access;
  }

  private forwardedUser(user: string, vhost: string, remote: string): CallAccess {
    const record = this.options.view().user(user);
    if (record === undefined) throw new UnauthenticatedError(`the forwarded call's user "${user}" no longer exists`);
    return { user, tags: record.tags, mechanism: "password", vhost, remote };
  }

  private auditLogin(access: CallAccess): void {
    const key = `${access.user}\u0000${access.mechanism}\u0000${access.remote.replace(/:\d+$/, "")}`;
    const now = Date.now();
    const last = this.recentLogins.get(key);
    if (last !== undefined && now - last < AUTH_SUCCESS_AUDIT_MS) return;
    if (this.recentLogins.size >= MAX_REMEMBERED_LOGINS) this.recentLogins.clear();
    this.recentLogins.set(key, now);
    this.options.audit.write({ event: "auth.success", user: access.user, mechanism: access.mechanism, remote: access.remote, result: "ok" });
  }

  /**
   * Whether a request on a stream needs no new check: what it asks was allowed on this stream
   * under the same users, vhosts and permissions (acks need vhost access only; a publish, write
   * on exchanges already allowed). Remembers what the full check allows.
   */
  private alreadyAllowed(access: CallAccess, name: string, request: unknown, decisions: StreamDecisions): boolean {
    if (access.mechanism === "none" || access.mechanism === "node") return true;
    const version = this.options.view().accessVersion;
    if (decisions.accessVersion !== version) {
      decisions.accessVersion = version;
      decisions.vhostAccess = false;
      decisions.exchanges.clear();
    }
    if (name === "Broker/Consume") {
      if ((request as raftmq.v1.ConsumeRequest).subscribe != null) return false;
      if (decisions.vhostAccess) return true;
      this.check(access, name, request);
      decisions.vhostAccess = true;
      return true;
    }
    if (name === "Broker/PublishStream") {
      const messages = (request as raftmq.v1.PublishRequest).messages ?? [];
      let known = decisions.exchanges.size > 0;
      for (let i = 0; known && i < messages.length; i++) {
        const m = messages[i];
        known = decisions.exchanges.has(m?.exchange ?? "") && (m?.properties?.userId ?? "") === "";
      }
      if (known) return true;
      this.check(access, name, request);
      if (decisions.exchanges.size < MAX_REMEMBERED_EXCHANGES) for (const m of messages) decisions.exchanges.add(m?.exchange ?? "");
      return true;
    }
    return false;
  }

  /** Throws AccessDeniedError (audited) unless `access` may make this request. */
  private check(access: CallAccess, name: string, request: unknown): void {
    if (access.mechanism === "none" || access.mechanism === "node") return;
    const path = `/raftmq.v1.${name}`;
    try {
      authorize({ user: access.user, tags: access.tags, mechanism: access.mechanism }, access.vhost, requirementsFor(path, request), this.options.view());
    } catch (err) {
      if (err instanceof PermissionDeniedError) {
        this.options.audit.write({ event: "access.denied", user: access.user, remote: access.remote, vhost: access.vhost, resource: name.replace("/", "."), reason: err.message, result: "denied" });
        throw new AccessDeniedError(err.message);
      }
      throw err;
    }
    if (name === "Broker/Publish" || name === "Broker/PublishStream") checkUserIds(access.user, request as raftmq.v1.PublishRequest);
  }
}

/** A message's user-id property must name the publishing user, as in RabbitMQ. */
function checkUserIds(user: string, request: raftmq.v1.PublishRequest): void {
  for (const m of request.messages ?? []) {
    const claimed = m?.properties?.userId ?? "";
    if (claimed !== "" && claimed !== user) {
      throw new CommandFailedError({ code: "PRECONDITION_FAILED", message: `user_id property set to "${claimed}" but the authenticated user is "${user}"` });
    }
  }
}
