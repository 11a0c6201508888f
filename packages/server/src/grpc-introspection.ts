// gRPC health checking (grpc.health.v1) and server reflection, so standard tools (grpcurl,
// grpc_health_probe) work against a node.
import type * as grpc from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import { HealthImplementation } from "grpc-health-check";
import { assertProtoFilesPresent, PROTO_FILES, PROTO_INCLUDE_DIR } from "@raftmq/proto/files";
import { BROKER_SERVICE_NAME, CLUSTER_SERVICE_NAME } from "@raftmq/proto/grpc";

/** Services whose health is reported; "" is the server as a whole. */
export const HEALTH_SERVICES = ["", BROKER_SERVICE_NAME, CLUSTER_SERVICE_NAME] as const;

export class GrpcIntrospection {
  private readonly health = new HealthImplementation(Object.fromEntries(HEALTH_SERVICES.map((s) => [s, "NOT_SERVING"])));
  private serving = false;

  addToServer(server: grpc.Server): void {
    this.health.addToServer(server);
    assertProtoFilesPresent();
    new ReflectionService(loadSync([...PROTO_FILES], { includeDirs: [PROTO_INCLUDE_DIR] })).addToServer(server);
  }

  setServing(serving: boolean): void {
    if (serving === this.serving) return;
    this.serving = serving;
    for (const s of HEALTH_SERVICES) this.health.setStatus(s, serving ? "SERVING" : "NOT_SERVING");
  }
}
