// A plain grpc-js client channel to a node, with message limits matching the server's; calls are
// made with the method definitions of service-definitions.ts (static protobuf codecs).
import * as grpc from "@grpc/grpc-js";

const MiB = 1024 * 1024;

export function connectClient(address: string, options: grpc.ChannelOptions = {}, credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure()): grpc.Client {
  return new grpc.Client(address, credentials, {
    "grpc.max_send_message_length": 64 * MiB,
    "grpc.max_receive_message_length": 64 * MiB,
    ...options,
  });
}

/** gRPC status codes, for callers that do not depend on grpc-js themselves. */
export const GrpcStatus = grpc.status;
export type GrpcStatus = grpc.status;
export { Metadata } from "@grpc/grpc-js";
/** Plaintext channel credentials (a node started with --insecure). */
export function insecureCredentials(): grpc.ChannelCredentials {
  return grpc.credentials.createInsecure();
}

/** TLS channel credentials for tools and tests: a CA and, for mutual TLS, a certificate and key. */
export function tlsCredentials(ca: Buffer, key?: Buffer, cert?: Buffer, verify?: grpc.VerifyOptions): grpc.ChannelCredentials {
  return grpc.credentials.createSsl(ca, key ?? null, cert ?? null, verify);
}
export type { ChannelCredentials, Client, ClientDuplexStream, MethodDefinition, ServiceError, StatusObject } from "@grpc/grpc-js";
