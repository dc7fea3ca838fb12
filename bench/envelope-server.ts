import net from "node:net";
import { rawFrame, rawReader } from "./raw-protocol.js";

/**
 * The minimal envelope RPC's server: what any RPC on raw's framing must pay. A request is a
 * JSON envelope `{kind, id, fn, args}` (raw's 8-byte header, its id unused), looked up in a
 * function table and run in a promise; the answer is `{kind: "rep", id, v}` or `{kind: "exc",
 * id, message}`. Answers of one read leave in one write, as raw's do. Prints its port.
 */
const functions: Record<string, (...args: unknown[]) => unknown> = Object.assign(Object.create(null), {
  echo: (value: unknown) => value,
});

const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  socket.on("error", () => {});
  const answer = (body: unknown) => {
    // The function's result settles later than the read: its answers leave corked per tick.
    if (!socket.writableCorked) {
      socket.cork();
      process.nextTick(() => socket.uncork());
    }
    socket.write(rawFrame(0, body));
  };
  const read = rawReader((_, { kind, id, fn, args }) => {
    if (kind !== "req") return;
    const run = functions[fn];
    new Promise((resolve) => resolve(run ? run(...args) : Promise.reject(new Error(`no function ${fn}`)))).then(
      (v) => answer({ kind: "rep", id, v }),
      (error: Error) => answer({ kind: "exc", id, message: error.message }),
    );
  });
  socket.on("data", read);
});
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`${(server.address() as net.AddressInfo).port}\n`);
});
