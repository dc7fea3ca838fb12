import net from "node:net";
import { rawFrame, rawReader } from "./raw-protocol.js";

// The baseline's server: answers every request with its first argument. Prints its port.
const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  socket.on("data", rawReader((id, body) => socket.write(rawFrame(id, { v: body.args[0] }))));
  socket.on("error", () => {});
});
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`${(server.address() as net.AddressInfo).port}\n`);
});
