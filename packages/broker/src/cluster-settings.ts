// The limits in force as the ClusterSettings message (types.proto): what SetClusterSettings
// changes and what a snapshot carries. Its fields are BrokerLimits' keys, one for one.
import type { raftmq } from "@raftmq/proto";
import { type BrokerError, invalidArgument } from "./broker-error.ts";
import { type BrokerLimits, limitKeys, limitRangeError, requestLimitKeys } from "./limits.ts";

/**
 * The request limits (RequestLimitSettings) among the settings. Code before it ignores those
 * fields, so an entry of an older version setting one would leave that node with the old value
 * (and its snapshots without the new one): only an entry of this version or later may set them.
 */
export const REQUEST_LIMITS_VERSION = 3;

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

/**
 * The first field `settings` sets out of its range, or that an entry of `machineVersion` may not
 * set; null when there is none.
 */
export function settingsError(settings: SettingsProto | null | undefined, machineVersion: number): BrokerError | null {
  if (settings == null) return null;
  if (machineVersion < REQUEST_LIMITS_VERSION) {
    const key = requestLimitKeys.find((k) => settings[k] != null);
    if (key !== undefined) {
      return invalidArgument(`cluster setting ${key} needs machine_version ${REQUEST_LIMITS_VERSION} or later (older nodes do not keep it); set_cluster_settings named ${machineVersion}`);
    }
  }
  for (const key of limitKeys) {
    const v = settings[key];
    if (v == null) continue;
    const error = limitRangeError(key, v);
    if (error !== null) return invalidArgument(`cluster setting ${error}`);
  }
  return null;
}
