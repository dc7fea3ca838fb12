import { timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { ConfigError } from "../errors.js";
import { isLoopback } from "../trust/own-address.js";
import type { ProcessMetrics } from "../metrics.js";
import type { HostMetrics } from "../wire/router-answers.js";

/**
 * Who a request comes from, once it passed the endpoint's checks: `this computer` (on loopback:
 * any user of it in an open network, one who could read the secret otherwise), or `another
 * computer` holding the token, which the page's actions treat as a caller on another host.
 */
export type Asker = "this computer" | "another computer";

/** What else the endpoint serves (the status page, cli/status-board.ts): true when it answered. */
export interface HttpPages {
  handle(request: IncomingMessage, response: ServerResponse, path: string, asker: Asker): boolean;
}

/** What a request may fetch without the token: the page holds nothing (it reads the token from its address), and `ok` says only that the router runs, which its open port says too. */
const OPEN_PATHS = new Set(["/", "/healthz"]);

/**
 * The router's HTTP endpoint (`[http] enabled = true`): `/metrics` in Prometheus's text format,
 * `/healthz`, `/api/metrics` (the JSON `labc metrics --json` prints), and the status page.
 * In an open network it listens on loopback only and answers this computer as the CLI does,
 * asking nothing (every user of it is trusted there). In a network with a secret, every request
 * but the page itself and `/healthz` must carry the token the secret gives
 * (`NetworkKey.httpToken`), on loopback too: another user of this computer, who cannot read the
 * secret, gets nothing either. A request from another computer then acts as a caller on another
 * host (cli/status-board.ts). A web page of another site open in a browser may not use it either:
 * a request on loopback must name loopback as its Host (no DNS rebinding), and an action (POST)
 * must come from the endpoint's own page (Origin) with JSON and the `x-labc` header, which
 * another site's page cannot send.
 */
export class HttpEndpoint {
  private server: Server | undefined;

  constructor(
    private readonly options: {
      address: string;
      port: number;
      host: string;
      /** `far`: for a request from another computer, which sees what other hosts may see. */
      metrics: (far: boolean) => Promise<HostMetrics>;
      pages?: HttpPages;
      /** The network secret's token, undefined in an open network (which keeps the endpoint on loopback). */
      token?: string;
    },
  ) {}

  async start(): Promise<number> {
    const { address, port, token } = this.options;
    if (!thisComputer(address) && token === undefined) {
      throw new ConfigError(
        "config",
        "http.address",
        `${address} is not a loopback address, and the network is open (no secret): with nothing to tell who asks, the endpoint listens on this computer only (127.0.0.1 or ::1). Give the network a secret (labc secret new) to open it to requests carrying its token (labc secret http-token), or reach it through ssh -L`,
      );
    }
    const server = createServer((request, response) => {
      const path = (request.url ?? "/").split("?")[0]!;
      const refused = refusal(request, path, (server.address() as { port: number }).port, this.options.token);
      if (refused) {
        // A missing token is named as HTTP names it, for a client that knows to ask for one.
        const challenge = refused.status === 401 ? { "www-authenticate": 'Bearer realm="labc"' } : {};
        response.writeHead(refused.status, { "content-type": "text/plain; charset=utf-8", ...challenge }).end(`${refused.why}\n`);
        return;
      }
      const asker: Asker = thisComputer(request.socket.localAddress ?? "") ? "this computer" : "another computer";
      if (this.options.pages?.handle(request, response, path, asker)) return;
      if (request.method !== "GET" && request.method !== "HEAD") {
        response.writeHead(405, { allow: "GET, HEAD" }).end();
        return;
      }
      if (path === "/healthz") {
        response.writeHead(200, { "content-type": "text/plain; charset=utf-8" }).end("ok\n");
        return;
      }
      if (path !== "/metrics" && path !== "/api/metrics") {
        response.writeHead(404, { "content-type": "text/plain; charset=utf-8" }).end("not found: /, /metrics, /healthz, /api/metrics\n");
        return;
      }
      this.options.metrics(asker === "another computer").then(
        (metrics) => {
          if (path === "/metrics") response.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" }).end(prometheusText(metrics));
          else response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(metrics));
        },
        (error: Error) => response.writeHead(500, { "content-type": "text/plain; charset=utf-8" }).end(`${error.message}\n`),
      );
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, address, () => resolve());
    });
    return (server.address() as { port: number }).port;
  }

  /** Ends every response still open too (a page's live view, a tap). */
  close(): Promise<void> {
    const server = this.server;
    if (!server) return Promise.resolve();
    return new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }
}

/** Why a request may not be answered (see HttpEndpoint), with its status, or undefined. */
function refusal(request: IncomingMessage, path: string, port: number, token: string | undefined): { status: number; why: string } | undefined {
  const host = request.headers.host ?? "";
  const refuse = (why: string, status = 403) => ({ status, why });
  const near = thisComputer(request.socket.localAddress ?? "");
  // Any port: a tunnel (ssh -L 9000:127.0.0.1:55580) names its own.
  if (near && !/^(?:localhost|127\.\d+\.\d+\.\d+|\[::1\])(?::\d+)?$/.test(host)) return refuse(`Host "${host}" is not a name of this computer: use http://127.0.0.1:${port}/`);
  // With no secret, every user of this computer is trusted, and nobody else is let in.
  const allowed = token === undefined ? near : carries(request, token);
  if (!OPEN_PATHS.has(path) && !allowed) {
    // On loopback too: the port is open to every user of this computer, the secret is not.
    const who = near ? "this router's network has a secret, and a request must carry its token (on this computer too)" : "a request from another computer needs the network's token";
    return refuse(`${who}: \`labc secret http-token\`, run by a user who can read the secret, prints it and the page's address`, 401);
  }
  const origin = request.headers.origin;
  if (origin !== undefined && origin !== `http://${host}`) return refuse(`requests from pages of ${origin} are refused`);
  if (request.method === "GET" || request.method === "HEAD") return undefined;
  if (!request.headers["content-type"]?.startsWith("application/json") || request.headers["x-labc"] === undefined) {
    return refuse("an action needs content-type application/json and an x-labc header (the status page sends them)");
  }
  return undefined;
}

/** The token as `Authorization: Bearer`, or as `?token=` (a browser's EventSource sets no header), compared in constant time. */
function carries(request: IncomingMessage, token: string): boolean {
  const bearer = /^Bearer (\S+)$/.exec(request.headers.authorization ?? "")?.[1];
  const given = Buffer.from(bearer ?? new URL(request.url ?? "/", "http://labc").searchParams.get("token") ?? "");
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** An address of this computer only: what the endpoint may listen on without a secret, and where a request comes from this computer. */
export function thisComputer(address: string): boolean {
  return address === "localhost" || isLoopback(address);
}

/** A label value as Prometheus's text format writes it: backslash, quote and line break escaped. */
function label(value: string | number): string {
  return String(value).replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

const FAMILIES = {
  labc_calls_total: ["counter", "Calls of a function that ended, by side: served (answered by this process) or called (made by it)."],
  labc_call_errors_total: ["counter", "Calls that ended in an error, by its code (a LABC_ code, or the error's own code or class)."],
  labc_calls_in_flight: ["gauge", "Calls started and not ended yet."],
  labc_call_latency_seconds: ["gauge", "Latency quantiles of a function's calls since the process started (served: arrival to answer; called: the round trip), from one call in four."],
  labc_publications_total: ["counter", "Publications made on a topic."],
  labc_deliveries_total: ["counter", "Subscribers run for publications on a topic."],
  labc_connections: ["gauge", "Open connections of a process."],
  labc_connection_bytes_total: ["counter", "Bytes over a process's open connections, by direction."],
  labc_connection_frames_total: ["counter", "Frames over a process's open connections, by direction."],
  labc_read_pauses_total: ["counter", "Times a process stopped reading a peer of an open connection (too much of its own waiting)."],
  labc_write_waits_total: ["counter", "Times a sender in a process waited for a peer of an open connection to read."],
} as const;

type Family = keyof typeof FAMILIES;

/** Every process's metrics in Prometheus's text exposition format (one family after the other). */
export function prometheusText(metrics: HostMetrics): string {
  const samples = new Map<Family, string[]>(Object.keys(FAMILIES).map((name) => [name as Family, []]));
  const add = (family: Family, labels: Record<string, string | number>, value: number) => {
    const text = Object.entries(labels).map(([key, v]) => `${key}="${label(v)}"`).join(",");
    samples.get(family)!.push(`${family}{${text}} ${value}`);
  };
  for (const p of metrics.processes) processSamples(p, { host: metrics.host, pid: p.pid }, add);
  const lines: string[] = [];
  for (const [family, [type, help]] of Object.entries(FAMILIES) as [Family, readonly [string, string]][]) {
    lines.push(`# HELP ${family} ${help}`, `# TYPE ${family} ${type}`, ...samples.get(family)!);
  }
  return `${lines.join("\n")}\n`;
}

function processSamples(
  p: ProcessMetrics,
  base: { host: string; pid: number },
  add: (family: Family, labels: Record<string, string | number>, value: number) => void,
): void {
  for (const side of ["served", "called"] as const) {
    for (const f of p[side]) {
      const labels = { ...base, function: f.fn, side };
      add("labc_calls_total", labels, f.calls);
      for (const [code, n] of Object.entries(f.byCode)) add("labc_call_errors_total", { ...labels, code }, n);
      add("labc_calls_in_flight", labels, f.inFlight);
      for (const [quantile, us] of [["0.5", f.p50Us], ["0.9", f.p90Us], ["0.99", f.p99Us]] as const) {
        add("labc_call_latency_seconds", { ...labels, quantile }, us / 1e6);
      }
    }
  }
  for (const t of p.topics) {
    add("labc_publications_total", { ...base, topic: t.topic }, t.published);
    add("labc_deliveries_total", { ...base, topic: t.topic }, t.delivered);
  }
  const sum = (key: "bytesIn" | "bytesOut" | "framesIn" | "framesOut" | "readPauses" | "writeWaits") => p.connections.reduce((total, c) => total + c[key], 0);
  add("labc_connections", base, p.connections.length);
  add("labc_connection_bytes_total", { ...base, direction: "in" }, sum("bytesIn"));
  add("labc_connection_bytes_total", { ...base, direction: "out" }, sum("bytesOut"));
  add("labc_connection_frames_total", { ...base, direction: "in" }, sum("framesIn"));
  add("labc_connection_frames_total", { ...base, direction: "out" }, sum("framesOut"));
  add("labc_read_pauses_total", base, sum("readPauses"));
  add("labc_write_waits_total", base, sum("writeWaits"));
}
