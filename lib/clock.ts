/**
 * Milliseconds on a monotonic clock, as `performance.now()` reads it but from another origin: for
 * deadlines and durations inside a process, never for a time shown to users. In Node 20 the first
 * touch of the global `performance` loads all of perf_hooks, about 1 ms of every process's start
 * (each `labc call` the first, issue 31); `process.hrtime` loads nothing and reads as fast
 * (about 50 ns).
 */
export function nowMs(): number {
  const [seconds, nanoseconds] = process.hrtime();
  return seconds * 1e3 + nanoseconds / 1e6;
}
