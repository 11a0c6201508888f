// raftmqctl's security options and access commands as a user meets them, with no server: the help
// tells each option and its variable, mistakes are caught before anything is sent, and a password
// never shows up in any output.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePortRange, killAll, run } from "./cli-process.ts";

const dir = mkdtempSync(join(tmpdir(), "raftmqctl-access-"));
let unreachable = "";

beforeAll(async () => {
  unreachable = `127.0.0.1:${await freePortRange(1)}`;
});

afterAll(async () => {
  await killAll();
  rmSync(dir, { recursive: true, force: true });
});

const flat = (text: string) => text.replace(/\s+/g, " ");

describe("raftmqctl --help", () => {
  it("names every security option with its environment variable and default", async () => {
    const r = await run("raftmqctl", ["--help"]);
    expect(r.code).toBe(0);
    const help = flat(r.stdout);
    for (const [option, env] of [
      ["--username <name>", "RAFTMQ_USERNAME"],
      ["--password <password>", "RAFTMQ_PASSWORD"],
      ["--password-file <path>", "RAFTMQ_PASSWORD_FILE"],
      ["--vhost <name>", "RAFTMQ_VHOST"],
      ["--tls-ca-file <path>", "RAFTMQ_TLS_CA_FILE"],
      ["--tls-cert-file <path>", "RAFTMQ_TLS_CERT_FILE"],
      ["--tls-key-file <path>", "RAFTMQ_TLS_KEY_FILE"],
      ["--tls-server-name <name>", "RAFTMQ_TLS_SERVER_NAME"],
    ]) {
      expect(help).toContain(option);
      expect(help).toContain(`env: ${env})`);
    }
    expect(help).toContain('(default: "guest", env: RAFTMQ_USERNAME)');
    expect(help).toContain('(default: "/", env: RAFTMQ_VHOST)');
    expect(help).toContain('"guest" when that is "guest" and none is given');
    expect(help).toContain("without it, connections are plaintext");
    expect(help).toContain("Global options go before the command");
    for (const command of ["user", "vhost", "permissions", "whoami"]) expect(help).toMatch(new RegExp(` ${command}\\b`));
  });

  it("each access command documents its options, and shows the global ones", async () => {
    const add = flat((await run("raftmqctl", ["user", "add", "--help"])).stdout);
    for (const text of ["--password-file <path>", "--password <password>", "--certificate-only", "--tags <list>", "asked for twice without echo", "Global Options:", "--tls-ca-file"]) {
      expect(add).toContain(text);
    }
    const set = flat((await run("raftmqctl", ["permissions", "set", "--help"])).stdout);
    for (const text of ["<user>", "--vhost <name>", "--configure <regex>", "--write <regex>", "--read <regex>", "the global --vhost"]) expect(set).toContain(text);
    const list = flat((await run("raftmqctl", ["permissions", "list", "--help"])).stdout);
    for (const text of ["--user <name>", "--vhost <name>", "--json"]) expect(list).toContain(text);
  });
});

describe("raftmqctl refuses before sending anything", () => {
  const ctl = (args: string[], env: Record<string, string> = {}, input?: string) => run("raftmqctl", ["--addresses", unreachable, "--timeout-ms", "500", ...args], { env, input });

  it("a user other than guest without a password", async () => {
    const r = await ctl(["--username", "bob", "whoami"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('raftmqctl: no password for user "bob"');
    expect(r.stderr).not.toContain("cannot reach");
  });

  it("TLS files without a CA, and both kinds of password", async () => {
    const cert = await ctl(["--tls-cert-file", "c.crt", "--tls-key-file", "c.key", "status"]);
    expect(cert.code).toBe(1);
    expect(cert.stderr).toContain("--tls-cert-file needs --tls-ca-file");
    const both = await ctl(["--password-file", "pw", "status"], { RAFTMQ_PASSWORD: "x" });
    expect(both.code).toBe(1);
    expect(both.stderr).toContain("not both");
  });

  it("a global option after the command", async () => {
    const r = await ctl(["status", "--vhost", "prod"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("unknown option '--vhost'");
  });

  it("a bad pattern", async () => {
    const r = await ctl(["permissions", "set", "bob", "--configure", "(", "--write", "", "--read", ""]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('--configure "(" is not a regular expression');
  });
});

describe("passwords are never shown", () => {
  const SECRET = "Hunter2-do-not-print";

  it("neither the caller's from a file nor a new user's from stdin or a file, even when the call fails", async () => {
    const callerFile = join(dir, "caller-pw");
    writeFileSync(callerFile, `${SECRET}-caller\n`, { mode: 0o600 });
    const newFile = join(dir, "new-pw");
    writeFileSync(newFile, `${SECRET}-file\n`, { mode: 0o600 });
    const runs = [
      await run("raftmqctl", ["--addresses", unreachable, "--timeout-ms", "500", "--username", "admin", "--password-file", callerFile, "user", "add", "alice"], { input: `${SECRET}-stdin\n` }),
      await run("raftmqctl", ["--addresses", unreachable, "--timeout-ms", "500", "user", "password", "alice", "--password-file", newFile]),
      await run("raftmqctl", ["--addresses", unreachable, "--timeout-ms", "500", "user", "add", "alice"], { env: { RAFTMQ_USERNAME: "admin", RAFTMQ_PASSWORD: `${SECRET}-env` }, input: `${SECRET}-stdin\n` }),
    ];
    for (const r of runs) {
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("cannot reach the cluster");
      expect(`${r.stdout}${r.stderr}`).not.toContain(SECRET);
    }
  });

  it("an empty stdin is no password", async () => {
    const r = await run("raftmqctl", ["--addresses", unreachable, "user", "add", "alice"], { input: "" });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("stdin holds no password");
  });
});
