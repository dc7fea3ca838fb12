import { LimitError } from "../errors.js";
import type { ConnectionMetrics } from "../metrics.js";
import type { Limits } from "../wire/limits.js";
import type { Transport } from "./transport.js";
import type { Frame } from "../wire/frame-text.js";
import { tripped } from "./trips.js";

export type { Frame };

/** What crossed a connection, for `labc metrics`. */
export type Traffic = Omit<ConnectionMetrics, "peer">;

/**
 * What a connection sends, and what a peer that does not read costs: past `maxUnsentBytes`
 * queued the link is congested (an awaiting sender waits for `drain`); a publication that
 * would pass `maxQueuedBytes` is not sent; anything else that passes it ends the connection.
 */
export class Outbox {
  /**
   * What every sender waiting for `drain` shares until the link is no longer congested: one
   * promise, not one each. A publisher that does not await its publications asks once per
   * publication, and a promise each, kept until the peer has read megabytes, outlived the young
   * collections: over a Unix socket a third of such a publisher's time went to the collector.
   */
  private waiting: { promise: Promise<void>; done: () => void } | undefined;

  constructor(
    private readonly transport: Transport,
    private readonly limits: Limits,
    private readonly traffic: Traffic,
    /** Past `maxQueuedBytes`: the connection ends with this error. */
    private readonly overflow: (error: LimitError) => void,
  ) {}

  /** `waitedFor`: a request or an answer (see Transport.write). A string is a frame as latin1 text (see Transport.writeText). */
  write(frame: Frame, waitedFor = false): void {
    const { traffic, transport } = this;
    traffic.framesOut++;
    if (typeof frame === "string") {
      traffic.bytesOut += frame.length;
      if (transport.writeText) transport.writeText(frame, waitedFor);
      else transport.write(Buffer.from(frame, "latin1"), waitedFor);
    } else {
      if (Buffer.isBuffer(frame)) traffic.bytesOut += frame.length;
      else for (const part of frame) traffic.bytesOut += part.length;
      transport.write(frame, waitedFor);
    }
    if (transport.queuedBytes > this.limits.maxQueuedBytes) {
      this.overflow(new LimitError("queued", `over ${this.limits.maxQueuedBytes} bytes queued that the peer does not read`));
    }
  }

  /**
   * Queues a publication unless the peer already leaves so much unread that it would pass
   * `maxQueuedBytes`: then it is not sent (false), logged as a `queued` trip naming `label`.
   */
  publish(frame: Frame, label: string): boolean {
    const queued = this.transport.queuedBytes;
    if (queued + (Array.isArray(frame) ? byteLength(frame) : frame.length) > this.limits.maxQueuedBytes) {
      tripped("queued", this.transport.remote, `${queued} bytes queued that it does not read: a publication was not sent to ${label}; await publish() to be slowed down instead`);
      return false;
    }
    this.write(frame);
    return true;
  }

  /** More is queued for the peer than it reads: a sender should wait for `drain()`. */
  get congested(): boolean {
    return this.transport.queuedBytes >= this.limits.maxUnsentBytes;
  }

  /** Resolves once what is queued is under `maxUnsentBytes` again (or `release`). */
  drain(): Promise<void> {
    if (!this.congested) return Promise.resolve();
    this.traffic.writeWaits++;
    this.transport.wantDrain?.();
    if (!this.waiting) {
      let done!: () => void;
      const promise = new Promise<void>((resolve) => (done = resolve));
      this.waiting = { promise, done };
    }
    return this.waiting.promise;
  }

  /** The transport wrote some of its queue. */
  drained(): void {
    if (!this.waiting) return;
    if (!this.congested) this.release();
    else this.transport.wantDrain?.();
  }

  /** Everyone waiting for `drain` goes on: the link is no longer congested, or it closed. */
  release(): void {
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.done();
  }
}

function byteLength(parts: Buffer[]): number {
  let total = 0;
  for (const part of parts) total += part.length;
  return total;
}
