// Users and permissions as replicated state: what each command changes and answers, the checks that
// keep bad values out of the log, and the version gate that keeps a cluster still on state-machine
// version 1 answering as nodes of that version do.
import type { raftmq } from "@raftmq/proto";
import { describe, expect, it } from "vitest";
import { ACCESS_CONTROL_VERSION, Broker, defaultLimits, MACHINE_VERSION, validateCommand } from "../src/index.ts";
import { Driver, outcomeOf, routed } from "./broker-driver.ts";

type Command = raftmq.v1.Command.$Properties;

function upgraded(): Driver {
  const d = new Driver();
  d.upgrade();
  return d;
}

describe("users", () => {
  it("AddUser adds a user; a second AddUser of the name is refused and changes nothing", () => {
    const d = upgraded();
    expect(d.ok({ addUser: { name: "alice", passwordHash: "h1", tags: ["administrator"] } }).result).toEqual({ ok: true, kind: "addUser", created: true });
    expect(d.broker.user("alice")).toEqual({ name: "alice", passwordHash: "h1", tags: ["administrator"] });
    expect(d.run({ addUser: { name: "alice", passwordHash: "h2" } }).result).toEqual({
      ok: false,
      error: { code: "PRECONDITION_FAILED", message: 'user "alice" already exists' },
    });
    expect(d.broker.user("alice")?.passwordHash).toBe("h1");
    expect(d.broker.user("bob")).toBeUndefined();
  });

  it("refuses a user name with a colon, which Basic credentials could never carry", () => {
    const d = upgraded();
    expect(d.run({ addUser: { name: "a:b", passwordHash: "h" } }).result).toMatchObject({ ok: false, error: { code: "INVALID_ARGUMENT", message: expect.stringMatching(/contains ":"/) } });
    expect(d.broker.user("a:b")).toBeUndefined();
  });

  it("only_if_no_users adds the first user, and later ones succeed without adding anything", () => {
    const d = upgraded();
    expect(d.ok({ addUser: { name: "admin", passwordHash: "first", onlyIfNoUsers: true } }).result).toEqual({ ok: true, kind: "addUser", created: true });
    const version = d.broker.accessVersion;
    // Several nodes proposed the bootstrap administrator: the later proposals are no-ops.
    expect(d.ok({ addUser: { name: "admin", passwordHash: "second", onlyIfNoUsers: true } }).result).toEqual({ ok: true, kind: "addUser", created: false });
    expect(d.ok({ addUser: { name: "other", onlyIfNoUsers: true } }).result).toEqual({ ok: true, kind: "addUser", created: false });
    expect(d.broker.users().map((u) => [u.name, u.passwordHash])).toEqual([["admin", "first"]]);
    expect(d.broker.accessVersion).toBe(version);
  });

  it("users() are sorted by name whatever the order they were added in", () => {
    const d = upgraded();
    for (const name of ["carol", "Bob", "alice", "bob"]) d.ok({ addUser: { name } });
    expect(d.broker.users().map((u) => u.name)).toEqual(["Bob", "alice", "bob", "carol"]);
    expect(d.broker.userCount).toBe(4);
  });

  it("SetPasswordHash and SetUserTags replace what they name and keep the rest", () => {
    const d = upgraded();
    d.ok({ addUser: { name: "u", passwordHash: "old", tags: ["monitoring"] } });
    d.ok({ setPasswordHash: { name: "u", passwordHash: "new" } });
    expect(d.broker.user("u")).toEqual({ name: "u", passwordHash: "new", tags: ["monitoring"] });
    d.ok({ setUserTags: { name: "u", tags: ["administrator", "monitoring"] } });
    expect(d.broker.user("u")).toEqual({ name: "u", passwordHash: "new", tags: ["administrator", "monitoring"] });
    d.ok({ setPasswordHash: { name: "u", passwordHash: "" } });
    expect(d.broker.user("u")?.passwordHash).toBe("");
  });

  it("DeleteUser removes the user and its permissions", () => {
    const d = upgraded();
    d.ok({ addVhost: { name: "v" } });
    for (const name of ["u", "keep"]) {
      d.ok({ addUser: { name } });
      d.ok({ setPermissions: { user: name, vhost: "v", configure: ".*", write: ".*", read: ".*" } });
    }
    d.ok({ deleteUser: { name: "u" } });
    expect(d.broker.user("u")).toBeUndefined();
    expect(d.broker.listPermissions().map((p) => p.user)).toEqual(["keep"]);
    // Added again, it starts without permissions.
    d.ok({ addUser: { name: "u" } });
    expect(d.broker.permissions("u", "v")).toBeUndefined();
  });

  it("commands on a user that does not exist answer NOT_FOUND", () => {
    const d = upgraded();
    for (const c of [{ deleteUser: { name: "ghost" } }, { setPasswordHash: { name: "ghost", passwordHash: "h" } }, { setUserTags: { name: "ghost", tags: [] } }]) {
      expect(d.run(c).result).toEqual({ ok: false, error: { code: "NOT_FOUND", message: 'no user "ghost"' } });
    }
    expect(d.broker.userCount).toBe(0);
  });

  it("a stored user cannot be changed through what the read API returns", () => {
    const d = upgraded();
    d.ok({ addUser: { name: "u", tags: ["a"] } });
    const tags = d.broker.user("u")?.tags as string[];
    expect(() => tags.push("administrator")).toThrow(TypeError);
    expect(d.broker.user("u")?.tags).toEqual(["a"]);
  });
});

describe("permissions", () => {
  function withUserAndVhost(): Driver {
    const d = upgraded();
    d.ok({ addUser: { name: "u" } });
    d.ok({ addVhost: { name: "v" } });
    return d;
  }

  it("SetPermissions sets, replaces, and ClearPermissions removes", () => {
    const d = withUserAndVhost();
    d.ok({ setPermissions: { user: "u", vhost: "v", configure: "^c", write: "^w", read: "^r" } });
    expect(d.broker.permissions("u", "v")).toEqual({ configure: "^c", write: "^w", read: "^r" });
    expect(d.broker.permissions("u", "/")).toBeUndefined();
    d.ok({ setPermissions: { user: "u", vhost: "v", configure: "", write: "", read: ".*" } });
    expect(d.broker.permissions("u", "v")).toEqual({ configure: "", write: "", read: ".*" });
    d.ok({ clearPermissions: { user: "u", vhost: "v" } });
    expect(d.broker.permissions("u", "v")).toBeUndefined();
    // Clearing what is not there is not an error.
    expect(d.ok({ clearPermissions: { user: "u", vhost: "v" } }).result).toEqual({ ok: true, kind: "clearPermissions" });
  });

  it("the user and the vhost must exist", () => {
    const d = withUserAndVhost();
    const p = { configure: ".*", write: ".*", read: ".*" };
    expect(d.run({ setPermissions: { user: "ghost", vhost: "v", ...p } }).result).toEqual({ ok: false, error: { code: "NOT_FOUND", message: 'no user "ghost"' } });
    expect(d.run({ setPermissions: { user: "u", vhost: "nope", ...p } }).result).toEqual({ ok: false, error: { code: "NOT_FOUND", message: 'no vhost "nope"' } });
    expect(outcomeOf(d.run({ clearPermissions: { user: "ghost", vhost: "v" } }))).toBe("NOT_FOUND");
    expect(outcomeOf(d.run({ clearPermissions: { user: "u", vhost: "nope" } }))).toBe("NOT_FOUND");
    expect(d.broker.listPermissions()).toEqual([]);
  });

  it("a pattern that is not a JavaScript regular expression is refused before the log and again in apply", () => {
    const d = withUserAndVhost();
    const bad: Command = { setPermissions: { user: "u", vhost: "v", configure: ".*", write: "(unclosed", read: ".*" } };
    expect(validateCommand(bad, defaultLimits)).toMatchObject({ code: "INVALID_ARGUMENT", message: expect.stringMatching(/^write pattern "\(unclosed" is not a JavaScript regular expression/) });
    expect(d.run(bad).result).toMatchObject({ ok: false, error: { code: "INVALID_ARGUMENT" } });
    expect(validateCommand({ setPermissions: { user: "u", vhost: "v", configure: "[", write: "", read: "" } }, defaultLimits)?.message).toMatch(/^configure pattern/);
    expect(validateCommand({ setPermissions: { user: "u", vhost: "v", configure: "", write: "", read: "a{2,1}" } }, defaultLimits)?.message).toMatch(/^read pattern/);
    expect(d.broker.permissions("u", "v")).toBeUndefined();
  });

  it("listPermissions filters by user and vhost and sorts by user, then vhost", () => {
    const d = upgraded();
    for (const name of ["b", "a"]) d.ok({ addUser: { name } });
    d.ok({ addVhost: { name: "v" } });
    const p = (read: string) => ({ configure: "", write: "", read });
    d.ok({ setPermissions: { user: "b", vhost: "v", ...p("1") } });
    d.ok({ setPermissions: { user: "b", vhost: "/", ...p("2") } });
    d.ok({ setPermissions: { user: "a", vhost: "v", ...p("3") } });
    const pairs = (list: { user: string; vhost: string }[]) => list.map((x) => `${x.user}@${x.vhost}`);
    expect(pairs(d.broker.listPermissions())).toEqual(["a@v", "b@/", "b@v"]);
    expect(pairs(d.broker.listPermissions({ user: "b" }))).toEqual(["b@/", "b@v"]);
    expect(pairs(d.broker.listPermissions({ vhost: "v" }))).toEqual(["a@v", "b@v"]);
    expect(d.broker.listPermissions({ user: "a", vhost: "/" })).toEqual([]);
    expect(d.broker.listPermissions({ user: "b", vhost: "v" })).toEqual([{ user: "b", vhost: "v", configure: "", write: "", read: "1" }]);
  });
});

describe("accessVersion", () => {
  it("goes up with every applied user, vhost or permission change, and with nothing else", () => {
    const d = upgraded();
    const changes: Command[] = [
      { addUser: { name: "u" } },
      { setPasswordHash: { name: "u", passwordHash: "h" } },
      { setUserTags: { name: "u", tags: ["t"] } },
      { addVhost: { name: "v" } },
      { setPermissions: { user: "u", vhost: "v", configure: "", write: "", read: "" } },
      { clearPermissions: { user: "u", vhost: "v" } },
      { deleteVhost: { name: "v" } },
      { deleteUser: { name: "u" } },
    ];
    let last = d.broker.accessVersion;
    expect(last).toBe(0);
    for (const c of changes) {
      d.ok(c);
      expect(d.broker.accessVersion, JSON.stringify(c)).toBe(last + 1);
      last = d.broker.accessVersion;
    }
    // Refused commands and topology changes leave it.
    d.run({ deleteUser: { name: "u" } });
    d.run({ addVhost: { name: "/" } });
    d.queue("q");
    d.publish("", "q");
    expect(d.broker.accessVersion).toBe(last);
  });
});

describe("validation of users, vhosts and their fields", () => {
  const long = "x".repeat(256);
  const cases: [string, Command, RegExp][] = [
    ["a user without a name", { addUser: { name: "" } }, /^user name must not be empty$/],
    ["a user name over 255 bytes", { addUser: { name: "é".repeat(128) } }, /user name .* must be at most 255 UTF-8 bytes, got 256/],
    ["a user name with a control character", { addUser: { name: "a\nb" } }, /user name "a\\nb" must not contain control characters .*U\+000A at position 1/],
    ["a user name with DEL", { deleteUser: { name: "a\u007f" } }, /U\+007F/],
    ["a password hash over 1024 bytes", { addUser: { name: "u", passwordHash: "a".repeat(1025) } }, /password hash must be at most 1024 bytes, got 1025/],
    ["a password hash with non-ASCII", { setPasswordHash: { name: "u", passwordHash: "abcé" } }, /password hash must be printable ASCII .*U\+00E9 at position 3/],
    ["a password hash with a tab", { addUser: { name: "u", passwordHash: "a\tb" } }, /printable ASCII/],
    ["33 tags", { addUser: { name: "u", tags: Array.from({ length: 33 }, (_, i) => `t${i}`) } }, /at most 32 tags, got 33/],
    ["a tag over 64 bytes", { setUserTags: { name: "u", tags: ["t".repeat(65)] } }, /user tag .* must be 1 to 64 UTF-8 bytes, got 65/],
    ["an empty tag", { setUserTags: { name: "u", tags: [""] } }, /user tag "" must be 1 to 64/],
    ["a vhost without a name", { addVhost: { name: "" } }, /^vhost name must not be empty$/],
    ["a vhost name over 255 bytes", { deleteVhost: { name: long } }, /vhost name .* must be at most 255/],
    ["a vhost name with a control character", { addVhost: { name: "v\u0000" } }, /vhost name .*control characters/],
    ["permissions without a user", { setPermissions: { vhost: "v" } }, /^user name must not be empty$/],
    ["permissions without a vhost", { clearPermissions: { user: "u" } }, /^vhost name must not be empty$/],
    ["a pattern over 1024 bytes", { setPermissions: { user: "u", vhost: "v", read: "a".repeat(1025) } }, /read pattern must be at most 1024/],
    ["a publish to a vhost with a control character", { publish: { routingKey: "q", vhost: "a\rb" } }, /^vhost "a\\rb" must not contain control characters/],
    ["a queue in a vhost over 255 bytes", { declareQueue: { name: "q", vhost: long } }, /^vhost .* must be at most 255/],
  ];
  for (const [what, command, message] of cases) {
    it(`refuses ${what}`, () => {
      const error = validateCommand(command, defaultLimits);
      expect(error?.code).toBe("INVALID_ARGUMENT");
      expect(error?.message).toMatch(message);
    });
  }

  it("accepts names at the bounds", () => {
    const ok: Command[] = [
      { addUser: { name: `${"é".repeat(127)}x`, passwordHash: "~".repeat(1024), tags: Array.from({ length: 32 }, () => "t".repeat(64)) } },
      { addVhost: { name: "ünïcode/vhost" } },
      { setPermissions: { user: "u", vhost: "v", configure: "", write: "^(amq\\.gen.*|q)$", read: ".*" } },
      { publish: { routingKey: "q", vhost: "" } },
    ];
    for (const c of ok) expect(validateCommand(c, defaultLimits)).toBeNull();
  });
});

describe("under state-machine version 1 (a cluster not yet moved to 2)", () => {
  const newKinds: Command[] = [
    { addUser: { name: "u" } },
    { deleteUser: { name: "u" } },
    { setPasswordHash: { name: "u", passwordHash: "h" } },
    { setUserTags: { name: "u", tags: [] } },
    { addVhost: { name: "v" } },
    { deleteVhost: { name: "v" } },
    { setPermissions: { user: "u", vhost: "/", configure: "", write: "", read: "" } },
    { clearPermissions: { user: "u", vhost: "/" } },
  ];

  it("refuses every new command kind, naming the version to move to, and changes nothing", () => {
    expect(MACHINE_VERSION).toBeGreaterThanOrEqual(ACCESS_CONTROL_VERSION);
    const d = new Driver();
    expect(d.broker.machineVersion()).toBe(1);
    d.tick(d.now);
    const before = Buffer.from(d.broker.snapshot());
    for (const c of newKinds) {
      const r = d.run(c).result;
      expect(r).toMatchObject({ ok: false, error: { code: "PRECONDITION_FAILED" } });
      if (!r.ok) expect(r.error.message).toMatch(/needs state-machine version 2, and the cluster applies version 1: move it to version 2 first \(raftmqctl settings, Cluster\.SetSettings\)/);
    }
    expect(d.run({ addUser: { name: "u" } }).result).toMatchObject({ error: { message: expect.stringMatching(/^add_user needs/) } });
    // Even a command that validation would refuse: the version decides first, as on older nodes.
    expect(d.run({ addUser: { name: "" } }).result).toMatchObject({ ok: false, error: { code: "PRECONDITION_FAILED" } });
    expect(d.broker.userCount).toBe(0);
    expect(d.broker.vhosts()).toEqual(["/"]);
    expect(Buffer.from(d.broker.snapshot()).equals(before)).toBe(true);
  });

  it('refuses a vhost other than "/" in any command, and accepts "/" named explicitly', () => {
    const d = new Driver();
    expect(d.run({ declareQueue: { name: "q", vhost: "a" } }).result).toMatchObject({
      ok: false,
      error: { code: "PRECONDITION_FAILED", message: expect.stringMatching(/^vhost "a" needs state-machine version 2/) },
    });
    expect(d.run({ publish: { routingKey: "q", vhost: "a" } }).result).toMatchObject({ ok: false, error: { code: "PRECONDITION_FAILED" } });
    d.ok({ declareQueue: { name: "q", vhost: "/" } });
    expect(routed(d.run({ publish: { routingKey: "q", vhost: "/" } }))).toEqual(["q"]);
    expect(d.broker.listQueues().map((q) => q.name)).toEqual(["q"]);
  });

  it("applies them once SetClusterSettings moves the cluster to version 2, and a snapshot keeps the version", () => {
    const d = new Driver();
    d.upgrade(ACCESS_CONTROL_VERSION);
    d.ok({ addVhost: { name: "a" } });
    d.ok({ declareQueue: { name: "q", vhost: "a" } });
    const restored = Broker.restore(d.broker.snapshot());
    expect(restored.machineVersion()).toBe(2);
    expect(restored.apply({ addUser: { name: "u" } }, { index: 99, timestamp: 1 }).result).toEqual({ ok: true, kind: "addUser", created: true });
  });
});
