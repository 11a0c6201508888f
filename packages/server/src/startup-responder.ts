// While a StatefulSet pod with an empty volume decides how to start, it answers Cluster.Status on
// its client port as "deciding" (node id 0, term 0, no log): founders creating a new cluster
// must each hear from every other before any of them bootstraps. Other calls are UNAVAILABLE.
import * as grpc from "@grpc/grpc-js";
import type { raftmq } from "@raftmq/proto";
import { clusterServiceDefinition } from "@raftmq/proto/grpc";
import { statusFailure } from "./grpc-status.ts";

export class StartupResponder {
  private constructor(private readonly server: grpc.Server) {}

  static async listen(address: string, version: string, credentials: grpc.ServerCredentials = grpc.ServerCredentials.createInsecure()): Promise<StartupResponder> {
    const server = new grpc.Server();
    const unavailable = (_call: unknown, callback: grpc.sendUnaryData<never>) =>
      callback(statusFailure(grpc.status.UNAVAILABLE, "this node is still deciding how to start; try another node", { reason: "NODE_STARTING", outcome: "not_applied", retryDelayMs: 1000 }));
    const handlers: grpc.UntypedServiceImplementation = {};
    for (const name of Object.keys(clusterServiceDefinition)) handlers[name] = unavailable;
    handlers.Status = (_call: unknown, callback: grpc.sendUnaryData<raftmq.v1.StatusResponse.$Properties>) =>
      callback(null, { nodeId: 0, role: "starting", term: 0, leaderId: 0, lastIndex: 0, ready: false, version });
    server.addService(clusterServiceDefinition, handlers);
    await new Promise<number>((resolve, reject) => server.bindAsync(address, credentials, (err, port) => (err ? reject(err) : resolve(port))));
    return new StartupResponder(server);
  }

  /** Stops answering and frees the port for the node. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      const force = setTimeout(() => this.server.forceShutdown(), 1000);
      this.server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
  }
}
