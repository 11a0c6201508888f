// Where the node process's entry lives: the server package's node-main, found through the
// package's own location so the CLI works from any working directory.
import { fileURLToPath } from "node:url";

export function nodeMainPath(): string {
  return fileURLToPath(new URL("./node-main.ts", import.meta.resolve("@raftmq/server")));
}

/** tsx's loader as a URL, for `--import`: a bare "tsx" would resolve from the working directory. */
export function tsxLoaderUrl(): string {
  return import.meta.resolve("tsx");
}
