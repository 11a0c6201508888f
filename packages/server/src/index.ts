export { buildCommand, type ClusterMemberAddress, ConfigError, envName, type LogLevel, NODE_OPTIONS, type NodeConfig, parseInitialCluster, resolveNodeConfig } from "./node-config.ts";
export { type NodeExit, type NodePorts, RAFTMQ_VERSION, RaftmqNode } from "./raftmq-node.ts";
export { BROKER_SERVICE_NAME, brokerServiceDefinition, CLUSTER_SERVICE_NAME, clusterServiceDefinition } from "@raftmq/proto/grpc";
export { FORWARDED_METADATA_KEY, LEADER_METADATA_KEY } from "./grpc-status.ts";
export { type ChannelCredentials, type Client, type ClientDuplexStream, connectClient, GrpcStatus, insecureCredentials, Metadata, type MethodDefinition, type ServiceError, type StatusObject, tlsCredentials } from "./service-client.ts";
export { PeerTransport, type PeerTransportOptions, RAFT_SERVICE_NAME, raftServiceDefinition } from "./peer-transport.ts";
export { aliasAddress, DEFAULT_PEER_HOST_TEMPLATE } from "./node-config.ts";
export type { NodeStartOptions } from "./raftmq-node.ts";
export {
  decideStartup,
  nodeIdOf,
  ordinalOfNodeId,
  parseHostAliases,
  resolveStatefulSetIdentity,
  type StartupDecision,
  type StatefulSetIdentity,
  StatefulSetIdentityError,
} from "./statefulset-identity.ts";
export { type ClusterCalls, type MemberStatus, planStatefulSetStart, StartupWaitError, type StatefulSetStartLimits } from "./statefulset-startup.ts";
export { IDENTITY_RECORD_FILE, type IdentityRecord, readIdentityRecord } from "./identity-record.ts";
export { type DataDirVerdict, inspectDataDir, wipeDataDir } from "./data-verification.ts";
export { DATA_CORRUPT_EXIT_CODE } from "./corruption-exit.ts";
export { NODE_V8_FLAGS } from "./runtime-flags.ts";
export * from "./tls/index.ts";
export { AUTHENTICATED_USER_METADATA_KEY, VHOST_METADATA_KEY } from "./security/access-gate.ts";
export { accessServiceDefinition } from "@raftmq/proto/grpc";
export { MalformedRequest } from "@raftmq/proto/grpc";
