// Remembers which (user, password) pairs verified against which stored hash, so a client that
// authenticates every call pays for scrypt once, not on every call. An entry is used only while
// the user's current stored hash is the one it was verified against: a password change or a
// deleted user makes it useless at once, without any invalidation message.
import { createHmac, randomBytes } from "node:crypto";

export const DEFAULT_VERIFICATION_CACHE_SIZE = 10_000;

export class VerificationCache {
  /**
   * Keys are HMAC-SHA256 digests under a key that exists only in this process, so a memory dump
   * does not hold fast, unsalted password hashes to brute-force offline.
   */
  private readonly secret = randomBytes(32);
  /** key → the stored hash the password matched; Map order is recency order. */
  private readonly entries = new Map<string, string>();

  constructor(readonly maxEntries: number = DEFAULT_VERIFICATION_CACHE_SIZE) {
    if (!Number.isSafeInteger(maxEntries) || maxEntries <= 0) throw new RangeError(`maxEntries must be a positive integer, got ${maxEntries}`);
  }

  /** True when this password was verified against exactly `storedHash` before. */
  matches(user: string, password: string, storedHash: string): boolean {
    const key = this.key(user, password);
    const hash = this.entries.get(key);
    if (hash === undefined) return false;
    if (hash !== storedHash) {
      this.entries.delete(key);
      return false;
    }
    this.entries.delete(key);
    this.entries.set(key, hash);
    return true;
  }

  /** Records a successful verification; only ever called after scrypt said yes. */
  remember(user: string, password: string, storedHash: string): void {
    const key = this.key(user, password);
    this.entries.delete(key);
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done !== true) this.entries.delete(oldest.value);
    }
    this.entries.set(key, storedHash);
  }

  clear(): void {
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }

  private key(user: string, password: string): string {
    // The user name is length-prefixed so ("a:b", "c") and ("a", "b:c") cannot collide.
    return createHmac("sha256", this.secret).update(`${user.length}:${user}\u0000${password}`).digest("base64");
  }
}
