import { LimitError, type LabcError } from "../errors.js";
import { deadlines, type Deadline } from "./deadline-wheel.js";
import type { Limits } from "../wire/limits.js";
import type { Transport } from "./transport.js";
import { tripped } from "./trips.js";

/** What the guard watches of its connection. */
export interface Guarded {
  readonly transport: Transport;
  closed(): boolean;
  /** The peer said hello. */
  greeted(): boolean;
  /** No frame is half read. */
  frameIdle(): boolean;
  bytesIn(): number;
  /** Requests from the peer not answered yet. */
  servingCount(): number;
  /** Reading stopped once more (`labc metrics`). */
  countPause(): void;
  /** The connection ends, with why. */
  fail(error: LabcError): void;
}

/**
 * What a connection lets a peer make it hold: a peer that dialed must say hello within
 * `helloTimeoutMs`; a frame begun must be whole within `frameTimeoutMs` (no slowloris); and
 * reading pauses while the peer has `maxInFlight` requests waiting or leaves `maxUnsentBytes`
 * unread, resuming when both are under again. Only the accepting side ever pauses, so two peers
 * can never both wait for the other to read.
 */
export class InboundGuard {
  paused = false;
  private frameDeadline: Deadline | null = null;
  /** The frame being read had its clock started again once (see frameTimedOut). */
  private frameExtended = false;
  private helloDeadline: Deadline | null = null;

  constructor(
    private readonly connection: Guarded,
    private readonly limits: Limits,
    accepted: boolean,
  ) {
    if (accepted) {
      this.helloDeadline = deadlines.add(limits.helloTimeoutMs, () => {
        this.helloDeadline = null;
        afterWaitingReads(() => {
          if (!connection.greeted()) connection.fail(new LimitError("hello_timeout", `no hello within ${limits.helloTimeoutMs} ms`));
        });
      });
    }
  }

  /** The hello came: the peer no longer counts as one that may be a flood (listenTcp). */
  helloCame(): void {
    this.stopHelloClock();
    this.connection.transport.vouch?.();
  }

  private stopHelloClock(): void {
    if (this.helloDeadline) deadlines.cancel(this.helloDeadline);
    this.helloDeadline = null;
  }

  /** A chunk was read: a frame left half read starts its clock, a whole one stops it. */
  read(): void {
    if (this.connection.frameIdle()) {
      if (this.frameDeadline) this.stopFrameClock();
      this.frameExtended = false;
    } else if (!this.frameDeadline && !this.paused && !this.connection.closed()) {
      this.frameDeadline = deadlines.add(this.limits.frameTimeoutMs, this.frameTimedOut);
    }
  }

  /** Pauses or resumes reading, by what the peer has waiting and leaves unread. */
  flow(): void {
    const { connection } = this;
    const { maxInFlight, maxUnsentBytes } = this.limits;
    const busy = connection.servingCount() >= maxInFlight;
    const full = connection.transport.queuedBytes >= maxUnsentBytes;
    if (busy || full) {
      // Told when what the peer leaves unread has left (Connection's `drained` asks again).
      if (full) connection.transport.wantDrain?.();
      if (this.paused) return;
      this.paused = true;
      connection.countPause();
      connection.transport.pause();
      // Its own slowness: a frame arriving now must not time out while we do not read it.
      this.stopFrameClock();
      const why = busy ? `${connection.servingCount()} requests waiting for their answers` : `${connection.transport.queuedBytes} bytes unread`;
      tripped(busy ? "in_flight" : "unsent", connection.transport.remote, `${why}; not reading from it until that goes down`, true);
    } else if (this.paused) {
      this.paused = false;
      connection.transport.resume();
      if (!connection.frameIdle()) this.frameDeadline = deadlines.add(this.limits.frameTimeoutMs, this.frameTimedOut);
    }
  }

  /** The connection closed. */
  stop(): void {
    this.stopFrameClock();
    this.stopHelloClock();
  }

  private readonly frameTimedOut = () => {
    const { connection } = this;
    this.frameDeadline = null;
    const bytesIn = connection.bytesIn();
    afterWaitingReads(() => {
      if (connection.closed() || this.paused || connection.frameIdle() || this.frameDeadline) return;
      // Bytes of it were waiting to be read (this process was the slow one): its clock starts
      // again, once per frame, so that a peer trickling bytes still cannot hold it open.
      if (connection.bytesIn() > bytesIn && !this.frameExtended) {
        this.frameExtended = true;
        this.frameDeadline = deadlines.add(this.limits.frameTimeoutMs, this.frameTimedOut);
        return;
      }
      connection.fail(new LimitError("frame_timeout", `a frame still incomplete ${this.limits.frameTimeoutMs} ms after its first byte`));
    });
  };

  private stopFrameClock(): void {
    if (this.frameDeadline) deadlines.cancel(this.frameDeadline);
    this.frameDeadline = null;
  }
}

/**
 * Runs a timeout's verdict after the reads waiting in the kernel. After a stall of this process
 * (a machine too busy to run it for a while), Node runs due timers before it reads the sockets:
 * a hello or the rest of a frame that came meanwhile would count as missing. A check callback
 * runs after the reads of this turn of the event loop.
 */
function afterWaitingReads(verdict: () => void): void {
  setImmediate(verdict);
}
