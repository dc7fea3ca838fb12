/**
 * A byte pipe to one peer. Connections, the router and the pool talk only to this; `node:net`
 * lives in tcp-transport.ts alone.
 */
export interface Transport {
  /** The peer's address, for messages and logs ("127.0.0.1:40123"). */
  readonly remote: string;
  /** Queues bytes; writes made in one tick leave together. */
  write(data: Buffer | Buffer[]): void;
  /** Closes the pipe; the receiver's `onClose` runs once. */
  close(): void;
  /** Starts delivery. `onClose` runs once, with the error that ended the pipe, if any. */
  start(onData: (chunk: Buffer) => void, onClose: (error?: Error) => void): void;
  /** Whether this pipe alone keeps the process alive. */
  ref(): void;
  unref(): void;
}

export interface Listener {
  readonly port: number;
  close(): Promise<void>;
}

/** Errors that only mean "the peer went away": expected, never worth a warning. */
export const IGNORABLE_ERRORS: ReadonlySet<string> = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "EPIPE",
  "ETIMEDOUT",
  "ECONNABORTED",
]);
