import { beforeAll, describe, expect, it } from "vitest";
import {
  AUTHENTICATION_FAILED_MESSAGE,
  AuthenticationError,
  AuthenticationRateLimitedError,
  Authenticator,
  type AuthenticatorOptions,
  isLoopbackAddress,
  parseBasicAuthorization,
  peerIp,
} from "../../src/access/authenticator.ts";
import { hashPassword, verifyPassword } from "../../src/access/password-hash.ts";
import { basic, FakeAccessView } from "./fake-access-view.ts";

const REMOTE = "10.1.2.3:40000";
const LOCAL = "127.0.0.1:40000";

let aliceHash = "";
let guestHash = "";
let newAliceHash = "";

beforeAll(async () => {
  [aliceHash, guestHash, newAliceHash] = await Promise.all([hashPassword("s3cret"), hashPassword("guest"), hashPassword("n3w")]);
});

/** An authenticator over a fresh view, counting scrypt verifications and with a hand-moved clock. */
function setup(options: Partial<AuthenticatorOptions> = {}) {
  const view = new FakeAccessView().addUser("alice", aliceHash, ["administrator"]).addUser("guest", guestHash).addUser("certonly", "", ["monitoring"]);
  const calls = { verify: 0 };
  const clock = { now: 1_000_000 };
  const auth = new Authenticator({
    view: () => view,
    clock: () => clock.now,
    verifyPassword: (p, h) => {
      calls.verify++;
      return verifyPassword(p, h);
    },
    ...options,
  });
  return { view, calls, clock, auth };
}

async function failure(p: Promise<unknown>): Promise<AuthenticationError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof AuthenticationError) return err;
    throw err;
  }
  throw new Error("expected an AuthenticationError, the call succeeded");
}

describe("Authenticator: password", () => {
  it("answers the user, its tags and the mechanism for a right password", async () => {
    const { auth } = setup();
    const p = await auth.authenticate({ authorization: basic("alice", "s3cret"), remoteAddress: REMOTE });
    expect(p).toEqual({ user: "alice", tags: ["administrator"], mechanism: "password" });
  });

  it("refuses a wrong password and an unknown user with the same message, and both cost one scrypt", async () => {
    const { auth, calls } = setup();
    const wrong = await failure(auth.authenticate({ authorization: basic("alice", "nope"), remoteAddress: REMOTE }));
    expect(calls.verify).toBe(1);
    const unknown = await failure(auth.authenticate({ authorization: basic("mallory", "nope"), remoteAddress: REMOTE }));
    expect(calls.verify).toBe(2);
    expect(wrong.message).toBe(AUTHENTICATION_FAILED_MESSAGE);
    expect(unknown.message).toBe(wrong.message);
    expect([wrong.failure, unknown.failure]).toEqual(["wrong-password", "unknown-user"]);
    expect(unknown.message).not.toContain("mallory");
  });

  it("refuses calls without credentials and with a malformed or non-Basic header", async () => {
    const { auth } = setup();
    const cases = [{}, { authorization: "Basic !!!" }, { authorization: "Bearer abc" }, { authorization: `Basic ${Buffer.from("nocolon").toString("base64")}` }];
    for (const c of cases) {
      const err = await failure(auth.authenticate({ ...c, remoteAddress: REMOTE }));
      expect(err.message).toBe(AUTHENTICATION_FAILED_MESSAGE);
    }
  });

  it("refuses password login for a user whose hash is empty (certificate only)", async () => {
    const { auth, calls } = setup();
    const err = await failure(auth.authenticate({ authorization: basic("certonly", "anything"), remoteAddress: REMOTE }));
    expect(err.failure).toBe("password-login-disabled");
    expect(calls.verify).toBe(1); // the decoy check: same cost as a real one
  });

  it("takes the password over the certificate when both are given", async () => {
    const { auth } = setup();
    const err = await failure(auth.authenticate({ authorization: basic("alice", "wrong"), certificateUser: "alice", remoteAddress: REMOTE }));
    expect(err.failure).toBe("wrong-password");
    const p = await auth.authenticate({ authorization: basic("alice", "s3cret"), certificateUser: "certonly", remoteAddress: REMOTE });
    expect(p.user).toBe("alice");
    expect(p.mechanism).toBe("password");
  });
});

describe("Authenticator: certificate", () => {
  it("accepts the user named by a verified certificate when it exists, without scrypt", async () => {
    const { auth, calls } = setup();
    const p = await auth.authenticate({ certificateUser: "certonly", remoteAddress: REMOTE });
    expect(p).toEqual({ user: "certonly", tags: ["monitoring"], mechanism: "certificate" });
    expect(calls.verify).toBe(0);
  });

  it("refuses a certificate naming no user", async () => {
    const { auth } = setup();
    const err = await failure(auth.authenticate({ certificateUser: "nobody", remoteAddress: REMOTE }));
    expect(err.message).toBe(AUTHENTICATION_FAILED_MESSAGE);
  });
});

describe("Authenticator: loopback-only users (RabbitMQ's loopback_users)", () => {
  it("refuses guest from a non-loopback address, even with the right password", async () => {
    const { auth } = setup();
    for (const remote of [REMOTE, "[2001:db8::1]:5555", "2001:db8::1:5555", "ipv4:192.168.0.1:1", "::ffff:10.0.0.1:5555", "unknown"]) {
      const err = await failure(auth.authenticate({ authorization: basic("guest", "guest"), remoteAddress: remote }));
      expect(err.message, remote).toBe(AUTHENTICATION_FAILED_MESSAGE);
    }
  });

  it("accepts guest from 127.0.0.1, [::1] and the other loopback forms", async () => {
    const { auth } = setup();
    for (const remote of [LOCAL, "[::1]:5555", "::1:5555", "ipv6:[::1]:5555", "ipv4:127.0.0.1:5555", "127.9.9.9:1", "::ffff:127.0.0.1:5555"]) {
      const p = await auth.authenticate({ authorization: basic("guest", "guest"), remoteAddress: remote });
      expect(p.user, remote).toBe("guest");
    }
  });

  it("applies to certificate logins too, and only to the listed users", async () => {
    const { auth } = setup({ loopbackOnlyUsers: ["certonly"] });
    await failure(auth.authenticate({ certificateUser: "certonly", remoteAddress: REMOTE }));
    expect((await auth.authenticate({ certificateUser: "certonly", remoteAddress: LOCAL })).user).toBe("certonly");
    expect((await auth.authenticate({ authorization: basic("guest", "guest"), remoteAddress: REMOTE })).user).toBe("guest");
  });
});

describe("Authenticator: verification cache", () => {
  it("checks the same credentials against the same stored hash with scrypt once", async () => {
    const { auth, calls } = setup();
    for (let i = 0; i < 5; i++) await auth.authenticate({ authorization: basic("alice", "s3cret"), remoteAddress: REMOTE });
    expect(calls.verify).toBe(1);
    expect(auth.cachedVerifications).toBe(1);
  });

  it("does not cache failures: a wrong password costs scrypt every time and never succeeds", async () => {
    const { auth, calls } = setup();
    for (let i = 0; i < 3; i++) await failure(auth.authenticate({ authorization: basic("alice", "wrong"), remoteAddress: REMOTE }));
    expect(calls.verify).toBe(3);
    expect(auth.cachedVerifications).toBe(0);
  });

  it("a password change makes the old password fail at once, though it was cached", async () => {
    const { auth, view, calls } = setup();
    await auth.authenticate({ authorization: basic("alice", "s3cret"), remoteAddress: REMOTE });
    view.addUser("alice", newAliceHash, ["administrator"]);
    const err = await failure(auth.authenticate({ authorization: basic("alice", "s3cret"), remoteAddress: REMOTE }));
    expect(err.failure).toBe("wrong-password");
    expect(calls.verify).toBe(2);
    expect((await auth.authenticate({ authorization: basic("alice", "n3w"), remoteAddress: REMOTE })).user).toBe("alice");
  });

  it("a deleted user fails at once, though cached; re-created with the same hash it is cached again", async () => {
    const { auth, view, calls } = setup();
    await auth.authenticate({ authorization: basic("alice", "s3cret"), remoteAddress: REMOTE });
    view.deleteUser("alice");
    const err = await failure(auth.authenticate({ authorization: basic("alice", "s3cret"), remoteAddress: REMOTE }));
    expect(err.failure).toBe("unknown-user");
    view.addUser("alice", aliceHash, []);
    const p = await auth.authenticate({ authorization: basic("alice", "s3cret"), remoteAddress: REMOTE });
    expect(p.tags).toEqual([]); // tags come from the current record, not the cache
    expect(calls.verify).toBe(2); // the first login and the decoy check of the deleted user
  });

  it("answers current tags on a cache hit", async () => {
    const { auth, view } = setup();
    await auth.authenticate({ authorization: basic("alice", "s3cret"), remoteAddress: REMOTE });
    view.addUser("alice", aliceHash, ["monitoring"]);
    expect((await auth.authenticate({ authorization: basic("alice", "s3cret"), remoteAddress: REMOTE })).tags).toEqual(["monitoring"]);
  });

  it("keys on the password too: another password of the same user is checked", async () => {
    const { auth, calls } = setup();
    await auth.authenticate({ authorization: basic("alice", "s3cret"), remoteAddress: REMOTE });
    await failure(auth.authenticate({ authorization: basic("alice", "s3cret "), remoteAddress: REMOTE }));
    expect(calls.verify).toBe(2);
  });

  it("fails a check whose user changed password while scrypt ran", async () => {
    const view = new FakeAccessView().addUser("alice", aliceHash);
    const auth = new Authenticator({
      view: () => view,
      verifyPassword: async (p, h) => {
        const ok = await verifyPassword(p, h);
        view.addUser("alice", newAliceHash);
        return ok;
      },
    });
    const err = await failure(auth.authenticate({ authorization: basic("alice", "s3cret"), remoteAddress: REMOTE }));
    expect(err.failure).toBe("user-changed-during-check");
    expect(auth.cachedVerifications).toBe(0);
  });

  it("stays within its size, forgetting the least recently used", async () => {
    const view = new FakeAccessView();
    for (const u of ["a", "b", "c"]) view.addUser(u, aliceHash);
    let verifies = 0;
    const auth = new Authenticator({
      view: () => view,
      verificationCacheSize: 2,
      verifyPassword: async (p, h) => {
        verifies++;
        return verifyPassword(p, h);
      },
    });
    const login = (u: string) => auth.authenticate({ authorization: basic(u, "s3cret"), remoteAddress: REMOTE });
    await login("a");
    await login("b");
    await login("a"); // a is now the most recent
    await login("c"); // evicts b
    expect(auth.cachedVerifications).toBe(2);
    expect(verifies).toBe(3);
    await login("a");
    expect(verifies).toBe(3);
    await login("b");
    expect(verifies).toBe(4);
  });
});

describe("Authenticator: failed-attempt limit per address", () => {
  it("after failureLimit failures within the window, refuses the address without checking, until the window passes", async () => {
    const { auth, clock, calls } = setup({ failureLimit: 3, failureWindowMs: 10_000 });
    for (let i = 0; i < 3; i++) {
      const err = await failure(auth.authenticate({ authorization: basic("alice", "wrong"), remoteAddress: `10.1.2.3:${4000 + i}` }));
      expect(err).not.toBeInstanceOf(AuthenticationRateLimitedError);
    }
    expect(calls.verify).toBe(3);
    // Even the right password is refused now, from any port of that IP, and costs no scrypt.
    const limited = await failure(auth.authenticate({ authorization: basic("alice", "s3cret"), remoteAddress: "10.1.2.3:9999" }));
    expect(limited).toBeInstanceOf(AuthenticationRateLimitedError);
    expect(limited.message).toBe("too many failed attempts from this address; retry later");
    expect((limited as AuthenticationRateLimitedError).retryAfterMs).toBe(10_000);
    expect(calls.verify).toBe(3);
    // Other addresses are not affected.
    expect((await auth.authenticate({ authorization: basic("alice", "s3cret"), remoteAddress: "10.9.9.9:1" })).user).toBe("alice");
    clock.now += 9_999;
    expect(await failure(auth.authenticate({ authorization: basic("alice", "s3cret"), remoteAddress: REMOTE }))).toBeInstanceOf(AuthenticationRateLimitedError);
    clock.now += 1;
    expect((await auth.authenticate({ authorization: basic("alice", "s3cret"), remoteAddress: REMOTE })).user).toBe("alice");
  });

  it("does not count failures on a node that knows no users yet, so clients retrying through its start are not blocked", async () => {
    const { auth, view } = setup({ failureLimit: 3, failureWindowMs: 10_000 });
    for (const name of ["alice", "guest", "certonly"]) view.deleteUser(name);
    for (let i = 0; i < 10; i++) {
      const err = await failure(auth.authenticate({ authorization: basic("alice", "s3cret"), remoteAddress: REMOTE }));
      expect(err).not.toBeInstanceOf(AuthenticationRateLimitedError);
      expect(err.failure).toBe("unknown-user");
    }
    view.addUser("alice", aliceHash, ["administrator"]);
    expect((await auth.authenticate({ authorization: basic("alice", "s3cret"), remoteAddress: REMOTE })).user).toBe("alice");
  });

  it("counts failures in a sliding window: spread-out failures never block", async () => {
    const { auth, clock } = setup({ failureLimit: 3, failureWindowMs: 1_000 });
    for (let i = 0; i < 10; i++) {
      const err = await failure(auth.authenticate({ authorization: basic("alice", "wrong"), remoteAddress: REMOTE }));
      expect(err, `attempt ${i}`).not.toBeInstanceOf(AuthenticationRateLimitedError);
      clock.now += 600; // at most two failures within any 1 s
    }
  });

  it("counts unknown users, malformed headers and missing credentials alike, and a success does not reset the count", async () => {
    const { auth } = setup({ failureLimit: 3 });
    await failure(auth.authenticate({ authorization: basic("nobody", "x"), remoteAddress: REMOTE }));
    await failure(auth.authenticate({ authorization: "Basic %%%", remoteAddress: REMOTE }));
    await auth.authenticate({ authorization: basic("alice", "s3cret"), remoteAddress: REMOTE });
    await failure(auth.authenticate({ remoteAddress: REMOTE }));
    expect(await failure(auth.authenticate({ authorization: basic("alice", "s3cret"), remoteAddress: REMOTE }))).toBeInstanceOf(AuthenticationRateLimitedError);
  });

  it("tracks a bounded number of addresses", async () => {
    const { auth } = setup({ failureLimit: 5, maxTrackedAddresses: 4 });
    for (let i = 0; i < 20; i++) await failure(auth.authenticate({ certificateUser: "nobody", remoteAddress: `10.0.0.${i}:1` }));
    expect(auth.trackedAddresses).toBe(4);
  });
});

describe("peer addresses", () => {
  it("strips the port from every peer form grpc-js and gRPC core produce", () => {
    const cases: [string, string | undefined][] = [
      ["127.0.0.1:5555", "127.0.0.1"],
      ["10.0.0.7", "10.0.0.7"],
      ["[::1]:5555", "::1"],
      ["::1:5555", "::1"],
      ["fe80::1%eth0:5555", "fe80::1"],
      ["fd00::2:80", "fd00::2"],
      ["ipv4:10.0.0.1:5555", "10.0.0.1"],
      ["ipv6:[2001:db8::1]:5555", "2001:db8::1"],
      ["ipv6:%5B::1%5D:5555", "::1"],
      ["::ffff:127.0.0.1:5555", "127.0.0.1"],
      ["unix:/tmp/raftmq.sock", undefined],
      ["unknown", undefined],
      ["", undefined],
    ];
    for (const [peer, ip] of cases) expect(peerIp(peer), peer).toBe(ip);
  });

  it("knows loopback: 127.0.0.0/8, ::1, IPv4-mapped 127.x; nothing else", () => {
    for (const p of ["127.0.0.1:1", "127.255.0.1:1", "[::1]:1", "::1:1", "[0:0:0:0:0:0:0:1]:1", "::ffff:127.0.0.1:1", "[::ffff:7f00:1]:1"]) expect(isLoopbackAddress(p), p).toBe(true);
    for (const p of ["128.0.0.1:1", "10.0.0.1:1", "[::2]:1", "::ffff:10.0.0.1:1", "0.0.0.0:1", "unix:/x", "unknown", "localhost:1"]) expect(isLoopbackAddress(p), p).toBe(false);
  });
});

describe("Basic authorization", () => {
  it("parses the user and a password that may contain colons", () => {
    expect(parseBasicAuthorization(basic("alice", "a:b:c"))).toEqual({ username: "alice", password: "a:b:c" });
    expect(parseBasicAuthorization(`basic ${Buffer.from("bob:").toString("base64")}`)).toEqual({ username: "bob", password: "" });
    expect(parseBasicAuthorization(basic("zoë", "pässword"))).toEqual({ username: "zoë", password: "pässword" });
  });

  it("refuses other schemes, bad base64, bad UTF-8, no colon and an empty user", () => {
    for (const v of ["Bearer x", "Basic", "Basic !!!!", "Basic YWxpY2U", `Basic ${Buffer.from([0xff, 0x3a, 0x61]).toString("base64")}`, `Basic ${Buffer.from(":pw").toString("base64")}`, `Basic ${Buffer.from("alice").toString("base64")}`]) {
      expect(parseBasicAuthorization(v), v).toBeUndefined();
    }
  });
});
