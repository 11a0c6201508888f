// `raftmq dev`: a local cluster of child node processes, one command from clone to a working
// broker. Node logs go to files; the terminal shows endpoints, the leader and what to try next.
// The nodes run securely as a production cluster would, on a throwaway CA made under the data
// folder: mutual TLS between them, TLS client ports, and the user guest/guest (loopback only);
// plaintext client ports on 127.0.0.1 beside the TLS ones keep local tools flag-free.
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, mkdirSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { connect, type RaftmqClient } from "@raftmq/client";
import { type DevCertificates, NODE_V8_FLAGS, writeDevCertificates } from "@raftmq/server";
import { DEV_ADDRESSES, DEV_HOST, DEV_PASSWORD, DEV_USER, type DevNode, type DevPortBases, devNodes } from "./dev-layout.ts";
import { nodeMainPath, tsxLoaderUrl } from "./node-entry.ts";

/** How long nodes get to start and elect a leader before dev gives up. */
const START_TIMEOUT_MS = 30_000;
/** How long a node gets to stop after SIGTERM before SIGKILL. */
const STOP_TIMEOUT_MS = 10_000;

export interface DevClusterOptions {
  dataDir: string;
  nodes: number;
  ports: DevPortBases;
  logLevel: string;
}

interface RunningNode {
  node: DevNode;
  child: ChildProcess;
  exited: Promise<number | null>;
  logFile: string;
}

function out(line = ""): void {
  process.stdout.write(`${line}\n`);
}

function startNode(node: DevNode, options: DevClusterOptions, initialCluster: string, certs: DevCertificates): RunningNode {
  const cert = certs.nodes.get(node.id);
  if (cert === undefined) throw new Error(`no certificate for node ${node.id}`);
  const dataDir = resolve(options.dataDir, `node-${node.id}`);
  mkdirSync(dataDir, { recursive: true });
  const logFile = resolve(options.dataDir, `node-${node.id}.log`);
  const log = createWriteStream(logFile, { flags: "a" });
  const args = [
    "--import",
    tsxLoaderUrl(),
    nodeMainPath(),
    "--node-id",
    String(node.id),
    "--data-dir",
    dataDir,
    "--host",
    DEV_HOST,
    "--client-port",
    String(node.tlsClientPort),
    "--client-plaintext-port",
    String(node.clientPort),
    "--tls-ca-file",
    certs.ca.certPath,
    "--tls-cert-file",
    cert.certPath,
    "--tls-key-file",
    cert.keyPath,
    "--bootstrap-admin-user",
    DEV_USER,
    "--peer-port",
    String(node.peerPort),
    "--http-port",
    String(node.httpPort),
    "--amqp-port",
    String(node.amqpPort),
    "--amqps-port",
    String(node.amqpsPort),
    "--initial-cluster",
    initialCluster,
    "--log-level",
    options.logLevel,
  ];
  // Own process group: a Ctrl-C reaches dev alone, which then stops the nodes in order.
  const child = spawn(process.execPath, [...NODE_V8_FLAGS, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
    env: { ...process.env, RAFTMQ_BOOTSTRAP_ADMIN_PASSWORD: DEV_PASSWORD },
  });
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  const exited = new Promise<number | null>((res) =>
    child.once("exit", (code) => {
      log.end();
      res(code);
    }),
  );
  return { node, child, exited, logFile };
}

async function waitForLeader(client: RaftmqClient, expected: number, deadline: number): Promise<{ leaderId: number; address: string }> {
  for (;;) {
    const { nodes } = await client.clusterStatus();
    const leader = nodes.find((n) => n.role === "leader");
    if (leader !== undefined && nodes.length === expected && nodes.every((n) => n.ready && n.leaderId === leader.nodeId)) {
      return { leaderId: leader.nodeId, address: leader.address };
    }
    if (Date.now() > deadline) throw new Error(`no leader after ${START_TIMEOUT_MS} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function stopAll(running: RunningNode[]): Promise<void> {
  await Promise.all(
    running.map(async (r) => {
      if (r.child.exitCode !== null || r.child.pid === undefined) return;
      try {
        process.kill(r.child.pid, "SIGTERM");
      } catch {
        return;
      }
      const timer = setTimeout(() => {
        if (r.child.pid !== undefined && r.child.exitCode === null) r.child.kill("SIGKILL");
      }, STOP_TIMEOUT_MS);
      await r.exited;
      clearTimeout(timer);
    }),
  );
}

/** Runs the cluster until SIGINT or SIGTERM; resolves with the exit code. */
export async function runDevCluster(options: DevClusterOptions): Promise<number> {
  const nodes = devNodes(options.nodes, options.ports);
  const initialCluster = nodes.map((n) => `${n.id}=${DEV_HOST}:${n.peerPort}/${DEV_HOST}:${n.clientPort}`).join(",");
  const addresses = nodes.map((n) => `${DEV_HOST}:${n.clientPort}`);
  mkdirSync(options.dataDir, { recursive: true });
  const certDir = resolve(options.dataDir, "certs");
  const certs = await writeDevCertificates(certDir, { nodeIds: nodes.map((n) => n.id), hosts: [DEV_HOST, "localhost"], users: [DEV_USER] });
  const running = nodes.map((n) => startNode(n, options, initialCluster, certs));

  let stopping = false;
  let stopped: () => void = () => undefined;
  const stopSignal = new Promise<void>((res) => {
    stopped = res;
  });
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    out(`\n${signal}: stopping ${running.length} nodes …`);
    stopped();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  const early = Promise.race(running.map((r) => r.exited.then((code) => ({ r, code }))));
  let client: RaftmqClient | undefined;
  try {
    const deadline = Date.now() + START_TIMEOUT_MS;
    const ready = (async () => {
      for (;;) {
        try {
          client = await connect(addresses, { discoveryTimeoutMs: 1000, credentials: { username: DEV_USER, password: DEV_PASSWORD } });
          return await waitForLeader(client, nodes.length, deadline);
        } catch (err) {
          client?.close();
          client = undefined;
          if (Date.now() > deadline) throw err;
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    })();
    const first = await Promise.race([ready.then((leader) => ({ kind: "ready" as const, leader })), early.then((e) => ({ kind: "exited" as const, ...e })), stopSignal.then(() => ({ kind: "stop" as const }))]);
    if (first.kind === "exited") {
      process.stderr.write(`raftmq dev: node ${first.r.node.id} exited with code ${first.code} while starting; see ${first.r.logFile}\n`);
      await stopAll(running);
      return 1;
    }
    if (first.kind === "stop") {
      await stopAll(running);
      return 0;
    }
    const cwd = process.cwd();
    const rel = (p: string) => {
      const r = relative(cwd, p);
      return r === "" ? "." : r.startsWith("..") ? p : r;
    };
    out(`raftmq dev: ${nodes.length} nodes on ${DEV_HOST}`);
    for (const r of running) {
      const n = r.node;
      out(
        `  node ${n.id}  client ${DEV_HOST}:${n.clientPort} (TLS ${DEV_HOST}:${n.tlsClientPort})  peer ${DEV_HOST}:${n.peerPort} (mutual TLS)  AMQP amqp://${DEV_HOST}:${n.amqpPort} (TLS ${n.amqpsPort})  metrics http://${DEV_HOST}:${n.httpPort}/metrics  data ${rel(resolve(options.dataDir, `node-${n.id}`))}  log ${rel(r.logFile)}  pid ${r.child.pid}`,
      );
    }
    out(`leader: node ${first.leader.leaderId} (${first.leader.address})`);
    const ctl = `node ${rel(join(import.meta.dirname, "..", "bin", "raftmqctl.mjs"))}`;
    const flag = addresses.join(",") === DEV_ADDRESSES.join(",") ? "" : ` --addresses ${addresses.join(",")}`;
    out("");
    out("Try:");
    out(`  ${ctl}${flag} status`);
    out(`  ${ctl}${flag} queue declare orders`);
    out(`  ${ctl}${flag} publish orders "first order" "second order"`);
    out(`  ${ctl}${flag} consume orders --count 2`);
    out(`  ${ctl}${flag} bench --messages 20000`);
    out("");
    out(`Clients log in as ${DEV_USER}/${DEV_PASSWORD} (from 127.0.0.1 only), the default of raftmqctl and the SDK's examples.`);
    out(`Over TLS, with the dev CA: ${ctl} --addresses ${DEV_HOST}:${nodes[0]?.tlsClientPort ?? 0} --tls-ca-file ${rel(certs.ca.certPath)} whoami`);
    out(`Or with a client certificate: ... --tls-cert-file ${rel(certs.clients.get(DEV_USER)?.certPath ?? "")} --tls-key-file ${rel(certs.clients.get(DEV_USER)?.keyPath ?? "")}`);
    out("Ctrl-C stops the cluster; the data stays for the next run.");
    client?.close();
    client = undefined;

    const after = await Promise.race([early.then((e) => ({ kind: "exited" as const, ...e })), stopSignal.then(() => ({ kind: "stop" as const }))]);
    if (after.kind === "exited") {
      process.stderr.write(`raftmq dev: node ${after.r.node.id} exited with code ${after.code}; see ${after.r.logFile}. Stopping the others.\n`);
      await stopAll(running);
      return 1;
    }
    await stopAll(running);
    out("stopped");
    return 0;
  } catch (err) {
    process.stderr.write(`raftmq dev: ${err instanceof Error ? err.message : String(err)}; logs in ${running.map((r) => r.logFile).join(", ")}\n`);
    await stopAll(running);
    return 1;
  } finally {
    client?.close();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
