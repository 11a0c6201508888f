// Turns one decoded JSON line into a typed op, or says which field is wrong.
// Fields the types do not name are kept: the history format allows extra fields.

import { isNemesisF, type Op, type OpType } from "./history.ts";

export type ParseOpResult = { readonly ok: true; readonly op: Op } | { readonly ok: false; readonly reason: string };

type Fields = Record<string, unknown>;

const OP_TYPES: ReadonlySet<string> = new Set(["invoke", "ok", "fail", "info"]);

function fail(reason: string): ParseOpResult {
  return { ok: false, reason };
}

function isOpType(v: unknown): v is OpType {
  return typeof v === "string" && OP_TYPES.has(v);
}

function optionalString(o: Fields, key: string): string | undefined {
  const v = o[key];
  if (v === undefined || typeof v === "string") return undefined;
  return `${key} must be a string`;
}

/** Values are exact integers so that the checker can key maps by them without loss. */
function isSafeInt(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v);
}

export function parseOp(decoded: unknown): ParseOpResult {
  if (typeof decoded !== "object" || decoded === null || Array.isArray(decoded)) return fail("not a JSON object");
  const o = decoded as Fields;
  if (typeof o.process !== "string" || o.process.length === 0) return fail("process must be a non-empty string");
  if (!isOpType(o.type)) return fail(`type must be one of invoke, ok, fail, info (got ${JSON.stringify(o.type)})`);
  if (typeof o.time !== "number" || !Number.isFinite(o.time) || o.time < 0) return fail("time must be a number >= 0");
  if (typeof o.f !== "string") return fail("f must be a string");
  const f = o.f;
  switch (f) {
    case "publish":
    case "ack": {
      if (!isSafeInt(o.value)) return fail(`${f} value must be an integer`);
      const bad = optionalString(o, "queue") ?? optionalString(o, "error");
      if (bad !== undefined) return fail(bad);
      if (f === "ack" && o.deliveryTag !== undefined && !isSafeInt(o.deliveryTag)) {
        return fail("deliveryTag must be an integer");
      }
      return { ok: true, op: o as unknown as Op };
    }
    case "deliver": {
      if (o.type !== "ok") return fail("deliver must have type ok");
      if (!isSafeInt(o.value)) return fail("deliver value must be an integer");
      if (typeof o.queue !== "string") return fail("deliver queue must be a string");
      if (typeof o.redelivered !== "boolean") return fail("deliver redelivered must be a boolean");
      if (!isSafeInt(o.deliveryTag)) return fail("deliver deliveryTag must be an integer");
      if (o.phase !== undefined && o.phase !== "drain") return fail('deliver phase must be "drain" when present');
      return { ok: true, op: o as unknown as Op };
    }
    case "drain": {
      const bad = optionalString(o, "queue") ?? optionalString(o, "error");
      if (bad !== undefined) return fail(bad);
      if (o.value !== undefined && !isSafeInt(o.value)) return fail("drain value must be an integer");
      return { ok: true, op: o as unknown as Op };
    }
    default: {
      if (!isNemesisF(f)) return fail(`unknown f ${JSON.stringify(f)}`);
      if (o.process !== "nemesis") return fail(`${f} must come from process "nemesis"`);
      if (o.type !== "info") return fail(`nemesis op ${f} must have type info`);
      if (typeof o.value !== "string") return fail(`nemesis op ${f} value must be a string`);
      if (o.nodes !== undefined && !(Array.isArray(o.nodes) && o.nodes.every((n) => typeof n === "string"))) {
        return fail("nodes must be an array of strings");
      }
      return { ok: true, op: o as unknown as Op };
    }
  }
}
