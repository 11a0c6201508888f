// What the StatefulSet hands one pod's container: its command line and its environment, read from
// the rendered manifests (the ConfigMap behind envFrom, and env with values or downward-API
// fields), so a local rehearsal runs nodes exactly as Kubernetes would.
import type { IStatefulSet } from "kubernetes-models/apps/v1/StatefulSet";
import type { K8sObject } from "./kustomize-render.ts";
import { pick } from "./typed-objects.ts";

export interface PodLaunch {
  podName: string;
  args: string[];
  env: Record<string, string>;
}

function container(set: IStatefulSet) {
  const found = set.spec?.template.spec?.containers[0];
  if (found === undefined) throw new Error(`StatefulSet ${set.metadata?.name} has no container`);
  return found;
}

/** The container's args and environment for pod `<set>-<ordinal>` in `namespace`. */
export function podLaunch(objects: readonly K8sObject[], setName: string, ordinal: number, namespace: string): PodLaunch {
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
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.fieldRef?.fieldPath === "metadata.name") env[e.name] = podName;
    else if (e.valueFrom?.fieldRef?.fieldPath === "metadata.namespace") env[e.name] = namespace;
    else throw new Error(`env ${e.name} of ${setName} comes from a source the rehearsal does not know`);
  }
  return { podName, args: [...(c.args ?? [])], env };
}
