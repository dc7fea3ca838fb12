import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { PACKAGE_ROOT } from "../../lib/paths.js";
import { Lan, lanUnavailable, within, type LanHost } from "./lan.js";

/**
 * Who may use a router's HTTP endpoint in a network with a secret (issue 27, items 3 and 8):
 * another user of the same computer (nobody, through setpriv), who cannot read the secret, gets
 * nothing on loopback; another computer with the token acts as a caller on another host would.
 * Each party sends its own HTTP requests from its own process: nothing of labc's runs for it.
 */

const HTTP_PORT = 55580;
const NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"];

/** An HTTP client of its own: each request's status and text (an event stream: its first bytes only). */
const CLIENT = `
const [base, plan] = process.argv.slice(1);
const out = [];
for (const r of JSON.parse(plan)) {
  const response = await fetch(base + r.path, { method: r.method ?? "GET", headers: r.headers ?? {}, body: r.body === undefined ? undefined : JSON.stringify(r.body) });
  const events = (response.headers.get("content-type") ?? "").startsWith("text/event-stream");
  let text;
  if (events) {
    const reader = response.body.getReader();
    text = new TextDecoder().decode((await reader.read()).value ?? new Uint8Array());
    await reader.cancel();
  } else text = await response.text();
  out.push({ status: response.status, text });
}
console.log(JSON.stringify(out));
`;

interface Asked {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  body?: unknown;
}

interface Answered {
  status: number;
  text: string;
}

const ACTION = { "content-type": "application/json", "x-labc": "1" };

const why = lanUnavailable();
if (why) console.warn(`HTTP endpoint user tests skipped: ${why}`);

let lan: Lan;
let h1: LanHost;
let h2: LanHost;
let token: string;

/** Runs the client in `host`'s namespace, as root or as nobody (`user`), with nothing of ours in its environment. */
function ask(host: LanHost, base: string, plan: Asked[], user: string[] = []): Promise<Answered[]> {
  const child = spawn("ip", ["netns", "exec", host.ns, ...user, process.execPath, "--input-type=module", "-e", CLIENT, base, JSON.stringify(plan)], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: "/nonexistent" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk) => (stdout += chunk));
  child.stderr.on("data", (chunk) => (stderr += chunk));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`the HTTP client did not end in 20 s: ${stderr}`));
    }, 20000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`the HTTP client failed (${code}): ${stderr}`));
      else resolve(JSON.parse(stdout) as Answered[]);
    });
  });
}

const loopback = `http://127.0.0.1:${HTTP_PORT}`;
const bearer = () => ({ authorization: `Bearer ${token}` });
/** What the owner sees of host2's LightControl, with the token. */
async function lightControlOnHost2(): Promise<string> {
  const [answer] = await ask(h1, loopback, [{ method: "POST", path: "/api/call", headers: { ...ACTION, ...bearer() }, body: { fn: "service_control.listServices", args: [], host: "host2" } }]);
  return (JSON.parse(answer!.text) as { value: { name: string; state: string }[] }).value.find((s) => s.name === "LightControl")!.state;
}

describe.skipIf(why)("the HTTP endpoint of a router with a secret: another user of its computer, and another computer with the token", () => {
  beforeAll(async () => {
    lan = Lan.create(2, { LABC_SECRET: `labc1_${randomBytes(32).toString("base64url")}` });
    [h1, h2] = lan.hosts as [LanHost, LanHost];
    for (const host of [h1, h2]) {
      expect((await host.cli(["install", join(PACKAGE_ROOT, "services", "light-control.ts")])).stderr).toBe("");
    }
    const bench = join(h1.dir, "Bench.ts");
    writeFileSync(
      bench,
      [
        'import { context, register } from "labc";',
        "export class Bench {",
        "  @register() whoAsks() { return { fromOtherHost: context().fromOtherHost }; }",
        '  @register({ visibility: "local" }) lamp(on: boolean) { return `lamp ${on ? "on" : "off"}`; }',
        '  @register({ scope: "host" }) hostOnly() { return "host only"; }',
        "}",
        "",
      ].join("\n"),
    );
    await h1.serve([bench], { LABC_HTTP_ENABLED: "true", LABC_HTTP_PORT: String(HTTP_PORT), LABC_HTTP_ADDRESS: "0.0.0.0" });
    await h2.serve([h2.service("Two", { on_host2: 'return "host2";' })]);
    await within(8000, "the hosts linked", async () => (await h1.hosts()).filter((h) => h.functions > 0).length === 2);
    const printed = await h1.cli(["secret", "http-token"]);
    token = printed.stdout.trim();
    expect(printed.stderr).toContain(`http://127.0.0.1:${HTTP_PORT}/#token=${token}`);
  }, 60000);
  afterAll(() => lan?.cleanup());

  test("nobody cannot read the secret: not the config folder, not the router's environment", async () => {
    const router = h1.pids().find((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("labc router");
      } catch {
        return false;
      }
    });
    expect(router).toBeDefined();
    const probe = `for (const f of [${JSON.stringify(h1.dir)}, "/proc/${router}/environ"]) { try { require("node:fs").readdirSync(f); console.log("read", f); } catch (e) { try { require("node:fs").readFileSync(f); console.log("read", f); } catch (e2) { console.log(e2.code); } } }`;
    const child = spawn("ip", ["netns", "exec", h1.ns, ...NOBODY, process.execPath, "-e", probe], { env: { PATH: process.env.PATH }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (chunk) => (out += chunk));
    await new Promise((done) => child.once("exit", done));
    expect(out.trim().split("\n")).toEqual(["EACCES", "EACCES"]);
  });

  test("another user of the computer gets nothing on loopback: no call, no ServiceControl, no logs, no metrics; /healthz and the empty page only", async () => {
    const calls: Asked[] = [
      { method: "POST", path: "/api/call", headers: ACTION, body: { fn: "lamp", args: [true] } },
      { method: "POST", path: "/api/call", headers: ACTION, body: { fn: "service_control.listServices", args: [], host: "host2" } },
      { method: "POST", path: "/api/call", headers: ACTION, body: { fn: "service_control.serviceLogs", args: ["LightControl"], host: "host2" } },
      { method: "POST", path: "/api/service", headers: ACTION, body: { host: "host2", name: "LightControl", action: "start" } },
      { method: "POST", path: "/api/service", headers: ACTION, body: { host: "host1", name: "LightControl", action: "start" } },
      { method: "POST", path: "/api/publish", headers: ACTION, body: { topic: "lights.all", args: [100] } },
      { path: "/api/status" },
      { path: "/api/events" },
      { path: "/api/tap?pattern=%23" },
      { path: "/metrics" },
      { path: "/api/metrics" },
      // A guessed token, in each place a token may go.
      { path: "/api/status", headers: { authorization: `Bearer ${"A".repeat(43)}` } },
      // Its last character changed (to "A", or to "B" when it was "A": else the guess is right).
      { path: `/api/status?token=${token.slice(0, -1)}${token.endsWith("A") ? "B" : "A"}` },
    ];
    const answers = await ask(h1, loopback, calls, NOBODY);
    for (const [i, answer] of answers.entries()) {
      expect({ asked: calls[i]!.path, ...answer }).toEqual({ asked: calls[i]!.path, status: 401, text: expect.stringContaining("labc secret http-token") });
    }
    expect(answers[0]!.text).toMatch(/^this router's network has a secret, and a request must carry its token \(on this computer too\)/);
    // Nothing started: both services still stopped, as the owner sees them.
    expect(await lightControlOnHost2()).toBe("stopped");

    const [health, page] = await ask(h1, loopback, [{ path: "/healthz" }, { path: "/" }], NOBODY);
    expect(health).toEqual({ status: 200, text: "ok\n" });
    expect(page!.status).toBe(200);
    expect(page!.text).not.toContain(token);
  });

  test("the owner, with the token of `labc secret http-token`, has the router's powers on loopback", async () => {
    const owner = { ...ACTION, ...bearer() };
    const [lamp, started, status, metrics, stopped] = await ask(h1, loopback, [
      { method: "POST", path: "/api/call", headers: owner, body: { fn: "lamp", args: [true] } },
      { method: "POST", path: "/api/service", headers: owner, body: { host: "host2", name: "LightControl", action: "start" } },
      { path: "/api/status", headers: bearer() },
      { path: `/metrics?token=${token}` },
      { method: "POST", path: "/api/service", headers: owner, body: { host: "host2", name: "LightControl", action: "stop" } },
    ]);
    expect(JSON.parse(lamp!.text)).toEqual({ value: "lamp on" });
    expect(JSON.parse(started!.text)).toMatchObject({ value: { name: "LightControl", state: "running" } });
    const view = JSON.parse(status!.text) as { services: { host: string; services?: { name: string; log: string[] }[] }[]; servers: { functions: { name: string }[] }[] };
    expect(view.services.map((s) => s.host).sort()).toEqual(["host1", "host2"]);
    expect(view.servers.flatMap((s) => s.functions.map((f) => f.name))).toContain("bench.lamp");
    expect(metrics!.status).toBe(200);
    // On this computer, the metrics name every function, the local `lamp` (just called) too.
    expect(metrics!.text).toMatch(/"lamp"/);
    expect(JSON.parse(stopped!.text)).toMatchObject({ value: { state: "stopped" } });
  });

  test("another computer with the token is a caller on another host: public functions, this host's services; no local function, no other host's ServiceControl", async () => {
    const far = { ...ACTION, ...bearer() };
    const base = `http://${h1.address}:${HTTP_PORT}`;
    const plan: Asked[] = [
      { method: "POST", path: "/api/call", headers: far, body: { fn: "whoAsks", args: [] } },
      { method: "POST", path: "/api/call", headers: far, body: { fn: "on_host2", args: [] } },
      { method: "POST", path: "/api/call", headers: far, body: { fn: "lamp", args: [true] } },
      { method: "POST", path: "/api/call", headers: far, body: { fn: "bench.lamp", args: [true], host: "host1" } },
      { method: "POST", path: "/api/call", headers: far, body: { fn: "hostOnly", args: [] } },
      { method: "POST", path: "/api/service", headers: far, body: { host: "host2", name: "LightControl", action: "start" } },
      { method: "POST", path: "/api/call", headers: far, body: { fn: "service_control.startService", args: ["LightControl"], host: "host2" } },
      { method: "POST", path: "/api/call", headers: far, body: { fn: "startService", args: ["LightControl"], host: "host2" } },
      { method: "POST", path: "/api/call", headers: far, body: { fn: "service_control.serviceLogs", args: ["LightControl"], host: "host2" } },
      { path: "/api/status", headers: bearer() },
      { path: "/api/metrics", headers: bearer() },
    ];
    const answers = await ask(h2, base, plan);
    const [who, onHost2, lamp, namedLamp, hostOnly, service, startService, shortStart, logs, status, metrics] = answers.map((a) => ({ status: a.status, body: a.text.startsWith("{") ? JSON.parse(a.text) : a.text }));
    // The function sees a caller on another host, as the server's own check does.
    expect(who!.body).toEqual({ value: { fromOtherHost: true } });
    expect(onHost2!.body).toEqual({ value: "host2" });
    for (const refused of [lamp, namedLamp, hostOnly]) expect(refused!.body).toMatchObject({ error: { code: "LABC_NO_SUCH_FUNCTION" } });
    for (const refused of [service, startService, shortStart, logs]) {
      expect(refused).toMatchObject({ status: 403, body: { error: { code: "LABC_NOT_PERMITTED", message: expect.stringContaining("host2's own status page") } } });
    }
    expect(await lightControlOnHost2()).toBe("stopped");
    // The metrics as another host's router sees them: the local `lamp` is not named.
    expect(metrics!.status).toBe(200);
    expect(JSON.stringify(metrics!.body)).not.toMatch(/\\"lamp\\"|"lamp"/);
    expect(JSON.stringify(metrics!.body)).toMatch(/whoAsks/);
    // The view shows no more than it may use: no local function, no other host's services or logs.
    const view = status!.body as { services: { hostId: string; services?: unknown[]; error?: string }[]; servers: { functions: { name: string }[] }[] };
    const names = view.servers.flatMap((s) => s.functions.map((f) => f.name));
    expect(names).toContain("bench.whoAsks");
    expect(names).not.toContain("bench.lamp");
    expect(names).not.toContain("bench.hostOnly");
    expect(view.services.find((s) => s.hostId === "id-host2")).toEqual({ host: "host2", hostId: "id-host2", error: expect.stringContaining("host2's own status page") });
    expect(view.services.find((s) => s.hostId === "id-host1")!.services).toContainEqual(expect.objectContaining({ name: "LightControl" }));

    // This host's services, as another host of a network with a secret may use them.
    const [started, stopped] = await ask(h2, base, [
      { method: "POST", path: "/api/service", headers: far, body: { host: "host1", name: "LightControl", action: "start" } },
      { method: "POST", path: "/api/service", headers: far, body: { host: "host1", name: "LightControl", action: "stop" } },
    ]);
    expect(JSON.parse(started!.text)).toMatchObject({ value: { state: "running" } });
    expect(JSON.parse(stopped!.text)).toMatchObject({ value: { state: "stopped" } });
  });
});
