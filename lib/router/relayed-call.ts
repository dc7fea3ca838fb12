import { warn } from "../log.js";
import type { Connection } from "../net/connection.js";
import type { Cancellable } from "../net/peer-requests.js";
import type { RelayReceiver } from "../net/requests.js";

/** Where the answer to a relayed request goes back to: the caller's connection, or another site's request (Origin). */
export interface Caller {
  replyWith(id: number, answer: Buffer): void;
  replyError(id: number, error: unknown): void;
  passItem(id: number, item: Buffer): void;
}

/**
 * A caller's request that a router passes on unread to the server's side (`via`), as one object
 * (a router relays every call through it, so no promise and no closures): the answer, and a
 * stream's items, go back to the caller as they came; the caller's cancel and credit go on to
 * the server, under the id the request has there.
 *
 * The answer is passed back from `via`'s read (or its timer): whatever goes wrong on the
 * caller's side is logged here, and never reaches that read, which would blame `via` for it
 * and close the server's link with every other call on it.
 */
export class RelayedCall implements RelayReceiver, Cancellable {
  /** The request's id on `via`, once sent. */
  viaId = 0;

  constructor(
    private readonly caller: Caller,
    /** The request's id on the caller's side. */
    private readonly id: number,
    private readonly via: Connection,
    readonly streamed: boolean,
  ) {}

  item(frame: Buffer): void {
    try {
      this.caller.passItem(this.id, frame);
    } catch (error) {
      this.lost(error);
    }
  }

  answered(frame: Buffer): void {
    try {
      this.caller.replyWith(this.id, frame);
    } catch (error) {
      this.lost(error);
    }
  }

  failed(error: Error): void {
    try {
      this.caller.replyError(this.id, error);
    } catch (passing) {
      this.lost(passing);
    }
  }

  cancel(): void {
    this.via.cancel(this.viaId);
  }

  credit(n: number): void {
    this.via.grant(this.viaId, n);
  }

  private lost(error: unknown): void {
    warn(`an answer relayed from ${this.via.label} could not be passed back to its caller`, error);
  }
}
