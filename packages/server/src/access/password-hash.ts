// Password hashes as stored in the replicated user records: scrypt with its parameters written
// next to the salt and the key, so a hash made with other parameters still verifies after a
// change of defaults.
import { randomBytes, scrypt, timingSafeEqual } from "node:crypto";

/** Cost parameters of new hashes: 2^15 × 8 × 128 bytes = 32 MiB of memory per hash. */
export const SCRYPT_N = 2 ** 15;
export const SCRYPT_R = 8;
export const SCRYPT_P = 1;
export const SALT_BYTES = 16;
export const KEY_BYTES = 32;

/**
 * Bounds on parameters read from a stored hash: a stored hash is replicated data, and one with
 * absurd parameters must not make each login take seconds or gigabytes.
 */
const LIMITS = { minLogN: 10, maxLogN: 20, maxR: 32, maxP: 16, minSalt: 8, maxSalt: 64, minKey: 16, maxKey: 64, maxMemBytes: 256 * 1024 * 1024 } as const;

const PREFIX = "scrypt";
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

export interface ScryptParams {
  n: number;
  r: number;
  p: number;
  salt: Buffer;
  key: Buffer;
}

/** Hashes a non-empty password; an empty password means "no password login" and is refused. */
export async function hashPassword(password: string): Promise<string> {
  if (typeof password !== "string" || password === "") throw new RangeError("refusing to hash an empty password: an empty password turns password login off");
  const salt = randomBytes(SALT_BYTES);
  const key = await deriveKey(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, KEY_BYTES);
  return [PREFIX, SCRYPT_N, SCRYPT_R, SCRYPT_P, salt.toString("base64"), key.toString("base64")].join("$");
}

/** True when `password` matches `encoded`. False for "" (no password login), malformed hashes and "". */
export async function verifyPassword(password: string, encoded: string): Promise<boolean> {
  if (typeof password !== "string" || password === "") return false;
  const params = parsePasswordHash(encoded);
  if (params === undefined) return false;
  const key = await deriveKey(password, params.salt, params.n, params.r, params.p, params.key.length);
  return timingSafeEqual(key, params.key);
}

/** The parts of an encoded hash, or undefined when it is malformed or out of bounds. */
export function parsePasswordHash(encoded: string): ScryptParams | undefined {
  if (typeof encoded !== "string" || encoded === "") return undefined;
  const parts = encoded.split("$");
  if (parts.length !== 6 || parts[0] !== PREFIX) return undefined;
  const n = decimal(parts[1]);
  const r = decimal(parts[2]);
  const p = decimal(parts[3]);
  const salt = base64(parts[4]);
  const key = base64(parts[5]);
  if (n === undefined || r === undefined || p === undefined || salt === undefined || key === undefined) return undefined;
  const logN = Math.log2(n);
  if (!Number.isInteger(logN) || logN < LIMITS.minLogN || logN > LIMITS.maxLogN) return undefined;
  if (r < 1 || r > LIMITS.maxR || p < 1 || p > LIMITS.maxP) return undefined;
  if (memoryFor(n, r, p) > LIMITS.maxMemBytes) return undefined;
  if (salt.length < LIMITS.minSalt || salt.length > LIMITS.maxSalt) return undefined;
  if (key.length < LIMITS.minKey || key.length > LIMITS.maxKey) return undefined;
  return { n, r, p, salt, key };
}

/**
 * A hash in the stored format that no password matches (its key is random), for spending the
 * same scrypt work on a login whose user does not exist.
 */
export function unmatchableHash(): string {
  return [PREFIX, SCRYPT_N, SCRYPT_R, SCRYPT_P, randomBytes(SALT_BYTES).toString("base64"), randomBytes(KEY_BYTES).toString("base64")].join("$");
}

/** scrypt's working memory (128·N·r for the big array, 128·r·p for the blocks), with headroom. */
function memoryFor(n: number, r: number, p: number): number {
  return 128 * r * (n + p + 2);
}

function deriveKey(password: string, salt: Buffer, n: number, r: number, p: number, keyLength: number): Promise<Buffer> {
  // Node's default maxmem (32 MiB) is just under what N=2^15, r=8 needs; allow what the
  // parameters need plus a margin instead of raising it globally.
  const maxmem = memoryFor(n, r, p) + 1024 * 1024;
  return new Promise((resolve, reject) => {
    scrypt(password.normalize("NFC"), salt, keyLength, { N: n, r, p, maxmem }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

function decimal(s: string | undefined): number | undefined {
  if (s === undefined || !/^[1-9][0-9]{0,9}$/.test(s)) return undefined;
  return Number(s);
}

function base64(s: string | undefined): Buffer | undefined {
  if (s === undefined || !BASE64.test(s)) return undefined;
  const b = Buffer.from(s, "base64");
  // Buffer.from skips what it cannot decode; a string that does not round-trip is malformed.
  return b.toString("base64") === s ? b : undefined;
}
