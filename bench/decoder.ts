/**
 * The frame decoder alone: frames/s when TCP hands them over coalesced (many per chunk) and
 * split (each frame in three chunks), for small requests.
 */
import { encodeMessage } from "../lib/wire/codec.js";
import { FrameDecoder } from "../lib/wire/frame-decoder.js";
import { Kind } from "../lib/wire/message.js";

const quick = process.argv.includes("--quick");
const frame = encodeMessage(Kind.req, 7, { fn: "echo", args: ["hello"] }) as Buffer;
const coalesced = Buffer.concat(Array.from({ length: 1000 }, () => frame));
const third = Math.floor(frame.length / 3);
const split = [frame.subarray(0, third), frame.subarray(third, 2 * third), frame.subarray(2 * third)];

function rate(feed: (decoder: FrameDecoder, onFrame: () => void) => number): number {
  const decoder = new FrameDecoder(64 * 1024 * 1024);
  let frames = 0;
  const onFrame = () => void frames++;
  const end = performance.now() + (quick ? 100 : 1000);
  const t0 = performance.now();
  while (performance.now() < end) feed(decoder, onFrame);
  return frames / ((performance.now() - t0) / 1000);
}

const together = rate((decoder, onFrame) => (decoder.push(coalesced, onFrame), 1000));
const apart = rate((decoder, onFrame) => {
  for (let i = 0; i < 1000; i++) for (const part of split) decoder.push(part, onFrame);
  return 1000;
});
console.log(
  `decoder: ${(together / 1e6).toFixed(2)} M frames/s coalesced (1000 per chunk), ` +
    `${(apart / 1e6).toFixed(2)} M frames/s split (3 chunks per frame); ${frame.length}-byte requests`,
);
