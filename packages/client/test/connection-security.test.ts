// What the SDK puts on every call and how it checks what it was given, without any server.
import { describe, expect, it } from "vitest";
import { ConnectionSecurity } from "../src/connection-security.ts";
import { connect, DEFAULT_VHOST } from "../src/index.ts";

const decode = (header: string | undefined) => Buffer.from((header ?? "").replace(/^Basic /, ""), "base64").toString("utf8");
const value = (m: ReturnType<ConnectionSecurity["metadata"]>, key: string) => m.get(key).map(String);

describe("call metadata", () => {
  it("carries Basic credentials of user:password, the password taken whole, colons and all", () => {
    const m = new ConnectionSecurity({ credentials: { username: "alice", password: "pä:ss wörd" } }).metadata();
    const [header] = value(m, "authorization");
    expect(header).toMatch(/^Basic [A-Za-z0-9+/]+=*$/);
    expect(header).toBe(`Basic ${Buffer.from("alice:pä:ss wörd").toString("base64")}`);
    expect(decode(header)).toBe("alice:pä:ss wörd");
  });

  it("names the vhost, except the default one", () => {
    expect(value(new ConnectionSecurity({ vhost: "prod" }).metadata(), "raftmq-vhost")).toEqual(["prod"]);
    expect(value(new ConnectionSecurity({ vhost: DEFAULT_VHOST }).metadata(), "raftmq-vhost")).toEqual([]);
    expect(value(new ConnectionSecurity().metadata(), "raftmq-vhost")).toEqual([]);
  });

  it("is empty without credentials or vhost, as before security existed", () => {
    expect(ConnectionSecurity.NONE.metadata().toJSON()).toEqual({});
    expect(ConnectionSecurity.NONE.tls).toBe(false);
  });

  it("is a fresh copy per call", () => {
    const s = new ConnectionSecurity({ credentials: { username: "a", password: "b" }, vhost: "v" });
    const first = s.metadata();
    first.set("authorization", "tampered");
    first.set("x-extra", "1");
    expect(value(s.metadata(), "authorization")).toEqual([`Basic ${Buffer.from("a:b").toString("base64")}`]);
    expect(value(s.metadata(), "x-extra")).toEqual([]);
  });
});

describe("options validation", () => {
  const refuses = (options: ConstructorParameters<typeof ConnectionSecurity>[0], message: RegExp) => expect(() => new ConnectionSecurity(options)).toThrow(message);

  it("refuses credentials Basic authentication cannot carry", () => {
    refuses({ credentials: { username: "", password: "x" } }, /username must not be empty/);
    refuses({ credentials: { username: "a:b", password: "x" } }, /must not hold ":"/);
    refuses({ credentials: { username: "alice", password: "" } }, /password of user "alice" must not be empty.*client certificate/);
    refuses({ credentials: { username: "alice", password: "line\nbreak" } }, /password must not hold control characters/);
    refuses({ credentials: { username: "alice", password: "x".repeat(1025) } }, /at most 1024 bytes/);
  });

  it("refuses a vhost gRPC metadata cannot carry", () => {
    refuses({ vhost: "" }, /vhost must be 1 to 255 printable ASCII/);
    refuses({ vhost: "prød" }, /printable ASCII/);
    refuses({ vhost: "v".repeat(256) }, /printable ASCII/);
  });

  it("wants a client certificate and its key together, and a host name to check servers against", () => {
    refuses({ tls: { cert: "-----BEGIN CERTIFICATE-----" } }, /tls.cert and tls.key go together/);
    refuses({ tls: { key: "-----BEGIN PRIVATE KEY-----" } }, /tls.cert and tls.key go together/);
    refuses({ tls: { serverName: "not a host" } }, /tls.serverName must be a host name/);
    const s = new ConnectionSecurity({ tls: { serverName: "raftmq.example" } });
    expect(s.tls).toBe(true);
    expect(s.channelOptions).toEqual({ "grpc.ssl_target_name_override": "raftmq.example", "grpc.default_authority": "raftmq.example" });
  });

  it("connect checks them before it dials anything", async () => {
    await expect(connect(["127.0.0.1:1"], { credentials: { username: "a:b", password: "x" } })).rejects.toThrow(/must not hold ":"/);
    await expect(connect(["127.0.0.1:1"], { vhost: "" })).rejects.toThrow(/vhost/);
    await expect(connect(["127.0.0.1:1"], { callTimeoutMs: 0 })).rejects.toThrow(/callTimeoutMs must be a positive number/);
  });
});
