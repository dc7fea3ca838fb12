import { spawn, spawnSync } from "node:child_process";
import { afterAll, beforeAll, expect, test } from "vitest";
import { CLI_PATH } from "../../lib/paths.js";
import type { Runtime } from "../../lib/runtime/runtime.js";
import { ECHO, TestHost, eventually, type Served } from "../helpers.js";

let host: TestHost;
let echo: Served;
let labc: Runtime;

beforeAll(async () => {
  host = await TestHost.start();
  echo = await host.serve([ECHO]);
  labc = host.runtime();
});
afterAll(() => host.cleanup());

/** Calls echo for `ms`, one at a time (bounded in count too). */
async function busy(ms: number): Promise<number> {
  const end = Date.now() + ms;
  let calls = 0;
  while (Date.now() < end && calls < 100_000) await labc.call("echo", calls++);
  return calls;
}

test("piped, labc top prints one view: hosts, the busiest functions with their rate, p99 and errors, services", async () => {
  const [top] = await Promise.all([host.cli(["top", "--interval", "1"]), busy(1500)]);
  expect(top.stderr).toBe("");
  expect(top.code).toBe(0);
  const lines = top.stdout.split("\n");
  expect(lines[0]).toMatch(/^labc top: \S+, \d{4}-\d\d-\d\dT/);
  expect(top.stdout).toMatch(/^HOST\s+STATE\s+SERVERS\s+FUNCTIONS\s+LAST HEARD$/m);
  expect(top.stdout).toMatch(/^SERVICES ON \S+\s+STATE\s+PID\s+UPTIME$/m);
  // echo is the busiest: first under the header, with a rate over the interval.
  const header = lines.findIndex((line) => /^FUNCTION\s+HOST\s+CALLS\/S/.test(line));
  const [fn, where, perSecond, calls, errors, , p99, pids] = lines[header + 1]!.split(/\s{2,}/);
  expect(fn).toBe("echo");
  expect(where).toBe(labc.identity.host);
  expect(Number(perSecond)).toBeGreaterThan(50);
  expect(Number(calls)).toBeGreaterThan(Number(perSecond) * 0.5);
  expect(errors).toBe("0");
  expect(p99).toMatch(/^\d+(\.\d)? (µs|ms)$/);
  expect(pids).toBe(String(echo.pid));

  const json = JSON.parse((await host.cli(["top", "--json", "--interval", "0.2"])).stdout);
  expect(json.hosts.map((h: { state: string }) => h.state)).toEqual(["self"]);
  expect(json.functions.find((f: { fn: string }) => f.fn === "echo")).toMatchObject({ host: labc.identity.host, errors: 0, pids: [echo.pid] });
  expect((await host.cli(["top", "--interval", "0"])).stderr).toBe("labc: --interval must be a number of seconds from 0.1 to 3600, not 0\n");
});

// On a terminal (util-linux's `script` gives it one) the view is redrawn in place until Ctrl-C.
test.runIf(spawnSync("script", ["--version"]).status === 0)("on a terminal, labc top redraws in place until Ctrl-C", async () => {
  const child = spawn("script", ["-qc", `${process.execPath} ${CLI_PATH} top --interval 0.3`, "/dev/null"], { env: host.env, stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (chunk) => (out += chunk));
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  try {
    await eventually(() => out.split("\x1b[H\x1b[2J").length > 3, 10_000, "three redraws");
    expect(out.split("\x1b[H\x1b[2J").slice(1).every((view) => view.startsWith("labc top: "))).toBe(true);
    // Ctrl-C as a terminal sends it.
    child.stdin!.write("\x03");
    expect(await exited).toBe(0);
  } finally {
    child.kill("SIGKILL");
  }
});
