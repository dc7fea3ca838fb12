/**
 * A byte pipe to one peer. Connections, the router and the pool talk only to this; `node:net`
 * lives in lib/net's socket files alone (tcp-transport.ts, connect-tcp.ts, listen-tcp.ts,
 * local-sockets.ts).
 */
export interface Transport {
  /** The peer's address, for messages and logs ("127.0.0.1:40123"; "local socket" on a host's Unix socket). */
  readonly remote: string;
  /**
   * Queues bytes; writes made in one tick leave together. `waitedFor`: a request or an answer,
   * which the peer should get before this tick ends when many are written in it (TcpTransport).
   */
  write(data: Buffer | Buffer[], waitedFor?: boolean): void;
  /**
   * Queues a frame given as latin1 text (each character one byte), in order with `write`: the
   * texts of a tick are joined and made bytes once. Absent: the connection makes it a buffer.
   */
  writeText?(text: string, waitedFor?: boolean): void;
  /**
   * Closes the pipe after what was written; the receiver's `onClose` runs once. Resolves once
   * everything written is handed to the system, or after `graceMs` when the peer does not read
   * (then the pipe is cut).
   */
  close(graceMs?: number): Promise<void>;
  /** Starts delivery. `onClose` runs once, with the error that ended the pipe, if any;
   * `onDrain` each time bytes queued for the peer have left. */
  start(onData: (chunk: Buffer) => void, onClose: (error?: Error) => void, onDrain?: () => void): void;
  /**
   * The chunks given to `onData` are views of a buffer that outlives them: what the receiver
   * keeps must be copied out, or it holds all of that buffer alive.
   */
  readonly lendsChunks?: boolean;
  /** Bytes written and not yet handed to the system: what the peer has not read. */
  readonly queuedBytes: number;
  /**
   * Resolves once everything written so far is handed to the system, which delivers it even if
   * this process exits next (`await publish(); process.exit(0)`). Absent: writes leave at once.
   */
  sent?(): Promise<void>;
  /**
   * What a resolved `await publish()` promises: everything written so far leaves even if this
   * process exits next. Undefined when that holds already (TcpTransport: it is with the system,
   * or it is this tick's frames, which an exit hook hands over); else a promise that settles
   * once it holds. Absent: as `sent`.
   */
  committed?(): Promise<void> | undefined;
  /**
   * The peer proved itself (said hello): it no longer counts among its address's connections
   * that have not (listenTcp's `maxPerAddress`).
   */
  vouch?(): void;
  /**
   * Someone waits for `onDrain` (a sender, or reading paused, on what the peer leaves unread):
   * it is called once what is queued now has left. Absent: `onDrain` follows every write.
   */
  wantDrain?(): void;
  /** Stops and resumes delivery: TCP then makes the peer wait. */
  pause(): void;
  resume(): void;
  /** Whether this pipe alone keeps the process alive. */
  ref(): void;
  unref(): void;
}

export interface Listener {
  readonly port: number;
  /** Accepts no new connection; those open stay. */
  refuse(): void;
  /** Stops listening and cuts every connection still open. */
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

/**
 * Undefined once what was written to `transport` leaves even if the process exits next (see
 * Transport.committed); else a promise that settles when it does.
 */
export function committed(transport: Transport): Promise<void> | undefined {
  return transport.committed ? transport.committed() : transport.sent?.();
}
