/**
 * `npm run bench` (after the suite): each attack of docs/reliability.md against a labc host on
 * 127.0.0.1 with its default limits, while a well-behaved caller calls `echo`. For each: the
 * attacked process's RSS before, at its peak during, and after; the caller's success rate and
 * p99 during the attack against its p99 measured just before it, in the same run. Each attack
 * runs in a process of its own (this file, with `--attack N --port P`), so that its own work
 * does not slow the caller that measures.
 * Targets: every bound holds, success ≥ 99.9 %, p99 within 3x. `--quick` shortens every phase.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { loadConfig } from "../lib/config.js";
import { DEFAULT_LIMITS } from "../lib/wire/limits.js";
import { CLI_PATH, PACKAGE_ROOT } from "../lib/paths.js";
import { Runtime } from "../lib/runtime/runtime.js";
import { frameOf, HostilePeer, KIND, rssMb } from "./hostile-peer.js";
import { benchHost, sleep } from "./measure.js";

const quick = process.argv.includes("--quick");
const PHASE_MS = quick ? 1500 : 4000;
const MiB = 1024 * 1024;

interface Attack {
  name: string;
  /** How long it runs while the caller measures, when not the default. */
  ms?: number;
  /** Which process it aims at. */
  target: "router" | "server";
  /** What bounds the attacked process's growth, in MB, beyond its RSS before. */
  boundMb: number;
  /** Starts the attack; resolves with what ends it and a line on what the peers saw. */
  start: (port: number) => Promise<{ stop: () => void; outcome: () => string }>;
}

const peers = new Set<HostilePeer>();
async function connect(port: number): Promise<HostilePeer> {
  const peer = await HostilePeer.connect(port);
  peers.add(peer);
  return peer;
}
const endAll = () => {
  for (const peer of peers) peer.destroy();
  peers.clear();
};
const closed = (list: HostilePeer[]) => list.filter((peer) => peer.isClosed).length;

const ATTACKS: Attack[] = [
  {
    name: "200 000 requests, answers never read",
    target: "server",
    boundMb: 64,
    start: async (port) => {
      const peer = await connect(port);
      peer.hello();
      peer.stopReading();
      const request = frameOf(KIND.req, 0, { fn: "echo", args: ["x".repeat(200)] });
      for (let id = 1; id <= 200_000; id++) {
        request.writeUInt32BE(id, 8);
        peer.send(Buffer.from(request));
      }
      return { stop: endAll, outcome: () => `${(peer.socket.writableLength / MiB).toFixed(0)} MiB still unsent by the peer: not read` };
    },
  },
  ...(["router", "server"] as const).map(
    (target): Attack => ({
      name: "8 connections, 60 MiB frames declared, 50 MiB sent",
      target,
      // The partial-frame budget, and what reading costs on top.
      boundMb: DEFAULT_LIMITS.partialFrames.limit / MiB + 64,
      start: async (port) => {
        const list = await Promise.all(Array.from({ length: 8 }, () => connect(port)));
        const chunk = Buffer.alloc(MiB, 7);
        for (const peer of list) {
          peer.hello();
          const head = Buffer.alloc(4);
          head.writeUInt32BE(60 * MiB, 0);
          peer.send(head);
          for (let i = 0; i < 50; i++) peer.send(chunk);
        }
        return { stop: endAll, outcome: () => `${closed(list)} of 8 connections closed` };
      },
    }),
  ),
  {
    name: "200 connections sending a byte a second",
    target: "router",
    // Long enough for the hello timeout to end them.
    ms: 12_000,
    boundMb: 32,
    start: async (port) => {
      const list = await Promise.all(Array.from({ length: 200 }, () => connect(port)));
      const frame = frameOf(KIND.ping, 1, {});
      let at = 0;
      const started = Date.now();
      const drip = setInterval(() => {
        for (const peer of list) if (!peer.isClosed) peer.send(frame.subarray(at % frame.length, (at % frame.length) + 1));
        at++;
      }, 1000);
      return {
        stop: () => {
          clearInterval(drip);
          endAll();
        },
        outcome: () => `${closed(list)} of 200 dropped within ${((Date.now() - started) / 1000).toFixed(0)} s (hello timeout ${DEFAULT_LIMITS.helloTimeoutMs / 1000} s)`,
      };
    },
  },
  {
    name: "malformed bodies of every kind, 100 000",
    target: "router",
    boundMb: 32,
    start: async (port) => {
      const bad: [number, unknown][] = [
        [KIND.announce, { functions: [null] }],
        [KIND.announce, { functions: "echo" }],
        [KIND.withdraw, { functions: [{}] }],
        [KIND.req, { fn: 5, args: {} }],
        [KIND.hello, { v: 1, role: "king" }],
      ];
      let sent = 0;
      let running = true;
      const loop = (async () => {
        while (running && sent < 100_000) {
          const peer = await connect(port);
          peer.hello("server", { port: 1 }, 0);
          const frames: Buffer[] = [];
          for (let i = 0; i < 1000; i++, sent++) frames.push(frameOf(bad[i % bad.length]![0], i + 1, bad[i % bad.length]![1]));
          peer.send(Buffer.concat(frames));
          await peer.closedWithin(200);
          peer.destroy();
          peers.delete(peer);
        }
      })();
      return {
        stop: () => {
          running = false;
          void loop.then(endAll);
        },
        outcome: () => `${sent} sent`,
      };
    },
  },
];

/** Starts a process; resolves once it printed its first line. */
function start(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ child: ChildProcess; lines: AsyncIterator<string> }> {
  const child = spawn(process.execPath, args, { env, stdio: ["pipe", "pipe", "inherit"] });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  return new Promise((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`${args.join(" ")} exited (${code})`)));
    void lines.next().then(() => resolve({ child, lines }));
  });
}

/** The attacker's side: runs one attack until told to stop on stdin, then says what it saw. */
async function attacker(index: number, port: number): Promise<void> {
  const running = await ATTACKS[index]!.start(port);
  process.stdout.write("started\n");
  process.stdin.once("data", () => {
    process.stdout.write(`${running.outcome()}\n`);
    running.stop();
    setTimeout(() => process.exit(0), 200);
  });
}

/** The caller meanwhile: one `echo` at a time for `ms`; success rate and p99 in µs. */
async function caller(runtime: Runtime, ms: number): Promise<{ ok: number; total: number; p99: number }> {
  const latencies: number[] = [];
  let ok = 0;
  const end = performance.now() + ms;
  while (performance.now() < end && latencies.length < 500_000) {
    const t0 = performance.now();
    try {
      if ((await runtime.callWith("echo", ["hi"], { timeoutMs: 5000 })) === "hi") ok++;
    } catch {
      // counted as a failure
    }
    latencies.push(performance.now() - t0);
  }
  latencies.sort((a, b) => a - b);
  return { ok, total: latencies.length, p99: latencies[Math.floor(latencies.length * 0.99)]! * 1000 };
}

async function main(): Promise<void> {
  const { dir, rootPort, env } = await benchHost("labc-attacks-");
  const { child: server } = await start([CLI_PATH, "serve", join(PACKAGE_ROOT, "services", "echo.ts")], env);
  const runtime = new Runtime(loadConfig({ env, flags: { "router.port": rootPort } }).values);
  const rows: string[][] = [["attack", "target", "RSS MB before/peak/after", "bound", "calls ok", "p99 µs", "p99 before", "x", "what the peers saw"]];
  let routerPid = 0;
  let met = true;
  try {
    await runtime.call("echo", "hi");
    routerPid = runtime.admin.routerPid!;
    await caller(runtime, PHASE_MS / 2); // warm-up
    const target = (attack: Attack) => (attack.target === "router" ? { pid: routerPid, port: rootPort } : { pid: server.pid!, port: [...runtime.admin.pool.servers.values()].find((s) => s.pid === server.pid)!.port });
    for (const [index, attack] of ATTACKS.entries()) {
      const { pid, port } = target(attack);
      const before = await caller(runtime, PHASE_MS / 2);
      const rssBefore = rssMb(pid);
      let peak = rssBefore;
      const sampler = setInterval(() => (peak = Math.max(peak, rssMb(pid))), 50);
      const { child, lines } = await start([here, "--attack", String(index), "--port", String(port)]);
      const during = await caller(runtime, attack.ms ?? PHASE_MS);
      child.stdin!.write("stop\n");
      const outcome = String((await lines.next()).value ?? "");
      child.kill("SIGKILL");
      clearInterval(sampler);
      await sleep(1000);
      const after = rssMb(pid);
      const rate = during.ok / during.total;
      const ratio = during.p99 / before.p99;
      const held = peak - rssBefore <= attack.boundMb && rate >= 0.999 && ratio <= 3;
      met &&= held;
      rows.push([
        attack.name,
        attack.target,
        `${rssBefore.toFixed(0)}/${peak.toFixed(0)}/${after.toFixed(0)}`,
        `+${attack.boundMb}`,
        `${(rate * 100).toFixed(2)}% of ${during.total}`,
        during.p99.toFixed(0),
        before.p99.toFixed(0),
        `${ratio.toFixed(2)}${held ? "" : " (missed)"}`,
        outcome,
      ]);
    }
  } finally {
    endAll();
    await runtime.close();
    server.kill("SIGKILL");
    if (routerPid) {
      try {
        process.kill(routerPid, "SIGKILL");
      } catch {
        // gone already
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }
  console.log("\nAttacks (docs/reliability.md): the attacked process's memory, and a well-behaved caller meanwhile");
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  for (const row of rows) console.log(row.map((cell, i) => cell.padEnd(widths[i]!)).join("  ").trimEnd());
  console.log(`targets (growth within the bound, calls ok ≥ 99.9 %, p99 ≤ 3x before): ${met ? "all met" : "MISSED"}`);
}

const here = fileURLToPath(import.meta.url);
const attackAt = process.argv.indexOf("--attack");
if (attackAt > 0) {
  await attacker(Number(process.argv[attackAt + 1]), Number(process.argv[process.argv.indexOf("--port") + 1]));
} else {
  await main();
  process.exit(0);
}
