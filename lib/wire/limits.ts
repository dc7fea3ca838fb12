import { ByteBudget } from "./byte-budget.js";

/**
 * Every limit a connection enforces, in one place. Each bounds what a hostile or careless peer
 * can cost this process; docs/reliability.md says what trips each one and what the peer sees.
 */
export interface Limits {
  /** Largest frame accepted, checked against the declared length before anything is buffered,
   * so a peer cannot make us allocate more than this for one message. */
  maxFrameBytes: number;
  /** Deepest nesting of arrays and objects scanned for binary data; a cyclic or absurdly deep
   * value fails with a clear error instead of overflowing the stack. */
  maxDepth: number;
  /** Most binary parts in one message; each costs a path and a length to check. */
  maxBlobs: number;
  /** Bytes held in frames that are still arriving, all connections of a runtime together:
   * many peers each sending most of a large frame cannot add up past it. */
  partialFrames: ByteBudget;
  /** Requests a peer may have waiting for their answers on one connection; past it we stop
   * reading from that peer, so its own socket fills and it slows down. */
  maxInFlight: number;
  /** Bytes queued for a peer that reads slowly; past it we stop reading from that peer until
   * they drain (a client that sends requests and never reads the answers). */
  maxUnsentBytes: number;
  /** Bytes queued for a peer past which it is dropped: one that never reads would otherwise
   * hold any amount of our memory with what we owe it (notices, publications). */
  maxQueuedBytes: number;
  /** A frame must arrive whole this long after its first byte (a peer trickling bytes). */
  frameTimeoutMs: number;
  /** An accepted connection must say hello this soon (a peer that connects and waits). */
  helloTimeoutMs: number;
  /** Connections accepted from one address at once (a peer opening sockets in a loop). */
  maxConnectionsPerAddress: number;
}

const MiB = 1024 * 1024;

export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  maxFrameBytes: 64 * MiB,
  maxDepth: 512,
  maxBlobs: 65535,
  partialFrames: new ByteBudget(128 * MiB),
  maxInFlight: 1024,
  maxUnsentBytes: 8 * MiB,
  maxQueuedBytes: 256 * MiB,
  frameTimeoutMs: 30_000,
  helloTimeoutMs: 10_000,
  maxConnectionsPerAddress: 1000,
});
