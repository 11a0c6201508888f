// grpc-js definitions of services Broker, Cluster and Access, built on the static protobuf classes
// (fast codecs). Method paths are exactly /raftmq.v1.Broker/<Rpc> and /raftmq.v1.Cluster/<Rpc>.
import { raftmq } from "./index.ts";
import { defineService } from "./grpc-codec.ts";

const v1 = raftmq.v1;

function unary<Q, R>(request: { encode(m: Q): { finish(): Uint8Array }; decode(b: Uint8Array): Q }, response: { encode(m: R): { finish(): Uint8Array }; decode(b: Uint8Array): R }) {
  return { request, response, requestStream: false, responseStream: false };
}

export const BROKER_SERVICE_NAME = "raftmq.v1.Broker";
export const CLUSTER_SERVICE_NAME = "raftmq.v1.Cluster";
export const ACCESS_SERVICE_NAME = "raftmq.v1.Access";

export const brokerServiceDefinition = defineService(BROKER_SERVICE_NAME, {
  DeclareExchange: unary(v1.DeclareExchangeRequest, v1.DeclareExchangeResponse),
  DeleteExchange: unary(v1.DeleteExchangeRequest, v1.DeleteExchangeResponse),
  DeclareQueue: unary(v1.DeclareQueueRequest, v1.DeclareQueueResponse),
  DeleteQueue: unary(v1.DeleteQueueRequest, v1.DeleteQueueResponse),
  PurgeQueue: unary(v1.PurgeQueueRequest, v1.PurgeQueueResponse),
  Bind: unary(v1.BindRequest, v1.BindResponse),
  Unbind: unary(v1.UnbindRequest, v1.UnbindResponse),
  Publish: unary(v1.PublishRequest, v1.PublishResponse),
  PublishStream: { request: v1.PublishRequest, response: v1.PublishResponse, requestStream: true, responseStream: true },
  Consume: { request: v1.ConsumeRequest, response: v1.ConsumeResponse, requestStream: true, responseStream: true },
  Get: unary(v1.GetRequest, v1.GetResponse),
  QueueInfo: unary(v1.QueueInfoRequest, v1.QueueInfoResponse),
  ListQueues: unary(v1.ListQueuesRequest, v1.ListQueuesResponse),
  ListExchanges: unary(v1.ListExchangesRequest, v1.ListExchangesResponse),
  ListBindings: unary(v1.ListBindingsRequest, v1.ListBindingsResponse),
});

export const clusterServiceDefinition = defineService(CLUSTER_SERVICE_NAME, {
  Status: unary(v1.StatusRequest, v1.StatusResponse),
  AddMember: unary(v1.AddMemberRequest, v1.AddMemberResponse),
  RemoveMember: unary(v1.RemoveMemberRequest, v1.RemoveMemberResponse),
  TransferLeadership: unary(v1.TransferLeadershipRequest, v1.TransferLeadershipResponse),
  TriggerSnapshot: unary(v1.TriggerSnapshotRequest, v1.TriggerSnapshotResponse),
  SetSettings: unary(v1.SetSettingsRequest, v1.SetSettingsResponse),
});

export const accessServiceDefinition = defineService(ACCESS_SERVICE_NAME, {
  AddUser: unary(v1.AddUserRequest, v1.AddUserResponse),
  DeleteUser: unary(v1.DeleteUserRequest, v1.DeleteUserResponse),
  ChangePassword: unary(v1.ChangePasswordRequest, v1.ChangePasswordResponse),
  SetUserTags: unary(v1.SetUserTagsRequest, v1.SetUserTagsResponse),
  ListUsers: unary(v1.ListUsersRequest, v1.ListUsersResponse),
  AddVhost: unary(v1.AddVhostRequest, v1.AddVhostResponse),
  DeleteVhost: unary(v1.DeleteVhostRequest, v1.DeleteVhostResponse),
  ListVhosts: unary(v1.ListVhostsRequest, v1.ListVhostsResponse),
  SetPermissions: unary(v1.SetPermissionsRequest, v1.SetPermissionsResponse),
  ClearPermissions: unary(v1.ClearPermissionsRequest, v1.ClearPermissionsResponse),
  ListPermissions: unary(v1.ListPermissionsRequest, v1.ListPermissionsResponse),
  WhoAmI: unary(v1.WhoAmIRequest, v1.WhoAmIResponse),
});

export type BrokerMethods = typeof brokerServiceDefinition;
export type ClusterMethods = typeof clusterServiceDefinition;
export type AccessMethods = typeof accessServiceDefinition;
