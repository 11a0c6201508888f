// raftmqctl's global options and access commands as parsed, with no server: which credentials,
// vhost and TLS a command would connect with, and passwords that are read but never shown.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import type { Command } from "commander";
import { afterAll, describe, expect, it } from "vitest";
import { checkPattern, parseTags } from "../src/ctl-access-commands.ts";
import { globals, type SecurityFlags, securityOptionsOf, UsageError } from "../src/ctl-context.ts";
import { buildCtlProgram } from "../src/ctl-program.ts";
import { readNewSecret, readSecretFile } from "../src/ctl-secret-input.ts";

const dir = mkdtempSync(join(tmpdir(), "raftmqctl-options-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content, { mode: 0o600 });
  return path;
}

const base: SecurityFlags = { username: "guest", vhost: "/" };

describe("securityOptionsOf", () => {
  it("the default user guest gets the password guest, and nobody else does", async () => {
    expect(await securityOptionsOf(base)).toEqual({ vhost: "/", credentials: { username: "guest", password: "guest" } });
    await expect(securityOptionsOf({ ...base, username: "bob" })).rejects.toThrow(/no password for user "bob": give --password-file/);
    await expect(securityOptionsOf({ ...base, username: "bob" })).rejects.toBeInstanceOf(UsageError);
  });

  it("takes the password from --password or from the one line of --password-file, never both", async () => {
    expect((await securityOptionsOf({ ...base, username: "bob", password: "pw" })).credentials).toEqual({ username: "bob", password: "pw" });
    const path = file("pw", "s3cret:with colon\n");
    expect((await securityOptionsOf({ ...base, username: "bob", passwordFile: path })).credentials).toEqual({ username: "bob", password: "s3cret:with colon" });
    await expect(securityOptionsOf({ ...base, password: "a", passwordFile: path })).rejects.toThrow(/not both/);
    await expect(securityOptionsOf({ ...base, passwordFile: join(dir, "missing") })).rejects.toThrow(/cannot read the password file .*missing: ENOENT/);
  });

  it("uses TLS only with a CA file; a client certificate without a password authenticates alone", async () => {
    const ca = file("ca.crt", "CA PEM");
    const cert = file("me.crt", "CERT PEM");
    const key = file("me.key", "KEY PEM");
    const plain = await securityOptionsOf({ ...base, vhost: "prod" });
    expect(plain.tls).toBeUndefined();
    expect(plain.vhost).toBe("prod");
    const tls = await securityOptionsOf({ ...base, tlsCaFile: ca, tlsServerName: "raftmq.example" });
    expect(tls.tls).toEqual({ ca: Buffer.from("CA PEM"), serverName: "raftmq.example" });
    expect(tls.credentials).toEqual({ username: "guest", password: "guest" });
    const mutual = await securityOptionsOf({ ...base, username: "alice", tlsCaFile: ca, tlsCertFile: cert, tlsKeyFile: key });
    expect(mutual.tls).toEqual({ ca: Buffer.from("CA PEM"), cert: Buffer.from("CERT PEM"), key: Buffer.from("KEY PEM") });
    expect(mutual.credentials).toBeUndefined();
    const both = await securityOptionsOf({ ...base, username: "alice", password: "pw", tlsCaFile: ca, tlsCertFile: cert, tlsKeyFile: key });
    expect(both.credentials).toEqual({ username: "alice", password: "pw" });
  });

  it("refuses TLS options that do not fit together, naming the one at fault", async () => {
    await expect(securityOptionsOf({ ...base, tlsCertFile: "c", tlsKeyFile: "k" })).rejects.toThrow("--tls-cert-file needs --tls-ca-file");
    await expect(securityOptionsOf({ ...base, tlsServerName: "x" })).rejects.toThrow("--tls-server-name needs --tls-ca-file");
    await expect(securityOptionsOf({ ...base, tlsCaFile: file("ca2.crt", "x"), tlsCertFile: "c" })).rejects.toThrow("--tls-cert-file and --tls-key-file go together");
    await expect(securityOptionsOf({ ...base, tlsCaFile: join(dir, "nope.crt") })).rejects.toThrow(/cannot read the CA file .*nope\.crt: ENOENT/);
  });
});

/** Parses `argv` with the real command tree; the action of `path` (e.g. ["user", "add"]) records instead of connecting. */
async function parse(argv: string[], path: string[], env: Record<string, string> = {}): Promise<{ args: unknown[]; globals: ReturnType<typeof globals> }> {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    const program = buildCtlProgram();
    let target: Command = program;
    for (const name of path) {
      const next = target.commands.find((c) => c.name() === name);
      if (next === undefined) throw new Error(`no command ${path.join(" ")}`);
      target = next;
    }
    let seen: { args: unknown[]; globals: ReturnType<typeof globals> } | undefined;
    target.action((...args: unknown[]) => {
      seen = { args: args.slice(0, -1), globals: globals(args.at(-1) as Command) };
    });
    // Quiet: each command took its output settings when it was made.
    const quiet = (c: Command): void => {
      c.configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
      for (const sub of c.commands) quiet(sub);
    };
    quiet(program);
    await program.parseAsync(argv, { from: "user" });
    if (seen === undefined) throw new Error("the action did not run");
    return seen;
  } finally {
    for (const key of Object.keys(env)) delete process.env[key];
    Object.assign(process.env, saved);
  }
}

describe("raftmqctl global options", () => {
  it("default to guest in vhost / over plaintext", async () => {
    const { globals: g } = await parse(["whoami"], ["whoami"], {});
    expect(g).toMatchObject({ username: "guest", vhost: "/" });
    expect(g.password).toBeUndefined();
    expect(g.tlsCaFile).toBeUndefined();
  });

  it("read RAFTMQ_* variables, and flags win over them", async () => {
    const env = { RAFTMQ_USERNAME: "env-user", RAFTMQ_PASSWORD_FILE: "/env/pw", RAFTMQ_VHOST: "env-vhost", RAFTMQ_TLS_CA_FILE: "/env/ca.crt", RAFTMQ_TLS_CERT_FILE: "/env/c", RAFTMQ_TLS_KEY_FILE: "/env/k" };
    expect((await parse(["whoami"], ["whoami"], env)).globals).toMatchObject({
      username: "env-user",
      passwordFile: "/env/pw",
      vhost: "env-vhost",
      tlsCaFile: "/env/ca.crt",
      tlsCertFile: "/env/c",
      tlsKeyFile: "/env/k",
    });
    expect((await parse(["--username", "flag-user", "--vhost", "v2", "whoami"], ["whoami"], env)).globals).toMatchObject({ username: "flag-user", vhost: "v2" });
  });

  it("go before the command, so a command's --password is never taken for ours", async () => {
    const r = await parse(["--username", "admin", "--password", "ours", "user", "add", "bob", "--password", "bobs", "--tags", "administrator, monitoring,"], ["user", "add"]);
    expect(r.args[0]).toBe("bob");
    expect(r.args[1]).toMatchObject({ password: "bobs", tags: "administrator, monitoring," });
    expect(r.globals.password).toBe("ours");
    const unset = await parse(["user", "add", "bob", "--password", "bobs"], ["user", "add"]);
    expect(unset.globals.password).toBeUndefined();
    await expect(parse(["whoami", "--username", "late"], ["whoami"])).rejects.toThrow(/unknown option '--username'/);
  });

  it("permissions set wants all three patterns; its --vhost is its own", async () => {
    const r = await parse(["--vhost", "global", "permissions", "set", "bob", "--vhost", "prod", "--configure", "", "--write", "^logs$", "--read", ".*"], ["permissions", "set"]);
    expect(r.args).toEqual(["bob", { vhost: "prod", configure: "", write: "^logs$", read: ".*" }]);
    expect(r.globals.vhost).toBe("global");
    await expect(parse(["permissions", "set", "bob", "--configure", ".*", "--write", ".*"], ["permissions", "set"])).rejects.toThrow(/--read <regex>' not specified/);
  });

  it("a new user's password comes from one place only", async () => {
    await expect(parse(["user", "add", "bob", "--password", "x", "--certificate-only"], ["user", "add"])).rejects.toThrow(/cannot be used with/);
    await expect(parse(["user", "password", "bob", "--password-file", "f", "--password", "x"], ["user", "password"])).rejects.toThrow(/cannot be used with/);
  });
});

describe("access command helpers", () => {
  it("parses tag lists and checks patterns before sending them", () => {
    expect(parseTags("administrator, monitoring,,administrator")).toEqual(["administrator", "monitoring"]);
    expect(parseTags("")).toEqual([]);
    expect(checkPattern("--read", "^a.*")).toBe("^a.*");
    expect(() => checkPattern("--write", "(")).toThrow(/--write "\(" is not a regular expression/);
  });
});

/** A terminal stand-in: raw mode is recorded, typed keys are written into it. */
function fakeTerminal() {
  const input = Object.assign(new PassThrough(), { isTTY: true, rawModes: [] as boolean[] });
  const setRawMode = (on: boolean) => {
    input.rawModes.push(on);
    return input;
  };
  let shown = "";
  const output = new PassThrough();
  output.on("data", (c: Buffer) => {
    shown += c.toString();
  });
  return { input: Object.assign(input, { setRawMode }) as unknown as NodeJS.ReadStream & { rawModes: boolean[] }, output, shown: () => shown };
}

describe("reading passwords", () => {
  it("at a terminal: asks twice with echo off, shows nothing typed, handles backspace", async () => {
    const t = fakeTerminal();
    const read = readNewSecret("New password for bob: ", t.input, t.output);
    t.input.write("hunter3\u007f2\r");
    await new Promise((r) => setImmediate(r));
    t.input.write("hunter2\n");
    expect(await read).toBe("hunter2");
    expect(t.shown()).toBe("New password for bob: \nAgain: \n");
    expect(t.input.rawModes).toEqual([true, false, true, false]);
  });

  it("at a terminal: two different passwords, or Ctrl-C, give none", async () => {
    const t = fakeTerminal();
    const read = readNewSecret("pw: ", t.input, t.output);
    t.input.write("one\r");
    await new Promise((r) => setImmediate(r));
    t.input.write("two\r");
    await expect(read).rejects.toThrow("the two passwords typed differ");
    const c = fakeTerminal();
    const cancelled = readNewSecret("pw: ", c.input, c.output);
    c.input.write("abc\u0003");
    await expect(cancelled).rejects.toThrow(/cancelled/);
    expect(c.input.rawModes).toEqual([true, false]);
  });

  it("from a pipe: the first line; from a file: its one line", async () => {
    const pipe = Object.assign(new PassThrough(), { isTTY: false }) as unknown as NodeJS.ReadStream & PassThrough;
    pipe.end("from-pipe\nignored\n");
    expect(await readNewSecret("unused", pipe)).toBe("from-pipe");
    const empty = Object.assign(new PassThrough(), { isTTY: false }) as unknown as NodeJS.ReadStream & PassThrough;
    empty.end("");
    await expect(readNewSecret("unused", empty)).rejects.toThrow("stdin holds no password");
    expect(await readSecretFile(file("crlf", "p@ss\r\n"))).toBe("p@ss");
    await expect(readSecretFile(file("two", "a\nb\n"))).rejects.toThrow(/one line/);
    await expect(readSecretFile(file("blank", "\n"))).rejects.toThrow(/holds no password/);
  });
});
