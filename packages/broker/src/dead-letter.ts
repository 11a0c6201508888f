// Dead-letter bookkeeping, following RabbitMQ: the x-death history (here the typed
// properties.deaths), x-first-death-* / x-last-death-* headers, and cycle detection.
import { int64 } from "./proto-int.ts";
import type { raftmq } from "@raftmq/proto";
import type { BrokerMessage, MessageProperties } from "./broker-message.ts";

export type DeadLetterReason = "rejected" | "expired" | "maxlen" | "delivery_limit";

type Death = raftmq.v1.Death.$Properties;
type Header = raftmq.v1.Header.$Properties;

/** The message as republished to the dead-letter exchange: same body bytes, new history. */
export function deadLetteredMessage(
  m: BrokerMessage,
  queue: string,
  reason: DeadLetterReason,
  now: number,
  deadLetterExchange: string,
  deadLetterRoutingKey: string | null,
): BrokerMessage {
  const props = m.properties;
  const deaths: Death[] = [...(props.deaths ?? [])];
  const at = deaths.findIndex((d) => d.queue === queue && d.reason === reason);
  if (at >= 0) {
    const old = deaths[at] as Death;
    deaths.splice(at, 1);
    deaths.unshift({ ...old, count: int64(old.count) + 1 });
  } else {
    deaths.unshift({
      queue,
      reason,
      count: 1,
      exchange: m.exchange,
      routingKeys: [m.routingKey],
      timeMs: now,
      originalExpiration: props.expiration ?? "",
    });
  }
  const headers: Header[] = [...(props.headers ?? [])];
  const setHeader = (key: string, value: string, overwrite: boolean) => {
    const i = headers.findIndex((h) => h.key === key);
    if (i >= 0 && !overwrite) return;
    const h: Header = { key, value: { stringValue: value } };
    if (i >= 0) headers[i] = h;
    else headers.push(h);
  };
  setHeader("x-first-death-queue", queue, false);
  setHeader("x-first-death-reason", reason, false);
  setHeader("x-first-death-exchange", m.exchange, false);
  setHeader("x-last-death-queue", queue, true);
  setHeader("x-last-death-reason", reason, true);
  setHeader("x-last-death-exchange", m.exchange, true);
  // The per-message TTL is spent: it stays in the history, not on the message.
  const properties: MessageProperties = { ...props, headers, deaths, expiration: "" };
  return {
    exchange: deadLetterExchange,
    routingKey: deadLetterRoutingKey ?? m.routingKey,
    properties,
    bodyKey: m.bodyKey,
    bodySize: m.bodySize,
  };
}

/**
 * RabbitMQ drops a dead-lettered message that would reach a queue it already died in, unless a
 * rejection happened somewhere in that cycle (then a client is in the loop and it may progress).
 */
export function isDeadLetterCycle(deaths: readonly Death[] | null | undefined, target: string): boolean {
  const ds = deaths ?? [];
  for (const d of ds) {
    if (d.reason === "rejected") return false;
    if (d.queue === target) return true;
  }
  return false;
}
