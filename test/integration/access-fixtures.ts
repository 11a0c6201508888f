// What the access tests share: calls that carry their own credentials and vhost and always end in
// an Outcome (a status, never a throw), relays (tcp-relay.ts) that give calls a source address of their own (so
// deliberate login failures do not spend the rate-limit budget of 127.0.0.1), and a wait until
// every node has applied an access change (a follower checks calls against its own copy).
import type { ChannelCredentials, Client, MethodDefinition } from "@raftmq/server";
import { GrpcStatus, Metadata } from "@raftmq/server";
import { basicAuth, eventually, isServiceError, TestClient } from "./broker-test-client.ts";
import { TcpRelay } from "./tcp-relay.ts";

export interface Outcome {
  code: GrpcStatus;
  details: string;
  /** The answer of a call that succeeded (the first answer, for a stream). */
  response?: unknown;
  /** The trailers of a status that ended the call. */
  metadata?: Metadata;
}

export interface Credentials {
  user: string;
  password: string;
}

/** Call metadata: Basic credentials when given, and the vhost when not the default. */
export function callMetadata(credentials: Credentials | null, vhost = "/"): Metadata {
  const m = new Metadata();
  if (credentials !== null) for (const [k, v] of Object.entries(basicAuth(credentials.user, credentials.password))) m.set(k, v);
  if (vhost !== "/") m.set("raftmq-vhost", vhost);
  return m;
}

export type AnyMethod = MethodDefinition<unknown, unknown>;

/** One unary call; resolves with its status whatever happens. */
export function unaryOutcome(client: Client, def: AnyMethod, request: unknown, metadata: Metadata, timeoutMs = 5_000): Promise<Outcome> {
  return new Promise((resolve) => {
    client.makeUnaryRequest(def.path, def.requestSerialize, def.responseDeserialize, request, metadata, { deadline: Date.now() + timeoutMs }, (err, value) => {
      if (err === null || err === undefined) resolve({ code: GrpcStatus.OK, details: "", response: value });
      else resolve(isServiceError(err) ? { code: err.code, details: err.details, metadata: err.metadata } : { code: GrpcStatus.UNKNOWN, details: String(err) });
    });
  });
}

/**
 * Writes one request on a new bidirectional stream and resolves with what it led to: `judge`
 * turns an answer into an Outcome (undefined: keep waiting, e.g. Consume's opening session
 * message); a status that ends the stream first is the outcome otherwise. The stream is
 * cancelled once decided.
 */
export function streamOutcome(client: Client, def: AnyMethod, request: unknown, metadata: Metadata, judge: (response: unknown) => Outcome | undefined, timeoutMs = 5_000): Promise<Outcome> {
  return new Promise((resolve) => {
    const stream = client.makeBidiStreamRequest(def.path, def.requestSerialize, def.responseDeserialize, metadata, { deadline: Date.now() + timeoutMs });
    let done = false;
    const finish = (o: Outcome) => {
      if (done) return;
      done = true;
      resolve(o);
      stream.cancel();
    };
    stream.on("data", (response: unknown) => {
      const o = judge(response);
      if (o !== undefined) finish(o);
    });
    stream.on("error", () => {});
    stream.on("status", (s: { code: GrpcStatus; details: string; metadata: Metadata }) => {
      if (s.code === GrpcStatus.OK) finish({ code: GrpcStatus.UNKNOWN, details: "the stream ended with OK before answering the request" });
      else finish({ code: s.code, details: s.details, metadata: s.metadata });
    });
    stream.write(request);
  });
}

/** A permission pattern that matches exactly these names ("" matches nothing). */
export function exactly(names: Iterable<string>): string {
  const all = [...new Set(names)];
  if (all.length === 0) return "";
  return `^(?:${all.map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|")})$`;
}

/** Resolves once every node has applied everything the cluster had committed when called. */
export async function settle(admins: readonly TestClient[], timeoutMs = 10_000): Promise<void> {
  const now = await Promise.all(admins.map((c) => c.call("Status", {}, 3_000)));
  const target = Math.max(...now.map((s) => Number(s.commitIndex)));
  await eventually(
    `every node applied index ${target}`,
    async () => {
      const s = await Promise.all(admins.map((c) => c.call("Status", {}, 3_000)));
      return s.every((x) => Number(x.appliedIndex) >= target) ? true : undefined;
    },
    timeoutMs,
  );
}

/**
 * Clients for calls that are meant to fail authentication. A node refuses an address after 10
 * failures in 10 s, and counts failures per address, so each address here is given at most
 * `perAddress` failures per node and then a fresh one takes over. Addresses are 127.0.x.y with
 * y from 10 to 249 (127.0.0.1 to .9 stay out), about 60,000 of them.
 */
export class FailureSources {
  private readonly current = new Map<number, { client: TestClient; proxy: TcpRelay; spent: number }>();
  private readonly retired: { client: TestClient; proxy: TcpRelay }[] = [];
  private used = 0;

  constructor(
    private readonly target: (nodeId: number) => { host: string; port: number },
    private readonly channel: ChannelCredentials,
    private readonly perAddress = 8,
  ) {}

  /** A client to node `nodeId` for one call that will fail authentication. */
  async client(nodeId: number): Promise<TestClient> {
    let c = this.current.get(nodeId);
    if (c === undefined || c.spent >= this.perAddress) {
      if (c !== undefined) {
        // Spent: its calls have ended (callers await them), so its connection can go now.
        c.client.close();
        await c.proxy.close();
      }
      c = await this.open(nodeId);
      this.current.set(nodeId, c);
    }
    c.spent++;
    return c.client;
  }

  /** A fresh address to `nodeId` that nobody has used, for tests that spend a whole budget on purpose. */
  async dedicated(nodeId: number): Promise<{ client: TestClient; sourceAddress: string }> {
    const c = await this.open(nodeId);
    this.retired.push(c);
    return { client: c.client, sourceAddress: c.proxy.sourceAddress };
  }

  /** A loopback address no call of these sources has come from, for a proxy of the caller's own. */
  freshAddress(): string {
    const k = this.used++;
    const middle = Math.floor(k / 240);
    if (middle > 255) throw new Error("FailureSources ran out of loopback addresses");
    return `127.0.${middle}.${10 + (k % 240)}`;
  }

  private async open(nodeId: number): Promise<{ client: TestClient; proxy: TcpRelay; spent: number }> {
    const proxy = await TcpRelay.start({ target: this.target(nodeId), sourceAddress: this.freshAddress() });
    return { client: new TestClient(proxy.address, { channel: this.channel }), proxy, spent: 0 };
  }

  /** Closes every client and proxy still open. */
  async close(): Promise<void> {
    const all = [...this.current.values(), ...this.retired];
    this.current.clear();
    this.retired.length = 0;
    for (const c of all) c.client.close();
    await Promise.all(all.map((c) => c.proxy.close()));
  }
}

/** "PERMISSION_DENIED: details", for failure messages. */
export function describeOutcome(o: Outcome): string {
  return `${GrpcStatus[o.code] ?? o.code}${o.details === "" ? "" : `: ${o.details}`}`;
}
