// Process entry of a raftmq node:
//   node --import tsx packages/server/src/node-main.ts --node-id 1 --initial-cluster ...
// Exit codes: 0 stopped or removed, 1 failure, 2 bad configuration, 65 corrupt data directory
// (DATA_CORRUPT_EXIT_CODE: do not restart; replace the node with `raftmqctl members replace`).
import { CommanderError } from "commander";
import { pino } from "pino";
import { corruptionReport, DATA_CORRUPT_EXIT_CODE, findCorruption } from "./corruption-exit.ts";
import { ConfigError, resolveNodeConfig } from "./node-config.ts";
import { type NodeSecuritySetup, RaftmqNode, securitySetup } from "./raftmq-node.ts";
import { TlsSetupError } from "./security/node-security.ts";

async function main(): Promise<number> {
  let config: ReturnType<typeof resolveNodeConfig>;
  try {
    config = resolveNodeConfig(process.argv.slice(2), process.env);
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    if (err instanceof ConfigError) {
      process.stderr.write(`raftmq-node: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  let security: NodeSecuritySetup;
  try {
    security = securitySetup(config, process.env);
  } catch (err) {
    if (err instanceof ConfigError || err instanceof TlsSetupError) {
      process.stderr.write(`raftmq-node: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const log = pino({ level: config.logLevel, base: { node: config.nodeId } });
  let node: RaftmqNode;
  try {
    node = await RaftmqNode.start(config, log, {}, security);
  } catch (err) {
    const corruption = findCorruption(err);
    if (corruption !== null) {
      // Storage refused to open: nothing was served, no vote or acknowledgement sent.
      const { msg, ...report } = corruptionReport(corruption, config, "at startup");
      log.fatal(report, msg);
      return DATA_CORRUPT_EXIT_CODE;
    }
    log.fatal({ err }, "node failed to start");
    return 1;
  }
  log.info({ event: "started", ports: node.ports, dataDir: config.dataDir, pid: process.pid, tls: !security.security.insecure }, "node started");

  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) return;
    signalled = true;
    log.info({ event: "signal", signal }, "shutting down");
    node.shutdown({ transfer: true }).then(
      () => process.exit(0),
      (err: unknown) => {
        log.fatal({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);

  const exit = await node.exited;
  if (exit.code === 0) return 0;
  // The Raft loop has stopped already (the driver stops before it reports a failure), so
  // nothing more leaves this node; the servers close below.
  const corruption = findCorruption(exit.error);
  if (corruption !== null) {
    const { msg, ...report } = corruptionReport(corruption, config, "while running");
    log.fatal(report, msg);
  } else {
    log.fatal({ err: exit.error }, "node stopped after a fatal error");
  }
  await node.shutdown({ transfer: false }).catch(() => undefined);
  return corruption === null ? 1 : DATA_CORRUPT_EXIT_CODE;
}

main().then(
  (code) => {
    process.exit(code);
  },
  (err: unknown) => {
    process.stderr.write(`raftmq-node: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
