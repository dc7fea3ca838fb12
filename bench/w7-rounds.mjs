// W7 in rounds (issue 31): 100 calls in flight to `echo`, direct and through the router, in
// alternating rounds of 1 s, with each process's CPU per call from its threads' schedstat
// (nanoseconds on a vCPU; /proc's ticks run high), its reads and writes per call from
// /proc/PID/io, and the machine's busy and idle vCPUs. On 2 vCPUs the three processes of a
// relayed call share them and the rounds' ratios spread widely (1.4x to 2.6x in one run):
// judge a change to the router by its CPU per call against the caller's, in the same rounds,
// and compare two builds by running this in turns against each (W7_ROOT).
// The caller is this process (a Runtime of the build); the server and the router are labc's
// own, on 127.0.0.1 with discovery off, in a folder of their own; both end with the run (a
// profiled router 1 s after the server, of itself).
// Usage: node bench/w7-rounds.mjs [ROUNDS=6]   (after `npm run build`)
//   EACH=1        prints each round
//   TCP_TOO=1     also measures a second caller in this process with network.local_sockets =
//                 false, in the same rounds: with LABC_NETWORK_LOCAL_SOCKETS=true, direct and
//                 routed calls over the host's Unix sockets against the same over TCP
//                 (lib/net/local-sockets.ts, from 16644f3 on; the server's lifeline stays on its socket)
//   PIPE=1        also measures calls from a second caller in this process to the same server
//                 through a byte pipe (a process of node:net's `pipe`, nothing read or checked):
//                 what any relay in Node costs at least, for labc's own caller and server in the
//                 same rounds. The pipe's CPU is the fourth figure of each way. TCP only (both
//                 legs of the pipe are): not with LABC_NETWORK_LOCAL_SOCKETS=true
//   W7_ROOT=dir   measures the build in dir (a copy of this project with its dist/, bin/,
//                 services/ and node_modules) instead of this one
//   PROFILE=dir   starts the router itself under --cpu-prof, its profile written to dir when it
//                 leaves (1 s after the server; a run that ends well waits for it). The
//                 profiler's thread counts in the router's CPU: some 50 ms a second, 0.3-0.7 µs
//                 a call
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = process.env.W7_ROOT ? resolve(process.env.W7_ROOT) : join(fileURLToPath(import.meta.url), "..", "..");
const profile = process.env.PROFILE;
const rounds = Number(process.argv[2] ?? 6);
const { Runtime } = await import(join(root, "dist/lib/runtime/runtime.js"));
const { loadConfig } = await import(join(root, "dist/lib/config.js"));
const { freePort } = await import(join(root, "dist/lib/net/free-port.js"));
const { ROUTER_NODE_OPTIONS } = await import(join(root, "dist/lib/paths.js"));

const port = await freePort();
const dir = mkdtempSync(join(tmpdir(), "labc-w7-"));
// This process (the caller) takes the same folders as its server and router: it finds their
// local sockets there when LABC_NETWORK_LOCAL_SOCKETS=true (lib/net/local-sockets.ts).
Object.assign(process.env, { XDG_CONFIG_HOME: dir, XDG_STATE_HOME: dir, XDG_CACHE_HOME: dir });
const env = { ...process.env, LABC_ROUTER_PORT: String(port), LABC_ROUTER_LINGER: "1", LABC_DISCOVERY_ENABLED: "false" };
let server;
let routerPid;
let profiled;
// A let: PIPE's pipe ends with the rest.
let end = () => {
  for (const pid of profiled ? [server?.pid] : [server?.pid, routerPid]) {
    try {
      if (pid) process.kill(pid);
    } catch {
      // gone already
    }
  }
  rmSync(dir, { recursive: true, force: true });
};
process.once("SIGINT", () => (end(), profiled?.kill(), process.exit(130)));
// Profiled, the router is started here (as lib/runtime/router-link.ts would, plus --cpu-prof)
// before the server, which then finds it; it writes its profile when it leaves of itself.
if (profile) {
  profiled = spawn(process.execPath, [...ROUTER_NODE_OPTIONS, "--cpu-prof", `--cpu-prof-dir=${profile}`, join(root, "dist/router.js"), "--port", String(port), "--linger", "1"], { env, stdio: ["ignore", "ignore", "inherit"] });
  routerPid = profiled.pid;
}
const left = profiled && new Promise((done) => profiled.once("exit", done));
if (profiled) {
  await waitForPort(port).catch((error) => {
    profiled.kill();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  });
}
server = spawn(process.execPath, [join(root, "bin/labc.js"), "serve", join(root, "services/echo.ts")], { env, stdio: ["ignore", "pipe", "inherit"] });

/** Resolves once something listens on 127.0.0.1:`port` (5 s at most). */
async function waitForPort(port) {
  const { connect } = await import("node:net");
  for (const until = Date.now() + 5000; Date.now() < until; await new Promise((r) => setTimeout(r, 50))) {
    const open = await new Promise((done) => {
      const socket = connect(port, "127.0.0.1", () => (socket.destroy(), done(true)));
      socket.once("error", () => done(false));
    });
    if (open) return;
  }
  throw new Error(`the router did not listen on port ${port}`);
}

/** µs on a vCPU so far, every thread of process `pid`. */
function cpu(pid) {
  let ns = 0;
  for (const thread of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${thread}/schedstat`, "utf8").split(" ")[0]);
    } catch {
      // a thread that ended meanwhile
    }
  }
  return ns / 1000;
}
/** Read- and write-like system calls so far of process `pid`. */
function syscalls(pid) {
  const io = readFileSync(`/proc/${pid}/io`, "utf8");
  return [Number(/syscr: (\d+)/.exec(io)[1]), Number(/syscw: (\d+)/.exec(io)[1])];
}
/** µs every vCPU spent idle so far (/proc/stat's ticks of 10 ms). */
function idle() {
  const fields = readFileSync("/proc/stat", "utf8").split("\n")[0].split(/ +/);
  return (Number(fields[4]) + Number(fields[5])) * 10_000;
}

try {
  await new Promise((ready, failed) => {
    server.stdout.on("data", (text) => String(text).includes("serving") && ready());
    server.once("exit", (code) => failed(new Error(`labc serve exited (${code})`)));
  });
  const runtime = new Runtime(loadConfig({ env, flags: { "router.port": port } }).values);
  await runtime.call("echo", "x");
  routerPid = runtime.admin.routerPid;
  const target = [...runtime.admin.pool.servers.values()].find((s) => s.pid === server.pid);
  const pids = [process.pid, routerPid, server.pid];
  let piped;
  /**
   * A caller whose link to `target` goes through a byte pipe (PIPE): a process listening on a
   * port of its own that pipes each connection to the server's port. The caller's entry for the
   * server is given the pipe's port before its first call to it, so it dials the pipe.
   */
  async function viaPipe(target) {
    const pipePort = await freePort();
    const code = `const net = require("node:net");
      net.createServer((c) => {
        const s = net.connect(${target.port}, "127.0.0.1");
        c.setNoDelay(true); s.setNoDelay(true); c.pipe(s); s.pipe(c);
        c.on("error", () => s.destroy()); s.on("error", () => c.destroy());
      }).listen(${pipePort}, "127.0.0.1", () => console.log("ready"));`;
    const pipe = spawn(process.execPath, ["-e", code], { stdio: ["ignore", "pipe", "inherit"] });
    pids.push(pipe.pid);
    const ended = end;
    end = () => (pipe.kill(), ended());
    await new Promise((ready, failed) => {
      pipe.stdout.once("data", ready);
      pipe.once("exit", (code) => failed(new Error(`the pipe exited (${code}) before it listened`)));
    });
    piped = new Runtime(loadConfig({ env, flags: { "router.port": port } }).values);
    await piped.admin.sync();
    const entry = [...piped.admin.pool.servers.values()].find((s) => s.pid === server.pid);
    Object.defineProperty(entry, "port", { value: pipePort });
    await piped.call("echo", "x");
    return () => piped.call("echo", "hello");
  }
  const ways = {
    direct: () => runtime.call("echo", "hello"),
    routed: () => runtime.admin.forward(target.id, "echo", ["hello"], 30_000),
  };
  if (process.env.PIPE) {
    // The direct calls would take the host's Unix socket and the pipe's legs TCP: unlike links.
    if (loadConfig({ env }).values["network.local_sockets"]) throw new Error("PIPE=1 measures TCP: unset LABC_NETWORK_LOCAL_SOCKETS");
    ways.piped = await viaPipe(target);
  }
  const overTcp = process.env.TCP_TOO && new Runtime(loadConfig({ env, flags: { "router.port": port, "network.local_sockets": false } }).values);
  if (overTcp) {
    await overTcp.call("echo", "x");
    ways["direct over TCP"] = () => overTcp.call("echo", "hello");
    ways["routed over TCP"] = () => overTcp.admin.forward(target.id, "echo", ["hello"], 30_000);
  }

  async function round(call, ms) {
    let calls = 0;
    const until = performance.now() + ms;
    const cpu0 = pids.map(cpu);
    const sys0 = pids.map(syscalls);
    const idle0 = idle();
    const t0 = performance.now();
    await Promise.all(Array.from({ length: 100 }, async () => {
      while (performance.now() < until) {
        await call();
        calls++;
      }
    }));
    const us = (performance.now() - t0) * 1000;
    const used = pids.map((pid, i) => cpu(pid) - cpu0[i]);
    return {
      rate: (calls / us) * 1e6,
      cpu: used.map((u) => u / calls),
      syscalls: pids.map((pid, i) => syscalls(pid).map((n, k) => (n - sys0[i][k]) / calls)),
      busy: used.reduce((a, b) => a + b, 0) / us,
      idle: (idle() - idle0) / us,
    };
  }

  for (let i = 0; i < 2; i++) for (const call of Object.values(ways)) await round(call, 500); // warm-up
  const results = Object.fromEntries(Object.keys(ways).map((way) => [way, []]));
  for (let i = 0; i < rounds; i++) {
    for (const [way, call] of Object.entries(ways)) {
      const r = await round(call, 1000);
      results[way].push(r);
      if (process.env.EACH) console.log(`${way} ${Math.round(r.rate)}/s, CPU µs per call ${r.cpu.map((x) => x.toFixed(2)).join(" ")}, reads/writes per call ${r.syscalls.map(([r, w]) => `${r.toFixed(3)}/${w.toFixed(3)}`).join(" ")}`);
    }
  }
  const median = (xs) => xs.slice().sort((a, b) => a - b)[xs.length >> 1];
  console.log(`W7 in ${rounds} rounds of 1 s each way, 100 in flight (medians; each figure for the caller, router, server${piped ? ", pipe" : ""})`);
  for (const [way, rs] of Object.entries(results)) {
    const cpus = pids.map((_, i) => median(rs.map((r) => r.cpu[i])).toFixed(2)).join(", ");
    const io = [0, 1, 2].map((i) => [0, 1].map((k) => median(rs.map((r) => r.syscalls[i][k])).toFixed(3)).join("/")).join(", ");
    console.log(`${way}: ${Math.round(median(rs.map((r) => r.rate)))} calls/s; CPU µs ${cpus}; reads/writes per call ${io}; vCPUs busy ${median(rs.map((r) => r.busy)).toFixed(2)}, idle ${median(rs.map((r) => r.idle)).toFixed(2)}`);
  }
  const ratios = results.direct.map((d, i) => d.rate / results.routed[i].rate);
  const routerOverCaller = results.routed.map((r) => r.cpu[1] / r.cpu[0]);
  console.log(`direct ÷ routed per round: ${ratios.map((x) => x.toFixed(2)).join(" ")} (median ${median(ratios).toFixed(2)}; target ≤ 1.6)`);
  if (piped) {
    // The pipe's CPU per piped call: near nothing would mean the caller reached the server some other way.
    if (median(results.piped.map((r) => r.cpu[3])) < 0.1) throw new Error("the piped calls did not go through the pipe");
    const floor = results.direct.map((d, i) => d.rate / results.piped[i].rate);
    console.log(`direct ÷ piped per round: ${floor.map((x) => x.toFixed(2)).join(" ")} (median ${median(floor).toFixed(2)})`);
    await piped.close();
  }
  console.log(`router's CPU ÷ caller's per round: ${routerOverCaller.map((x) => x.toFixed(3)).join(" ")} (median ${median(routerOverCaller).toFixed(3)})`);
  if (overTcp) {
    for (const way of ["direct", "routed"]) {
      const gain = results[way].map((r, i) => r.rate / results[`${way} over TCP`][i].rate);
      console.log(`${way} calls/s, sockets ÷ TCP per round: ${gain.map((x) => x.toFixed(2)).join(" ")} (median ${median(gain).toFixed(2)})`);
    }
    const tcpRatios = results["direct over TCP"].map((d, i) => d.rate / results["routed over TCP"][i].rate);
    console.log(`direct ÷ routed over TCP per round: median ${median(tcpRatios).toFixed(2)}`);
    await overTcp.close();
  }
  await runtime.close();
} finally {
  end();
}
if (left) {
  await left;
  console.log(`the router's profile is in ${profile}`);
}
