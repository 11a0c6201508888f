// Small helpers the codec's tests share.
import { AmqpCodecError } from "../src/index.ts";

/** The code of the AmqpCodecError `f` throws, or undefined when it returns; any other error is rethrown. */
export function codeOf(f: () => unknown): number | undefined {
  try {
    f();
  } catch (e) {
    if (e instanceof AmqpCodecError) return e.code;
    throw e;
  }
  return undefined;
}

/** `buf` cut at the given offsets (each taken modulo its length + 1), in order. */
export function cutAt(buf: Buffer, offsets: number[]): Buffer[] {
  const points = [...new Set(offsets.map((n) => n % (buf.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const p of [...points, buf.length]) {
    out.push(buf.subarray(from, p));
    from = p;
  }
  return out;
}
