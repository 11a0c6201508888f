// Passwords from a file, a terminal or a pipe. They are never echoed, printed or put in an error
// message: errors name where a password came from, never what it was.
import { readFile } from "node:fs/promises";
import { StringDecoder } from "node:string_decoder";

/** A password longer than this is surely the wrong file. */
export const MAX_SECRET_BYTES = 1024;

/** A password could not be had; the message says from where, never what it was. */
export class SecretInputError extends Error {
  override name = "SecretInputError";
}

/** The one line a secret must be: its trailing newline dropped, no other line allowed. */
function oneLine(text: string, source: string): string {
  const secret = text.replace(/\r?\n$/, "");
  if (secret === "") throw new SecretInputError(`${source} holds no password`);
  if (/[\r\n]/.test(secret)) throw new SecretInputError(`${source} must hold the password on one line`);
  if (Buffer.byteLength(secret) > MAX_SECRET_BYTES) throw new SecretInputError(`${source} holds more than ${MAX_SECRET_BYTES} bytes: is it the right file?`);
  return secret;
}

/** A password file: one line, the password. */
export async function readSecretFile(path: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new SecretInputError(`cannot read the password file ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  return oneLine(text, `the password file ${path}`);
}

/** The first line of a piped stdin; the rest is not read. */
async function readPipedLine(input: NodeJS.ReadStream): Promise<string> {
  const decoder = new StringDecoder("utf8");
  let text = "";
  for await (const chunk of input) {
    text += typeof chunk === "string" ? chunk : decoder.write(chunk as Buffer);
    const end = text.indexOf("\n");
    if (end >= 0) return oneLine(text.slice(0, end + 1), "stdin");
    if (Buffer.byteLength(text) > MAX_SECRET_BYTES) break;
  }
  return oneLine(text + decoder.end(), "stdin");
}

const CTRL_C = "\u0003";
const CTRL_D = "\u0004";
const BACKSPACE = new Set(["\u007f", "\b"]);

/** Reads a line from a terminal with echo off: the terminal is in raw mode and nothing is written back but the prompt. */
function promptHidden(prompt: string, input: NodeJS.ReadStream, output: NodeJS.WritableStream): Promise<string> {
  return new Promise((resolve, reject) => {
    const decoder = new StringDecoder("utf8");
    let chars: string[] = [];
    const finish = (err: Error | null) => {
      input.off("data", onData);
      input.setRawMode(false);
      input.pause();
      output.write("\n");
      if (err !== null) reject(err);
      else resolve(chars.join(""));
    };
    const onData = (chunk: Buffer) => {
      for (const ch of decoder.write(chunk)) {
        if (ch === "\r" || ch === "\n") return finish(null);
        if (ch === CTRL_C || (ch === CTRL_D && chars.length === 0)) return finish(new SecretInputError("no password given (input cancelled)"));
        if (BACKSPACE.has(ch)) chars = chars.slice(0, -1);
        else if (ch >= " ") chars.push(ch);
      }
    };
    output.write(prompt);
    input.setRawMode(true);
    input.on("data", onData);
    input.resume();
  });
}

/**
 * A new password: typed twice at a terminal without echo (`prompt` is shown on stderr), or else
 * the first line of stdin.
 */
export async function readNewSecret(prompt: string, input: NodeJS.ReadStream = process.stdin, output: NodeJS.WritableStream = process.stderr): Promise<string> {
  if (input.isTTY !== true) return readPipedLine(input);
  const first = oneLine(await promptHidden(prompt, input, output), "the password typed");
  const again = await promptHidden("Again: ", input, output);
  if (again !== first) throw new SecretInputError("the two passwords typed differ");
  return first;
}
