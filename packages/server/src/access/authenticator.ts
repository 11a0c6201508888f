// Who is calling: checks the credentials of a call (Basic password, or the user named by a
// verified client certificate) against the replicated user records, and answers a Principal or
// one uniform AuthenticationError.
import type { AccessView, UserRecord } from "./access-view.ts";
import { AuthenticationError, type AuthenticationFailure, AuthenticationRateLimitedError } from "./access-errors.ts";
import { parseBasicAuthorization } from "./basic-authorization.ts";
import { DEFAULT_FAILURE_LIMITS, FailureLimiter } from "./failure-limiter.ts";
import { unmatchableHash, verifyPassword } from "./password-hash.ts";
import { isLoopbackAddress, peerIp } from "./peer-address.ts";
import { DEFAULT_VERIFICATION_CACHE_SIZE, VerificationCache } from "./verification-cache.ts";

export { AUTHENTICATION_FAILED_MESSAGE, AuthenticationError, type AuthenticationFailure, AuthenticationRateLimitedError } from "./access-errors.ts";
export { type BasicCredentials, parseBasicAuthorization } from "./basic-authorization.ts";
export { isLoopbackAddress, peerIp } from "./peer-address.ts";

export type Mechanism = "password" | "certificate";

export interface Principal {
  user: string;
  tags: readonly string[];
  mechanism: Mechanism;
}

export interface AuthenticationInput {
  /** The `authorization` metadata value: `Basic base64(username:password)`. */
  authorization?: string;
  /** The subject CN of a client certificate the TLS layer verified, if any. */
  certificateUser?: string;
  /** `call.getPeer()`. */
  remoteAddress: string;
}

export type PasswordVerifier = (password: string, encoded: string) => Promise<boolean>;

export interface AuthenticatorOptions {
  /** The current access state; called on every check, so changes apply to the next call. */
  view: () => AccessView;
  /** Users who may log in only from the loopback interface (RabbitMQ's loopback_users). */
  loopbackOnlyUsers?: readonly string[];
  clock?: () => number;
  /** Failures from one IP within `failureWindowMs` after which that IP is refused for a window. */
  failureLimit?: number;
  failureWindowMs?: number;
  maxTrackedAddresses?: number;
  /** Successful (user, password) checks remembered, least recently used forgotten first. */
  verificationCacheSize?: number;
  /** The scrypt check; replaceable so tests can count calls. */
  verifyPassword?: PasswordVerifier;
  /** Password checks (scrypt) running at once; the rest wait, up to maxWaitingHashes (default 2 and 64). */
  maxConcurrentHashes?: number;
  maxWaitingHashes?: number;
}

export const DEFAULT_LOOPBACK_ONLY_USERS: readonly string[] = ["guest"];

/** Peers whose address cannot be parsed share buckets keyed by at most this much of the string. */
const MAX_UNPARSED_PEER_KEY = 128;

export class Authenticator {
  private readonly view: () => AccessView;
  private readonly loopbackOnly: ReadonlySet<string>;
  private readonly verify: PasswordVerifier;
  private readonly limiter: FailureLimiter;
  private readonly cache: VerificationCache;
  /** Verified against for users who do not exist, so their logins cost the same scrypt. */
  private readonly decoyHash = unmatchableHash();

  constructor(options: AuthenticatorOptions) {
    this.view = options.view;
    this.loopbackOnly = new Set(options.loopbackOnlyUsers ?? DEFAULT_LOOPBACK_ONLY_USERS);
    const verify = options.verifyPassword ?? verifyPassword;
    // scrypt runs on libuv's thread pool, which the disk (LevelDB) shares: a flood of logins must
    // not hold every thread, or the log's writes would wait behind them.
    const gate = new ConcurrencyGate(options.maxConcurrentHashes ?? DEFAULT_MAX_CONCURRENT_HASHES, options.maxWaitingHashes ?? DEFAULT_MAX_WAITING_HASHES);
    this.verify = (password, hash) => gate.run(() => verify(password, hash));
    this.limiter = new FailureLimiter(
      {
        failureLimit: options.failureLimit ?? DEFAULT_FAILURE_LIMITS.failureLimit,
        windowMs: options.failureWindowMs ?? DEFAULT_FAILURE_LIMITS.windowMs,
        maxTrackedAddresses: options.maxTrackedAddresses ?? DEFAULT_FAILURE_LIMITS.maxTrackedAddresses,
      },
      options.clock ?? Date.now,
    );
    this.cache = new VerificationCache(options.verificationCacheSize ?? DEFAULT_VERIFICATION_CACHE_SIZE);
  }

  /**
   * The caller's identity. A password, when given, is the only credential checked (a bad password
   * does not fall back to the certificate). Throws AuthenticationRateLimitedError, without
   * checking anything, while the caller's IP is blocked; otherwise AuthenticationError with the
   * same message whatever went wrong.
   */
  async authenticate(input: AuthenticationInput): Promise<Principal> {
    const ip = peerIp(input.remoteAddress) ?? String(input.remoteAddress).slice(0, MAX_UNPARSED_PEER_KEY);
    const wait = this.limiter.blockedFor(ip);
    if (wait > 0) throw new AuthenticationRateLimitedError(wait);
    try {
      return await this.check(input);
    } catch (err) {
      // A node that knows no users yet (starting, or before the bootstrap) cannot judge the
      // caller; a client retrying then must not find itself blocked once the users are there.
      const unjudged = err instanceof AuthenticationError && err.failure === "unknown-user" && this.view().userCount === 0;
      if (err instanceof AuthenticationError && !unjudged) this.limiter.recordFailure(ip);
      throw err;
    }
  }

  /** Entries in the verification cache (for metrics and tests). */
  get cachedVerifications(): number {
    return this.cache.size;
  }

  /** Addresses with recent failures (for metrics and tests). */
  get trackedAddresses(): number {
    return this.limiter.trackedAddresses;
  }

  private async check(input: AuthenticationInput): Promise<Principal> {
    const fromLoopback = isLoopbackAddress(input.remoteAddress);
    if (input.authorization !== undefined && input.authorization !== "") {
      const credentials = parseBasicAuthorization(input.authorization);
      if (credentials === undefined) throw new AuthenticationError("malformed-authorization");
      return this.checkPassword(credentials.username, credentials.password, fromLoopback);
    }
    if (input.certificateUser !== undefined && input.certificateUser !== "") {
      const name = input.certificateUser;
      const record = this.view().user(name);
      if (record === undefined) throw new AuthenticationError("unknown-user", name);
      if (this.loopbackOnly.has(name) && !fromLoopback) throw new AuthenticationError("loopback-only-user", name);
      return principal(record, "certificate");
    }
    throw new AuthenticationError("no-credentials");
  }

  private async checkPassword(name: string, password: string, fromLoopback: boolean): Promise<Principal> {
    const record = this.view().user(name);
    const refusal = refusalBeforeVerifying(record, password, this.loopbackOnly.has(name), fromLoopback);
    if (refusal !== undefined || record === undefined) {
      // Spend the work a real check costs, so the answer's timing does not say why it failed.
      await this.verify(password === "" ? "\u0000" : password, this.decoyHash);
      throw new AuthenticationError(refusal ?? "unknown-user", name);
    }
    if (this.cache.matches(name, password, record.passwordHash)) return principal(record, "password");
    if (!(await this.verify(password, record.passwordHash))) throw new AuthenticationError("wrong-password", name);
    // The records may have changed while scrypt ran: the answer holds only for the hash checked.
    const current = this.view().user(name);
    if (current === undefined || current.passwordHash !== record.passwordHash) throw new AuthenticationError("user-changed-during-check", name);
    this.cache.remember(name, password, record.passwordHash);
    return principal(current, "password");
  }
}

function refusalBeforeVerifying(record: UserRecord | undefined, password: string, loopbackOnly: boolean, fromLoopback: boolean): AuthenticationFailure | undefined {
  if (record === undefined) return "unknown-user";
  if (record.passwordHash === "") return "password-login-disabled";
  if (password === "") return "wrong-password";
  if (loopbackOnly && !fromLoopback) return "loopback-only-user";
  return undefined;
}

function principal(record: UserRecord, mechanism: Mechanism): Principal {
  return { user: record.name, tags: Object.freeze([...record.tags]), mechanism };
}

const DEFAULT_MAX_CONCURRENT_HASHES = 2;
const DEFAULT_MAX_WAITING_HASHES = 64;

/** Runs at most `limit` tasks at once; past `maxWaiting` queued ones, a new task is refused. */
class ConcurrencyGate {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    private readonly limit: number,
    private readonly maxWaiting: number,
  ) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.running >= this.limit) {
      if (this.waiting.length >= this.maxWaiting) throw new AuthenticationError("busy");
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.running++;
    }
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next !== undefined) next();
      else this.running--;
    }
  }
}
