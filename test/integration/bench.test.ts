import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { expect, test } from "vitest";
import { PACKAGE_ROOT } from "../../lib/paths.js";

// The benchmarks run briefly here so that they cannot rot; their figures are not judged.
test("the benchmark suite runs every workload (--quick)", () => {
  const run = spawnSync(process.execPath, [join(PACKAGE_ROOT, "dist", "bench", "suite.js"), "--quick"], {
    encoding: "utf8",
    timeout: 240_000,
    env: { ...process.env, NODE_DEBUG: "" },
  });
  expect(run.stderr).toBe("");
  expect(run.status).toBe(0);
  for (const figure of ["W1 sequential calls", "W2 100 in flight", "W3 pub/sub 1 → 1", "W3 fan-out", "W4 binary 16 MiB", "W4 JSON string 1 MiB", "W5 `labc call echo hi`", "W6 idle RSS, router", "W7 (W1 through the router)", "W9 stream of 64 KiB chunks", "W9 stream of small items", "W10 5 ms items, map over 3 servers"]) {
    expect(run.stdout).toContain(figure);
  }
  // Publishing as users write it, and the network secret's cost, are figures of their own.
  expect(run.stdout).toContain("W3 pub/sub 1 → 1, labc await each");
  expect(run.stdout).toMatch(/W2 CPU per call, client +µs \(lower\) +- +[\d.]+/);
  expect(run.stdout).toMatch(/W2 CPU per call, server +µs \(lower\) +- +[\d.]+/);
  expect(run.stdout).toContain("W3 pub/sub 1 → 1, labc batches of 1000");
  expect(run.stdout).toMatch(/The network secret's cost[^\n]*\n[^\n]*\nW1 p50 latency +\d/);
  const results = JSON.parse(readFileSync(join(PACKAGE_ROOT, "bench", "results", "latest.json"), "utf8"));
  const w1 = results.rows.find((row: { figure: string }) => row.figure === "W1 sequential calls");
  expect(w1.values.labc.value).toBeGreaterThan(0);
  expect(w1.values["labc-secret"].value).toBeGreaterThan(0);
  // W1-W3 one to one against raw and the peers are the shared harness's (npm run bench:peers).
  expect(w1.values.raw).toBeUndefined();
  expect(run.stdout).toContain("`npm run\nbench:peers`, the benchmark of record");
  // Ratios against each system are printed and written, whichever way is better.
  expect(run.stdout).toContain("labc against each system");
  const fanOut = results.rows.find((row: { figure: string }) => row.figure.startsWith("W3 fan-out"));
  expect(fanOut.values.raw.value).toBeGreaterThan(0);
  expect(fanOut.labcAdvantage.raw).toBeCloseTo(fanOut.values.labc.value / fanOut.values.raw.value, 6);
  const ready = results.rows.find((row: { figure: string }) => row.figure === "W6 ready after start");
  expect(ready.labcAdvantage.raw).toBeCloseTo(ready.values.raw.value / ready.values.labc.value, 6);
}, 250_000);

test("the decoder benchmark runs (--quick)", () => {
  const run = spawnSync(process.execPath, [join(PACKAGE_ROOT, "dist", "bench", "decoder.js"), "--quick"], { encoding: "utf8" });
  expect(run.status).toBe(0);
  expect(run.stdout).toMatch(/decoder: [\d.]+ M frames\/s coalesced/);
});

const noNats = spawnSync("nats-server", ["--version"]).status !== 0;

test.skipIf(noNats)("the backplane's benchmarks run (--quick): W1/W2 between sites against raw NATS, and the scale simulation", () => {
  const env = { ...process.env, NODE_DEBUG: "" };
  const calls = spawnSync(process.execPath, [join(PACKAGE_ROOT, "dist", "bench", "backplane.js"), "--quick"], { encoding: "utf8", timeout: 120_000, env });
  expect(calls.status).toBe(0);
  // Raw NATS, labc on NATS and its overhead, labc through the gateways and its overhead.
  expect(calls.stdout).toMatch(/W1 p50 latency +µs \(lower\) +\d+ +\d+ +[\d.]+x +\d+ +[\d.]+x/);
  expect(calls.stdout).toMatch(/W2 100 in flight +calls\/s \(higher\) +\d+ +\d+ +[\d.]+x +\d+ +[\d.]+x/);
  const scale = spawnSync(process.execPath, [join(PACKAGE_ROOT, "dist", "bench", "backplane-scale.js"), "--quick"], { encoding: "utf8", timeout: 180_000, env });
  expect(scale.status).toBe(0);
  expect(scale.stdout).toMatch(/every gateway knew all 490 functions of the others \d+ ms after/);
  expect(scale.stdout).toMatch(/memory per known function in a gateway's pool: \d+ bytes/);
}, 320_000);
