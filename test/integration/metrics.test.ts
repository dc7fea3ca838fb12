import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import type { FunctionMetrics, ProcessMetrics } from "../../lib/metrics.js";
import type { HostMetrics } from "../../lib/wire/router-answers.js";
import type { Runtime } from "../../lib/runtime/runtime.js";
import { ECHO, FIXTURES, TestHost, type Served } from "../helpers.js";

let host: TestHost;
let server: Served;
let quiet: Served;
let labc: Runtime;

beforeAll(async () => {
  host = await TestHost.start();
  server = await host.serve([ECHO, join(FIXTURES, "lab.ts")]);
  quiet = await host.serve([join(FIXTURES, "tally.ts")], { LABC_METRICS_ENABLED: "false" });
  labc = host.runtime();
});
afterAll(() => host.cleanup());

async function metrics(): Promise<HostMetrics> {
  const result = await host.cli(["metrics", "--json"]);
  expect(result.stderr).toBe("");
  return JSON.parse(result.stdout) as HostMetrics;
}

const of = (all: HostMetrics, pid: number) => all.processes.find((p) => p.pid === pid) as ProcessMetrics;
const fn = (list: FunctionMetrics[], name: string) => list.find((f) => f.fn === name);

test("labc metrics: every process's calls on both sides, errors by code, latencies, topics and connections, gathered when asked", async () => {
  for (let i = 0; i < 100; i++) await labc.call("echo", i);
  for (let i = 0; i < 3; i++) await labc.call("fail", "x").catch(() => {});
  await labc.call("nowhere").catch(() => {});
  for (let i = 0; i < 5; i++) await labc.publish("lab.temp.room1", i);
  await labc.call("log"); // the publications have arrived once a call after them is answered

  const all = await metrics();
  expect(all.hostId).toBe(labc.identity.hostId);
  const served = of(all, server.pid);
  expect(fn(served.served, "echo")).toMatchObject({ calls: 100, errors: 0, inFlight: 0 });
  expect(fn(served.served, "echo")!.p50Us).toBeGreaterThan(0);
  expect(fn(served.served, "fail")).toMatchObject({ calls: 3, errors: 3, byCode: { E_LAB: 3 } });
  // lab.ts has two subscriptions matching lab.temp.room1 (and one that throws): each run counts.
  expect(served.topics.find((t) => t.topic === "lab.temp.room1")).toMatchObject({ published: 0, delivered: 15 });

  const caller = of(all, process.pid);
  expect(fn(caller.called, "echo")).toMatchObject({ calls: 100, errors: 0, inFlight: 0 });
  const echo = fn(caller.called, "echo")!;
  expect(echo.p50Us).toBeGreaterThan(0);
  expect(echo.p99Us).toBeGreaterThanOrEqual(echo.p90Us);
  expect(echo.p90Us).toBeGreaterThanOrEqual(echo.p50Us);
  expect(fn(caller.called, "fail")).toMatchObject({ calls: 3, errors: 3, byCode: { E_LAB: 3 } });
  expect(caller.topics.find((t) => t.topic === "lab.temp.room1")).toMatchObject({ published: 5 });
  const toServer = caller.connections.find((c) => c.peer.includes(`pid ${server.pid}`))!;
  expect(toServer.framesOut).toBeGreaterThanOrEqual(100 + 3 + 5 + 1);
  expect(toServer.bytesIn).toBeGreaterThan(0);

  // A process with metrics.enabled = false counts nothing of its calls.
  await labc.call("tally").catch(() => {});
  expect(of(await metrics(), quiet.pid).served).toEqual([]);

  // For a person: one row per function and side.
  const text = (await host.cli(["metrics"])).stdout;
  expect(text).toMatch(new RegExp(`^echo\\s+served\\s+${server.pid}\\s+100\\s+0\\s+0\\s+\\d`, "m"));
  expect(text).toMatch(new RegExp(`^fail\\s+served\\s+${server.pid}\\s+3\\s+3 \\(E_LAB 3\\)`, "m"));
});
