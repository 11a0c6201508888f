// The deployments the tests check, rendered with what an operator supplies before applying: the
// bootstrap administrator's password, a git-ignored env file for the production overlay's
// secretGenerator, a Secret made by hand for the base. Tests never read or write the real file.
import { join } from "node:path";
import { K8S_BASE, K8S_PRODUCTION } from "./deploy-paths.ts";
import { type K8sObject, renderKustomization } from "./kustomize-render.ts";
import type { SecretValues } from "./statefulset-pod.ts";

export const TEST_ADMIN_PASSWORD = "test-only-bootstrap-password-7c1e";
export const PRODUCTION_ADMIN_ENV_FILE = join(K8S_PRODUCTION, "bootstrap-admin.env");

export interface Deployment {
  label: "base" | "production";
  dir: string;
  /** The namespace its certificates name, and the one it is applied to. */
  namespace: string;
  /** Secrets it expects to exist without rendering them. */
  externalSecrets: SecretValues;
}

export const DEPLOYMENTS: readonly Deployment[] = [
  { label: "base", dir: K8S_BASE, namespace: "default", externalSecrets: { "raftmq-bootstrap-admin": { password: TEST_ADMIN_PASSWORD } } },
  { label: "production", dir: K8S_PRODUCTION, namespace: "raftmq", externalSecrets: {} },
];

export function renderDeployment(dir: string): K8sObject[] {
  return renderKustomization(dir, { files: { [PRODUCTION_ADMIN_ENV_FILE]: `password=${TEST_ADMIN_PASSWORD}\n` } });
}
