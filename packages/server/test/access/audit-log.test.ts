import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { AUDIT_DROPPED_EVENT, AUDIT_FIELDS, type AuditEvent, AuditLog } from "../../src/access/audit-log.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempFile(): string {
  const dir = mkdtempSync(join(tmpdir(), "raftmq-audit-"));
  dirs.push(dir);
  return join(dir, "audit.log");
}

function lines(path: string): Record<string, unknown>[] {
  return readFileSync(path, "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

const T0 = Date.UTC(2025, 0, 2, 3, 4, 5, 678);

describe("AuditLog", () => {
  it("appends one JSON object per line to a file created with mode 0600", async () => {
    const path = tempFile();
    const log = new AuditLog({ node: 3, file: path, clock: () => T0 });
    log.write({ event: "auth.success", user: "alice", mechanism: "password", remote: "10.0.0.1:5000", result: "ok" });
    log.write({ event: "queue.declare", user: "alice", vhost: "/", resource: "queue 'q'", result: "error", reason: "in use\nby another" });
    await log.close();
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readFileSync(path, "utf8").split("\n")).toHaveLength(3); // two lines and the final newline
    expect(lines(path)).toEqual([
      { ts: "2025-01-02T03:04:05.678Z", node: 3, event: "auth.success", user: "alice", mechanism: "password", remote: "10.0.0.1:5000", result: "ok" },
      { ts: "2025-01-02T03:04:05.678Z", node: 3, event: "queue.declare", user: "alice", vhost: "/", resource: "queue 'q'", result: "error", reason: "in use\nby another" },
    ]);
    const documented = AUDIT_FIELDS.map((f) => f.name);
    for (const l of lines(path)) for (const k of Object.keys(l)) expect(documented).toContain(k);
    // Reopening appends.
    const again = new AuditLog({ node: 3, file: path });
    again.write({ event: "snapshot.trigger", user: "root", result: "ok" });
    await again.close();
    expect(lines(path)).toHaveLength(3);
  });

  it("never writes a password or authorization, even when a caller passes one through a cast", async () => {
    const out: string[] = [];
    const log = new AuditLog({ node: 1, sink: (l) => out.push(l) });
    const sneaky = {
      event: "user.add",
      user: "root",
      resource: "bob",
      result: "ok",
      password: "hunter2",
      authorization: "Basic Ym9iOmh1bnRlcjI=",
      passwordHash: "scrypt$1$2$3$x$y",
      newPassword: "hunter2",
      detail: { tags: "administrator", password: "hunter2", Password_Confirm: "hunter2", authorizationHeader: "Basic x", apiToken: "t", nested: { password: "hunter2" } },
    } as unknown as AuditEvent;
    log.write(sneaky);
    expect(out).toHaveLength(1);
    const line = out[0] ?? "";
    expect(line).not.toMatch(/hunter2|Ym9i|scrypt|Basic|password|authorization|token/i);
    expect(JSON.parse(line)).toMatchObject({ event: "user.add", user: "root", resource: "bob", result: "ok", detail: { tags: "administrator" } });
  });

  it("keeps strings in bounds and non-string fields out", () => {
    const out: string[] = [];
    const log = new AuditLog({ node: 1, sink: (l) => out.push(l) });
    log.write({ event: "access.denied", user: "u".repeat(5000), reason: "r", result: "denied", vhost: 42 } as unknown as AuditEvent);
    const parsed = JSON.parse(out[0] ?? "") as Record<string, unknown>;
    expect(String(parsed.user).length).toBeLessThanOrEqual(1025);
    expect(parsed.vhost).toBeUndefined();
  });

  it("drops lines past the buffer bound instead of growing, counts them, and says so in the log", async () => {
    const path = tempFile();
    const log = new AuditLog({ node: 1, file: path, maxBufferedBytes: 2_000 });
    for (let i = 0; i < 1_000; i++) log.write({ event: "auth.failure", remote: `10.0.0.1:${i}`, result: "denied" });
    const dropped = log.dropped;
    expect(dropped).toBeGreaterThan(900);
    while (log.bufferedBytes > 0) await new Promise((r) => setTimeout(r, 5)); // let the disk catch up
    log.write({ event: "auth.success", user: "late", remote: "x", result: "ok" });
    await log.close();
    const written = lines(path);
    expect(written).toHaveLength(1_000 - dropped + 2);
    const marker = written.find((l) => l.event === AUDIT_DROPPED_EVENT);
    expect(marker?.detail).toEqual({ lines: dropped });
    expect(written.at(-1)?.user).toBe("late");
  });

  it("survives a sink that throws, counting the line as dropped and telling onError", () => {
    const errors: Error[] = [];
    const log = new AuditLog({
      node: 1,
      sink: () => {
        throw new Error("sink down");
      },
      onError: (e) => errors.push(e),
    });
    expect(() => log.write({ event: "vhost.add", vhost: "v", result: "ok" })).not.toThrow();
    expect(log.dropped).toBe(1);
    expect(errors.map((e) => e.message)).toEqual(["sink down"]);
  });

  it("fails at construction on a path it cannot open, and drops events after close", async () => {
    expect(() => new AuditLog({ node: 1, file: join(tempFile(), "no", "such", "dir") })).toThrow();
    const out: string[] = [];
    const log = new AuditLog({ node: 1, sink: (l) => out.push(l) });
    await log.close();
    log.write({ event: "vhost.add", vhost: "v", result: "ok" });
    expect(out).toEqual([]);
    expect(log.dropped).toBe(1);
  });

  it("documents every field it writes", () => {
    expect(AUDIT_FIELDS.map((f) => f.name)).toEqual(["ts", "node", "event", "user", "mechanism", "remote", "vhost", "resource", "result", "reason", "detail"]);
    for (const f of AUDIT_FIELDS) expect(f.meaning.length, f.name).toBeGreaterThan(10);
  });
});
