// A small client for the integration tests: typed unary calls and stream helpers over the
// node's own service definitions (static protobuf codecs). The real SDK lives in packages/client.
import { raftmq } from "@raftmq/proto";
import {
  type ChannelCredentials,
  type Client,
  type ClientDuplexStream,
  brokerServiceDefinition,
  clusterServiceDefinition,
  connectClient,
  GrpcStatus,
  Metadata,
  type MethodDefinition,
  type ServiceError,
} from "@raftmq/server";

export { GrpcStatus, raftmq };
export type { ServiceError };

type Defs = typeof brokerServiceDefinition & typeof clusterServiceDefinition;
type Req<D> = D extends { requestSerialize: (value: infer Q) => Buffer } ? Q : never;
type UnaryName = Exclude<keyof Defs, "PublishStream" | "Consume">;
type V1 = typeof raftmq.v1;
/** Decoded answers are the generated classes, whose repeated fields are always arrays. */
type Answer<K extends UnaryName> = `${K}Response` extends keyof V1 ? InstanceType<V1[`${K}Response`]> : never;

const defs = { ...brokerServiceDefinition, ...clusterServiceDefinition } as Defs;

export function isServiceError(err: unknown): err is ServiceError {
  return err instanceof Error && typeof (err as Partial<ServiceError>).code === "number";
}

/** How a TestClient proves who it is: TLS channel credentials and metadata sent with every call. */
export interface TestAuth {
  channel?: ChannelCredentials;
  /** E.g. authorization (Basic) and raftmq-vhost. */
  metadata?: Record<string, string>;
}

/** Basic credentials as call metadata. */
export function basicAuth(username: string, password: string): Record<string, string> {
  return { authorization: `Basic ${Buffer.from(`${username}:${password}`).toString("base64")}` };
}

export class TestClient {
  readonly client: Client;

  constructor(
    readonly address: string,
    private readonly auth: TestAuth = {},
  ) {
    this.client = connectClient(address, {}, auth.channel);
  }

  private metadata(): Metadata {
    const m = new Metadata();
    for (const [k, v] of Object.entries(this.auth.metadata ?? {})) m.set(k, v);
    return m;
  }

  call<K extends UnaryName>(name: K, request: Partial<Req<Defs[K]>>, timeoutMs = 15_000): Promise<Answer<K>> {
    const def = defs[name] as unknown as MethodDefinition<unknown, unknown>;
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(def.path, def.requestSerialize, def.responseDeserialize, request, this.metadata(), { deadline: Date.now() + timeoutMs }, (err, value) =>
        err !== null ? reject(err) : resolve(value as Answer<K>),
      );
    });
  }

  /** Retries while the cluster answers UNAVAILABLE (elections, leadership moving). */
  async callRetrying<K extends UnaryName>(name: K, request: Partial<Req<Defs[K]>>, deadlineMs = 20_000): Promise<Answer<K>> {
    const until = Date.now() + deadlineMs;
    for (;;) {
      try {
        return await this.call(name, request);
      } catch (err) {
        const retryable = isServiceError(err) && (err.code === GrpcStatus.UNAVAILABLE || err.code === GrpcStatus.DEADLINE_EXCEEDED);
        if (!retryable || Date.now() > until) throw err;
        await sleep(100);
      }
    }
  }

  publishStream(): ClientDuplexStream<raftmq.v1.PublishRequest.$Properties, raftmq.v1.PublishResponse> {
    const def = defs.PublishStream as unknown as MethodDefinition<unknown, unknown>;
    return this.client.makeBidiStreamRequest(def.path, def.requestSerialize, def.responseDeserialize, this.metadata()) as ClientDuplexStream<
      raftmq.v1.PublishRequest.$Properties,
      raftmq.v1.PublishResponse
    >;
  }

  /** A Consume stream; `extra` metadata goes with the call (raftmq-heartbeat-ms …). */
  consume(extra: Record<string, string> = {}): ClientDuplexStream<raftmq.v1.ConsumeRequest.$Properties, raftmq.v1.ConsumeResponse> {
    const def = defs.Consume as unknown as MethodDefinition<unknown, unknown>;
    const metadata = this.metadata();
    for (const [k, v] of Object.entries(extra)) metadata.set(k, v);
    return this.client.makeBidiStreamRequest(def.path, def.requestSerialize, def.responseDeserialize, metadata) as ClientDuplexStream<
      raftmq.v1.ConsumeRequest.$Properties,
      raftmq.v1.ConsumeResponse
    >;
  }

  close(): void {
    this.client.close();
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}${last === undefined ? "" : `: ${String(last)}`}`);
    await sleep(100);
  }
}

/** Waits until every node reports the same leader and is ready; returns the leader's id. */
export async function waitForLeader(clients: TestClient[], timeoutMs = 30_000): Promise<number> {
  return eventually(
    "a leader all nodes agree on",
    async () => {
      const statuses = await Promise.all(clients.map((c) => c.call("Status", {}, 2000)));
      const leader = Number(statuses[0]?.leaderId ?? 0);
      if (leader === 0) return undefined;
      return statuses.every((s) => Number(s.leaderId) === leader && s.ready) ? leader : undefined;
    },
    timeoutMs,
  );
}

/** The leader `clients` agree on once it is not `old`: survivors name a dead leader until they elect another. */
export function waitForNewLeader(clients: TestClient[], old: number): Promise<number> {
  return eventually("a new leader", async () => {
    const id = await waitForLeader(clients);
    return id === old ? undefined : id;
  });
}

export interface PublishOutcome {
  confirmed: number[];
  nacked: number[];
}

/**
 * Publishes sequences [from, to) on one PublishStream with up to `window` requests in flight,
 * `perRequest` messages each. Resolves with the confirmed sequences; rejects if the stream fails.
 */
export function publishRange(
  client: TestClient,
  options: {
    exchange: string;
    routingKey: string;
    producerId: string;
    from: number;
    to: number;
    perRequest: number;
    window: number;
    body?: (seq: number) => Uint8Array;
    properties?: (seq: number) => raftmq.v1.MessageProperties.$Properties;
  },
  onConfirm?: (seqs: number[]) => void,
): Promise<PublishOutcome> {
  const body = options.body ?? ((seq: number) => new TextEncoder().encode(String(seq)));
  return new Promise((resolve, reject) => {
    const stream = client.publishStream();
    const outcome: PublishOutcome = { confirmed: [], nacked: [] };
    const inFlight = new Map<number, number[]>();
    let next = options.from;
    let requestSeq = 0;
    const pump = () => {
      while (inFlight.size < options.window && next < options.to) {
        const seqs: number[] = [];
        for (let i = 0; i < options.perRequest && next < options.to; i++) seqs.push(next++);
        const id = ++requestSeq;
        inFlight.set(id, seqs);
        stream.write({
          clientSequence: id,
          messages: seqs.map((s) => ({
            exchange: options.exchange,
            routingKey: options.routingKey,
            producerId: options.producerId,
            sequence: s + 1,
            body: body(s),
            ...(options.properties === undefined ? {} : { properties: options.properties(s) }),
          })),
        });
      }
      if (inFlight.size === 0 && next >= options.to) stream.end();
    };
    stream.on("data", (r: raftmq.v1.PublishResponse) => {
      const id = Number(r.clientSequence);
      const seqs = inFlight.get(id);
      if (seqs === undefined) return;
      inFlight.delete(id);
      r.confirms.forEach((c, i) => {
        const seq = seqs[i];
        if (seq === undefined) return;
        if (c.status === raftmq.v1.ConfirmStatus.CONFIRM_STATUS_ACK) outcome.confirmed.push(seq);
        else outcome.nacked.push(seq);
      });
      onConfirm?.(seqs);
      pump();
    });
    stream.on("error", (err) => reject(Object.assign(err, { outcome, unconfirmed: [...inFlight.values()].flat() })));
    stream.on("status", (s) => {
      if (s.code === GrpcStatus.OK) resolve(outcome);
    });
    pump();
  });
}

export interface ConsumedMessage {
  seq: number;
  redelivered: boolean;
  deliveryTag: number;
}

/** A consumer on one stream: subscribes, acks each delivery, records what it saw. */
export class TestConsumer {
  readonly received: ConsumedMessage[] = [];
  readonly errors: string[] = [];
  /** The delivery tag each error in `errors` names (0 when it names none). */
  readonly errorTags: number[] = [];
  /** The kind of every stream message, in arrival order. */
  readonly kinds: string[] = [];
  sessionId = "";
  /** Deliveries per stream message, in arrival order. */
  readonly messageSizes: number[] = [];
  private readonly tag: string;
  ended: Promise<{ code: number; details: string }>;
  private readonly stream: ReturnType<TestClient["consume"]>;
  private subscribedResolve!: () => void;
  readonly subscribed: Promise<void>;

  constructor(
    client: TestClient,
    queue: string,
    options: { prefetch: number; tag?: string; ack?: boolean; ackEvery?: number; batch?: boolean } = { prefetch: 100 },
  ) {
    const tag = options.tag ?? "c1";
    this.tag = tag;
    const ack = options.ack ?? true;
    const ackEvery = options.ackEvery ?? 1;
    this.subscribed = new Promise((r) => {
      this.subscribedResolve = r;
    });
    this.stream = client.consume();
    let unacked = 0;
    this.stream.on("data", (r: raftmq.v1.ConsumeResponse) => {
      this.kinds.push(r.kind ?? "");
      switch (r.kind) {
        case "session":
          this.sessionId = r.session?.sessionId ?? "";
          return;
        case "subscribed":
          this.subscribedResolve();
          return;
        case "delivery":
        case "deliveries": {
          const batch = r.kind === "delivery" ? [r.delivery] : (r.deliveries?.deliveries ?? []);
          this.messageSizes.push(batch.length);
          for (const d of batch) {
            if (d == null) continue;
            const seq = Number(new TextDecoder().decode(d.body ?? new Uint8Array()));
            const deliveryTag = Number(d.deliveryTag);
            this.received.push({ seq, redelivered: d.redelivered ?? false, deliveryTag });
            if (ack && ++unacked >= ackEvery) {
              unacked = 0;
              this.stream.write({ ack: { consumerTag: tag, deliveryTag, multiple: ackEvery > 1 } });
            }
          }
          return;
        }
        case "error":
          this.errors.push(`${r.error?.code}: ${r.error?.message}`);
          this.errorTags.push(Number(r.error?.deliveryTag ?? 0));
          return;
        default:
          return;
      }
    });
    this.ended = new Promise((resolve) => {
      this.stream.on("error", () => {});
      this.stream.on("status", (s) => resolve({ code: s.code, details: s.details }));
    });
    this.stream.write({ subscribe: { queue, prefetch: options.prefetch, consumerTag: tag, batchDeliveries: options.batch ?? false } });
  }

  /** Settles deliveries by hand (for consumers made with ack: false). */
  ack(deliveryTag: number, multiple: boolean): void {
    this.stream.write({ ack: { consumerTag: this.tag, deliveryTag, multiple } });
  }

  cancel(): void {
    this.stream.cancel();
  }

  end(): void {
    this.stream.end();
  }
}

/**
 * Publishes sequences [0, total) with idempotent (producer id, sequence) and retries whatever was
 * not confirmed when a stream fails, on a fresh stream to the same node, until all are confirmed.
 */
export async function publishReliably(
  client: TestClient,
  options: { exchange: string; routingKey: string; producerId: string; total: number; perRequest: number; window: number; deadlineMs?: number },
  onProgress?: (confirmed: number) => void,
): Promise<{ confirmed: Set<number>; nacked: number[]; streamFailures: number }> {
  const confirmed = new Set<number>();
  const nacked: number[] = [];
  let todo: number[] = Array.from({ length: options.total }, (_, i) => i);
  let streamFailures = 0;
  const until = Date.now() + (options.deadlineMs ?? 60_000);
  while (todo.length > 0) {
    if (Date.now() > until) throw new Error(`publishing did not finish: ${todo.length} unconfirmed`);
    const batch = todo;
    todo = [];
    const result = await new Promise<number[]>((resolve) => {
      const stream = client.publishStream();
      const inFlight = new Map<number, number[]>();
      let next = 0;
      let requestSeq = 0;
      let done = false;
      const finish = (left: number[]) => {
        if (done) return;
        done = true;
        resolve(left);
      };
      const pump = () => {
        while (inFlight.size < options.window && next < batch.length) {
          const seqs = batch.slice(next, next + options.perRequest);
          next += seqs.length;
          const id = ++requestSeq;
          inFlight.set(id, seqs);
          stream.write({
            clientSequence: id,
            messages: seqs.map((s) => ({ exchange: options.exchange, routingKey: options.routingKey, producerId: options.producerId, sequence: s + 1, body: new TextEncoder().encode(String(s)) })),
          });
        }
        if (inFlight.size === 0 && next >= batch.length) stream.end();
      };
      stream.on("data", (r: raftmq.v1.PublishResponse) => {
        const seqs = inFlight.get(Number(r.clientSequence));
        if (seqs === undefined) return;
        inFlight.delete(Number(r.clientSequence));
        r.confirms.forEach((c, i) => {
          const seq = seqs[i];
          if (seq === undefined) return;
          if (c.status === raftmq.v1.ConfirmStatus.CONFIRM_STATUS_ACK) confirmed.add(seq);
          else nacked.push(seq);
        });
        onProgress?.(confirmed.size);
        pump();
      });
      stream.on("error", () => {});
      stream.on("status", (s) => {
        if (s.code === GrpcStatus.OK) finish([]);
        else {
          streamFailures++;
          finish([...[...inFlight.values()].flat(), ...batch.slice(next)].sort((a, b) => a - b));
        }
      });
      pump();
    });
    todo = result;
    if (todo.length > 0) await sleep(100);
  }
  return { confirmed, nacked, streamFailures };
}
