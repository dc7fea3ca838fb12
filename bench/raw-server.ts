import net from "node:net";
import { rawFrame, rawFrames, rawReader, writeBinaryFrame } from "./raw-protocol.js";

/**
 * The baseline's server, written as a careful engineer writes raw Node: the answers to the
 * requests of one read go out in one write (corked). `json` (default): answers each request with
 * its first argument, counts publications (frames with id 0) and answers `{"count": true}` with
 * [count, when the last one arrived]. `binary`: sends each frame back as it came (8-byte header,
 * raw bytes). Prints its port.
 */
const binary = process.argv[2] === "binary";
let received = 0;
/** When the last publication arrived (ms since the epoch, sub-millisecond). */
let lastAt = 0;

const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  socket.on("error", () => {});
  const read = binary
    ? rawFrames((id, body) => writeBinaryFrame(socket, id, body))
    : rawReader((id, body) => {
        if (id === 0) {
          received++;
          lastAt = performance.timeOrigin + performance.now();
        } else socket.write(rawFrame(id, { v: body.count ? [received, lastAt] : body.args[0] }));
      });
  socket.on("data", (chunk: Buffer) => {
    socket.cork();
    read(chunk);
    socket.uncork();
  });
});
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`${(server.address() as net.AddressInfo).port}\n`);
});
