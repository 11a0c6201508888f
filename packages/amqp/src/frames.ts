// The general frame layout (type, channel, payload size, payload, frame-end) and the two frames
// with fixed bytes: the protocol header and the heartbeat.
import { FRAME_END, FRAME_HEARTBEAT } from "../gen/spec.ts";
import { WireWriter } from "./wire.ts";

/** Type (1), channel (2) and payload size (4) before the payload; frame-end (1) after it. */
export const FRAME_OVERHEAD = 8;

/** Starts a frame; returns the offset of its size field, for endFrame. */
export function beginFrame(w: WireWriter, type: number, channel: number): number {
  w.u8(type, "frame type");
  w.u16(channel, "channel");
  return w.reserveU32();
}

export function endFrame(w: WireWriter, sizeAt: number): Buffer {
  w.fillLength(sizeAt, "frame size");
  w.u8(FRAME_END);
  return w.finish();
}

/** A complete frame around a payload. */
export function encodeFrame(type: number, channel: number, payload: Uint8Array): Buffer {
  const w = new WireWriter(payload.length + FRAME_OVERHEAD);
  const at = beginFrame(w, type, channel);
  w.bytes(payload);
  return endFrame(w, at);
}

const HEARTBEAT = Buffer.from([FRAME_HEARTBEAT, 0, 0, 0, 0, 0, 0, FRAME_END]);

/** The heartbeat frame (channel 0, empty payload). One shared buffer: do not modify it. */
export function heartbeatFrame(): Buffer {
  return HEARTBEAT;
}
