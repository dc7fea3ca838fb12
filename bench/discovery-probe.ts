/**
 * Runs inside one host of the discovery benchmark: calls `name` until it answers, then prints
 * how many milliseconds passed since `since` (a Date.now() of the benchmark). Bounded: it
 * gives up after `limitMs`.
 */
import { loadConfig } from "../lib/config.js";
import { Runtime } from "../lib/runtime/runtime.js";

const [name, since, limitMs] = [process.argv[2]!, Number(process.argv[3]), Number(process.argv[4] ?? 10000)];
const labc = new Runtime(loadConfig().values);
await labc.admin.ready();
process.stdout.write("ready\n");
const end = Date.now() + limitMs;
let answered = false;
while (!answered && Date.now() < end) {
  try {
    await labc.callWith(name, [], { timeoutMs: 500 });
    answered = true;
  } catch {
    await new Promise((done) => setTimeout(done, 10));
  }
}
process.stdout.write(answered ? `${Date.now() - since}\n` : "timeout\n");
await labc.close();
