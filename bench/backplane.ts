/**
 * The backplane's figures (`npm run bench`, docs/performance.md): W1 and W2 from one site to
 * another through nats-server, labc against raw NATS request/reply in the same run, their calls
 * taken in turn. Site a: this process, as a caller of its host, whose router is the gateway;
 * site b: an echo server on a host whose router is the gateway. Both processes are on gateways'
 * hosts, so their calls go on NATS themselves (docs/backplane.md#direct-calls); a second caller
 * of site a without the backplane setting measures the path through both gateways. Everything on 127.0.0.1, each
 * host with a root port and config folder of its own, discovery off: the sites meet only on NATS.
 * Needs nats-server (Debian package); says so and skips otherwise.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { connect } from "@nats-io/transport-node";
import { loadConfig } from "../lib/config.js";
import { freePort } from "../lib/net/free-port.js";
import { CLI_PATH, PACKAGE_ROOT } from "../lib/paths.js";
import { Runtime } from "../lib/runtime/runtime.js";
import { benchHost, concurrent, interleaved, median, sleep, startProcess, warm, type Figure } from "./measure.js";

const quick = process.argv.includes("--quick");
const ROUNDS = quick ? 1 : 5;
const ROUND_MS = quick ? 300 : 2000;
const W2_ROUNDS = quick ? 2 : 25;
const W2_ROUND_MS = quick ? 150 : 200;
const SMALL = "hello";
const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
const children: ChildProcess[] = [];
const dirs: string[] = [];

function start(command: string, args: string[], env: NodeJS.ProcessEnv = process.env, ready?: (line: string) => boolean): Promise<unknown> {
  return startProcess(children, command, args, env, ready);
}

/** A labc host of its own whose router is its site's gateway to NATS at `nats`. */
async function site(name: string, nats: string): Promise<NodeJS.ProcessEnv> {
  const host = await benchHost(`labc-bench-site-${name}-`);
  dirs.push(host.dir);
  return { ...host.env, LABC_HOST_ID: `bench-site-${name}`, LABC_HOST_NAME: `site-${name}`, LABC_BACKPLANE_NATS: nats };
}

async function main(): Promise<void> {
  if (spawnSync("nats-server", ["--version"]).status !== 0) {
    console.log("backplane: nats-server is not installed (Debian package nats-server, npm run bench:setup); skipped");
    return;
  }
  const port = await freePort();
  const nats = `nats://127.0.0.1:${port}`;
  const server = spawn("nats-server", ["-a", "127.0.0.1", "-p", String(port)], { stdio: "ignore" });
  children.push(server);
  await sleep(300);
  await start(process.execPath, [here("./nats-echo.js"), nats]);
  const client = await connect({ servers: nats });
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  const rawNats = async () => JSON.parse(decoder.decode((await client.request("bench.echo", encoder.encode(JSON.stringify(SMALL)), { timeout: 10000 })).data));

  const b = await site("b", nats);
  const echo = join(PACKAGE_ROOT, "services", "echo.ts");
  await start(process.execPath, [CLI_PATH, "serve", echo], b, (line) => line.startsWith("labc: serving"));
  // Site a's router in the foreground, by PID: a router started by this process would not have site a's settings.
  const a = await site("a", nats);
  await start(process.execPath, [CLI_PATH, "router"], { ...a, LABC_ROUTER_LINGER: "0" });
  const runtime = new Runtime(loadConfig({ env: a }).values);
  // A process of site a's host without the setting: it calls through its router, the gateway.
  const { LABC_BACKPLANE_NATS: _, ...withoutSetting } = a;
  const relayed = new Runtime(loadConfig({ env: withoutSetting }).values);
  try {
    // Until site a's gateway has heard site b's listing, echo is unknown there.
    const end = Date.now() + 20000;
    for (;;) {
      try {
        if ((await runtime.call("echo", SMALL)) === SMALL && (await relayed.call("echo", SMALL)) === SMALL) break;
      } catch (error) {
        if (Date.now() > end) throw error;
        await sleep(200);
      }
    }
    const labc = () => runtime.call("echo", SMALL);
    const throughGateways = () => relayed.call("echo", SMALL);
    const calls = [rawNats, labc, throughGateways];
    for (const call of calls) await warm(call, quick ? 200 : 2000);
    const w1 = calls.map((): { perSecond: number; p50: number; p99: number }[] => []);
    for (let i = 0; i < ROUNDS; i++) (await interleaved(calls, ROUND_MS)).forEach((round, k) => w1[k]!.push(round));
    const w2 = calls.map((): number[] => []);
    for (let i = 0; i < W2_ROUNDS; i++) for (const [k, call] of calls.entries()) w2[k]!.push((await concurrent(call, 100, W2_ROUND_MS)).perSecond);
    const figures = (pick: (round: { perSecond: number; p50: number; p99: number }) => number) => w1.map((rounds) => median(rounds.map(pick)));
    const rows: [string, string, Figure[], "higher" | "lower"][] = [
      ["W1 sequential calls", "calls/s", figures((r) => r.perSecond), "higher"],
      ["W1 p50 latency", "µs", figures((r) => r.p50), "lower"],
      ["W1 p99 latency", "µs", figures((r) => r.p99), "lower"],
      ["W2 100 in flight", "calls/s", w2.map(median), "higher"],
    ];
    console.log("Between two sites over the NATS backplane (nats-server on 127.0.0.1): labc against raw NATS request/reply");
    const table = [["figure", "unit", "raw NATS", "labc on NATS", "overhead (target < 1.3)", "labc through gateways", "overhead"]];
    for (const [figure, unit, [raw, direct, relayedFigure], better] of rows) {
      const overhead = (labcFigure: Figure) => (better === "lower" ? labcFigure.value / raw!.value : raw!.value / labcFigure.value).toFixed(2) + "x";
      table.push([figure, `${unit} (${better})`, raw!.value.toFixed(0), direct!.value.toFixed(0), overhead(direct!), relayedFigure!.value.toFixed(0), overhead(relayedFigure!)]);
    }
    const widths = table[0]!.map((_, i) => Math.max(...table.map((line) => line[i]!.length)));
    for (const line of table) console.log(line.map((cell, i) => cell.padEnd(widths[i]!)).join("  ").trimEnd());
    console.log(
      "labc on NATS: caller and server on gateways' hosts, caller → NATS → server and back, as raw NATS (client → NATS →\n" +
        "responder); labc through gateways: caller → its router (site a's gateway) → NATS → site b's gateway → the server.\n" +
        "Overhead: labc's time per call ÷ raw NATS's (below 1: labc does more).",
    );
    const dir = join(PACKAGE_ROOT, "bench", "results");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "backplane.json"), `${JSON.stringify({ date: new Date().toISOString(), quick, rows }, null, 2)}\n`);
  } finally {
    await Promise.all([runtime.close(), relayed.close()]);
    await client.close();
  }
}

try {
  await main();
} finally {
  for (const child of children) child.kill("SIGKILL");
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
