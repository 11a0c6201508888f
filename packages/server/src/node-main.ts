// Process entry of a raftmq node:
//   node --import tsx packages/server/src/node-main.ts --node-id 1 --initial-cluster ...
import { CommanderError } from "commander";
import { pino } from "pino";
import { ConfigError, resolveNodeConfig } from "./node-config.ts";
import { RaftmqNode } from "./raftmq-node.ts";

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
  const log = pino({ level: config.logLevel, base: { node: config.nodeId } });
  let node: RaftmqNode;
  try {
    node = await RaftmqNode.start(config, log);
  } catch (err) {
    log.fatal({ err }, "node failed to start");
    return 1;
  }
  log.info({ event: "started", ports: node.ports, dataDir: config.dataDir, pid: process.pid }, "node started");

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
  log.fatal({ err: exit.error }, "node stopped after a fatal error");
  await node.shutdown({ transfer: false }).catch(() => undefined);
  return 1;
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
