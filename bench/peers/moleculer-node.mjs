// A Moleculer node for the benchmark: `echo.echo` action, `bench.tick` event counter and
// `count` action ([count, when the last event arrived]). Argv: nodeID, its port, then the other nodes as "host:port/nodeID".
import moleculer from "moleculer";

const [nodeID, port, ...others] = process.argv.slice(2);
let received = 0;
let lastAt = 0;
const broker = new moleculer.ServiceBroker({
  nodeID,
  logger: false,
  transporter: {
    type: "TCP",
    // maxPacketSize: the 1 MiB JSON workload needs more than the default 1 MB.
    options: { udpDiscovery: false, port: Number(port), urls: others, maxPacketSize: 64 * 1024 * 1024 },
  },
});
broker.createService({
  name: nodeID.startsWith("sub") ? nodeID : "echo",
  actions: nodeID.startsWith("sub")
    ? { count: () => [received, lastAt] }
    : { echo: (ctx) => ctx.params.v },
  events: {
    "bench.tick": () => {
      received++;
      lastAt = performance.timeOrigin + performance.now();
    },
  },
});
await broker.start();
process.stdout.write("ready\n");
process.on("SIGTERM", () => broker.stop().then(() => process.exit(0)));
