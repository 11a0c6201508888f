// What a vanishing consumer process (vanishing-consumer-main.ts) and the harness say to each
// other: the child's identity comes in one environment variable, its events go out as one JSON
// object a line on stdout.

export const CLIENT_ENV = "RAFTMQ_CHAOS_CLIENT";

export type VanisherEvent =
  | { readonly event: "subscribed"; readonly address: string }
  | { readonly event: "delivery"; readonly value: number; readonly deliveryTag: number; readonly redelivered: boolean }
  | { readonly event: "ended"; readonly address: string; readonly details: string };

/** The client identity the harness hands the child (all optional: an insecure cluster needs none). */
export interface ClientIdentity {
  readonly ca?: string;
  readonly username?: string;
  readonly password?: string;
}

/** One line of the child's output, or undefined for anything else (a warning from node, say). */
export function parseVanisherEvent(line: string): VanisherEvent | undefined {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof v !== "object" || v === null) return undefined;
  const o = v as Record<string, unknown>;
  switch (o.event) {
    case "subscribed":
      return typeof o.address === "string" ? { event: "subscribed", address: o.address } : undefined;
    case "delivery":
      return typeof o.value === "number" && typeof o.deliveryTag === "number" && typeof o.redelivered === "boolean"
        ? { event: "delivery", value: o.value, deliveryTag: o.deliveryTag, redelivered: o.redelivered }
        : undefined;
    case "ended":
      return typeof o.address === "string" && typeof o.details === "string" ? { event: "ended", address: o.address, details: o.details } : undefined;
    default:
      return undefined;
  }
}
