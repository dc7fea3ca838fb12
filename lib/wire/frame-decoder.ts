import { FrameTooLargeError, LimitError, MalformedFrameError } from "../errors.js";
import type { ByteBudget } from "./byte-budget.js";

/** Bytes of a frame after its length prefix that every message has (see docs/protocol.md). */
export const MESSAGE_HEADER_BYTES = 12;
/** Where the header says how many binary parts follow the JSON body (u16). */
const BLOB_COUNT_AT = 2;

/**
 * Splits a byte stream into frames: a u32 big-endian length, then that many bytes. Fed chunks
 * as they arrive, whatever their boundaries. A frame that lies whole inside a chunk is handed
 * out as a view of it (no copy); one that spans chunks is copied once into a buffer of its
 * declared size, allocated only after that size passed the limit and was taken from the budget
 * shared with the other connections (given back when the frame is complete, or on `release`).
 *
 * A failure is terminal: the decoder throws once and refuses every later chunk, since the
 * stream can no longer be trusted to be aligned on frames.
 */
export class FrameDecoder {
  private readonly prefix = Buffer.alloc(4);
  private prefixFilled = 0;
  private body: Buffer | null = null;
  private bodyFilled = 0;
  private failed: Error | null = null;

  constructor(
    private readonly maxFrameBytes: number,
    private readonly budget?: ByteBudget,
    /**
     * The chunks are views of a buffer that outlives them (a dialed socket's read slab): a frame
     * with binary parts, which the receiver may keep as long as it likes, is copied out of it.
     */
    private readonly lent = false,
  ) {}

  push(chunk: Buffer, onFrame: (frame: Buffer) => void): void {
    if (this.failed) throw this.failed;
    try {
      this.consume(chunk, onFrame);
    } catch (error) {
      this.failed = error as Error;
      throw error;
    }
  }

  /** True when no partial frame is held. */
  get idle(): boolean {
    return this.body === null && this.prefixFilled === 0;
  }

  /** The stream ended: a partial frame gives its bytes back to the budget. */
  release(): void {
    if (this.body) this.budget?.give(this.body.length);
    this.body = null;
  }

  private consume(chunk: Buffer, onFrame: (frame: Buffer) => void): void {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.body !== null) {
        const n = Math.min(this.body.length - this.bodyFilled, chunk.length - offset);
        chunk.copy(this.body, this.bodyFilled, offset, offset + n);
        this.bodyFilled += n;
        offset += n;
        if (this.bodyFilled === this.body.length) {
          const frame = this.body;
          this.body = null;
          this.budget?.give(frame.length);
          onFrame(frame);
        }
        continue;
      }
      let length: number;
      if (this.prefixFilled === 0 && chunk.length - offset >= 4) {
        // By hand: readUInt32BE checks the bounds just checked, at a cost small frames notice.
        length = chunk[offset]! * 0x1000000 + ((chunk[offset + 1]! << 16) | (chunk[offset + 2]! << 8) | chunk[offset + 3]!);
        offset += 4;
      } else {
        const n = Math.min(4 - this.prefixFilled, chunk.length - offset);
        chunk.copy(this.prefix, this.prefixFilled, offset, offset + n);
        this.prefixFilled += n;
        offset += n;
        if (this.prefixFilled < 4) return;
        this.prefixFilled = 0;
        length = this.prefix.readUInt32BE(0);
      }
      if (length > this.maxFrameBytes) throw new FrameTooLargeError(length, this.maxFrameBytes);
      if (length < MESSAGE_HEADER_BYTES) {
        throw new MalformedFrameError(`declared length ${length} is shorter than a message header`);
      }
      if (chunk.length - offset >= length) {
        const frame = chunk.subarray(offset, offset + length);
        onFrame(this.lent && frame.readUInt16BE(BLOB_COUNT_AT) !== 0 ? Buffer.from(frame) : frame);
        offset += length;
      } else {
        if (this.budget && !this.budget.take(length)) {
          throw new LimitError(
            "partial_frames",
            `a frame of ${length} bytes would pass the ${this.budget.limit} bytes all partial frames may hold`,
          );
        }
        this.body = Buffer.allocUnsafe(length);
        this.bodyFilled = 0;
      }
    }
  }
}
