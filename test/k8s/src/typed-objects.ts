// Picks one rendered object by kind and name and gives it its kubernetes-models type, after
// checking it really is that kind, so assertions read typed fields instead of casting paths.
import type { IStatefulSet } from "kubernetes-models/apps/v1/StatefulSet";
import type { IJob } from "kubernetes-models/batch/v1/Job";
import type { IPodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import type { IConfigMap } from "kubernetes-models/v1/ConfigMap";
import type { IService } from "kubernetes-models/v1/Service";
import type { IServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import type { K8sObject } from "./kustomize-render.ts";

interface KindTypes {
  StatefulSet: IStatefulSet;
  Service: IService;
  ConfigMap: IConfigMap;
  PodDisruptionBudget: IPodDisruptionBudget;
  ServiceAccount: IServiceAccount;
  Job: IJob;
}

export function pick<K extends keyof KindTypes>(objects: readonly K8sObject[], kind: K, name: string): KindTypes[K] {
  const found = objects.filter((o) => o.kind === kind && o.metadata.name === name);
  if (found.length !== 1) throw new Error(`expected one ${kind}/${name}, found ${found.length}`);
  return found[0] as unknown as KindTypes[K];
}
