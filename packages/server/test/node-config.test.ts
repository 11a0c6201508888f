import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { buildCommand, ConfigError, envName, NODE_OPTIONS, parseInitialCluster, resolveNodeConfig } from "../src/node-config.ts";

function configFile(content: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), "raftmq-config-"));
  const path = join(dir, "node.json");
  writeFileSync(path, JSON.stringify(content));
  return path;
}

describe("node configuration", () => {
  it("gives every option an environment variable named RAFTMQ_<NAME>", () => {
    expect(envName("client-port")).toBe("RAFTMQ_CLIENT_PORT");
    const names = NODE_OPTIONS.map((o) => o.name);
    expect(new Set(names).size).toBe(names.length);
    for (const required of ["node-id", "data-dir", "host", "client-port", "peer-port", "http-port", "advertise-host", "initial-cluster", "join", "tick-ms", "election-ticks", "heartbeat-ticks", "max-batch-bytes", "max-batch-commands", "snapshot-entries", "log-level"]) {
      expect(names).toContain(required);
    }
  });

  it("uses the defaults when nothing is set: a single-node cluster of this node", () => {
    const c = resolveNodeConfig(["--insecure"], {});
    expect(c).toMatchObject({ nodeId: 1, tickMs: 100, electionTicks: 10, heartbeatTicks: 1, snapshotEntries: 10_000, join: false, advertiseHost: "127.0.0.1" });
    expect(c.initialCluster).toEqual([{ id: 1, peerAddress: "127.0.0.1:7700", clientAddress: "127.0.0.1:7600" }]);
  });

  it("takes a flag over the environment, the environment over the file, the file over the default", () => {
    const file = configFile({ "tick-ms": 40, "election-ticks": 20, "heartbeat-ticks": 3, "log-level": "warn" });
    const env = { RAFTMQ_TICK_MS: "30", RAFTMQ_ELECTION_TICKS: "15", RAFTMQ_CONFIG: file };
    const c = resolveNodeConfig(["--insecure", "--tick-ms", "20"], env);
    expect(c.tickMs).toBe(20);
    expect(c.electionTicks).toBe(15);
    expect(c.heartbeatTicks).toBe(3);
    expect(c.logLevel).toBe("warn");
    expect(c.maxBatchCommands).toBe(1024);
  });

  it("parses the initial cluster and requires this node in it unless joining", () => {
    const cluster = "2=10.0.0.2:7700/10.0.0.2:7600,1=10.0.0.1:7700/10.0.0.1:7600";
    expect(parseInitialCluster(cluster).map((m) => m.id)).toEqual([1, 2]);
    expect(() => resolveNodeConfig(["--insecure", "--node-id", "3", "--initial-cluster", cluster], {})).toThrow(/does not name this node \(3\)/);
    expect(resolveNodeConfig(["--insecure", "--node-id", "3", "--initial-cluster", cluster, "--join"], {}).join).toBe(true);
  });

  it("refuses bad values with a message naming the option", () => {
    expect(() => parseInitialCluster("1=nohostport")).toThrow(ConfigError);
    expect(() => parseInitialCluster("1=a:1/b:2,1=c:3/d:4")).toThrow(/names node 1 twice/);
    expect(() => resolveNodeConfig(["--insecure", "--tick-ms", "fast"], {})).toThrow(/tick-ms must be an integer/);
    expect(() => resolveNodeConfig(["--insecure"], { RAFTMQ_JOIN: "maybe" })).toThrow(/join must be true or false/);
    expect(() => resolveNodeConfig(["--insecure", "--heartbeat-ticks", "10"], {})).toThrow(/must be smaller than election-ticks/);
    expect(() => resolveNodeConfig(["--insecure", "--config", configFile({ "no-such-option": 1 })], {})).toThrow(/unknown option "no-such-option"/);
    expect(() => resolveNodeConfig(["--insecure", "--log-level", "loud"], {})).toThrow(/log-level must be one of/);
  });
});

describe("node configuration from a StatefulSet", () => {
  const env = { POD_NAME: "raftmq-2", POD_NAMESPACE: "mq", RAFTMQ_INITIAL_CLUSTER_SIZE: "3", RAFTMQ_PEER_HOST_TEMPLATE: "raftmq-{ordinal}.raftmq-headless.{namespace}.svc.cluster.local" };
  const host = (n: number) => `raftmq-${n}.raftmq-headless.mq.svc.cluster.local`;

  it("derives id, initial cluster and advertise host from the pod name", () => {
    const c = resolveNodeConfig(["--insecure"], env);
    expect(c).toMatchObject({ podName: "raftmq-2", nodeId: 3, join: false, advertiseHost: host(2) });
    expect(c.initialCluster).toEqual([0, 1, 2].map((n) => ({ id: n + 1, peerAddress: `${host(n)}:7700`, clientAddress: `${host(n)}:7600` })));
    expect(c.statefulSet?.ordinal).toBe(2);
    expect(resolveNodeConfig(["--insecure"], { ...env, POD_NAME: "raftmq-3" })).toMatchObject({ nodeId: 4, join: true });
  });

  it("reads RAFTMQ_POD_NAME before POD_NAME and the flag before both", () => {
    expect(resolveNodeConfig(["--insecure"], { ...env, RAFTMQ_POD_NAME: "raftmq-0" }).nodeId).toBe(1);
    expect(resolveNodeConfig(["--insecure", "--pod-name", "raftmq-1"], { ...env, RAFTMQ_POD_NAME: "raftmq-0" }).nodeId).toBe(2);
  });

  it("dials aliased hosts: peers, the advertised host and the initial cluster", () => {
    const aliases = [0, 1, 2].map((n) => `${host(n)}=127.0.0.${10 + n}`).join(",");
    const c = resolveNodeConfig(["--insecure"], { ...env, RAFTMQ_HOST_ALIAS: aliases });
    expect(c.advertiseHost).toBe("127.0.0.12");
    expect(c.initialCluster.map((m) => m.peerAddress)).toEqual(["127.0.0.10:7700", "127.0.0.11:7700", "127.0.0.12:7700"]);
    expect(c.hostAlias.get(host(0))).toBe("127.0.0.10");
    const plain = resolveNodeConfig(["--insecure", "--initial-cluster", `1=${host(0)}:7700/${host(0)}:7600`, "--host-alias", `${host(0)}=127.0.0.9`], {});
    expect(plain.initialCluster[0]?.clientAddress).toBe("127.0.0.9:7600");
  });

  it("leaves nodes without a pod name as they were", () => {
    const c = resolveNodeConfig(["--insecure"], {});
    expect(c.statefulSet).toBeNull();
    expect(c.initialClusterSize).toBe(3);
    expect(c.nodeId).toBe(1);
  });

  it("refuses a second source of identity and bad StatefulSet values", () => {
    expect(() => resolveNodeConfig(["--insecure", "--node-id", "7"], env)).toThrow(/do not set node-id/);
    expect(() => resolveNodeConfig(["--insecure"], { ...env, RAFTMQ_INITIAL_CLUSTER: "1=a:1/b:2" })).toThrow(/do not set initial-cluster/);
    expect(() => resolveNodeConfig(["--insecure"], { ...env, POD_NAME: "raftmq" })).toThrow(ConfigError);
    expect(() => resolveNodeConfig(["--insecure"], { ...env, POD_NAMESPACE: undefined })).toThrow(/POD_NAMESPACE is not set/);
    expect(() => resolveNodeConfig(["--insecure"], { ...env, RAFTMQ_INITIAL_CLUSTER_SIZE: "0" })).toThrow(/initial-cluster-size must be an integer/);
    expect(() => resolveNodeConfig(["--insecure"], { ...env, RAFTMQ_HOST_ALIAS: "a=not-an-ip" })).toThrow(ConfigError);
    expect(() => resolveNodeConfig(["--insecure"], { ...env, RAFTMQ_PEER_HOST_TEMPLATE: "raftmq.svc" })).toThrow(/must contain \{ordinal\}/);
  });
});

describe("security options", () => {
  it("refuses to start without certificates unless --insecure is given", () => {
    expect(() => resolveNodeConfig([], {})).toThrow(/has no TLS certificates.*--insecure/);
    expect(resolveNodeConfig(["--insecure"], {}).insecure).toBe(true);
    expect(resolveNodeConfig([], { RAFTMQ_INSECURE: "true" }).insecure).toBe(true);
  });

  it("needs all three TLS files, and refuses certificates together with --insecure", () => {
    expect(() => resolveNodeConfig(["--tls-ca-file", "ca.crt"], {})).toThrow(/TLS needs tls-cert-file, tls-key-file as well/);
    const files = ["--tls-ca-file", "ca.crt", "--tls-cert-file", "n.crt", "--tls-key-file", "n.key"];
    expect(resolveNodeConfig(files, {})).toMatchObject({ insecure: false, tlsCaFile: "ca.crt", clientCertAuth: "optional", loopbackUsers: ["guest"], auditLog: "log" });
    expect(() => resolveNodeConfig([...files, "--insecure"], {})).toThrow(/contradict/);
    expect(() => resolveNodeConfig([...files, "--client-cert-auth", "sometimes"], {})).toThrow(/client-cert-auth must be none, optional or require/);
    expect(resolveNodeConfig([...files, "--client-plaintext-port", "7611"], {}).clientPlaintextPort).toBe(7611);
    expect(() => resolveNodeConfig(["--insecure", "--client-plaintext-port", "7611"], {})).toThrow(/plaintext already/);
  });

  it("serves AMQP on 5672 and, with TLS, AMQPS on 5671; either can be turned off", () => {
    const files = ["--tls-ca-file", "ca.crt", "--tls-cert-file", "n.crt", "--tls-key-file", "n.key"];
    expect(resolveNodeConfig(files, {})).toMatchObject({ amqpPort: 5672, amqpsPort: 5671 });
    expect(resolveNodeConfig(["--insecure"], {})).toMatchObject({ amqpPort: 5672, amqpsPort: -1 });
    expect(resolveNodeConfig([...files, "--amqp-port", "", "--amqps-port", "0"], {})).toMatchObject({ amqpPort: -1, amqpsPort: 0 });
    expect(resolveNodeConfig(["--insecure"], { RAFTMQ_AMQP_PORT: "15672" }).amqpPort).toBe(15672);
    expect(() => resolveNodeConfig(["--insecure", "--amqps-port", "5671"], {})).toThrow(/amqps-port serves AMQP over TLS/);
    expect(() => resolveNodeConfig(["--insecure", "--amqp-port", "70000"], {})).toThrow(/amqp-port/);
  });
});

describe("client connection options", () => {
  it("bound streams per connection, keepalive and the consumer timeout, with the defaults --help shows", () => {
    const c = resolveNodeConfig(["--insecure"], {});
    expect({ streams: c.maxStreamsPerConnection, keepalive: c.clientKeepaliveMs, timeout: c.clientKeepaliveTimeoutMs, consumer: c.consumerTimeoutMs }).toEqual({
      streams: 1000,
      keepalive: 10_000,
      timeout: 5000,
      consumer: 1_800_000,
    });
    expect(resolveNodeConfig(["--insecure", "--max-streams-per-connection", "16", "--consumer-timeout-ms", "0"], {})).toMatchObject({ maxStreamsPerConnection: 16, consumerTimeoutMs: 0 });
    expect(() => resolveNodeConfig(["--insecure", "--max-streams-per-connection", "0"], {})).toThrow(/max-streams-per-connection must be an integer/);
  });
});


describe("request metadata and the PublishStream window", () => {
  it("default to 16 KiB of metadata and 4096 requests awaiting confirms, as --help says", () => {
    expect(resolveNodeConfig(["--insecure"], {})).toMatchObject({ maxMetadataBytes: 16_384, publishStreamWindow: 4096 });
    const help = buildCommand().helpInformation().replace(/\s+/g, " ");
    expect(help).toMatch(/--max-metadata-bytes <value> bytes of metadata one call may carry on the client port, .* RESOURCE_EXHAUSTED.* \(env RAFTMQ_MAX_METADATA_BYTES, default 16384\)/);
    expect(help).toMatch(/--publish-stream-window <value> publish requests one PublishStream may have awaiting confirms; .*\(env RAFTMQ_PUBLISH_STREAM_WINDOW, default 4096\)/);
    expect(help).toMatch(/--consume-max-pending-bytes <value> .*\(env RAFTMQ_CONSUME_MAX_PENDING_BYTES, default 16777216\)/);
  });

  it("are set by flag, environment or file, within their ranges", () => {
    expect(resolveNodeConfig(["--insecure", "--max-metadata-bytes", "65536", "--publish-stream-window", "8"], {})).toMatchObject({ maxMetadataBytes: 65_536, publishStreamWindow: 8 });
    expect(resolveNodeConfig(["--insecure"], { RAFTMQ_MAX_METADATA_BYTES: "8192" }).maxMetadataBytes).toBe(8192);
    expect(resolveNodeConfig(["--insecure", "--config", configFile({ "max-metadata-bytes": 1_048_576 })], {}).maxMetadataBytes).toBe(1_048_576);
    // Below 8 KiB, Basic credentials of the longest allowed kind would no longer fit.
    expect(() => resolveNodeConfig(["--insecure", "--max-metadata-bytes", "8191"], {})).toThrow("max-metadata-bytes must be an integer in [8192, 1048576], got \"8191\"");
    expect(() => resolveNodeConfig(["--insecure", "--max-metadata-bytes", "1048577"], {})).toThrow(/max-metadata-bytes must be an integer/);
    expect(() => resolveNodeConfig(["--insecure", "--publish-stream-window", "0"], {})).toThrow(/publish-stream-window must be an integer in \[1, 1000000\]/);
  });
});
