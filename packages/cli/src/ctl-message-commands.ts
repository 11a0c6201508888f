// raftmqctl publish (arguments or stdin, one message per line, with confirms) and consume.
import { createInterface } from "node:readline";
import type { PublishOptions } from "@raftmq/client";
import { type Command, Option } from "commander";
import { positiveInteger, withClient } from "./ctl-context.ts";
import { println } from "./terminal-output.ts";

export function addMessageCommands(program: Command): void {
  program
    .command("publish")
    .description("publish messages and wait for their confirms: the arguments, or else each line of stdin")
    .argument("<routing-key>", "with the default exchange, the queue's name")
    .argument("[messages...]", "message bodies; without them stdin is read, one message per line")
    .option("--exchange <name>", "exchange to publish to", "")
    .option("--no-mandatory", "accept messages no queue takes (by default they fail as unroutable)")
    .option("--content-type <type>", "content type property")
    .option("--persistent", "mark messages persistent (delivery mode 2)")
    .addOption(new Option("--window <n>", "messages awaiting confirms at once").default(256).argParser(positiveInteger("--window")))
    .action(
      async (routingKey: string, messages: string[], o: { exchange: string; mandatory: boolean; contentType?: string; persistent?: boolean; window: number }, cmd: Command) => {
        await withClient(cmd, async (client) => {
          const publisher = client.createPublisher({ window: Math.min(o.window, 4096) });
          const options: PublishOptions = { mandatory: o.mandatory, properties: { contentType: o.contentType, persistent: o.persistent } };
          let sent = 0;
          let confirmed = 0;
          let failed = 0;
          const failures: string[] = [];
          const routed = new Set<string>();
          const send = (body: string) => {
            const index = ++sent;
            return publisher.publish(o.exchange, routingKey, body, options).then(
              (c) => {
                confirmed++;
                for (const q of c.routedQueues) routed.add(q);
              },
              (err: unknown) => {
                failed++;
                // Only the first few are worth a line each.
                if (failures.length < 10) failures.push(`message ${index}: ${err instanceof Error ? err.message : String(err)}`);
              },
            );
          };
          if (messages.length > 0) {
            for (const m of messages) void send(m);
          } else {
            const lines = createInterface({ input: process.stdin, crlfDelay: Number.POSITIVE_INFINITY });
            for await (const line of lines) {
              const done = send(line);
              // A full window pauses reading, so a huge stdin never piles up in memory.
              if (publisher.stats().queued > 0) await done;
            }
          }
          await publisher.flush();
          await publisher.close();
          if (failed > 0) {
            for (const f of failures) process.stderr.write(`raftmqctl: ${f}\n`);
            throw new PublishFailed(`${failed} of ${sent} messages were not confirmed (${confirmed} were)`);
          }
          println(`published ${sent} messages, all confirmed${routed.size > 0 ? ` (routed to ${[...routed].sort().join(", ")})` : ""}`);
        });
      },
    );

  program
    .command("consume")
    .description("print messages of a queue, one per line, acknowledging each after printing; Ctrl-C stops")
    .argument("<queue>")
    .addOption(new Option("--count <n>", "stop after n messages").argParser(positiveInteger("--count")))
    .option("--no-ack", "let the broker count messages as acknowledged when sent")
    .addOption(new Option("--prefetch <n>", "unacknowledged messages the broker sends ahead").default(100).argParser(positiveInteger("--prefetch")))
    .option("--verbose", "print the routing key, delivery count and redelivered flag before each body")
    .action(async (queue: string, o: { count?: number; ack: boolean; prefetch: number; verbose?: boolean }, cmd: Command) => {
      await withClient(cmd, async (client) => {
        const consumer = await client.consume(queue, { prefetch: o.prefetch, noAck: !o.ack });
        const stop = () => void consumer.close();
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
        let n = 0;
        try {
          for await (const d of consumer) {
            const meta = o.verbose === true ? `[${d.routingKey} #${d.deliveryCount}${d.redelivered ? " redelivered" : ""}] ` : "";
            println(`${meta}${d.text()}`);
            if (o.ack) d.ack();
            if (o.count !== undefined && ++n >= o.count) break;
          }
        } finally {
          process.off("SIGINT", stop);
          process.off("SIGTERM", stop);
        }
      });
    });
}

/** Some messages of a publish were not confirmed; the details were printed already. */
export class PublishFailed extends Error {
  override name = "PublishFailed";
}
