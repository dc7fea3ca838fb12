import { closeSync, mkdirSync, openSync, writeSync } from "node:fs";
import { dirname } from "node:path";

/**
 * For a service a router started (`labc serve FILE --as NAME`): its stdout and stderr are pipes
 * to that router, which writes them into the service's log file. A service outlives its router
 * (the next router adopts it), and then its pipes are broken: every write after that, and the
 * write that found the pipe broken, goes to the log file itself, which the next router reads.
 * A print never ends the service (the CLI otherwise ends quietly on EPIPE, as `labc subscribe
 * | head` should). Pipes to a process are written synchronously by Node on Linux, so the write
 * that fails is known by its callback, in order with the others.
 */
export function outliveThePipes(logFile: string): void {
  let file: number | undefined;
  const intoLog = (data: Uint8Array): void => {
    try {
      if (file === undefined) {
        mkdirSync(dirname(logFile), { recursive: true });
        file = openSync(logFile, "a");
      }
      writeSync(file, data);
    } catch {
      // No log to write to either: the text is lost, the service goes on.
    }
  };
  process.once("exit", () => file !== undefined && closeSync(file));
  for (const stream of [process.stdout, process.stderr]) {
    let broken = false;
    // Instead of the CLI's handler, which ends the process on EPIPE.
    stream.removeAllListeners("error");
    stream.on("error", () => (broken = true));
    const write = stream.write.bind(stream) as (chunk: Uint8Array, callback: (error?: Error | null) => void) => boolean;
    stream.write = ((chunk: string | Uint8Array, encoding?: unknown, callback?: unknown) => {
      const done = (typeof encoding === "function" ? encoding : callback) as ((error?: Error | null) => void) | undefined;
      const data = typeof chunk === "string" ? Buffer.from(chunk, typeof encoding === "string" ? (encoding as BufferEncoding) : "utf8") : chunk;
      if (broken || stream.destroyed) {
        intoLog(data);
        done?.();
        return true;
      }
      return write(data, (error) => {
        if (error) {
          broken = true;
          intoLog(data);
        }
        done?.();
      });
    }) as typeof stream.write;
  }
}
