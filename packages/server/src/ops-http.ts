// The HTTP port for operators: /metrics (Prometheus), /healthz (alive, storage healthy) and
// /readyz (in a cluster with a known leader and caught up).
import { createServer, type Server } from "node:http";
import type { NodeMetrics } from "./node-metrics.ts";

export interface OpsProbes {
  healthy(): { ok: boolean; detail: string };
  ready(): { ok: boolean; detail: string };
}

export function startOpsHttp(host: string, port: number, metrics: NodeMetrics, probes: OpsProbes): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    switch (path) {
      case "/metrics":
        metrics.text().then(
          (body) => res.writeHead(200, { "content-type": metrics.contentType }).end(body),
          (err: unknown) => res.writeHead(500, { "content-type": "text/plain" }).end(`metrics failed: ${String(err)}\n`),
        );
        return;
      case "/healthz":
      case "/readyz": {
        const probe = path === "/healthz" ? probes.healthy() : probes.ready();
        res.writeHead(probe.ok ? 200 : 503, { "content-type": "text/plain" }).end(`${probe.ok ? "ok" : "not ok"}: ${probe.detail}\n`);
        return;
      }
      default:
        res.writeHead(404, { "content-type": "text/plain" }).end("not found: try /metrics, /healthz or /readyz\n");
    }
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve(server);
    });
  });
}
