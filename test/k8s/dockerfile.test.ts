// The image is checked by reading it: no container engine runs here.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { DockerfileParser } from "dockerfile-ast";
import { describe, expect, it } from "vitest";
import { NODE_OPTIONS, NODE_V8_FLAGS } from "@raftmq/server";
import { DOCKER_DIR, DOCKERFILE, REPO_ROOT } from "./src/deploy-paths.ts";

interface Step {
  keyword: string;
  args: string[];
  content: string;
}
interface Stage {
  image: string;
  name: string | undefined;
  steps: Step[];
}

function stages(text: string): Stage[] {
  const out: Stage[] = [];
  for (const instruction of DockerfileParser.parse(text).getInstructions()) {
    const step = { keyword: instruction.getKeyword(), args: instruction.getArguments().map((a) => a.getValue()), content: instruction.getArgumentsContent() ?? "" };
    if (step.keyword === "FROM") {
      out.push({ image: step.args[0] ?? "", name: step.args[1]?.toUpperCase() === "AS" ? step.args[2] : undefined, steps: [] });
    } else {
      const current = out.at(-1);
      if (current === undefined) throw new Error(`${step.keyword} before any FROM`);
      current.steps.push(step);
    }
  }
  return out;
}

function nodeDefault(name: string): string {
  const spec = NODE_OPTIONS.find((o) => o.name === name);
  if (spec === undefined) throw new Error(`node-config has no option ${name}`);
  return spec.defaultText;
}

const all = stages(readFileSync(DOCKERFILE, "utf8"));
const runtime = all.at(-1);
const steps = (keyword: string) => runtime?.steps.filter((s) => s.keyword === keyword) ?? [];

describe("Dockerfile", () => {
  it("builds in one stage and runs from a slim Node 20 image in the last", () => {
    expect(all.length).toBeGreaterThanOrEqual(2);
    const build = all.find((s) => s.name === "build");
    expect(build?.image).toMatch(/^node:20/);
    const buildRuns = build?.steps.filter((s) => s.keyword === "RUN").map((s) => s.content) ?? [];
    expect(buildRuns.some((r) => r.includes("npm install -g pnpm@12.21.0"))).toBe(true);
    expect(buildRuns).toContain("sh deploy/docker/assemble-runtime.sh /out");
    expect(runtime?.image).toMatch(/^node:20(\.\d+)*-[a-z]*-?slim$|^gcr\.io\/distroless\/nodejs20/);
    // The runtime copies built files out of other stages, never the whole source tree.
    for (const copy of steps("COPY")) expect(copy.args.slice(0, -1)).not.toContain(".");
  });

  it("runs as a numeric non-root user", () => {
    const users = steps("USER");
    expect(users.length).toBeGreaterThan(0);
    const last = users.at(-1)?.args[0] ?? "";
    const uid = last.split(":")[0] ?? "";
    expect(uid).toMatch(/^\d+$/);
    expect(Number(uid)).toBeGreaterThan(0);
  });

  it("keeps its data at /var/lib/raftmq, owned by that user", () => {
    const env = steps("ENV").flatMap((s) => s.args);
    expect(env).toContain("RAFTMQ_DATA_DIR=/var/lib/raftmq");
    expect(steps("VOLUME").map((s) => s.content)).toContain('["/var/lib/raftmq"]');
    const uid = steps("USER").at(-1)?.args[0]?.split(":")[0];
    expect(steps("RUN").some((s) => s.content.includes(`chown ${uid}`) && s.content.includes("/var/lib/raftmq"))).toBe(true);
  });

  it("exposes the node's default client, peer, metrics and AMQP ports and configures the same", () => {
    const expected = ["client-port", "peer-port", "http-port", "amqps-port", "amqp-port"].map(nodeDefault).sort();
    expect(steps("EXPOSE").flatMap((s) => s.args).sort()).toEqual(expected);
    const env = steps("ENV").flatMap((s) => s.args);
    expect(env).toContain(`RAFTMQ_CLIENT_PORT=${nodeDefault("client-port")}`);
    expect(env).toContain(`RAFTMQ_PEER_PORT=${nodeDefault("peer-port")}`);
    expect(env).toContain(`RAFTMQ_HTTP_PORT=${nodeDefault("http-port")}`);
    // Listening on loopback inside a pod would make the node unreachable.
    expect(env).toContain("RAFTMQ_HOST=0.0.0.0");
  });

  it("runs the node through the raftmq CLI from the assembled folder, where the preStop script lies", () => {
    const entry = JSON.parse(steps("ENTRYPOINT").at(-1)?.content ?? "null") as unknown;
    expect(entry).toEqual(["node", ...NODE_V8_FLAGS, "/opt/raftmq/bin/raftmq.mjs", "node"]);
    expect(runtime?.steps.find((s) => s.keyword === "WORKDIR")?.args).toEqual(["/opt/raftmq"]);
    expect(steps("COPY").map((s) => s.content)).toEqual(["/out ./"]);
    expect(readFileSync(DOCKERFILE, "utf8")).toMatch(/^COPY --from=build \/out \.\/$/m);
    const cli = JSON.parse(readFileSync(join(REPO_ROOT, "packages/cli/package.json"), "utf8")) as { bin: Record<string, string>; dependencies: Record<string, string> };
    expect(cli.bin.raftmq).toBe("./bin/raftmq.mjs");
    // The CLI runs TypeScript: tsx must be a production dependency, or deploy --prod drops it.
    expect(Object.keys(cli.dependencies)).toContain("tsx");
  });

  it("assembles the runtime folder with a production deploy of the CLI, checks the .proto files came with it, adds the preStop script", () => {
    const script = readFileSync(join(DOCKER_DIR, "assemble-runtime.sh"), "utf8");
    const commands = script.split("\n").filter((l) => !l.trim().startsWith("#"));
    const order = ["pnpm install --frozen-lockfile", "pnpm gen", "pnpm --filter @raftmq/cli deploy --prod", "gen/proto/raftmq/v1/broker.proto", "cp deploy/docker/prestop-transfer.mjs"].map((c) =>
      commands.findIndex((l) => l.includes(c)),
    );
    for (const i of order) expect(i).toBeGreaterThanOrEqual(0);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
  });

  it("keeps local build output, dependencies and the operator's bootstrap password out of the build context", () => {
    const ignored = readFileSync(join(DOCKER_DIR, "Dockerfile.dockerignore"), "utf8")
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l !== "" && !l.startsWith("#"));
    for (const entry of ["**/node_modules", "dist", ".git", "**/bootstrap-admin.env"]) expect(ignored).toContain(entry);
  });
});
