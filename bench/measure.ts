/** Measuring loops and statistics shared by the benchmarks. Every loop is bounded in count and time. */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../lib/net/tcp-transport.js";

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
export async function sequential(call: Call, ms: number): Promise<{ perSecond: number; p50: number; p99: number }> {
  const latencies: number[] = [];
  const end = performance.now() + ms;
  while (performance.now() < end && latencies.length < MAX_CALLS) {
    const t0 = performance.now();
    await call();
    latencies.push(performance.now() - t0);
  }
  latencies.sort((a, b) => a - b);
  const total = latencies.reduce((sum, value) => sum + value, 0);
  return {
    perSecond: latencies.length / (total / 1000),
    p50: latencies[Math.floor(latencies.length * 0.5)]! * 1000,
    p99: latencies[Math.floor(latencies.length * 0.99)]! * 1000,
  };
}

/** `inFlight` calls kept going for `ms`: calls/s. */
export async function concurrent(call: Call, inFlight: number, ms: number): Promise<number> {
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
  return done / ((performance.now() - t0) / 1000);
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
    LABC_ROUTER_PORT: String(rootPort),
    LABC_ROUTER_LINGER: "1",
    LABC_DISCOVERY_ENABLED: "false",
    NODE_DEBUG: "",
  };
  return { dir, rootPort, env };
}
