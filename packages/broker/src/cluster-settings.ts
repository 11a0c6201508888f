// The limits in force as the ClusterSettings message (command.proto): what SetClusterSettings
// changes and what a snapshot carries. Its fields are BrokerLimits' keys, one for one.
import type { raftmq } from "@raftmq/proto";
import { type BrokerError, invalidArgument } from "./broker-error.ts";
import { type BrokerLimits, limitKeys, limitRangeError } from "./limits.ts";

type SettingsProto = raftmq.v1.ClusterSettings.$Properties;

// A limit without a ClusterSettings field would stay per-process; a field without a limit would be
// replicated and ignored. Either fails to compile here.
type SameKeys<A, B> = [Exclude<A, B>, Exclude<B, A>] extends [never, never] ? true : false;
const settingsMatchLimits: SameKeys<Exclude<keyof SettingsProto, "$unknowns">, keyof BrokerLimits> = true;
void settingsMatchLimits;

/** Every limit, as written in a snapshot and answered by SetClusterSettings. */
export function settingsToProto(limits: BrokerLimits): SettingsProto {
  const out: SettingsProto = {};
  for (const key of limitKeys) out[key] = limits[key];
  return out;
}

/** The limits with every field `settings` sets replacing the one in `base`. */
export function settingsFromProto(settings: SettingsProto | null | undefined, base: BrokerLimits): BrokerLimits {
  const out = { ...base };
  if (settings == null) return out;
  for (const key of limitKeys) {
    const v = settings[key];
    if (v != null) out[key] = v;
  }
  return out;
}

/** The first field `settings` sets out of its range, or null. */
export function settingsError(settings: SettingsProto | null | undefined): BrokerError | null {
  if (settings == null) return null;
  for (const key of limitKeys) {
    const v = settings[key];
    if (v == null) continue;
    const error = limitRangeError(key, v);
    if (error !== null) return invalidArgument(`cluster setting ${error}`);
  }
  return null;
}
