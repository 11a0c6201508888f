// What the StatefulSet hands one pod's container: its command line and its environment, read from
// the rendered manifests (the ConfigMap behind envFrom, and env with values, downward-API fields
// or Secret keys, `$(VAR)` expanded as the kubelet does), and the files of its projected volumes,
// so a local rehearsal runs nodes exactly as Kubernetes would.
import type { IStatefulSet } from "kubernetes-models/apps/v1/StatefulSet";
import type { K8sObject } from "./kustomize-render.ts";
import { pick } from "./typed-objects.ts";

export interface PodLaunch {
  podName: string;
  args: string[];
  env: Record<string, string>;
}

/** Secret values by Secret name and key, for Secrets the operator creates outside the manifests. */
export type SecretValues = Readonly<Record<string, Readonly<Record<string, string>>>>;

function container(set: IStatefulSet) {
  const found = set.spec?.template.spec?.containers[0];
  if (found === undefined) throw new Error(`StatefulSet ${set.metadata?.name} has no container`);
  return found;
}

/**
 * Kubernetes' dependent environment variables: `$(NAME)` becomes the value of a variable defined
 * before (envFrom, or an earlier env entry), `$$` is a literal `$`, and a reference to an unknown
 * name stays as written.
 */
export function expandEnvReferences(value: string, defined: Readonly<Record<string, string>>): string {
  let out = "";
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    const next = value[i + 1];
    if (c !== "$" || next === undefined) {
      out += c;
    } else if (next === "$") {
      out += "$";
      i++;
    } else if (next === "(") {
      const close = value.indexOf(")", i + 2);
      if (close < 0) {
        out += value.slice(i);
        break;
      }
      const name = value.slice(i + 2, close);
      out += Object.hasOwn(defined, name) ? defined[name] : `$(${name})`;
      i = close;
    } else {
      out += c;
    }
  }
  return out;
}

function secretValue(objects: readonly K8sObject[], secrets: SecretValues, name: string, key: string): string | undefined {
  const rendered = objects.find((o) => o.kind === "Secret" && o.metadata.name === name) as { data?: Record<string, string>; stringData?: Record<string, string> } | undefined;
  if (rendered !== undefined) {
    const text = rendered.stringData?.[key];
    if (text !== undefined) return text;
    const data = rendered.data?.[key];
    return data === undefined ? undefined : Buffer.from(data, "base64").toString("utf8");
  }
  return secrets[name]?.[key];
}

/** The container's args and environment for pod `<set>-<ordinal>` in `namespace`. */
export function podLaunch(objects: readonly K8sObject[], setName: string, ordinal: number, namespace: string, secrets: SecretValues = {}): PodLaunch {
  const set = pick(objects, "StatefulSet", setName);
  const c = container(set);
  const podName = `${setName}-${ordinal}`;
  const env: Record<string, string> = {};
  for (const from of c.envFrom ?? []) {
    const name = from.configMapRef?.name;
    if (name === undefined) throw new Error(`envFrom of ${setName} other than a ConfigMap is not rehearsed`);
    Object.assign(env, pick(objects, "ConfigMap", name).data ?? {});
  }
  // Kubernetes lets env override envFrom; the order here is the same.
  for (const e of c.env ?? []) {
    const ref = e.valueFrom?.secretKeyRef;
    if (e.value !== undefined) env[e.name] = expandEnvReferences(e.value, env);
    else if (e.valueFrom?.fieldRef?.fieldPath === "metadata.name") env[e.name] = podName;
    else if (e.valueFrom?.fieldRef?.fieldPath === "metadata.namespace") env[e.name] = namespace;
    else if (ref !== undefined) {
      const value = secretValue(objects, secrets, ref.name ?? "", ref.key);
      if (value === undefined) throw new Error(`env ${e.name} of ${setName}: Secret ${ref.name} has no key ${ref.key} (neither rendered nor given)`);
      env[e.name] = value;
    } else throw new Error(`env ${e.name} of ${setName} comes from a source the rehearsal does not know`);
  }
  return { podName, args: [...(c.args ?? [])], env };
}

export interface ProjectedFile {
  /** Path inside the volume, e.g. `raftmq-0/tls.crt`. */
  path: string;
  secret: string;
  key: string;
}

/** Where a projected volume of Secrets is mounted in the container, and which Secret key is each file. */
export function projectedSecretFiles(objects: readonly K8sObject[], setName: string, volumeName: string): { mountPath: string; readOnly: boolean; files: ProjectedFile[] } {
  const set = pick(objects, "StatefulSet", setName);
  const mount = container(set).volumeMounts?.find((m) => m.name === volumeName);
  const volume = set.spec?.template.spec?.volumes?.find((v) => v.name === volumeName);
  if (mount === undefined || volume?.projected === undefined) throw new Error(`${setName} mounts no projected volume ${volumeName}`);
  const files: ProjectedFile[] = [];
  for (const source of volume.projected.sources ?? []) {
    const secret = source.secret;
    if (secret?.name === undefined || secret.items === undefined) throw new Error(`volume ${volumeName}: only Secret sources with items are rehearsed`);
    for (const item of secret.items) files.push({ path: item.path, secret: secret.name, key: item.key });
  }
  return { mountPath: mount.mountPath, readOnly: mount.readOnly === true, files };
}
