// Offline validation of Kubernetes objects against the API's OpenAPI schemas, through the
// validators kubernetes-models compiles from them. It checks types, required fields and enums; it
// does not reject unknown fields. cert-manager's kinds go to cert-manager-schema.ts.
import { validateCertManagerObject } from "./cert-manager-schema.ts";

export interface SchemaResult {
  ok: boolean;
  problems: string[];
}

interface ModelInstance {
  validate(): void;
}
type ModelClass = new (data: unknown) => ModelInstance;

function isModelClass(value: unknown): value is ModelClass {
  return typeof value === "function" && typeof (value as { prototype?: { validate?: unknown } }).prototype?.validate === "function";
}

const API_VERSION = /^(?:([a-z0-9.-]+)\/)?(v\d+(?:(?:alpha|beta)\d+)?)$/;

/** Validates one object; an apiVersion/kind with no schema is a problem, not a pass. */
export async function validateK8sObject(object: unknown): Promise<SchemaResult> {
  if (typeof object !== "object" || object === null) return { ok: false, problems: ["not an object"] };
  const { apiVersion, kind } = object as { apiVersion?: unknown; kind?: unknown };
  if (typeof apiVersion !== "string" || typeof kind !== "string" || !/^[A-Z][A-Za-z0-9]*$/.test(kind)) {
    return { ok: false, problems: ["apiVersion and kind must be strings"] };
  }
  const match = API_VERSION.exec(apiVersion);
  if (match === null) return { ok: false, problems: [`malformed apiVersion ${apiVersion}`] };
  const modulePath = match[1] === undefined ? `kubernetes-models/${match[2]}/${kind}` : `kubernetes-models/${match[1]}/${match[2]}/${kind}`;
  let mod: Record<string, unknown>;
  try {
    mod = (await import(modulePath)) as Record<string, unknown>;
  } catch {
    return { ok: false, problems: [`no schema for ${apiVersion} ${kind}`] };
  }
  const Model = mod[kind];
  if (!isModelClass(Model)) return { ok: false, problems: [`no schema for ${apiVersion} ${kind}`] };
  try {
    new Model(object).validate();
    return { ok: true, problems: [] };
  } catch (err) {
    return { ok: false, problems: [err instanceof Error ? err.message : String(err)] };
  }
}

/** Validates any object the deployment renders: cert-manager's kinds by hand, the rest by schema. */
export async function validateRenderedObject(object: unknown): Promise<SchemaResult> {
  const apiVersion = typeof object === "object" && object !== null ? (object as { apiVersion?: unknown }).apiVersion : undefined;
  if (typeof apiVersion === "string" && apiVersion.startsWith("cert-manager.io/")) return validateCertManagerObject(object);
  return validateK8sObject(object);
}
