// RFC 6902 JSON Patch (add, remove, replace, test) on plain JSON values, as kustomize applies a
// patch file whose target names the object.

export type PatchOperation =
  | { op: "add"; path: string; value: unknown }
  | { op: "replace"; path: string; value: unknown }
  | { op: "remove"; path: string }
  | { op: "test"; path: string; value: unknown };

export class JsonPatchError extends Error {
  override name = "JsonPatchError";
}

type Container = Record<string, unknown> | unknown[];

function isContainer(value: unknown): value is Container {
  return typeof value === "object" && value !== null;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return isContainer(value) && !Array.isArray(value);
}

/** Splits a JSON pointer into its unescaped tokens. */
export function parsePointer(pointer: string): string[] {
  if (pointer === "") return [];
  if (!pointer.startsWith("/")) throw new JsonPatchError(`JSON pointer ${JSON.stringify(pointer)} must start with /`);
  return pointer
    .slice(1)
    .split("/")
    .map((t) => t.replace(/~1/g, "/").replace(/~0/g, "~"));
}

function arrayIndex(array: unknown[], token: string, pointer: string, allowEnd: boolean): number {
  if (allowEnd && token === "-") return array.length;
  if (!/^(0|[1-9]\d*)$/.test(token)) throw new JsonPatchError(`${pointer}: ${JSON.stringify(token)} is not an array index`);
  const index = Number(token);
  if (index > array.length || (!allowEnd && index === array.length)) throw new JsonPatchError(`${pointer}: index ${index} is out of bounds`);
  return index;
}

function parentOf(doc: unknown, tokens: string[], pointer: string): { parent: Container; last: string } {
  let node = doc;
  for (const token of tokens.slice(0, -1)) {
    if (Array.isArray(node)) node = node[arrayIndex(node, token, pointer, false)];
    else if (isRecord(node) && Object.hasOwn(node, token)) node = node[token];
    else throw new JsonPatchError(`${pointer}: no value at ${JSON.stringify(token)}`);
  }
  const last = tokens.at(-1);
  if (!isContainer(node) || last === undefined) throw new JsonPatchError(`${pointer}: parent is not an object or array`);
  return { parent: node, last };
}

function valueAt(doc: unknown, pointer: string): unknown {
  let node = doc;
  for (const token of parsePointer(pointer)) {
    if (Array.isArray(node)) node = node[arrayIndex(node, token, pointer, false)];
    else if (isRecord(node) && Object.hasOwn(node, token)) node = node[token];
    else throw new JsonPatchError(`${pointer}: no value at ${JSON.stringify(token)}`);
  }
  return node;
}

/** Applies the operations in order to a copy of doc; the document must not be the root target. */
export function applyJsonPatch<T>(doc: T, operations: readonly PatchOperation[]): T {
  const out = structuredClone(doc);
  for (const operation of operations) {
    const tokens = parsePointer(operation.path);
    if (tokens.length === 0) throw new JsonPatchError("patching the whole document is not supported");
    switch (operation.op) {
      case "test":
        if (JSON.stringify(valueAt(out, operation.path)) !== JSON.stringify(operation.value)) {
          throw new JsonPatchError(`test failed at ${operation.path}`);
        }
        break;
      case "add": {
        const { parent, last } = parentOf(out, tokens, operation.path);
        if (Array.isArray(parent)) parent.splice(arrayIndex(parent, last, operation.path, true), 0, structuredClone(operation.value));
        else parent[last] = structuredClone(operation.value);
        break;
      }
      case "replace":
      case "remove": {
        valueAt(out, operation.path);
        const { parent, last } = parentOf(out, tokens, operation.path);
        if (Array.isArray(parent)) {
          const index = arrayIndex(parent, last, operation.path, false);
          if (operation.op === "replace") parent[index] = structuredClone(operation.value);
          else parent.splice(index, 1);
        } else if (operation.op === "replace") parent[last] = structuredClone(operation.value);
        else delete parent[last];
        break;
      }
      default: {
        const never: never = operation;
        throw new JsonPatchError(`unknown operation ${JSON.stringify(never)}`);
      }
    }
  }
  return out;
}

/** Checks parsed YAML/JSON is a list of operations this module applies. */
export function toPatchOperations(raw: unknown, source: string): PatchOperation[] {
  if (!Array.isArray(raw)) throw new JsonPatchError(`${source}: a JSON 6902 patch is a list of operations`);
  return raw.map((item, i) => {
    if (!isRecord(item)) throw new JsonPatchError(`${source}[${i}]: not an object`);
    const { op, path } = item;
    if (typeof path !== "string") throw new JsonPatchError(`${source}[${i}]: path must be a string`);
    switch (op) {
      case "add":
      case "replace":
      case "test":
        if (!Object.hasOwn(item, "value")) throw new JsonPatchError(`${source}[${i}]: ${op} needs a value`);
        return { op, path, value: item.value };
      case "remove":
        return { op, path };
      default:
        throw new JsonPatchError(`${source}[${i}]: unsupported op ${JSON.stringify(op)}`);
    }
  });
}
