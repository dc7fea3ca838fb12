/** Measuring loops and statistics shared by the benchmarks. Every loop is bounded in count and time. */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { freePort } from "../lib/net/free-port.js";

export type Call = () => Promise<unknown>;

export interface Figure {
  value: number;
  /** (max − min) / median of the rounds. */
  spread: number;
}

/** An upper bound on any one loop, whatever the machine. */
export const MAX_CALLS = 2_000_000;

export async function warm(call: Call, count: number): Promise<void> {
  for (let i = 0; i < count; i++) await call();
}

/** One call at a time for `ms`: calls/s and the latency percentiles, in µs. */
export async function sequential(call: Call, ms: number): Promise<Latencies> {
  const latencies: number[] = [];
  const end = performance.now() + ms;
  while (performance.now() < end && latencies.length < MAX_CALLS) {
    const t0 = performance.now();
    await call();
    latencies.push(performance.now() - t0);
  }
  return summary(latencies);
}

/**
 * One call at a time, `burst` calls of each of `calls` in turn (of the first, then of the
 * second...), for `ms`: for each, calls/s and the latency percentiles. Bursts taken in turn
 * meet the same moments of a shared machine, whose slow spells last seconds: rounds of 1 s per
 * system put a whole spell on one system, and W1's ratio to raw moved ±20 % from round to
 * round. A burst of 50 calls lasts a few ms, so each spell falls on every system alike, and
 * keeps the serving process as busy as calls one after the other do (a single call in turn
 * would wake a process that slept, and measure mostly that wake-up).
 */
export async function interleaved(calls: Call[], ms: number, burst = 50): Promise<Latencies[]> {
  const latencies = calls.map((): number[] => []);
  const end = performance.now() + ms;
  while (performance.now() < end && latencies[0]!.length < MAX_CALLS) {
    for (const [k, call] of calls.entries()) {
      for (let i = 0; i < burst; i++) {
        const t0 = performance.now();
        await call();
        latencies[k]!.push(performance.now() - t0);
      }
    }
  }
  return latencies.map(summary);
}

export interface Latencies {
  perSecond: number;
  p50: number;
  p99: number;
}

/** Latencies in ms: calls/s and the percentiles in µs. */
function summary(latencies: number[]): Latencies {
  latencies.sort((a, b) => a - b);
  const total = latencies.reduce((sum, value) => sum + value, 0);
  return {
    perSecond: latencies.length / (total / 1000),
    p50: latencies[Math.floor(latencies.length * 0.5)]! * 1000,
    p99: latencies[Math.floor(latencies.length * 0.99)]! * 1000,
  };
}

/** `inFlight` calls kept going for `ms`: calls/s, and how many calls were made. */
export async function concurrent(call: Call, inFlight: number, ms: number): Promise<{ perSecond: number; calls: number }> {
  let done = 0;
  const t0 = performance.now();
  const end = t0 + ms;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() < end && done < MAX_CALLS) {
        await call();
        done++;
      }
    }),
  );
  return { perSecond: done / ((performance.now() - t0) / 1000), calls: done };
}

/**
 * CPU time the processes used so far, in µs (user and system, from /proc, in ticks of 10 ms):
 * per call over a round of W2, far steadier on a shared machine than calls/s.
 */
export function cpuMicros(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return (ticks * 1e6) / 100;
}

/** Median of the rounds, with their spread. */
export function median(values: number[]): Figure {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted[Math.floor(sorted.length / 2)]!;
  return { value: middle, spread: middle ? (sorted[sorted.length - 1]! - sorted[0]!) / middle : 0 };
}

export const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

/**
 * A labc host of a benchmark's own: a root port and a config folder, discovery off (nothing
 * leaves loopback), its router leaving a second after its last process.
 */
export async function benchHost(prefix: string): Promise<{ dir: string; rootPort: number; env: NodeJS.ProcessEnv }> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const rootPort = await freePort();
  const env = {
    ...process.env,
    XDG_CONFIG_HOME: dir,
    XDG_STATE_HOME: dir,
    XDG_CACHE_HOME: dir,
    LABC_ROUTER_PORT: String(rootPort),
    LABC_ROUTER_LINGER: "1",
    LABC_DISCOVERY_ENABLED: "false",
    NODE_DEBUG: "",
  };
  return { dir, rootPort, env };
}

/**
 * Starts a process (added to `children`, which the benchmark ends by PID); resolves with the
 * first line of its output that `ready` accepts (any, by default) and how long that took.
 */
export function startProcess(
  children: ChildProcess[],
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
  ready = (line: string) => line.length > 0,
): Promise<{ child: ChildProcess; line: string; ms: number }> {
  const t0 = performance.now();
  const child = spawn(command, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  let stderr = "";
  child.stderr!.on("data", (chunk) => (stderr += chunk));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${args.join(" ")}: not ready in 30 s ${stderr}`)), 30000);
    const lines = createInterface({ input: child.stdout! });
    lines.on("line", (line) => {
      if (!ready(line)) return;
      clearTimeout(timer);
      lines.removeAllListeners("line");
      resolve({ child, line, ms: performance.now() - t0 });
    });
    child.once("exit", (code) => reject(new Error(`${args.join(" ")} exited (${code}): ${stderr}`)));
  });
}
