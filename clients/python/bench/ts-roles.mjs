// The TypeScript halves of the Python benchmark (run.py starts them): a caller of one function and
// a subscriber that counts. The library is this checkout's dist/labc.js (npm run build first).
// node ts-roles.mjs call <fn> w1|w2 <count> <warmup>   -> one JSON line
// node ts-roles.mjs sub <count>                          -> "ready", then one JSON line
import { fileURLToPath } from "node:url";

const labc = await import(fileURLToPath(new URL("../../../dist/labc.js", import.meta.url)));
const [role, ...rest] = process.argv.slice(2);
const print = (value) => process.stdout.write(JSON.stringify(value) + "\n");

if (role === "call") {
  const [fn, workload, countText, warmupText] = rest;
  const count = Number(countText);
  for (let i = 0; i < Number(warmupText); i++) await labc.call(fn, "hello");
  if (workload === "w1") {
    const took = new Float64Array(count);
    for (let i = 0; i < count; i++) {
      const started = process.hrtime.bigint();
      await labc.call(fn, "hello");
      took[i] = Number(process.hrtime.bigint() - started) / 1000;
    }
    took.sort();
    print({ p50: took[Math.floor(count * 0.5)], p99: took[Math.floor(count * 0.99)] });
  } else {
    let sent = 0;
    const started = process.hrtime.bigint();
    await Promise.all(Array.from({ length: 100 }, async () => {
      while (sent++ < count) await labc.call(fn, "hello");
    }));
    print({ perSecond: count / (Number(process.hrtime.bigint() - started) / 1e9) });
  }
  await labc.close();
  process.exit(0);
} else if (role === "sub") {
  const count = Number(rest[0]);
  let got = 0;
  let last = 0n;
  let resolve;
  const done = new Promise((r) => (resolve = r));
  const timer = setTimeout(() => resolve(), 120_000);
  await labc.subscribe((m) => {
    if (m.s < 0) return; // the publisher's probe
    got++;
    if (got === count) {
      last = process.hrtime.bigint();
      resolve();
    }
  }, "bench.msg");
  print("ready");
  await done;
  clearTimeout(timer);
  print({ count: got, lastNs: Number(last) });
  process.exit(0);
}
