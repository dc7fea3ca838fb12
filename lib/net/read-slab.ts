/** A dialed socket's reading slab, and the least of it a read is given (the rest is left). */
const SLAB_BYTES = 64 * 1024;
const SLAB_MIN_READ = 16 * 1024;

/**
 * Where a dialed socket reads: consecutive stretches of one slab, a new slab once too little of
 * it is left. Node's `onread` then hands each read over directly, without the readable stream's
 * machinery and a fresh buffer per read: 5-7 % of a lone call's round trip (docs/performance.md).
 * A slab is never written twice, so views of a read (frames relayed later) stay valid; what the
 * user keeps of it is copied first (FrameDecoder's `lent`), so it does not hold a slab alive.
 */
export class ReadSlab {
  private slab = Buffer.allocUnsafe(SLAB_BYTES);
  private at = 0;
  /** Reads that came before `start` gave a receiver. */
  private early: Buffer[] | null = [];
  private receiver: ((chunk: Buffer) => void) | null = null;

  readonly options = {
    buffer: (): Buffer => {
      if (SLAB_BYTES - this.at < SLAB_MIN_READ) {
        this.slab = Buffer.allocUnsafe(SLAB_BYTES);
        this.at = 0;
      }
      return this.slab.subarray(this.at);
    },
    // true: reading goes on; the connection stops it itself (`pause`) when it must.
    callback: (bytes: number, into: Uint8Array): boolean => {
      const chunk = Buffer.from(into.buffer, into.byteOffset, bytes);
      this.at += bytes;
      if (this.receiver) this.receiver(chunk);
      else this.early?.push(chunk);
      return true;
    },
  };

  /**
   * Takes reads back from a receiver that read the start of the stream (a link's local proof),
   * with `rest`, what came after its part: the next `deliverTo` gets that first.
   */
  takeBack(rest: Buffer): void {
    this.receiver = null;
    this.early = rest.length > 0 ? [rest] : [];
  }

  deliverTo(receiver: (chunk: Buffer) => void): void {
    this.receiver = receiver;
    const early = this.early ?? [];
    this.early = null;
    for (const chunk of early) receiver(chunk);
  }
}
