export { CLUSTER_SETTING_NAMES, type ClusterSettingValues, type ClusterSettingsInForce, connect, type GetResult, type HandledConsumer, type MemberInfo, type NodeStatus, RaftmqClient } from "./raftmq-client.ts";
export { type ClientOptions, type ConnectOptions, DEFAULT_CLIENT_OPTIONS } from "./client-options.ts";
export { AUTHORIZATION_METADATA_KEY, type Credentials, DEFAULT_VHOST, type SecurityOptions, type TlsOptions, VHOST_METADATA_KEY } from "./connection-security.ts";
export type { Permissions, UserInfo, WhoAmI } from "./access-types.ts";
export {
  DEFAULT_PUBLISHER_OPTIONS,
  MAX_PUBLISHER_WINDOW,
  type PublishConfirm,
  type PublishOptions,
  Publisher,
  type PublisherIdentity,
  type PublisherOptions,
  type PublisherStats,
} from "./publisher.ts";
export { type AckOptions, type ConsumeOptions, Consumer, type ConsumerStats, DEFAULT_CONSUME_OPTIONS, type Delivery, type DeliveryHandler, type ExclusiveQueueOptions, type HandlerRun, MAX_PREFETCH, type NackOptions, type QueueBinding, type SettleOptions } from "./consumer.ts";
export {
  AuthenticationError,
  ClosedError,
  ConsumerCancelledError,
  DeadlineExceededError,
  DedupWindowPassedError,
  InvalidArgumentError,
  type NackKind,
  NotFoundError,
  NotLeaderError,
  PermissionDeniedError,
  PreconditionFailedError,
  PublishNackError,
  PublishOutcomeUnknownError,
  RaftmqError,
  ResourceExhaustedError,
  StaleDeliveryError,
  UnavailableError,
} from "./client-errors.ts";
export {
  type BindingDestination,
  type BindingInfo,
  type Body,
  type DeclareExchangeOptions,
  type DeclareQueueOptions,
  EXCHANGE_TYPES,
  type ExchangeInfo,
  type ExchangeType,
  type HeaderValue,
  type Headers,
  type MessageProperties,
  type QueueArguments,
  type QueueInfo,
} from "./message-types.ts";
