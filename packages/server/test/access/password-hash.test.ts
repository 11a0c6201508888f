import { describe, expect, it } from "vitest";
import { hashPassword, KEY_BYTES, parsePasswordHash, SALT_BYTES, SCRYPT_N, SCRYPT_P, SCRYPT_R, verifyPassword } from "../../src/access/password-hash.ts";

describe("password hashes (scrypt, self-describing)", () => {
  it("round-trips: the password verifies, another does not", async () => {
    const encoded = await hashPassword("correct horse");
    expect(await verifyPassword("correct horse", encoded)).toBe(true);
    expect(await verifyPassword("correct horsE", encoded)).toBe(false);
    expect(await verifyPassword("", encoded)).toBe(false);
  });

  it("encodes scrypt$N$r$p$salt$hash with N=2^15, r=8, p=1, a 16-byte salt and a 32-byte key", async () => {
    const encoded = await hashPassword("pw");
    const parts = encoded.split("$");
    expect(parts.slice(0, 4)).toEqual(["scrypt", String(SCRYPT_N), String(SCRYPT_R), String(SCRYPT_P)]);
    expect([SCRYPT_N, SCRYPT_R, SCRYPT_P]).toEqual([2 ** 15, 8, 1]);
    const parsed = parsePasswordHash(encoded);
    expect(parsed?.salt.length).toBe(SALT_BYTES);
    expect(parsed?.key.length).toBe(KEY_BYTES);
    expect([SALT_BYTES, KEY_BYTES]).toEqual([16, 32]);
  });

  it("salts: the same password hashes differently each time", async () => {
    const [a, b] = await Promise.all([hashPassword("same"), hashPassword("same")]);
    expect(a).not.toBe(b);
    expect(await verifyPassword("same", b)).toBe(true);
  });

  it("verifies hashes made with other (cheaper) parameters, read from the string", async () => {
    const encoded = await hashPassword("pw");
    const parsed = parsePasswordHash(encoded);
    if (parsed === undefined) throw new Error("unparsed");
    const { scryptSync } = await import("node:crypto");
    const key = scryptSync("pw", parsed.salt, 32, { N: 1024, r: 8, p: 1 });
    const cheap = `scrypt$1024$8$1$${parsed.salt.toString("base64")}$${key.toString("base64")}`;
    expect(await verifyPassword("pw", cheap)).toBe(true);
    expect(await verifyPassword("px", cheap)).toBe(false);
  });

  it("refuses to hash an empty password: empty means no password login", async () => {
    await expect(hashPassword("")).rejects.toThrow(/empty password/);
  });

  it("answers false, without throwing, for an empty or malformed stored hash", async () => {
    const good = await hashPassword("pw");
    const [, n, r, p, salt, key] = good.split("$");
    const malformed = [
      "",
      "plain",
      `bcrypt$${n}$${r}$${p}$${salt}$${key}`,
      `scrypt$${n}$${r}$${p}$${salt}`,
      `scrypt$${n}$${r}$${p}$${salt}$${key}$extra`,
      `scrypt$1000$${r}$${p}$${salt}$${key}`, // N not a power of two
      `scrypt$${2 ** 30}$${r}$${p}$${salt}$${key}`, // N beyond the bound: a stored hash must not cost gigabytes
      `scrypt$${n}$0$${p}$${salt}$${key}`,
      `scrypt$${n}$${r}$${p}$!!!!$${key}`,
      `scrypt$${n}$${r}$${p}$${salt}$`,
      `scrypt$0${n}$${r}$${p}$${salt}$${key}`,
    ];
    for (const m of malformed) {
      expect(parsePasswordHash(m), m).toBeUndefined();
      expect(await verifyPassword("pw", m), m).toBe(false);
    }
    expect(parsePasswordHash(good)).toBeDefined();
  });
});
