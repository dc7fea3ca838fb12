/**
 * The backplane's scale simulation (`npm run bench`, docs/performance.md): SITES gateways, each
 * a site of its own with one server of FUNCTIONS functions, in a few processes (each gateway
 * with its own NATS connection, as separate hosts would have), all announcing through one
 * nats-server on 127.0.0.1: the time until every gateway knows every function of every other
 * site, and the memory each known function costs a gateway's pool.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { availableParallelism } from "node:os";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { freePort } from "../lib/net/free-port.js";
import { cpuMicros, sleep } from "./measure.js";

const quick = process.argv.includes("--quick");
const SITES = quick ? 50 : 500;
const FUNCTIONS = 10;
const PROCESSES = 4;
/** Beats of 500 gateways reach every other: 500 × 499 messages a beat, hence a slower beat than a LAN's. */
const HEARTBEAT_MS = Number(process.env.BENCH_SIM_HEARTBEAT_MS ?? 5000);
const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));

interface Result {
  startedAt: number;
  connectedAt: number;
  convergedAt: number | null;
  converged: number;
  knownFunctions: number;
  poolBytes: number;
  heapPerGateway: number;
  rssMb: number;
  /** CPU time of the process until its gateways all knew everything. */
  cpuMs: number;
}

const children: ChildProcess[] = [];
try {
  if (spawnSync("nats-server", ["--version"]).status !== 0) {
    console.log("backplane scale: nats-server is not installed (Debian package nats-server); skipped");
  } else {
    const port = await freePort();
    const server = spawn("nats-server", ["-a", "127.0.0.1", "-p", String(port)], { stdio: "ignore" });
    children.push(server);
    await sleep(300);
    const per = Math.ceil(SITES / PROCESSES);
    const results = await Promise.all(
      Array.from({ length: PROCESSES }, (_, p) => {
        const first = p * per;
        const count = Math.min(per, SITES - first);
        const child = spawn(
          process.execPath,
          ["--expose-gc", here("./backplane-sim.js"), `nats://127.0.0.1:${port}`, String(first), String(count), String(SITES), String(FUNCTIONS), String(HEARTBEAT_MS)],
          // Each gateway says it linked to NATS: only an error's last words are worth showing.
          { stdio: ["ignore", "pipe", "pipe"] },
        );
        children.push(child);
        let stderr = "";
        child.stderr!.on("data", (chunk) => (stderr = (stderr + chunk).slice(-2000)));
        return new Promise<Result>((resolve, reject) => {
          createInterface({ input: child.stdout! }).once("line", (line) => resolve(JSON.parse(line)));
          child.once("exit", (code) => reject(new Error(`a simulation process exited (${code}): ${stderr}`)));
        });
      }),
    );
    const natsCpuMs = cpuMicros([server.pid!]) / 1000;
    const connected = Math.max(...results.map((r) => r.connectedAt));
    const started = Math.min(...results.map((r) => r.startedAt));
    const done = results.every((r) => r.convergedAt !== null) ? Math.max(...results.map((r) => r.convergedAt!)) : null;
    const known = results.reduce((sum, r) => sum + r.knownFunctions, 0);
    const poolBytes = results.reduce((sum, r) => sum + r.poolBytes, 0);
    console.log(`Backplane scale: ${SITES} gateways (${PROCESSES} processes), ${FUNCTIONS} functions each, one nats-server, beats every ${HEARTBEAT_MS / 1000} s`);
    console.log(`  all connected ${connected - started} ms after the start`);
    console.log(
      done === null
        ? `  not converged in 120 s: ${results.reduce((sum, r) => sum + r.converged, 0)} of ${SITES} gateways knew every function`
        : `  every gateway knew all ${(SITES - 1) * FUNCTIONS} functions of the others ${done - connected} ms after the last connected (${done - started} ms after the start)`,
    );
    const cpuMs = results.reduce((sum, r) => sum + r.cpuMs, 0);
    console.log(
      `  CPU until then: ${(cpuMs / SITES).toFixed(0)} ms per gateway (${(cpuMs / 1000).toFixed(1)} s in all, on ${availableParallelism()} cores), nats-server ${(natsCpuMs / 1000).toFixed(1)} s:` +
        " the simulation runs every gateway's work on this one machine; separate hosts each do only theirs",
    );
    console.log(`  memory per known function in a gateway's pool: ${(poolBytes / known).toFixed(0)} bytes (${known} known in all)`);
    console.log(`  heap per gateway (its NATS connection, pool and site table): ${(results.reduce((s, r) => s + r.heapPerGateway, 0) / PROCESSES / 1024).toFixed(0)} KiB; RSS per process ${results.map((r) => r.rssMb.toFixed(0)).join(", ")} MB`);
  }
} finally {
  for (const child of children) child.kill("SIGKILL");
}
process.exit(0);
