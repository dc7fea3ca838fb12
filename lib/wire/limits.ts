/** Every limit the wire enforces, in one place. Each one bounds what a hostile peer can cost us. */
export interface Limits {
  /** Largest frame accepted, checked against the declared length before anything is buffered,
   * so a peer cannot make us allocate more than this for one message. */
  maxFrameBytes: number;
  /** Deepest nesting of arrays and objects scanned for binary data; a cyclic or absurdly deep
   * value fails with a clear error instead of overflowing the stack. */
  maxDepth: number;
  /** Most binary parts in one message; each costs a path and a length to check. */
  maxBlobs: number;
}

export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  maxFrameBytes: 64 * 1024 * 1024,
  maxDepth: 512,
  maxBlobs: 65535,
});
