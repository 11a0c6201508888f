// Renders a kustomization the way `kubectl kustomize` does for the subset deploy/k8s uses:
// resources (files and nested kustomizations), namespace, JSON 6902 patches (a file or inline)
// with a target, and Secrets generated from env files without a name hash. Any other field is
// refused, so a kustomization that outgrows this renderer fails loudly.
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments, parse as parseYaml } from "yaml";
import { applyJsonPatch, toPatchOperations } from "./json-patch.ts";

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; [key: string]: unknown };
  [key: string]: unknown;
}

export class KustomizeError extends Error {
  override name = "KustomizeError";
}

const SUPPORTED_FIELDS = new Set(["apiVersion", "kind", "resources", "namespace", "patches", "secretGenerator"]);
const SUPPORTED_GENERATOR_FIELDS = new Set(["name", "envs", "type", "options"]);
/** A line of an env file, as kustomize reads it: KEY=value, the value taken as is. */
const ENV_LINE = /^([A-Za-z_][A-Za-z0-9_.-]*)=(.*)$/;
const CLUSTER_SCOPED = new Set(["Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume", "StorageClass", "CustomResourceDefinition", "PriorityClass"]);
/** Nesting depth of kustomizations: a cycle of bases would otherwise recurse forever. */
const MAX_DEPTH = 8;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function asK8sObject(raw: unknown, source: string): K8sObject {
  if (!isRecord(raw)) throw new KustomizeError(`${source}: a resource must be a mapping`);
  const { apiVersion, kind, metadata } = raw;
  if (typeof apiVersion !== "string" || typeof kind !== "string") throw new KustomizeError(`${source}: apiVersion and kind must be strings`);
  if (!isRecord(metadata) || typeof metadata.name !== "string" || metadata.name === "") throw new KustomizeError(`${source}: ${kind} needs metadata.name`);
  return raw as K8sObject;
}

/** Every document of a YAML file, empty documents skipped. */
export function readYamlObjects(file: string): unknown[] {
  const docs = parseAllDocuments(readFileSync(file, "utf8"));
  const out: unknown[] = [];
  for (const doc of docs) {
    if (doc.errors.length > 0) throw new KustomizeError(`${file}: ${doc.errors.map((e) => e.message).join("; ")}`);
    const value: unknown = doc.toJS();
    if (value !== null && value !== undefined) out.push(value);
  }
  return out;
}

function objectKey(o: K8sObject): string {
  return `${o.apiVersion}/${o.kind}/${o.metadata.namespace ?? ""}/${o.metadata.name}`;
}

export interface RenderOptions {
  /**
   * File contents by absolute path, read instead of the disk: a test supplies a file the operator
   * makes and git ignores (a generator's env file) without writing into deploy/.
   */
  files?: Readonly<Record<string, string>>;
}

function readText(file: string, options: RenderOptions): string {
  const given = options.files?.[file];
  if (given !== undefined) return given;
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    throw new KustomizeError(`${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** The Secret a secretGenerator entry makes: its env files' KEY=value lines, base64 in data. */
function generateSecret(raw: unknown, dir: string, source: string, options: RenderOptions): K8sObject {
  if (!isRecord(raw)) throw new KustomizeError(`${source}: not a mapping`);
  for (const field of Object.keys(raw)) {
    if (!SUPPORTED_GENERATOR_FIELDS.has(field)) throw new KustomizeError(`${source}: field ${field} is not supported by this renderer`);
  }
  const name = stringField(raw, "name", source);
  // With a hash suffix kustomize renames the Secret and every reference to it; this renderer does not.
  if (!isRecord(raw.options) || raw.options.disableNameSuffixHash !== true) {
    throw new KustomizeError(`${source}: only generators with options.disableNameSuffixHash: true are supported`);
  }
  const envs = raw.envs;
  if (!Array.isArray(envs) || envs.length === 0) throw new KustomizeError(`${source}: envs must list env files`);
  const data: Record<string, string> = {};
  for (const entry of envs) {
    if (typeof entry !== "string") throw new KustomizeError(`${source}: envs entries must be paths`);
    const file = join(dir, entry);
    // Lines as Go's bufio.ScanLines gives them to kustomize: a trailing \r dropped.
    for (const [i, line] of readText(file, options).split("\n").entries()) {
      const text = line.replace(/\r$/, "").trimStart();
      if (text === "" || text.startsWith("#")) continue;
      // kustomize takes a line without `=` from its own environment: never wanted here.
      const match = ENV_LINE.exec(text);
      const key = match?.[1];
      if (match === null || key === undefined) throw new KustomizeError(`${file}:${i + 1}: not KEY=value`);
      if (Object.hasOwn(data, key)) throw new KustomizeError(`${file}:${i + 1}: ${key} is given twice`);
      data[key] = Buffer.from(match[2] ?? "", "utf8").toString("base64");
    }
  }
  const type = raw.type === undefined ? "Opaque" : stringField(raw, "type", source);
  return { apiVersion: "v1", kind: "Secret", metadata: { name }, type, data };
}

function stringField(raw: Record<string, unknown>, key: string, source: string): string {
  const value = raw[key];
  if (typeof value !== "string" || value === "") throw new KustomizeError(`${source}: ${key} must be a non-empty string`);
  return value;
}

/** Renders the kustomization in dir into its list of objects: resources in order, then generated ones. */
export function renderKustomization(dir: string, options: RenderOptions = {}, depth = 0): K8sObject[] {
  if (depth > MAX_DEPTH) throw new KustomizeError(`${dir}: kustomizations nested deeper than ${MAX_DEPTH}`);
  const file = join(dir, "kustomization.yaml");
  const k: unknown = parseYaml(readText(file, options));
  if (!isRecord(k)) throw new KustomizeError(`${file}: not a mapping`);
  for (const field of Object.keys(k)) {
    if (!SUPPORTED_FIELDS.has(field)) throw new KustomizeError(`${file}: field ${field} is not supported by this renderer`);
  }
  if (k.kind !== "Kustomization") throw new KustomizeError(`${file}: kind must be Kustomization`);

  const resources = k.resources ?? [];
  if (!Array.isArray(resources)) throw new KustomizeError(`${file}: resources must be a list`);
  let objects: K8sObject[] = [];
  for (const entry of resources) {
    if (typeof entry !== "string") throw new KustomizeError(`${file}: resources entries must be paths`);
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) objects.push(...renderKustomization(path, options, depth + 1));
    else objects.push(...readYamlObjects(path).map((raw, i) => asK8sObject(raw, `${path}#${i}`)));
  }

  const generators = k.secretGenerator ?? [];
  if (!Array.isArray(generators)) throw new KustomizeError(`${file}: secretGenerator must be a list`);
  for (const [i, generator] of generators.entries()) objects.push(generateSecret(generator, dir, `${file} secretGenerator[${i}]`, options));

  const patches = k.patches ?? [];
  if (!Array.isArray(patches)) throw new KustomizeError(`${file}: patches must be a list`);
  for (const [i, patch] of patches.entries()) {
    const source = `${file} patches[${i}]`;
    if (!isRecord(patch) || !isRecord(patch.target)) throw new KustomizeError(`${source}: needs a target, and a path or an inline patch`);
    const kind = stringField(patch.target, "kind", source);
    const name = stringField(patch.target, "name", source);
    if ((patch.path === undefined) === (patch.patch === undefined)) throw new KustomizeError(`${source}: give path or patch, not both or neither`);
    const patchFile = patch.path === undefined ? source : join(dir, stringField(patch, "path", source));
    const text = patch.path === undefined ? stringField(patch, "patch", source) : readText(patchFile, options);
    const operations = toPatchOperations(parseYaml(text), patchFile);
    const matches = objects.filter((o) => o.kind === kind && o.metadata.name === name);
    if (matches.length !== 1) throw new KustomizeError(`${source}: target ${kind}/${name} matches ${matches.length} objects, expected 1`);
    objects = objects.map((o) => (o.kind === kind && o.metadata.name === name ? asK8sObject(applyJsonPatch(o, operations), patchFile) : o));
  }

  if (k.namespace !== undefined) {
    const namespace = stringField(k, "namespace", file);
    objects = objects.map((o) => (CLUSTER_SCOPED.has(o.kind) ? o : { ...o, metadata: { ...o.metadata, namespace } }));
  }

  const seen = new Set<string>();
  for (const o of objects) {
    const key = objectKey(o);
    if (seen.has(key)) throw new KustomizeError(`${file}: ${key} is defined twice`);
    seen.add(key);
  }
  return objects;
}
