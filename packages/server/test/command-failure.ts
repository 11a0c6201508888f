// What a CommandBuilder call threw, for tests that check refusals: the error's name and message,
// and the broker's error code when it is a CommandFailedError. Throws if the call succeeded.
import { CommandFailedError } from "../src/node-errors.ts";

export function failure(fn: () => unknown): { name: string; message: string; code?: string } {
  try {
    fn();
  } catch (err) {
    if (err instanceof CommandFailedError) return { name: err.name, message: err.message, code: err.error.code };
    if (err instanceof Error) return { name: err.name, message: err.message };
  }
  throw new Error("expected a failure");
}
