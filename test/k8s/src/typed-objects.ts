// Picks one rendered object by kind and name and gives it its kubernetes-models type, after
// checking it really is that kind, so assertions read typed fields instead of casting paths.
// cert-manager's kinds have no model package: their types here cover the fields deploy/ uses,
// and cert-manager-schema.ts checks them.
import type { IStatefulSet } from "kubernetes-models/apps/v1/StatefulSet";
import type { IJob } from "kubernetes-models/batch/v1/Job";
import type { IPodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import type { IConfigMap } from "kubernetes-models/v1/ConfigMap";
import type { IService } from "kubernetes-models/v1/Service";
import type { ISecret } from "kubernetes-models/v1/Secret";
import type { IServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import type { K8sObject } from "./kustomize-render.ts";

export interface IssuerRef {
  name: string;
  kind?: string;
  group?: string;
}

export interface ICertificate {
  apiVersion: "cert-manager.io/v1";
  kind: "Certificate";
  metadata: { name: string; namespace?: string };
  spec: {
    secretName: string;
    issuerRef: IssuerRef;
    isCA?: boolean;
    commonName?: string;
    dnsNames?: string[];
    uris?: string[];
    usages?: string[];
    duration?: string;
    renewBefore?: string;
    privateKey?: { algorithm?: string; size?: number; encoding?: string; rotationPolicy?: string };
  };
}

export interface IIssuer {
  apiVersion: "cert-manager.io/v1";
  kind: "Issuer";
  metadata: { name: string; namespace?: string };
  spec: { selfSigned?: Record<string, unknown>; ca?: { secretName: string } };
}

interface KindTypes {
  StatefulSet: IStatefulSet;
  Service: IService;
  ConfigMap: IConfigMap;
  PodDisruptionBudget: IPodDisruptionBudget;
  ServiceAccount: IServiceAccount;
  Job: IJob;
  Secret: ISecret;
  Certificate: ICertificate;
  Issuer: IIssuer;
}

/** Every rendered object of a kind, typed. */
export function all<K extends keyof KindTypes>(objects: readonly K8sObject[], kind: K): KindTypes[K][] {
  return objects.filter((o) => o.kind === kind) as unknown as KindTypes[K][];
}

export function pick<K extends keyof KindTypes>(objects: readonly K8sObject[], kind: K, name: string): KindTypes[K] {
  const found = objects.filter((o) => o.kind === kind && o.metadata.name === name);
  if (found.length !== 1) throw new Error(`expected one ${kind}/${name}, found ${found.length}`);
  return found[0] as unknown as KindTypes[K];
}
