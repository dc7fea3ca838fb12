import { ConnectionLostError, TimeoutError } from "../errors.js";
import { Kind } from "../wire/message.js";

/** The requests a gateway relayed to other sites, each waiting for its answer. */

/** A request relayed to another site, waiting for its answer. */
export interface Relayed {
  fn: string;
  where: string;
  timeoutMs: number;
  resolve: (answer: Buffer) => void;
  reject: (error: Error) => void;
  onItem: ((item: Buffer) => void) | undefined;
  timer: NodeJS.Timeout | undefined;
}

/**
 * Every answer comes to one subscription of the gateway, told apart by the token ending its
 * reply subject (a nats.js request would build two error objects per call for their stacks).
 */
export class RelayedRequests {
  private lastToken = 0;
  private readonly relayed = new Map<string, Relayed>();

  /** Waits for the answer to `relayed`; returns the token ending its reply subject. */
  add(relayed: Relayed): string {
    const token = (++this.lastToken).toString(36);
    this.relayed.set(token, relayed);
    this.wait(token, relayed);
    return token;
  }

  /** (Again) the time a relayed request may wait for its answer, or its stream's next item. */
  private wait(token: string, relayed: Relayed): void {
    clearTimeout(relayed.timer);
    relayed.timer = setTimeout(() => {
      this.relayed.delete(token);
      relayed.reject(new TimeoutError(relayed.fn, relayed.timeoutMs, relayed.where));
    }, relayed.timeoutMs);
  }

  /** An answer (or a stream's item) to the relayed request of `token`. */
  answered(token: string, data: Uint8Array): void {
    const relayed = this.relayed.get(token);
    if (!relayed) return;
    if (data[0] === Kind.item && relayed.onItem) {
      this.wait(token, relayed);
      return relayed.onItem(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    }
    clearTimeout(relayed.timer);
    this.relayed.delete(token);
    // NATS's "no responders": the site's gateway left without a word, or never was.
    if (data.length === 0) return relayed.reject(new ConnectionLostError(`${relayed.where} (its site's gateway does not answer on NATS)`, relayed.fn));
    try {
      relayed.resolve(answerFrame(data, relayed.fn));
    } catch (error) {
      relayed.reject(error as Error);
    }
  }

  /** NATS is lost: every request waiting fails. */
  lost(): void {
    for (const [token, relayed] of this.relayed) {
      clearTimeout(relayed.timer);
      this.relayed.delete(token);
      relayed.reject(new ConnectionLostError(relayed.where, relayed.fn, new Error("the backplane lost NATS")));
    }
  }
}

function answerFrame(data: Uint8Array, fn: string): Buffer {
  const frame = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (frame.length < 12 || (frame[0] !== Kind.rep && frame[0] !== Kind.exc)) {
    throw new ConnectionLostError("the backplane", fn, new Error("the other site's answer is not a labc answer"));
  }
  return frame;
}
