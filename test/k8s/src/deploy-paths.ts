// Where the deployment files live, relative to this folder.
import { fileURLToPath } from "node:url";

export const REPO_ROOT = fileURLToPath(new URL("../../../", import.meta.url));
export const K8S_BASE = fileURLToPath(new URL("../../../deploy/k8s/base", import.meta.url));
export const K8S_PRODUCTION = fileURLToPath(new URL("../../../deploy/k8s/overlays/production", import.meta.url));
export const CHAOS_MESH = fileURLToPath(new URL("../../../deploy/chaos-mesh", import.meta.url));
export const DOCKERFILE = fileURLToPath(new URL("../../../deploy/docker/Dockerfile", import.meta.url));
export const DOCKER_DIR = fileURLToPath(new URL("../../../deploy/docker", import.meta.url));
