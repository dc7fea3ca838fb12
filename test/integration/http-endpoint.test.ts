import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, expect, test } from "vitest";
import { CLI_PATH } from "../../lib/paths.js";
import { freePort } from "../../lib/net/free-port.js";
import type { Runtime } from "../../lib/runtime/runtime.js";
import { ECHO, TestHost, type Served } from "../helpers.js";

let host: TestHost;
let server: Served;
let labc: Runtime;
let httpPort: number;

beforeAll(async () => {
  host = await TestHost.start();
  httpPort = await freePort();
  // The router the first server starts reads the same environment.
  Object.assign(host.env, { LABC_HTTP_ENABLED: "true", LABC_HTTP_PORT: String(httpPort) });
  server = await host.serve([ECHO]);
  labc = host.runtime();
});
afterAll(() => host.cleanup());

const get = (path: string) => fetch(`http://127.0.0.1:${httpPort}${path}`);

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Prometheus's text exposition format, read strictly: anything else in it fails the test. */
function parsePrometheus(text: string): { types: Map<string, string>; samples: Sample[] } {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  expect(text.endsWith("\n")).toBe(true);
  for (const line of text.slice(0, -1).split("\n")) {
    const help = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+$/.exec(line);
    if (help) continue;
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|summary|histogram|untyped)$/.exec(line);
    if (type) {
      expect(types.has(type[1]!), `${type[1]} typed twice`).toBe(false);
      types.set(type[1]!, type[2]!);
      continue;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\["\\n])*",?)*)\} (-?[0-9.e+-]+|NaN|[+-]Inf)$/.exec(line);
    expect(sample, `not a Prometheus line: ${line}`).not.toBeNull();
    const [, name, labelText, value] = sample!;
    expect(types.has(name!), `${name} sampled before its TYPE`).toBe(true);
    const labels: Record<string, string> = {};
    for (const [, key, raw] of labelText!.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[key!] = raw!.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
    }
    samples.push({ name: name!, labels, value: Number(value) });
  }
  return { types, samples };
}

test("/metrics is Prometheus text whose counters match the calls made; /healthz and /api/metrics answer", async () => {
  for (let i = 0; i < 40; i++) await labc.call("echo", i);
  await labc.call("add", 1).catch(() => {}); // refused: a wrong count
  await labc.publish("lab.print", "to the echo's subscriber");

  const response = await get("/metrics");
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
  const { types, samples } = parsePrometheus(await response.text());
  expect(types.get("labc_calls_total")).toBe("counter");
  const find = (name: string, labels: Record<string, string>) =>
    samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  const served = { pid: String(server.pid), function: "echo", side: "served" };
  expect(find("labc_calls_total", served)?.value).toBe(40);
  expect(find("labc_calls_total", { pid: String(process.pid), function: "echo", side: "called" })?.value).toBe(40);
  expect(find("labc_call_errors_total", { pid: String(server.pid), function: "add", side: "served", code: "LABC_BAD_ARGUMENTS" })?.value).toBe(1);
  expect(find("labc_call_latency_seconds", { ...served, quantile: "0.99" })?.value).toBeGreaterThan(0);
  expect(find("labc_publications_total", { pid: String(process.pid), topic: "lab.print" })?.value).toBe(1);
  expect(find("labc_connection_frames_total", { pid: String(server.pid), direction: "in" })?.value).toBeGreaterThan(40);

  expect(await (await get("/healthz")).text()).toBe("ok\n");
  const json = (await (await get("/api/metrics")).json()) as { hostId: string; processes: { pid: number }[] };
  expect(json.hostId).toBe(labc.identity.hostId);
  expect(json.processes.map((p) => p.pid)).toContain(server.pid);
  expect((await get("/nothing")).status).toBe(404);
  expect((await fetch(`http://127.0.0.1:${httpPort}/metrics`, { method: "POST", headers: { "content-type": "application/json", "x-labc": "1" } })).status).toBe(405);
});

test("an address beyond this computer is refused: the router says why and runs on without the endpoint", async () => {
  const port = await freePort();
  const router = spawn(process.execPath, [CLI_PATH, "router"], {
    env: { ...host.env, LABC_ROUTER_PORT: String(port), LABC_HTTP_ADDRESS: "0.0.0.0", LABC_HTTP_PORT: String(await freePort()) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  try {
    let stderr = "";
    router.stderr!.on("data", (chunk) => (stderr += chunk));
    const started = await new Promise<string>((resolve) => createInterface({ input: router.stdout! }).once("line", resolve));
    expect(started).toMatch(new RegExp(`^labc router: .* on port ${port}, .*open network$`));
    expect(stderr).toContain("labc router: no HTTP endpoint: config: http.address: 0.0.0.0 is not a loopback address");
  } finally {
    router.kill("SIGTERM");
  }
});

test("the status page's API without a browser: the view, actions with their typed errors, a tap, and the requests it refuses", async () => {
  const page = await get("/");
  expect(page.headers.get("content-type")).toMatch(/^text\/html/);
  expect(await page.text()).toContain('<title>labc status</title>');

  const view = (await (await get("/api/status")).json()) as { hosts: { state: string }[]; servers: { pid: number; functions: { name: string; alias?: string }[] }[] };
  expect(view.hosts.map((h) => h.state)).toEqual(["self"]);
  expect(view.servers.find((s) => s.pid === server.pid)!.functions).toContainEqual(expect.objectContaining({ name: "echo.echo", alias: "echo" }));

  const act = (path: string, body: unknown, headers: Record<string, string> = { "content-type": "application/json", "x-labc": "1" }) =>
    fetch(`http://127.0.0.1:${httpPort}${path}`, { method: "POST", headers, body: JSON.stringify(body) });
  expect(await (await act("/api/call", { fn: "add", args: [2, 3] })).json()).toEqual({ value: 5 });
  expect(await (await act("/api/call", { fn: "nowhere", args: [] })).json()).toMatchObject({ error: { name: "NoSuchFunctionError", code: "LABC_NO_SUCH_FUNCTION" } });
  expect(await (await act("/api/call", { fn: "add", args: "2, 3" })).json()).toMatchObject({ error: { code: "LABC_BAD_ARGUMENTS", message: '"args" must be a JSON array' } });
  expect(await (await act("/api/service", { host: "nowhere", name: "x", action: "start" })).json()).toMatchObject({ error: { code: "LABC_NO_SUCH_HOST" } });

  // A tap: the events arrive on the open response as they pass.
  const tap = await get("/api/tap?pattern=lab.%23");
  const reader = tap.body!.getReader();
  let events = "";
  const read = async (until: string) => {
    while (!events.includes(until)) events += new TextDecoder().decode((await reader.read()).value);
  };
  await read("event: tapping");
  expect(await (await act("/api/publish", { topic: "lab.note", args: [{ n: 1 }] })).json()).toEqual({ value: 1 });
  await read('"topic":"lab.note"');
  expect(events).toMatch(/event: publication\ndata: \{"topic":"lab\.note","args":\[\{"n":1\}\],"at":\d+,"dropped":0\}/);
  await reader.cancel();

  // Not from another site's page, not without the header, not under another name.
  expect((await act("/api/call", { fn: "add", args: [1, 1] }, { "content-type": "application/json" })).status).toBe(403);
  expect((await act("/api/call", { fn: "add", args: [1, 1] }, { "content-type": "application/json", "x-labc": "1", origin: "http://evil.example" })).status).toBe(403);
});
