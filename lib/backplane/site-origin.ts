import type { Msg } from "@nats-io/transport-node";
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
 */
export function siteOrigin(msg: Msg): Origin {
  let call: { credit?: (n: number) => void } | undefined;
  return {
    fromOwnHost: false,
    reply: (_id, value) => msg.respond(bare(encodeReply(0, value))),
    replyWith: (_id, answer) => msg.respond(answer),
    replyError: (_id, error) => msg.respond(bare(encodeMessage(Kind.exc, 0, errorToPayload(error, false)))),
    track: (_id, tracked) => void (call = tracked as typeof call),
    passItem: (_id, item) => {
      msg.respond(item);
      call?.credit?.(1);
    },
  };
}

/** A frame without its length prefix, as NATS carries it (its message has a length). */
function bare(frame: Buffer | Buffer[]): Buffer {
  return (Array.isArray(frame) ? Buffer.concat(frame) : frame).subarray(4);
}
