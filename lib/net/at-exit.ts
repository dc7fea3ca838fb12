import { writeSync } from "node:fs";

/** Something holding frames it promised would leave: it hands them over when the process exits. */
export interface HandsOverAtExit {
  handOverAtExit(): void;
}

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
    for (const promised of promisedAtExit) promised.handOverAtExit();
    promisedAtExit.clear();
  });
}

/** Its flush handed over what it promised. */
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
