// Moved to @raftmq/proto/grpc, which clients share.
export * from "@raftmq/proto/grpc";
