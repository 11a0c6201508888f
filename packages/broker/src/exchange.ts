// Exchanges and their bindings: which queues and exchanges a (routing key, headers) pair reaches
// from one exchange. Following exchange destinations further is the broker's (broker.ts, route).
import type { raftmq } from "@raftmq/proto";
import { argumentsKey, compileHeadersMatcher, type HeadersMatcher, headersMatch } from "./headers-match.ts";
import { TopicTrie } from "./topic-trie.ts";

type Header = raftmq.v1.Header.$Properties;

export type ExchangeType = "direct" | "fanout" | "topic" | "headers";

/** What a binding delivers to: a queue (queue.bind) or another exchange (exchange.bind). */
export type DestinationKind = "queue" | "exchange";

export interface Binding {
  /** The source: the exchange whose bindings hold this one. */
  readonly exchange: string;
  readonly destinationKind: DestinationKind;
  /** The queue's or the exchange's name, as destinationKind says; in the source's vhost. */
  readonly destination: string;
  readonly routingKey: string;
  readonly arguments: readonly Header[];
  /** Identity within the source exchange: destination, key and canonical arguments. */
  readonly id: string;
  readonly matcher: HeadersMatcher | null;
}

export function bindingId(kind: DestinationKind, destination: string, routingKey: string, args: readonly Header[]): string {
  // A queue and an exchange may share a name: the kind keeps their bindings apart.
  return `${kind === "queue" ? "q" : "e"}\u0000${destination}\u0000${routingKey}\u0000${argumentsKey(args)}`;
}

/**
 * The destinations of one kind an exchange's bindings reach, indexed for its type (headers
 * bindings are matched one by one, from the exchange's own list). Counts allow several bindings
 * to one destination that differ in key or arguments.
 */
class DestinationIndex {
  private readonly direct = new Map<string, Map<string, number>>();
  private readonly fanout = new Map<string, number>();
  private readonly topic = new TopicTrie();
  /** Bindings indexed here. */
  size = 0;

  add(type: ExchangeType, b: Binding): void {
    this.size++;
    switch (type) {
      case "direct": {
        let byDestination = this.direct.get(b.routingKey);
        if (byDestination === undefined) {
          byDestination = new Map();
          this.direct.set(b.routingKey, byDestination);
        }
        byDestination.set(b.destination, (byDestination.get(b.destination) ?? 0) + 1);
        return;
      }
      case "fanout":
        this.fanout.set(b.destination, (this.fanout.get(b.destination) ?? 0) + 1);
        return;
      case "topic":
        this.topic.add(b.routingKey, b.destination);
        return;
      case "headers":
        return;
      default:
        assertNever(type);
    }
  }

  /** `others` are the exchange's bindings left after removing `b`. */
  remove(type: ExchangeType, b: Binding, others: Iterable<Binding>): void {
    this.size--;
    switch (type) {
      case "direct": {
        const byDestination = this.direct.get(b.routingKey);
        if (byDestination === undefined) return;
        decrement(byDestination, b.destination);
        if (byDestination.size === 0) this.direct.delete(b.routingKey);
        return;
      }
      case "fanout":
        decrement(this.fanout, b.destination);
        return;
      case "topic": {
        // Bindings differing only in arguments share a trie entry; keep it while one remains.
        for (const o of others) {
          if (o.destinationKind === b.destinationKind && o.destination === b.destination && o.routingKey === b.routingKey) return;
        }
        this.topic.remove(b.routingKey, b.destination);
        return;
      }
      case "headers":
        return;
      default:
        assertNever(type);
    }
  }

  /** Adds the destinations a direct, fanout or topic exchange's bindings here route the key to. */
  route(type: "direct" | "fanout" | "topic", routingKey: string, out: Set<string>): void {
    switch (type) {
      case "direct": {
        const byDestination = this.direct.get(routingKey);
        if (byDestination !== undefined) for (const d of byDestination.keys()) out.add(d);
        return;
      }
      case "fanout":
        for (const d of this.fanout.keys()) out.add(d);
        return;
      case "topic":
        this.topic.match(routingKey, out);
        return;
      default:
        assertNever(type);
    }
  }
}

export class Exchange {
  /** Insertion ordered: listings and snapshots follow the order bindings were made. */
  readonly bindings = new Map<string, Binding>();
  /** Bindings of other exchanges to this one, so deleting it does not scan every exchange. */
  readonly boundFrom = new Set<Binding>();
  /** Whether it ever was a binding's source: an auto-delete exchange goes with its last one. */
  hadBinding = false;
  private readonly toQueues = new DestinationIndex();
  private readonly toExchanges = new DestinationIndex();

  constructor(
    readonly name: string,
    readonly type: ExchangeType,
    readonly durable: boolean,
    readonly autoDelete: boolean,
    readonly internal: boolean,
    readonly alternateExchange: string,
    /** Predeclared: cannot be deleted or redeclared differently. */
    readonly builtin: boolean,
  ) {}

  addBinding(kind: DestinationKind, destination: string, routingKey: string, args: readonly Header[]): Binding | null {
    const id = bindingId(kind, destination, routingKey, args);
    if (this.bindings.has(id)) return null;
    const binding: Binding = {
      exchange: this.name,
      destinationKind: kind,
      destination,
      routingKey,
      arguments: args,
      id,
      matcher: this.type === "headers" ? compileHeadersMatcher(args) : null,
    };
    this.bindings.set(id, binding);
    this.hadBinding = true;
    this.index(kind).add(this.type, binding);
    return binding;
  }

  removeBinding(id: string): Binding | null {
    const binding = this.bindings.get(id);
    if (binding === undefined) return null;
    this.bindings.delete(id);
    this.index(binding.destinationKind).remove(this.type, binding, this.bindings.values());
    return binding;
  }

  /**
   * Adds to `queues` and `exchanges` the names of the destinations this exchange's own bindings
   * route the message to (not further). Answers whether it matched any binding: an exchange that
   * matched none hands the message to its alternate exchange.
   */
  route(routingKey: string, headers: readonly Header[] | null | undefined, queues: Set<string>, exchanges: Set<string>): boolean {
    if (this.type === "headers") {
      let matched = false;
      for (const b of this.bindings.values()) {
        if (b.matcher === null || !headersMatch(b.matcher, headers)) continue;
        matched = true;
        if (b.destinationKind === "queue") queues.add(b.destination);
        else exchanges.add(b.destination);
      }
      return matched;
    }
    // Gathered apart, so that a match counts even when another path reached the same queue.
    const reached = queues.size === 0 ? queues : new Set<string>();
    this.toQueues.route(this.type, routingKey, reached);
    let matched = reached.size > 0;
    if (reached !== queues) for (const q of reached) queues.add(q);
    if (this.toExchanges.size > 0) {
      const more = exchanges.size === 0 ? exchanges : new Set<string>();
      this.toExchanges.route(this.type, routingKey, more);
      if (more.size > 0) matched = true;
      if (more !== exchanges) for (const x of more) exchanges.add(x);
    }
    return matched;
  }

  private index(kind: DestinationKind): DestinationIndex {
    return kind === "queue" ? this.toQueues : this.toExchanges;
  }
}

function decrement(m: Map<string, number>, key: string): void {
  const n = m.get(key) ?? 0;
  if (n <= 1) m.delete(key);
  else m.set(key, n - 1);
}

export function assertNever(x: never): never {
  throw new Error(`unexpected variant ${String(x)}`);
}
