// A plain grpc-js client channel to a node, with message limits matching the server's; calls are
// made with the method definitions of service-definitions.ts (static protobuf codecs).
import * as grpc from "@grpc/grpc-js";

const MiB = 1024 * 1024;

export function connectClient(address: string, options: grpc.ChannelOptions = {}): grpc.Client {
  return new grpc.Client(address, grpc.credentials.createInsecure(), {
    "grpc.max_send_message_length": 64 * MiB,
    "grpc.max_receive_message_length": 64 * MiB,
    ...options,
  });
}

/** gRPC status codes, for callers that do not depend on grpc-js themselves. */
export const GrpcStatus = grpc.status;
export type GrpcStatus = grpc.status;
export { Metadata } from "@grpc/grpc-js";
export type { Client, ClientDuplexStream, MethodDefinition, ServiceError, StatusObject } from "@grpc/grpc-js";
