// Typed failures of authentication and authorization. Each maps to one gRPC status, named on the
// class; grpc-status.ts is where that mapping is done.

/** The one message for every failed login, so a caller cannot learn whether a user exists. */
export const AUTHENTICATION_FAILED_MESSAGE = "authentication failed: unknown user or wrong password";

/**
 * Why a login failed, for the audit log and the node's own logs only: the message sent to the
 * client is the same for all of them.
 */
export type AuthenticationFailure =
  | "no-credentials"
  | "malformed-authorization"
  | "unknown-user"
  | "wrong-password"
  | "password-login-disabled"
  | "loopback-only-user"
  | "user-changed-during-check"
  | "rate-limited"
  | "busy";

/** gRPC UNAUTHENTICATED. Unknown user, wrong password, no or malformed credentials, refused origin. */
export class AuthenticationError extends Error {
  override name = "AuthenticationError";
  constructor(
    readonly failure: AuthenticationFailure,
    /** The user name the client gave, when it gave one; never sent back to the client. */
    readonly attemptedUser?: string,
    message: string = AUTHENTICATION_FAILED_MESSAGE,
  ) {
    super(message);
  }
}

/**
 * gRPC UNAUTHENTICATED (not RESOURCE_EXHAUSTED: the refusal is about the caller's credentials
 * history, and clients should not treat it as a retryable server overload). The address made too
 * many failed attempts; nothing was checked. `retryAfterMs` says when the address is let in again.
 */
export class AuthenticationRateLimitedError extends AuthenticationError {
  override name = "AuthenticationRateLimitedError";
  constructor(readonly retryAfterMs: number) {
    super("rate-limited", undefined, "too many failed attempts from this address; retry later");
  }
}

/** Why a call was refused, for the audit log and for tests; the message says it to a person. */
export type DenialReason =
  | { kind: "vhost"; vhost: string; vhostExists: boolean }
  | { kind: "tag"; anyOf: readonly string[]; action: string }
  | { kind: "permission"; permission: "configure" | "write" | "read"; resource: "exchange" | "queue"; name: string; vhost: string }
  | { kind: "user-gone" };

/** gRPC PERMISSION_DENIED. The user is authenticated but may not make this call. */
export class PermissionDeniedError extends Error {
  override name = "PermissionDeniedError";
  constructor(
    readonly user: string,
    readonly reason: DenialReason,
  ) {
    super(denialMessage(user, reason));
  }
}

/**
 * gRPC UNIMPLEMENTED. The method has no row in the permission table, so it is refused: a new RPC
 * must be given its requirements before anyone can call it.
 */
export class UnmappedMethodError extends Error {
  override name = "UnmappedMethodError";
  constructor(readonly method: string) {
    super(`method ${method} has no row in the permission table; refused`);
  }
}

function denialMessage(user: string, reason: DenialReason): string {
  switch (reason.kind) {
    case "vhost":
      return reason.vhostExists
        ? `access to vhost '${reason.vhost}' refused for user '${user}'`
        : `access to vhost '${reason.vhost}' refused for user '${user}': the vhost does not exist`;
    case "tag":
      return `user '${user}' lacks the ${reason.anyOf.join(" or ")} tag needed for ${reason.action}`;
    case "permission":
      return `access to ${reason.resource} '${reason.name}' in vhost '${reason.vhost}' refused for user '${user}': ${reason.permission} permission needed`;
    case "user-gone":
      return `user '${user}' no longer exists`;
    default: {
      const never: never = reason;
      return String(never);
    }
  }
}
