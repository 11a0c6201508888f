// raftmqctl bench: producers publish with confirms while consumers ack, with a live progress bar
// and a final table of throughput and latency percentiles (HdrHistogram, microsecond resolution).
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import type { PublishConfirm, RaftmqClient } from "@raftmq/client";
import cliProgress from "cli-progress";
import { type Command, Option } from "commander";
import hdr from "hdr-histogram-js";
import { positiveInteger, withClient } from "./ctl-context.ts";
import { printJson, printTable } from "./terminal-output.ts";

/** A message must hold its send time. */
const MIN_SIZE = 8;
const MAX_SIZE = 16 * 1024 * 1024;
/** The longest the bench waits for consumers to drain after the last confirm. */
const DRAIN_TIMEOUT_MS = 120_000;

interface BenchOptions {
  messages: number;
  size: number;
  producers: number;
  consumers: number;
  window: number;
  prefetch: number;
  queue?: string;
  keep?: boolean;
  json?: boolean;
}

export interface PhaseFigures {
  messages: number;
  seconds: number;
  messagesPerSecond: number;
  mebibytesPerSecond: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
}

function now(): number {
  return performance.timeOrigin + performance.now();
}

function figures(messages: number, size: number, ms: number, histogram: hdr.Histogram): PhaseFigures {
  const seconds = ms / 1000;
  // Percentiles are bucket upper bounds; they never exceed the largest value recorded.
  const at = (p: number) => Math.round(Math.min(histogram.getValueAtPercentile(p), histogram.maxValue)) / 1000;
  return {
    messages,
    seconds: Math.round(seconds * 1000) / 1000,
    messagesPerSecond: seconds > 0 ? Math.round(messages / seconds) : 0,
    mebibytesPerSecond: seconds > 0 ? Math.round(((messages * size) / seconds / 1024 / 1024) * 100) / 100 : 0,
    latencyMs: { p50: at(50), p90: at(90), p99: at(99), max: Math.round(histogram.maxValue) / 1000 },
  };
}

function newHistogram(): hdr.Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });
}

async function produce(client: RaftmqClient, queue: string, count: number, o: BenchOptions, latency: hdr.Histogram, onConfirm: () => void): Promise<void> {
  const publisher = client.createPublisher({ window: o.window });
  const outstanding: Promise<PublishConfirm>[] = [];
  for (let i = 0; i < count; i++) {
    const body = Buffer.alloc(o.size);
    const sentAt = now();
    body.writeDoubleLE(sentAt, 0);
    const confirm = publisher.publish("", queue, body);
    outstanding.push(
      confirm.then((c) => {
        latency.recordValue(Math.max(1, Math.round((now() - sentAt) * 1000)));
        onConfirm();
        return c;
      }),
    );
    // Keep the publisher's queue short: wait for the oldest confirm whenever the window is full.
    if (publisher.stats().queued > 0) await outstanding.shift();
  }
  await Promise.all(outstanding);
  await publisher.close();
}

async function runBench(client: RaftmqClient, o: BenchOptions): Promise<void> {
  const queue = o.queue ?? `bench-${randomUUID().slice(0, 8)}`;
  await client.declareQueue(queue, { durable: true });
  const publishLatency = newHistogram();
  const endToEnd = newHistogram();
  let published = 0;
  let consumed = 0;

  // Bars only on a terminal: scripts reading stderr get the figures without drawing noise.
  const bars =
    process.stderr.isTTY === true
      ? new cliProgress.MultiBar(
          { format: "{phase} |{bar}| {value}/{total} {rate}/s", hideCursor: true, clearOnComplete: false, stream: process.stderr, fps: 5 },
          cliProgress.Presets.shades_classic,
        )
      : null;
  const started = now();
  const rate = (n: number) => String(Math.round(n / Math.max(0.001, (now() - started) / 1000)));
  const publishBar = bars?.create(o.messages, 0, { phase: "publish", rate: "0" });
  const consumeBar = o.consumers > 0 ? bars?.create(o.messages, 0, { phase: "consume", rate: "0" }) : undefined;
  const ticker = setInterval(() => {
    publishBar?.update(published, { rate: rate(published) });
    consumeBar?.update(consumed, { rate: rate(consumed) });
  }, 200);

  let allConsumed: () => void = () => undefined;
  const drained = new Promise<void>((resolve) => {
    allConsumed = resolve;
  });
  let consumeEnd = 0;
  const consumers = await Promise.all(Array.from({ length: o.consumers }, () => client.consume(queue, { prefetch: o.prefetch })));
  const consuming = consumers.map(async (consumer) => {
    for await (const d of consumer) {
      if (d.body.length >= MIN_SIZE) endToEnd.recordValue(Math.max(1, Math.round((now() - d.body.readDoubleLE(0)) * 1000)));
      d.ack();
      if (++consumed >= o.messages) {
        consumeEnd = now();
        allConsumed();
      }
    }
  });

  const per = Math.floor(o.messages / o.producers);
  const counts = Array.from({ length: o.producers }, (_, i) => per + (i < o.messages % o.producers ? 1 : 0));
  await Promise.all(
    counts.map((n) =>
      produce(client, queue, n, o, publishLatency, () => {
        published++;
      }),
    ),
  );
  const publishEnd = now();
  if (o.consumers > 0) {
    const timeout = new Promise<void>((_, reject) => setTimeout(() => reject(new Error(`consumers received ${consumed} of ${o.messages} messages within ${DRAIN_TIMEOUT_MS} ms`)), DRAIN_TIMEOUT_MS).unref());
    await Promise.race([drained, timeout]);
  }
  clearInterval(ticker);
  publishBar?.update(published, { rate: rate(published) });
  consumeBar?.update(consumed, { rate: rate(consumed) });
  bars?.stop();
  await Promise.all(consumers.map((c) => c.close()));
  await Promise.all(consuming);
  if (o.keep !== true) await client.deleteQueue(queue);

  const publish = figures(o.messages, o.size, publishEnd - started, publishLatency);
  const consume = o.consumers > 0 ? figures(o.messages, o.size, consumeEnd - started, endToEnd) : null;
  if (o.json === true) {
    printJson({ queue, messages: o.messages, size: o.size, producers: o.producers, consumers: o.consumers, window: o.window, prefetch: o.prefetch, publish, consume });
    return;
  }
  const row = (name: string, f: PhaseFigures) => [name, f.messages, f.seconds, f.messagesPerSecond, f.mebibytesPerSecond, f.latencyMs.p50, f.latencyMs.p90, f.latencyMs.p99, f.latencyMs.max];
  printTable(
    ["workload", "messages", "seconds", "msg/s", "MiB/s", "p50 ms", "p90 ms", "p99 ms", "max ms"],
    [row("publish (confirm latency)", publish), ...(consume === null ? [] : [row("consume (end-to-end latency)", consume)])],
  );
}

export function addBenchCommand(program: Command): void {
  program
    .command("bench")
    .description("publish with confirms while consumers ack; prints throughput and latency percentiles (p50, p90, p99, max)")
    .addOption(new Option("--messages <n>", "messages in total").default(10_000).argParser(positiveInteger("--messages")))
    .addOption(new Option("--size <bytes>", `body size, ${MIN_SIZE} to ${MAX_SIZE}`).default(1024).argParser(positiveInteger("--size", MIN_SIZE)))
    .addOption(new Option("--producers <n>", "publishers, each on its own stream").default(1).argParser(positiveInteger("--producers")))
    .addOption(new Option("--window <n>", "messages awaiting confirms per producer (at most 4096)").default(256).argParser(positiveInteger("--window")))
    .addOption(new Option("--consumers <n>", "consumers (0: publish only)").default(1).argParser(positiveInteger("--consumers", 0)))
    .addOption(new Option("--prefetch <n>", "prefetch of each consumer").default(500).argParser(positiveInteger("--prefetch")))
    .option("--queue <name>", "queue to use (default: a new bench-… queue, deleted afterwards)")
    .option("--keep", "keep the queue afterwards")
    .option("--json", "print the figures as JSON")
    .action(async (o: BenchOptions, cmd: Command) => {
      if (o.size > MAX_SIZE) throw new RangeError(`--size must be at most ${MAX_SIZE}`);
      if (o.window > 4096) throw new RangeError("--window must be at most 4096");
      await withClient(cmd, (client) => runBench(client, o));
    });
}
