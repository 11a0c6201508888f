// Typed errors a command can answer with. Each maps to one gRPC status at the edge.

export type BrokerErrorCode = "INVALID_ARGUMENT" | "NOT_FOUND" | "PRECONDITION_FAILED" | "RESOURCE_EXHAUSTED" | "OUTCOME_UNKNOWN";

export interface BrokerError {
  code: BrokerErrorCode;
  message: string;
}

export function invalidArgument(message: string): BrokerError {
  return { code: "INVALID_ARGUMENT", message };
}

export function notFound(message: string): BrokerError {
  return { code: "NOT_FOUND", message };
}

export function preconditionFailed(message: string): BrokerError {
  return { code: "PRECONDITION_FAILED", message };
}

/**
 * Nothing was done now, and the broker cannot tell whether an earlier attempt of the same request
 * took effect: a retried publish whose sequence its producer's dedup window no longer covers.
 * Not a refusal, and no retry can tell either.
 */
export function outcomeUnknown(message: string): BrokerError {
  return { code: "OUTCOME_UNKNOWN", message };
}

/** A settlement of a delivery its consumer does not hold (never delivered, or settled already). */
export function unknownDeliveryTag(deliveryTag: number, consumerId: string): BrokerError {
  return preconditionFailed(`unknown delivery tag ${deliveryTag} on consumer ${consumerId}`);
}

export function resourceExhausted(message: string): BrokerError {
  return { code: "RESOURCE_EXHAUSTED", message };
}

/** A broken invariant: the state machine stops loudly rather than diverge silently. */
export class BrokerInvariantError extends Error {
  override name = "BrokerInvariantError";
}

export function invariant(condition: boolean, message: string): asserts condition {
  if (!condition) throw new BrokerInvariantError(message);
}
