// A NATS client process for the benchmark: answers "echo" requests, counts "bench.tick"
// messages and answers "<name>.count" with [count, when the last arrived]. Argv: port, name.
import { connect } from "nats";

const [port, name] = process.argv.slice(2);
const nc = await connect({ servers: `127.0.0.1:${port}` });
let received = 0;
let lastAt = 0;
if (name === "echo") {
  const echo = nc.subscribe("echo");
  (async () => {
    for await (const message of echo) message.respond(message.data);
  })();
} else {
  const ticks = nc.subscribe("bench.tick");
  (async () => {
    for await (const _ of ticks) {
      received++;
      lastAt = performance.timeOrigin + performance.now();
    }
  })();
  const count = nc.subscribe(`${name}.count`);
  (async () => {
    for await (const message of count) message.respond(new TextEncoder().encode(JSON.stringify([received, lastAt])));
  })();
}
await nc.flush();
process.stdout.write("ready\n");
process.on("SIGTERM", () => nc.close().then(() => process.exit(0)));
