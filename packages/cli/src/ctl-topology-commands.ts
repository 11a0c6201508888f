// raftmqctl exchange | queue | binding declare|delete|list, queue info, purge.
import { EXCHANGE_TYPES, type ExchangeType, type QueueArguments, type QueueInfo } from "@raftmq/client";
import { type Command, Option } from "commander";
import { positiveInteger, withClient } from "./ctl-context.ts";
import { printJson, printTable, println } from "./terminal-output.ts";

function queueArgs(q: QueueArguments): string {
  return Object.entries(q)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(" ");
}

function queueRows(queues: QueueInfo[]): (string | number)[][] {
  return queues.map((q) => [q.name, q.messagesReady, q.messagesUnacked, q.consumers, q.durable ? "yes" : "no", queueArgs(q.arguments)]);
}

const QUEUE_HEAD = ["name", "ready", "unacked", "consumers", "durable", "arguments"];

export function addTopologyCommands(program: Command): void {
  const exchange = program.command("exchange").description("declare, delete and list exchanges");
  exchange
    .command("declare")
    .description("declare an exchange (a no-op when it exists with the same properties)")
    .argument("<name>")
    .addOption(new Option("--type <type>", "exchange type").choices(EXCHANGE_TYPES).default("direct"))
    .option("--transient", "not durable")
    .option("--auto-delete", "delete it when its last binding goes")
    .option("--internal", "clients cannot publish to it directly")
    .option("--alternate-exchange <name>", "where unroutable messages go")
    .action(async (name: string, o: { type: ExchangeType; transient?: boolean; autoDelete?: boolean; internal?: boolean; alternateExchange?: string }, cmd: Command) => {
      await withClient(cmd, async (client) => {
        await client.declareExchange(name, o.type, {
          durable: o.transient !== true,
          autoDelete: o.autoDelete === true,
          internal: o.internal === true,
          alternateExchange: o.alternateExchange ?? "",
        });
        println(`exchange ${name} (${o.type}) declared`);
      });
    });
  exchange
    .command("delete")
    .description("delete an exchange")
    .argument("<name>")
    .option("--if-unused", "fail instead when it has bindings")
    .action(async (name: string, o: { ifUnused?: boolean }, cmd: Command) => {
      await withClient(cmd, async (client) => {
        await client.deleteExchange(name, { ifUnused: o.ifUnused === true });
        println(`exchange ${name} deleted`);
      });
    });
  exchange
    .command("list")
    .description("list exchanges")
    .option("--json", "print JSON")
    .action(async (o: { json?: boolean }, cmd: Command) => {
      await withClient(cmd, async (client) => {
        const list = await client.listExchanges();
        if (o.json === true) printJson(list);
        else printTable(["name", "type", "durable", "auto-delete", "internal", "alternate"], list.map((e) => [e.name === "" ? '""' : e.name, e.type, e.durable ? "yes" : "no", e.autoDelete ? "yes" : "no", e.internal ? "yes" : "no", e.alternateExchange]));
      });
    });

  const queue = program.command("queue").description("declare, delete, list and inspect queues");
  queue
    .command("declare")
    .description("declare a queue (a no-op when it exists with the same properties)")
    .argument("<name>")
    .option("--transient", "not durable")
    .option("--auto-delete", "delete it when its last consumer goes")
    .addOption(new Option("--max-length <n>", "x-max-length: ready messages").argParser(positiveInteger("--max-length", 0)))
    .addOption(new Option("--max-length-bytes <n>", "x-max-length-bytes: bytes of ready messages").argParser(positiveInteger("--max-length-bytes", 0)))
    .addOption(new Option("--overflow <mode>", "x-overflow: what a full queue does with a new message").choices(["drop-head", "reject-publish"]))
    .addOption(new Option("--message-ttl <ms>", "x-message-ttl").argParser(positiveInteger("--message-ttl", 0)))
    .addOption(new Option("--expires <ms>", "x-expires: delete after this long unused").argParser(positiveInteger("--expires")))
    .option("--dead-letter-exchange <name>", "x-dead-letter-exchange")
    .option("--dead-letter-routing-key <key>", "x-dead-letter-routing-key")
    .addOption(new Option("--delivery-limit <n>", "x-delivery-limit").argParser(positiveInteger("--delivery-limit", 0)))
    .option("--single-active-consumer", "x-single-active-consumer")
    .action(
      async (
        name: string,
        o: {
          transient?: boolean;
          autoDelete?: boolean;
          maxLength?: number;
          maxLengthBytes?: number;
          overflow?: "drop-head" | "reject-publish";
          messageTtl?: number;
          expires?: number;
          deadLetterExchange?: string;
          deadLetterRoutingKey?: string;
          deliveryLimit?: number;
          singleActiveConsumer?: boolean;
        },
        cmd: Command,
      ) => {
        const args: QueueArguments = {};
        if (o.maxLength !== undefined) args.maxLength = o.maxLength;
        if (o.maxLengthBytes !== undefined) args.maxLengthBytes = o.maxLengthBytes;
        if (o.overflow !== undefined) args.overflow = o.overflow;
        if (o.messageTtl !== undefined) args.messageTtlMs = o.messageTtl;
        if (o.expires !== undefined) args.expiresMs = o.expires;
        if (o.deadLetterExchange !== undefined) args.deadLetterExchange = o.deadLetterExchange;
        if (o.deadLetterRoutingKey !== undefined) args.deadLetterRoutingKey = o.deadLetterRoutingKey;
        if (o.deliveryLimit !== undefined) args.deliveryLimit = o.deliveryLimit;
        if (o.singleActiveConsumer === true) args.singleActiveConsumer = true;
        await withClient(cmd, async (client) => {
          const r = await client.declareQueue(name, { durable: o.transient !== true, autoDelete: o.autoDelete === true, arguments: args });
          println(`queue ${r.name} declared (${r.messageCount} messages, ${r.consumerCount} consumers)`);
        });
      },
    );
  queue
    .command("delete")
    .description("delete a queue and its messages")
    .argument("<name>")
    .option("--if-unused", "fail instead when it has consumers")
    .option("--if-empty", "fail instead when it has messages")
    .action(async (name: string, o: { ifUnused?: boolean; ifEmpty?: boolean }, cmd: Command) => {
      await withClient(cmd, async (client) => {
        const r = await client.deleteQueue(name, { ifUnused: o.ifUnused === true, ifEmpty: o.ifEmpty === true });
        println(`queue ${name} deleted with ${r.messageCount} messages`);
      });
    });
  queue
    .command("list")
    .description("list queues with their message and consumer counts")
    .option("--json", "print JSON")
    .action(async (o: { json?: boolean }, cmd: Command) => {
      await withClient(cmd, async (client) => {
        const list = await client.listQueues();
        if (o.json === true) printJson(list);
        else printTable(QUEUE_HEAD, queueRows(list));
      });
    });
  queue
    .command("info")
    .description("one queue's counts and arguments")
    .argument("<name>")
    .option("--json", "print JSON")
    .action(async (name: string, o: { json?: boolean }, cmd: Command) => {
      await withClient(cmd, async (client) => {
        const q = await client.queueInfo(name);
        if (o.json === true) printJson(q);
        else printTable(QUEUE_HEAD, queueRows([q]));
      });
    });

  const binding = program.command("binding").description("declare, delete and list bindings");
  /** A binding's destination from the command line: a queue, or with --to-exchange an exchange. */
  const destinationOf = (name: string, o: { toExchange?: boolean }) => (o.toExchange === true ? { exchange: name } : name);
  const described = (name: string, o: { toExchange?: boolean }) => (o.toExchange === true ? `exchange ${name}` : name);
  binding
    .command("declare")
    .description("bind a queue (or, with --to-exchange, an exchange) to an exchange")
    .argument("<exchange>", "the source exchange")
    .argument("<destination>", "the queue, or with --to-exchange the exchange, that receives what the source routes")
    .argument("[routing-key]", "binding key", "")
    .option("--to-exchange", "the destination is an exchange (exchange-to-exchange binding)")
    .action(async (exchangeName: string, destination: string, key: string, o: { toExchange?: boolean }, cmd: Command) => {
      await withClient(cmd, async (client) => {
        await client.bind(exchangeName, destinationOf(destination, o), key);
        println(`bound ${described(destination, o)} to ${exchangeName} with key "${key}"`);
      });
    });
  binding
    .command("delete")
    .description("remove a binding")
    .argument("<exchange>", "the source exchange")
    .argument("<destination>", "the queue, or with --to-exchange the exchange")
    .argument("[routing-key]", "binding key", "")
    .option("--to-exchange", "the destination is an exchange")
    .action(async (exchangeName: string, destination: string, key: string, o: { toExchange?: boolean }, cmd: Command) => {
      await withClient(cmd, async (client) => {
        await client.unbind(exchangeName, destinationOf(destination, o), key);
        println(`unbound ${described(destination, o)} from ${exchangeName} with key "${key}"`);
      });
    });
  binding
    .command("list")
    .description("list bindings")
    .option("--exchange <name>", "only bindings of this exchange")
    .option("--queue <name>", "only bindings to this queue")
    .option("--to-exchange <name>", "only bindings to this exchange")
    .option("--json", "print JSON")
    .action(async (o: { exchange?: string; queue?: string; toExchange?: string; json?: boolean }, cmd: Command) => {
      await withClient(cmd, async (client) => {
        const list = await client.listBindings({ exchange: o.exchange, queue: o.queue, destinationExchange: o.toExchange });
        if (o.json === true) printJson(list);
        else printTable(["exchange", "destination", "routing key"], list.map((b) => [b.exchange === "" ? '""' : b.exchange, b.queue !== "" ? b.queue : `exchange ${b.destinationExchange}`, b.routingKey]));
      });
    });

  program
    .command("purge")
    .description("remove every ready message of a queue")
    .argument("<queue>")
    .action(async (name: string, _o: unknown, cmd: Command) => {
      await withClient(cmd, async (client) => {
        const r = await client.purgeQueue(name);
        println(`purged ${r.messageCount} messages from ${name}`);
      });
    });
}

