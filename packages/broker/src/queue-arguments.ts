// Queue x-arguments between their wire form (raftmq.v1.QueueArguments) and the broker's own.
import { raftmq } from "@raftmq/proto";
import type { QueueArgs } from "./queue.ts";

export function queueArgumentsToProto(a: QueueArgs): raftmq.v1.QueueArguments.$Properties {
  const out: raftmq.v1.QueueArguments.$Properties = {
    overflow: a.overflow === "reject-publish" ? raftmq.v1.Overflow.OVERFLOW_REJECT_PUBLISH : raftmq.v1.Overflow.OVERFLOW_DROP_HEAD,
    singleActiveConsumer: a.singleActiveConsumer,
    queueType: a.queueType,
  };
  if (a.messageTtlMs !== null) out.messageTtlMs = a.messageTtlMs;
  if (a.expiresMs !== null) out.expiresMs = a.expiresMs;
  if (a.maxLength !== null) out.maxLength = a.maxLength;
  if (a.maxLengthBytes !== null) out.maxLengthBytes = a.maxLengthBytes;
  if (a.deadLetterExchange !== null) out.deadLetterExchange = a.deadLetterExchange;
  if (a.deadLetterRoutingKey !== null) out.deadLetterRoutingKey = a.deadLetterRoutingKey;
  if (a.deliveryLimit !== null) out.deliveryLimit = a.deliveryLimit;
  return out;
}

export function queueArgumentsFromProto(a: raftmq.v1.QueueArguments.$Properties | null | undefined): QueueArgs {
  const x = a ?? {};
  return {
    messageTtlMs: x.messageTtlMs ?? null,
    expiresMs: x.expiresMs ?? null,
    maxLength: x.maxLength ?? null,
    maxLengthBytes: x.maxLengthBytes ?? null,
    overflow: x.overflow === raftmq.v1.Overflow.OVERFLOW_REJECT_PUBLISH ? "reject-publish" : "drop-head",
    deadLetterExchange: x.deadLetterExchange ?? null,
    deadLetterRoutingKey: x.deadLetterRoutingKey ?? null,
    deliveryLimit: x.deliveryLimit ?? null,
    singleActiveConsumer: x.singleActiveConsumer ?? false,
    queueType: x.queueType ?? "",
  };
}
