// A lean relay in Node, to set labc's router against (W7, issue 31): what passing calls on costs
// when nothing else is done. The shared harness's raw frames (u32 length, u32 id, JSON) from
// callers to one raw echo server and back, ids mapped through a ring of slots, each frame passed
// on as a view of the chunk it came in with its id rewritten in place (one view and one write()
// per frame, the writes of one chunk corked into one writev). Nothing is checked, nothing times
// out, nothing is cancelled, no destination is read: a real router does all of that on top.
// (Not the very least: the run of whole frames of a chunk could leave as one view.)
// Run by bench/relay-floor.sh. Usage: node bench/relay-floor.mjs LISTEN_PORT SERVER_PORT
import net from "node:net";

const [listenPort, serverPort] = process.argv.slice(2).map(Number);
const SLOTS = 0x10000; // ids in flight at once, far more than the 100 measured
const callerIds = new Uint32Array(SLOTS);
/** The caller's socket of each slot. */
const callers = new Array(SLOTS);
let nextId = 1;

/** Calls `onFrame(chunk, offset, size)` for each whole frame; keeps a partial one for the next chunk. */
function framer(onFrame) {
  let partial = null;
  return (chunk) => {
    if (partial) {
      chunk = Buffer.concat([partial, chunk]);
      partial = null;
    }
    let offset = 0;
    while (chunk.length - offset >= 8) {
      const size = 8 + chunk.readUInt32BE(offset);
      if (chunk.length - offset < size) break;
      onFrame(chunk, offset, size);
      offset += size;
    }
    if (offset < chunk.length) partial = chunk.subarray(offset);
  };
}

const upstream = net.connect({ host: "127.0.0.1", port: serverPort });
upstream.setNoDelay(true);
upstream.on("error", (error) => {
  console.error(`relay-floor: the server at port ${serverPort}: ${error.message}`);
  process.exit(1);
});
const corked = [];
const answers = framer((chunk, offset, size) => {
  const slot = chunk.readUInt32BE(offset + 4) % SLOTS;
  const caller = callers[slot];
  callers[slot] = undefined;
  chunk.writeUInt32BE(callerIds[slot], offset + 4);
  if (!caller.writableCorked) {
    caller.cork();
    corked.push(caller);
  }
  caller.write(chunk.subarray(offset, offset + size));
});
upstream.on("data", (chunk) => {
  answers(chunk);
  for (const caller of corked) caller.uncork();
  corked.length = 0;
});

net
  .createServer((caller) => {
    caller.setNoDelay(true);
    caller.on("error", () => {});
    const requests = framer((chunk, offset, size) => {
      const id = nextId;
      nextId = nextId === 0xffffffff ? 1 : nextId + 1;
      callers[id % SLOTS] = caller;
      callerIds[id % SLOTS] = chunk.readUInt32BE(offset + 4);
      chunk.writeUInt32BE(id, offset + 4);
      upstream.write(chunk.subarray(offset, offset + size));
    });
    caller.on("data", (chunk) => {
      upstream.cork();
      requests(chunk);
      upstream.uncork();
    });
  })
  .listen({ host: "127.0.0.1", port: listenPort }, () => console.log("ready"));
