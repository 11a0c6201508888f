// Generates static protobufjs code and its TypeScript declarations from proto/raftmq/v1, and
// copies the .proto files into gen/proto, where the package's users (gRPC reflection) find them
// in every layout, a deployed one included. Skips the code generation when the generated files
// are newer than every .proto file.
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const pkg = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const protoRoot = resolve(pkg, "../../proto");
const protoDir = join(protoRoot, "raftmq/v1");
const out = join(pkg, "gen");
const js = join(out, "raftmq.js");
const dts = join(out, "raftmq.d.ts");
const protos = readdirSync(protoDir)
  .filter((f) => f.endsWith(".proto"))
  .sort()
  .map((f) => join(protoDir, f));

const protoCopies = join(out, "proto", "raftmq", "v1");
mkdirSync(protoCopies, { recursive: true });
for (const f of protos) copyFileSync(f, join(protoCopies, f.slice(protoDir.length + 1)));

// google.rpc.Status and its standard details (ErrorInfo, RetryInfo), which every error status
// carries in grpc-status-details-bin, from the googleapis protos of google-proto-files.
const googleRoot = join(pkg, "node_modules", "google-proto-files");
const googleProtos = ["google/rpc/status.proto", "google/rpc/error_details.proto"].map((f) => join(googleRoot, f));
const googleJs = join(out, "google-rpc.js");
const googleDts = join(out, "google-rpc.d.ts");

const outputs = [js, dts, googleJs, googleDts];
const newest = Math.max(...[...protos, ...googleProtos].map((f) => statSync(f).mtimeMs), statSync(import.meta.filename).mtimeMs);
if (outputs.every((f) => existsSync(f) && statSync(f).mtimeMs > newest)) {
  process.exit(0);
}
mkdirSync(out, { recursive: true });
const bin = (name) => join(pkg, "node_modules", ".bin", name);
const pbjs = ["-t", "static-module", "-w", "es6", "--force-number", "--no-verify", "--no-delimited", "--no-service"];
execFileSync(bin("pbjs"), ["-p", protoRoot, ...pbjs, "-o", js, ...protos], { stdio: "inherit" });
execFileSync(bin("pbts"), ["--no-comments", "-o", dts, js], { stdio: "inherit" });
execFileSync(bin("pbjs"), ["-p", googleRoot, ...pbjs, "-o", googleJs, ...googleProtos], { stdio: "inherit" });
execFileSync(bin("pbts"), ["--no-comments", "-o", googleDts, googleJs], { stdio: "inherit" });
