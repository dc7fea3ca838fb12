import type { Msg } from "@nats-io/transport-node";
import { LimitError } from "../errors.js";
import { debug } from "../log.js";
import { encodeMessage, encodeReply } from "../wire/codec.js";
import { errorToPayload } from "../wire/error-payload.js";
import { Kind } from "../wire/message.js";

/** Who sent a request that came from another site, and how its answer goes back over NATS. */

/** Who sent a request that came over the backplane, as the router's `forward` answers it. */
export interface Origin {
  readonly fromOwnHost: boolean;
  reply(id: number, value: unknown): void;
  replyWith(id: number, answer: Buffer): void;
  replyError(id: number, error: unknown): void;
  track(id: number, call: unknown): void;
  passItem(id: number, item: Buffer): void;
}

/** A request that needs no answer (a publication for one server): nothing goes back. */
export const NOWHERE: Origin = { fromOwnHost: false, reply() {}, replyWith() {}, replyError() {}, track() {}, passItem() {} };

/**
 * Answers a request of another site on its NATS reply subject, a stream's items first. The
 * reader's credit does not cross sites: each item passed on lets the server send one more.
 * Nothing goes out past `maxPayload` (the NATS server's): the caller is told why instead, with
 * an `exc`, and a stream's server is cancelled; after an answer nothing more goes out. These
 * are called from the read of the server's link: they never throw (a NATS connection closed
 * meanwhile leaves the caller to its timeout).
 */
export function siteOrigin(msg: Msg, maxPayload: () => number): Origin {
  let call: { credit?: (n: number) => void; cancel?: () => void } | undefined;
  let answered = false;
  const respond = (bytes: Buffer, last: boolean): boolean => {
    if (answered) return false;
    answered = last;
    const most = maxPayload();
    if (bytes.length > most) {
      answered = true;
      const error = new LimitError("max_payload", `${last ? "an answer" : "a stream's item"} of ${bytes.length} bytes crosses the backplane only up to its NATS server's max_payload (${most} bytes)`);
      send(msg, bare(encodeMessage(Kind.exc, 0, errorToPayload(error, false))));
      if (!last) call?.cancel?.();
      return false;
    }
    return send(msg, bytes);
  };
  return {
    fromOwnHost: false,
    reply: (_id, value) => void respond(bare(encodeReply(0, value)), true),
    replyWith: (_id, answer) => void respond(answer, true),
    replyError: (_id, error) => void respond(bare(encodeMessage(Kind.exc, 0, errorToPayload(error, false))), true),
    track: (_id, tracked) => void (call = tracked as typeof call),
    passItem: (_id, item) => {
      if (respond(item, false)) call?.credit?.(1);
    },
  };
}

/** Sends on the reply subject; false when NATS refused it (closed, draining). */
function send(msg: Msg, bytes: Buffer): boolean {
  try {
    msg.respond(bytes);
    return true;
  } catch (error) {
    debug("an answer to another site was not sent: %s", (error as Error).message);
    return false;
  }
}

/** A frame without its length prefix, as NATS carries it (its message has a length). */
function bare(frame: Buffer | Buffer[]): Buffer {
  return (Array.isArray(frame) ? Buffer.concat(frame) : frame).subarray(4);
}
