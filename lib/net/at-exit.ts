import { writeSync } from "node:fs";

/** Something holding frames it promised would leave: it hands them over when the process exits. */
export interface HandsOverAtExit {
  /** Hands over synchronously what it promised, waiting for a full peer until `until` (ms since the epoch). */
  handOverAtExit(until: number): void;
}

/** How long the exit hook waits, for all of them together, for peers that do not take what was promised. */
const EXIT_WAIT_MS = 2000;

const promisedAtExit = new Set<HandsOverAtExit>();
let exitHooked = false;

/**
 * `transport` promised that what it holds leaves even if the process exits before its flush
 * (TcpTransport.committed): on the process's "exit" event, where nothing asynchronous runs any
 * more, it is asked to hand it over synchronously.
 */
export function promiseAtExit(transport: HandsOverAtExit): void {
  promisedAtExit.add(transport);
  if (exitHooked) return;
  exitHooked = true;
  process.on("exit", () => {
    const until = Date.now() + EXIT_WAIT_MS;
    for (const promised of promisedAtExit) {
      try {
        promised.handOverAtExit(until);
      } catch {
        // One that cannot must not keep the others, or the process's later exit listeners, from theirs.
      }
    }
    promisedAtExit.clear();
  });
}

/** What it promised is with the system. */
export function keptPromise(transport: HandsOverAtExit): void {
  promisedAtExit.delete(transport);
}

/** Writes all of `bytes` to a non-blocking descriptor, sleeping briefly while it is full, until `until`. */
export function writeAllSync(fd: number, bytes: Buffer, until: number): void {
  let offset = 0;
  let nap: Int32Array | undefined;
  while (offset < bytes.length) {
    try {
      offset += writeSync(fd, bytes, offset);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EAGAIN" || Date.now() > until) return;
      Atomics.wait((nap ??= new Int32Array(new SharedArrayBuffer(4))), 0, 0, 1);
    }
  }
}
