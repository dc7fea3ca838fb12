/**
 * `npm run bench`: labc's call path against a raw Node `net` echo, measured in the same run.
 * Client and servers are separate processes on 127.0.0.1. `--quick` runs each figure briefly.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { loadConfig } from "../lib/config.js";
import { freePort } from "../lib/net/tcp-transport.js";
import { CLI_PATH, PACKAGE_ROOT } from "../lib/paths.js";
import { Runtime } from "../lib/runtime.js";
import { rawFrame, rawReader } from "./raw-protocol.js";

const quick = process.argv.includes("--quick");
const ROUND_MS = quick ? 300 : 2000;
const ROUNDS = quick ? 1 : 3;
const MAX_CALLS = 2_000_000; // an upper bound on any one loop, whatever the machine
const PAYLOAD = "hello";

type Call = () => Promise<unknown>;

interface Figure {
  callsPerSec: number;
  p50us?: number;
  p99us?: number;
}

const children: ChildProcess[] = [];

function start(args: string[], env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; line: string }> {
  const child = spawn(process.execPath, args, { env, stdio: ["ignore", "pipe", "inherit"] });
  children.push(child);
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout! }).once("line", (line) => resolve({ child, line }));
    child.once("exit", (code) => reject(new Error(`${args.join(" ")} exited (${code}) before it was ready`)));
  });
}

async function rawClient(port: number): Promise<Call> {
  const socket = net.connect(port, "127.0.0.1");
  await new Promise((resolve) => socket.once("connect", resolve));
  socket.setNoDelay(true);
  const pending = new Map<number, (value: unknown) => void>();
  let nextId = 1;
  socket.on("data", rawReader((id, body) => {
    pending.get(id)!(body.v);
    pending.delete(id);
  }));
  return () =>
    new Promise((resolve) => {
      const id = nextId++;
      pending.set(id, resolve);
      socket.write(rawFrame(id, { args: [PAYLOAD] }));
    });
}

async function sequential(call: Call): Promise<Figure> {
  for (let i = 0; i < 500; i++) await call();
  const latencies: number[] = [];
  const end = performance.now() + ROUND_MS;
  while (performance.now() < end && latencies.length < MAX_CALLS) {
    const t0 = performance.now();
    await call();
    latencies.push(performance.now() - t0);
  }
  latencies.sort((a, b) => a - b);
  const total = latencies.reduce((sum, value) => sum + value, 0);
  return {
    callsPerSec: latencies.length / (total / 1000),
    p50us: latencies[Math.floor(latencies.length * 0.5)]! * 1000,
    p99us: latencies[Math.floor(latencies.length * 0.99)]! * 1000,
  };
}

async function concurrent(call: Call, inFlight: number): Promise<Figure> {
  await Promise.all(Array.from({ length: inFlight }, call));
  let done = 0;
  const t0 = performance.now();
  const end = t0 + ROUND_MS;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() < end && done < MAX_CALLS) {
        await call();
        done++;
      }
    }),
  );
  return { callsPerSec: done / ((performance.now() - t0) / 1000) };
}

function median(figures: Figure[]): Figure & { spread: number } {
  const sorted = [...figures].sort((a, b) => a.callsPerSec - b.callsPerSec);
  const middle = sorted[Math.floor(sorted.length / 2)]!;
  const spread = (sorted[sorted.length - 1]!.callsPerSec - sorted[0]!.callsPerSec) / middle.callsPerSec;
  return { ...middle, spread };
}

async function measure(run: () => Promise<Figure>) {
  const rounds: Figure[] = [];
  for (let i = 0; i < ROUNDS; i++) rounds.push(await run());
  return median(rounds);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "labc-bench-"));
  const rootPort = await freePort();
  const env = { ...process.env, XDG_CONFIG_HOME: dir, XDG_STATE_HOME: dir, LABC_ROUTER_PORT: String(rootPort), LABC_ROUTER_LINGER: "1", LABC_DISCOVERY_ENABLED: "false" };
  let routerPid: number | undefined;
  try {
    const raw = await start([fileURLToPath(new URL("./raw-server.js", import.meta.url))], env);
    const rawCall = await rawClient(Number(raw.line));

    await start([CLI_PATH, "serve", join(PACKAGE_ROOT, "services", "echo.ts")], env);
    const labc = new Runtime(loadConfig({ env, flags: { "router.port": rootPort } }).values);
    await labc.call("echo", PAYLOAD);
    routerPid = labc.link.welcome?.pid;
    const labcCall = () => labc.call("echo", PAYLOAD);

    const rows: Record<string, ReturnType<typeof median>> = {};
    rows["raw W1 sequential"] = await measure(() => sequential(rawCall));
    rows["labc W1 sequential"] = await measure(() => sequential(labcCall));
    rows["raw W2 100 in flight"] = await measure(() => concurrent(rawCall, 100));
    rows["labc W2 100 in flight"] = await measure(() => concurrent(labcCall, 100));

    const ratio = (name: string) => {
      const base = rows[name.replace(/^labc/, "raw")]!;
      return rows[name]!.callsPerSec / base.callsPerSec;
    };
    const format = (value: number | undefined, digits = 0) => (value === undefined ? "-" : value.toFixed(digits));
    const lines = [["figure", "calls/s", "p50 µs", "p99 µs", "spread", "vs raw"]];
    for (const [name, figure] of Object.entries(rows)) {
      lines.push([
        name,
        format(figure.callsPerSec),
        format(figure.p50us, 1),
        format(figure.p99us, 1),
        `${(figure.spread * 100).toFixed(0)}%`,
        name.startsWith("labc") ? `${ratio(name).toFixed(2)}x` : "1.00x",
      ]);
    }
    const widths = lines[0]!.map((_, i) => Math.max(...lines.map((line) => line[i]!.length)));
    for (const line of lines) console.log(line.map((cell, i) => cell.padEnd(widths[i]!)).join("  "));
    const p50 = rows["labc W1 sequential"]!.p50us! / rows["raw W1 sequential"]!.p50us!;
    console.log(`\nW1 p50 latency: labc ${p50.toFixed(2)}x raw (lower is better); rounds: ${ROUNDS} x ${ROUND_MS} ms`);

    mkdirSync(join(PACKAGE_ROOT, "bench", "results"), { recursive: true });
    writeFileSync(
      join(PACKAGE_ROOT, "bench", "results", "latest.json"),
      `${JSON.stringify({ date: new Date().toISOString(), quick, rows }, null, 2)}\n`,
    );
    await labc.close();
  } finally {
    for (const child of children) child.kill("SIGKILL");
    if (routerPid) {
      try {
        process.kill(routerPid, "SIGKILL");
      } catch {
        // gone already
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
