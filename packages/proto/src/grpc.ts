// gRPC service definitions for grpc-js, built on the generated static classes: what clients,
// peers and servers share. Kept apart from the message classes so the pure packages never
// load it.
export * from "./grpc-codec.ts";
export * from "./service-definitions.ts";
