// Exchanges and their bindings: which queues a (routing key, headers) pair reaches.
import type { raftmq } from "@raftmq/proto";
import { argumentsKey, compileHeadersMatcher, type HeadersMatcher, headersMatch } from "./headers-match.ts";
import { TopicTrie } from "./topic-trie.ts";

type Header = raftmq.v1.Header.$Properties;

export type ExchangeType = "direct" | "fanout" | "topic" | "headers";

export interface Binding {
  readonly exchange: string;
  readonly queue: string;
  readonly routingKey: string;
  readonly arguments: readonly Header[];
  /** Identity within the exchange: queue, key and canonical arguments. */
  readonly id: string;
  readonly matcher: HeadersMatcher | null;
}

export function bindingId(queue: string, routingKey: string, args: readonly Header[]): string {
  return `${queue}\u0000${routingKey}\u0000${argumentsKey(args)}`;
}

export class Exchange {
  /** Insertion ordered: listings and snapshots follow the order bindings were made. */
  readonly bindings = new Map<string, Binding>();
  hadBinding = false;
  private readonly direct = new Map<string, Map<string, number>>();
  private readonly fanout = new Map<string, number>();
  private readonly topic = new TopicTrie();

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

  addBinding(queue: string, routingKey: string, args: readonly Header[]): Binding | null {
    const id = bindingId(queue, routingKey, args);
    if (this.bindings.has(id)) return null;
    const binding: Binding = {
      exchange: this.name,
      queue,
      routingKey,
      arguments: args,
      id,
      matcher: this.type === "headers" ? compileHeadersMatcher(args) : null,
    };
    this.bindings.set(id, binding);
    this.hadBinding = true;
    switch (this.type) {
      case "direct": {
        let byQueue = this.direct.get(routingKey);
        if (byQueue === undefined) {
          byQueue = new Map();
          this.direct.set(routingKey, byQueue);
        }
        byQueue.set(queue, (byQueue.get(queue) ?? 0) + 1);
        break;
      }
      case "fanout":
        this.fanout.set(queue, (this.fanout.get(queue) ?? 0) + 1);
        break;
      case "topic":
        this.topic.add(routingKey, queue);
        break;
      case "headers":
        break;
      default:
        assertNever(this.type);
    }
    return binding;
  }

  removeBinding(id: string): Binding | null {
    const binding = this.bindings.get(id);
    if (binding === undefined) return null;
    this.bindings.delete(id);
    switch (this.type) {
      case "direct": {
        const byQueue = this.direct.get(binding.routingKey);
        if (byQueue !== undefined) decrement(byQueue, binding.queue);
        if (byQueue !== undefined && byQueue.size === 0) this.direct.delete(binding.routingKey);
        break;
      }
      case "fanout":
        decrement(this.fanout, binding.queue);
        break;
      case "topic": {
        // Bindings differing only in arguments share a trie entry; keep it while one remains.
        let still = false;
        for (const b of this.bindings.values()) {
          if (b.queue === binding.queue && b.routingKey === binding.routingKey) still = true;
        }
        if (!still) this.topic.remove(binding.routingKey, binding.queue);
        break;
      }
      case "headers":
        break;
      default:
        assertNever(this.type);
    }
    return binding;
  }

  /** Adds to out the names of the queues the message reaches through this exchange's bindings. */
  route(routingKey: string, headers: readonly Header[] | null | undefined, out: Set<string>): void {
    switch (this.type) {
      case "direct": {
        const byQueue = this.direct.get(routingKey);
        if (byQueue !== undefined) for (const q of byQueue.keys()) out.add(q);
        return;
      }
      case "fanout":
        for (const q of this.fanout.keys()) out.add(q);
        return;
      case "topic":
        this.topic.match(routingKey, out);
        return;
      case "headers":
        for (const b of this.bindings.values()) {
          if (b.matcher !== null && headersMatch(b.matcher, headers)) out.add(b.queue);
        }
        return;
      default:
        assertNever(this.type);
    }
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
