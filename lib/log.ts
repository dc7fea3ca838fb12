import { debuglog } from "node:util";

const labcLog = debuglog("labc");

/** Whether `NODE_DEBUG=labc` is set: hot paths test it before building a debug line. */
export const debugging = labcLog.enabled;

/** Wire-level diagnostics: `NODE_DEBUG=labc` prints what is connected, sent and refused. Node's
 * own logger costs a call through rest arguments even when off, so off it is a bare no-op. */
export const debug: (format: string, ...args: unknown[]) => void = debugging ? labcLog : () => {};

/** Something went wrong that nobody awaits (a peer sent garbage, a subscriber threw). */
export function warn(message: string): void {
  process.stderr.write(`labc[${process.pid}]: ${message}\n`);
}
