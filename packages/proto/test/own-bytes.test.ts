import { describe, expect, it } from "vitest";
import { ownBytes } from "../src/index.ts";

describe("ownBytes", () => {
  it("copies a slice of a larger buffer out to memory of its exact size", () => {
    const pooled = Buffer.from("a short message"); // Node hands out small buffers from a shared pool
    expect(pooled.buffer.byteLength).toBeGreaterThan(pooled.byteLength);
    const own = ownBytes(pooled);
    expect(own.byteOffset).toBe(0);
    expect(own.buffer.byteLength).toBe(pooled.byteLength);
    expect(Buffer.from(own).toString()).toBe("a short message");
    pooled[0] = 0x41;
    expect(own[0]).toBe(0x61);
  });

  it("hands back bytes that already own their memory", () => {
    const bytes = new Uint8Array([1, 2, 3]);
    expect(ownBytes(bytes)).toBe(bytes);
    const view = new Uint8Array(bytes.buffer, 1, 2);
    expect(ownBytes(view)).not.toBe(view);
    expect([...ownBytes(view)]).toEqual([2, 3]);
  });
});
