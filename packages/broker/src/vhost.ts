// Virtual hosts (RabbitMQ's): each is a namespace of exchanges and queues with its own default
// exchange and amq.* exchanges. Routing, alternate and dead-letter exchanges never leave one.
import { Exchange, type ExchangeType } from "./exchange.ts";
import type { Queue } from "./queue.ts";

/** The vhost of a command that names none; it always exists. */
export const DEFAULT_VHOST = "/";

export const builtinExchanges: readonly { name: string; type: ExchangeType }[] = [
  { name: "", type: "direct" },
  { name: "amq.direct", type: "direct" },
  { name: "amq.fanout", type: "fanout" },
  { name: "amq.topic", type: "topic" },
  { name: "amq.headers", type: "headers" },
];

export class Vhost {
  /** Insertion ordered, like every map of the state (broker-state.ts). */
  readonly exchanges = new Map<string, Exchange>();
  readonly queues = new Map<string, Queue>();

  constructor(readonly name: string) {}

  /** A new vhost with its predeclared exchanges; a restored one gets them from the snapshot. */
  static withBuiltins(name: string): Vhost {
    const v = new Vhost(name);
    for (const b of builtinExchanges) v.exchanges.set(b.name, new Exchange(b.name, b.type, true, false, false, "", true));
    return v;
  }
}
