// The security building blocks the node's front ends call: who is calling (Authenticator), what
// each RPC needs (PERMISSION_TABLE, requirementsFor, authorize), and the audit trail (AuditLog).
export type { AccessView, PermissionRecord, UserRecord } from "./access-view.ts";
export {
  AUTHENTICATION_FAILED_MESSAGE,
  AuthenticationError,
  type AuthenticationFailure,
  AuthenticationRateLimitedError,
  type DenialReason,
  PermissionDeniedError,
  UnmappedMethodError,
} from "./access-errors.ts";
export { hashPassword, parsePasswordHash, verifyPassword } from "./password-hash.ts";
export {
  type AuthenticationInput,
  Authenticator,
  type AuthenticatorOptions,
  DEFAULT_LOOPBACK_ONLY_USERS,
  type Mechanism,
  type PasswordVerifier,
  type Principal,
} from "./authenticator.ts";
export { type BasicCredentials, parseBasicAuthorization } from "./basic-authorization.ts";
export { isLoopbackAddress, peerIp } from "./peer-address.ts";
export { PatternMatcher, patternError } from "./permission-patterns.ts";
export {
  authorize,
  DEFAULT_EXCHANGE_PERMISSION_NAME,
  PERMISSION_TABLE,
  type Permission,
  type PermissionRow,
  permissionRow,
  permissionTableMarkdown,
  type Requirement,
  type ResolvedRequirement,
  type ResourceKind,
  requirementsFor,
  SERVER_NAMED_QUEUE_PREFIX,
  type ServiceName,
  type Tag,
} from "./permission-table.ts";
export { AUDIT_FIELDS, type AuditDetail, type AuditEvent, type AuditEventName, AuditLog, type AuditLogOptions, type AuditResult } from "./audit-log.ts";
