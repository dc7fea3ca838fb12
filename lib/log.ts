import { debuglog } from "node:util";

/** Wire-level diagnostics: `NODE_DEBUG=labc` prints what is connected, sent and refused. */
export const debug = debuglog("labc");

/** Something went wrong that nobody awaits (a peer sent garbage, a subscriber threw). */
export function warn(message: string): void {
  process.stderr.write(`labc[${process.pid}]: ${message}\n`);
}
