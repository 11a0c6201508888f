// A stand-in raftmq node for SDK tests that need no cluster: a grpc-js server with the real
// service definitions, answering a few calls and recording the metadata each one carried.
import * as grpc from "@grpc/grpc-js";
import { type CallOutcome, encodeStatusDetails, type raftmq, STATUS_DETAILS_METADATA_KEY } from "@raftmq/proto";
import { accessServiceDefinition, brokerServiceDefinition, clusterServiceDefinition } from "@raftmq/proto/grpc";

export interface RecordedCall {
  /** "Cluster/Status", "Broker/PublishStream", … */
  method: string;
  authorization: string | undefined;
  vhost: string | undefined;
  /** The common name of the client's certificate, under mutual TLS. */
  peerCommonName: string | undefined;
  /** When it arrived (performance.now()). */
  at: number;
}

/**
 * What the node answers a call with, before doing anything: OK, or a status that ends it, with
 * structured details (reason, outcome, retry delay) when `reason` is set.
 */
export type Gate = (call: RecordedCall) => { code: grpc.status; details: string; reason?: string; outcome?: CallOutcome; retryDelayMs?: number } | null;

function refusalMetadata(refusal: NonNullable<ReturnType<Gate>>): grpc.Metadata {
  const metadata = new grpc.Metadata();
  if (refusal.reason !== undefined) {
    const details = { reason: refusal.reason, outcome: refusal.outcome ?? "not_applied", ...(refusal.retryDelayMs !== undefined && { retryDelayMs: refusal.retryDelayMs }) };
    metadata.set(STATUS_DETAILS_METADATA_KEY, encodeStatusDetails(refusal.code, refusal.details, details));
  }
  return metadata;
}

type Untyped = grpc.UntypedServiceImplementation;

function text(metadata: grpc.Metadata, key: string): string | undefined {
  const v = metadata.get(key)[0];
  return v === undefined ? undefined : v.toString();
}

/** A failure the fake answers a unary Publish with; `outcome` goes in its structured details, as a node sends them. */
export interface PublishFailure {
  code: grpc.status;
  details: string;
  outcome?: CallOutcome;
}

export class FakeNode {
  readonly calls: RecordedCall[] = [];
  gate: Gate = () => null;
  /** Every unary Publish request, in order. */
  readonly publishes: raftmq.v1.PublishRequest.$Properties[] = [];
  /** The answer to the n-th Publish (0-based): a failure, or null to confirm it. */
  publishAnswer: (n: number) => PublishFailure | null = () => null;
  address = "";
  private readonly server = new grpc.Server();

  private record(method: string, call: Pick<grpc.ServerUnaryCall<unknown, unknown>, "metadata" | "getAuthContext">): RecordedCall {
    const cn = call.getAuthContext().sslPeerCertificate?.subject?.CN;
    const recorded: RecordedCall = {
      method,
      authorization: text(call.metadata, "authorization"),
      vhost: text(call.metadata, "raftmq-vhost"),
      peerCommonName: Array.isArray(cn) ? cn[0] : cn,
      at: performance.now(),
    };
    this.calls.push(recorded);
    return recorded;
  }

  private unary<Q, R>(method: string, answer: (request: Q, call: RecordedCall) => R): grpc.handleUnaryCall<Q, R> {
    return (call, callback) => {
      const recorded = this.record(method, call);
      const refusal = this.gate(recorded);
      if (refusal !== null) callback({ code: refusal.code, details: refusal.details, metadata: refusalMetadata(refusal) });
      else callback(null, answer(call.request, recorded));
    };
  }

  async start(credentials: grpc.ServerCredentials = grpc.ServerCredentials.createInsecure(), host = "127.0.0.1"): Promise<string> {
    const status = (): raftmq.v1.StatusResponse.$Properties => ({
      nodeId: 1,
      role: "leader",
      leaderId: 1,
      leaderClientAddress: this.address,
      members: [{ id: 1, clientAddress: this.address, peerAddress: "", leader: true, reachable: true }],
      ready: true,
    });
    this.server.addService(clusterServiceDefinition, {
      Status: this.unary("Cluster/Status", status),
    } satisfies Untyped);
    this.server.addService(brokerServiceDefinition, {
      DeclareQueue: this.unary("Broker/DeclareQueue", (r: raftmq.v1.DeclareQueueRequest.$Properties) => ({ name: r.name ?? "" })),
      Publish: (call: grpc.ServerUnaryCall<raftmq.v1.PublishRequest.$Properties, raftmq.v1.PublishResponse.$Properties>, callback: grpc.sendUnaryData<raftmq.v1.PublishResponse.$Properties>) => {
        this.record("Broker/Publish", call);
        // A copy: the request as it was sent on this attempt.
        this.publishes.push(structuredClone(call.request));
        const failure = this.publishAnswer(this.publishes.length - 1);
        if (failure === null) {
          callback(null, { confirms: (call.request.messages ?? []).map(() => ({ status: 1, routedQueues: ["q"] })) });
          return;
        }
        const metadata = new grpc.Metadata();
        if (failure.outcome !== undefined) metadata.set(STATUS_DETAILS_METADATA_KEY, encodeStatusDetails(failure.code, failure.details, { reason: "TEST", outcome: failure.outcome }));
        callback({ code: failure.code, details: failure.details, metadata });
      },
      PublishStream: (call: grpc.ServerDuplexStream<raftmq.v1.PublishRequest.$Properties, raftmq.v1.PublishResponse.$Properties>) => {
        const refusal = this.gate(this.record("Broker/PublishStream", call));
        if (refusal !== null) {
          call.emit("error", { code: refusal.code, details: refusal.details, metadata: refusalMetadata(refusal) });
          return;
        }
        call.on("data", (r: raftmq.v1.PublishRequest.$Properties) =>
          call.write({ clientSequence: r.clientSequence, confirms: (r.messages ?? []).map(() => ({ status: 1, routedQueues: ["q"] })) }),
        );
        call.on("end", () => call.end());
      },
      Consume: (call: grpc.ServerDuplexStream<raftmq.v1.ConsumeRequest.$Properties, raftmq.v1.ConsumeResponse.$Properties>) => {
        const refusal = this.gate(this.record("Broker/Consume", call));
        if (refusal !== null) {
          call.emit("error", { code: refusal.code, details: refusal.details });
          return;
        }
        call.write({ session: { sessionId: "s1" } });
        call.on("data", (r: raftmq.v1.ConsumeRequest.$Properties) => {
          if (r.subscribe != null) call.write({ subscribed: r.subscribe.consumerTag ?? "" });
        });
        call.on("end", () => call.end());
      },
    } satisfies Untyped);
    this.server.addService(accessServiceDefinition, {
      WhoAmI: this.unary("Access/WhoAmI", (_r: unknown, c) => ({
        user: c.peerCommonName ?? Buffer.from((c.authorization ?? "").replace(/^Basic /, ""), "base64").toString().split(":")[0],
        tags: ["administrator"],
        mechanism: c.peerCommonName !== undefined && c.authorization === undefined ? "certificate" : "password",
      })),
      AddUser: this.unary("Access/AddUser", () => ({})),
      ListUsers: this.unary("Access/ListUsers", () => ({ users: [{ name: "alice", tags: ["administrator"], hasPassword: true }, { name: "svc" }] })),
      SetPermissions: this.unary("Access/SetPermissions", () => ({})),
      ListPermissions: this.unary("Access/ListPermissions", (r: raftmq.v1.ListPermissionsRequest.$Properties) => ({
        permissions: [{ user: r.user || "alice", vhost: r.vhost || "/", configure: ".*", write: ".*", read: "" }],
      })),
      ListVhosts: this.unary("Access/ListVhosts", () => ({ names: ["/", "prod"] })),
    } satisfies Untyped);
    const port = await new Promise<number>((resolve, reject) => this.server.bindAsync(`${host}:0`, credentials, (err, p) => (err === null ? resolve(p) : reject(err))));
    this.address = `${host}:${port}`;
    return this.address;
  }

  /** Calls of `method` recorded so far. */
  count(method: string): number {
    return this.calls.filter((c) => c.method === method).length;
  }

  stop(): void {
    this.server.forceShutdown();
  }
}
