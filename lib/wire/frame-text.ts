import { requestTail } from "./codec.js";
import { MESSAGE_HEADER_BYTES } from "./frame-decoder.js";
import { DEFAULT_LIMITS, type Limits } from "./limits.js";
import { Kind } from "./message.js";
import { Pieces } from "./pieces.js";
import { isPlain } from "./values.js";

// The hot frames (publications, requests, replies) as latin1 text: the same bytes as codec.ts's
// encoders make, when every one of them is ASCII. A transport joins the texts of a tick and makes
// them bytes in one pass (TcpTransport.writeText): a buffer per frame (allocation, header, copy,
// then the tick's concat) cost about twice the JSON.stringify of a small frame's arguments.
// Undefined for anything else (other characters, binary parts, values beyond JSON, a value that
// cannot travel, a frame over the size limit), which codec.ts then makes, or refuses with the
// error that says why.

/**
 * A publication's frame, the same bytes as `encodePublication(topic, args, limits)` (no queue
 * groups), or undefined.
 */
export function publicationText(topic: string, args: unknown[], limits: Limits = DEFAULT_LIMITS): string | undefined {
  return frameText(Kind.pub, 0, PUBLICATION_HEADS.get(topic), args, "}", limits);
}

/**
 * A request's frame, the same bytes as `encodeRequest(id, fn, args, timeoutMs, limits,
 * undefined, 0, target)`, or undefined; always for one with a trace or flags (few, and made as
 * buffers).
 */
export function requestText(
  id: number,
  fn: string,
  args: unknown[],
  timeoutMs: number | undefined,
  limits: Limits = DEFAULT_LIMITS,
  trace?: string,
  flags = 0,
  target?: string,
): string | undefined {
  if (trace !== undefined || flags !== 0) return undefined;
  const tail = REQUEST_TAILS.get(timeoutMs);
  if (target === undefined) return frameText(Kind.req, id, REQUEST_HEADS.get(fn), args, tail, limits);
  const targetText = TARGETS.get(target);
  return targetText === null ? undefined : frameText(Kind.req, id, REQUEST_HEADS.get(fn), args, targetText + tail, limits);
}

/** A reply's frame, the same bytes as `encodeReply(id, value, limits)`, or undefined. */
export function replyText(id: number, value: unknown, limits: Limits = DEFAULT_LIMITS): string | undefined {
  // What JSON leaves out (undefined) leaves `v` out: codec.ts writes that body.
  if (value === undefined) return undefined;
  return frameText(Kind.rep, id, `{"v":`, value, "}", limits);
}

/** Text `{"name":...,"args":` for a name, or null when it is not all ASCII. */
const asciiHead = (key: string) => (name: string) => {
  const head = `{"${key}":${JSON.stringify(name)},"args":`;
  return isAscii(head) ? head : null;
};
const PUBLICATION_HEADS = new Pieces<string, string | null>(asciiHead("topic"));
const REQUEST_HEADS = new Pieces<string, string | null>(asciiHead("fn"));
const REQUEST_TAILS = new Pieces<number | undefined, string>((ms) => requestTail(ms));
/** `,"target":"id"` (a request sent by way of the routers), or null when not all ASCII. */
const TARGETS = new Pieces<string, string | null>((target) => {
  const text = `,"target":${JSON.stringify(target)}`;
  return isAscii(text) ? text : null;
});

/**
 * The length prefix with the kind, flags and part count (no parts), by kind and body length;
 * and the body length alone. Only the request id between them varies from frame to frame.
 */
const STARTS = new Pieces<number, string>((key) => latin1([...u32(MESSAGE_HEADER_BYTES + Math.floor(key / 32)), key % 32, 0, 0, 0]));
const LENGTHS = new Pieces<number, string>((jsonBytes) => latin1(u32(jsonBytes)));

function frameText(kind: Kind, id: number, head: string | null, value: unknown, tail: string, limits: Limits): string | undefined {
  if (head === null || !isPlain(value, 1, limits)) return undefined;
  let middle: string | undefined;
  try {
    middle = JSON.stringify(value);
  } catch {
    return undefined;
  }
  // Nothing (a toJSON that gives undefined): codec.ts writes that body, without `v`.
  if (middle === undefined || !isAscii(middle)) return undefined;
  const jsonBytes = head.length + middle.length + tail.length;
  if (MESSAGE_HEADER_BYTES + jsonBytes > limits.maxFrameBytes) return undefined;
  const ids = id === 0 ? "\0\0\0\0" : String.fromCharCode(id >>> 24, (id >>> 16) & 0xff, (id >>> 8) & 0xff, id & 0xff);
  return STARTS.get(jsonBytes * 32 + kind) + ids + LENGTHS.get(jsonBytes) + head + middle + tail;
}

/** JSON.stringify escapes lone surrogates: a text of as many bytes as characters is ASCII. */
function isAscii(text: string): boolean {
  return Buffer.byteLength(text) === text.length;
}

function u32(value: number): number[] {
  return [value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff];
}

function latin1(bytes: number[]): string {
  return String.fromCharCode(...bytes);
}
