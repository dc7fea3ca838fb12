import * as labc from "labc";
import { register } from "labc";

// W13: a process that calls, with a hook that does nothing (BENCH_CALLER_HOOK=1) or without,
// for what hooks cost the calling side. The benchmark's own process must have no hook: it would
// run for every system measured there.
if (process.env.BENCH_CALLER_HOOK === "1") labc.addHook({ before() {}, after() {}, failed() {} });

export class BenchCaller {
  /** `count` calls of `echo`, `inFlight` at once: calls per second, and this process's CPU time per call in µs. */
  @register({ name: process.env.BENCH_CALLER_NAME ?? "benchCalls" })
  async benchCalls(count: number, inFlight: number) {
    const started = performance.now();
    const cpu = process.cpuUsage();
    let sent = 0;
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        while (sent++ < count) await labc.call("echo", "hello");
      }),
    );
    const used = process.cpuUsage(cpu);
    return { perSecond: count / ((performance.now() - started) / 1000), cpuUs: (used.user + used.system) / count };
  }
}
