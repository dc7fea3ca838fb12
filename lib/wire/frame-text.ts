// Node's Buffer by import: the global is a getter (Node 20), 10-15 ns a use on the publish path.
import { Buffer } from "node:buffer";
import { bodyFrame, encodePublication, encodeReply, encodeRequest, requestTail } from "./codec.js";
import { MESSAGE_HEADER_BYTES } from "./frame-decoder.js";
import { DEFAULT_LIMITS, type Limits } from "./limits.js";
import { Kind } from "./message.js";
import { Pieces } from "./pieces.js";
import { isPlain } from "./values.js";

// The hot frames (publications, requests, replies) as latin1 text: the same bytes as codec.ts's
// encoders make, when every one of them is ASCII. A transport joins the texts of a tick and makes
// them bytes in one pass (TcpTransport.writeText): a buffer per frame (allocation, header, copy,
// then the tick's concat) cost about twice the JSON.stringify of a small frame's arguments.
// The `*Frame` functions are what the hot paths call: text, else the buffer made from the same
// JSON (other characters in the arguments), else codec.ts's encoder (binary parts, values
// beyond JSON, names not ASCII, flags), which also says why a value cannot travel or
// a frame is too large. The JSON of a frame that leaves is made once.
// The `*Text` functions give the text alone, or undefined.

/** A frame: one buffer, its parts, or its bytes as latin1 text. */
export type Frame = Buffer | Buffer[] | string;

/** A publication's frame (no queue groups): see above. */
export function publicationFrame(topic: string, args: unknown[], limits: Limits = DEFAULT_LIMITS): Frame {
  return publicationOf(topic, args, limits) ?? encodePublication(topic, args, limits);
}

/** A request's frame: see above. */
export function requestFrame(
  id: number,
  fn: string,
  args: unknown[],
  timeoutMs: number | undefined,
  limits: Limits = DEFAULT_LIMITS,
  trace?: string,
  flags = 0,
  target?: string,
): Frame {
  return requestOf(id, fn, args, timeoutMs, limits, trace, flags, target) ?? encodeRequest(id, fn, args, timeoutMs, limits, trace, flags, target);
}

/** A reply's frame: see above. */
export function replyFrame(id: number, value: unknown, limits: Limits = DEFAULT_LIMITS): Frame {
  return replyOf(id, value, limits) ?? encodeReply(id, value, limits);
}

function requestOf(
  id: number,
  fn: string,
  args: unknown[],
  timeoutMs: number | undefined,
  limits: Limits,
  trace: string | undefined,
  flags: number,
  target: string | undefined,
): string | Buffer | undefined {
  if (flags !== 0) return undefined;
  if (trace !== undefined) {
    // A hooked call's (hooks.ts): its trace id differs from call to call, so no piece is kept.
    const tail = requestTail(timeoutMs, trace, target);
    return isAscii(tail) ? frameOf(Kind.req, id, REQUEST_HEADS.get(fn), args, tail, limits) : undefined;
  }
  const tail = REQUEST_TAILS.get(timeoutMs);
  if (target === undefined) return frameOf(Kind.req, id, REQUEST_HEADS.get(fn), args, tail, limits);
  const targetText = TARGETS.get(target);
  return targetText === null ? undefined : frameOf(Kind.req, id, REQUEST_HEADS.get(fn), args, targetText + tail, limits);
}

/**
 * A publication of one argument (the rule) is that argument's JSON between two pieces kept for
 * its topic: the text before it (length prefix, header, `{"topic":...,"args":[`) by the body's
 * length, and `]}`. The array's JSON and four joins each cost more than the rest of a small
 * publication's framing. The same bytes as the array's JSON: but for a value with `toJSON`,
 * which is told its key ("0" in the array), that goes the array's way.
 */
function publicationOf(topic: string, args: unknown[], limits: Limits): string | Buffer | undefined {
  const value = args.length === 1 ? args[0] : undefined;
  const prefixes = value === undefined ? null : PUBLICATION_PREFIXES.get(topic);
  // The array's own depth (1) is checked here: isPlain checks depth only for objects.
  if (value === undefined || prefixes === null || limits.maxDepth < 1 || !isPlain(value, 2, limits, true) || hasToJson(value)) {
    return frameOf(Kind.pub, 0, PUBLICATION_HEADS.get(topic), args, "}", limits);
  }
  const middle = json(value);
  return middle === undefined ? undefined : joined(Kind.pub, 0, prefixes.head, middle, "]}", limits, prefixes);
}

/** Whether `value` has a toJSON; true, so that the array's way says what is wrong, when looking throws (a Proxy). */
function hasToJson(value: unknown): boolean {
  try {
    return typeof value === "object" && value !== null && typeof (value as { toJSON?: unknown }).toJSON === "function";
  } catch {
    return true;
  }
}

function replyOf(id: number, value: unknown, limits: Limits): string | Buffer | undefined {
  // What JSON leaves out (undefined) leaves `v` out: codec.ts writes that body.
  if (value === undefined) return undefined;
  return frameOf(Kind.rep, id, `{"v":`, value, "}", limits);
}

/** Text `{"name":...,"args":` for a name, or null when it is not all ASCII. */
const asciiHead = (key: string) => (name: string) => {
  const head = `{"${key}":${JSON.stringify(name)},"args":`;
  return isAscii(head) ? head : null;
};
const PUBLICATION_HEADS = new Pieces<string, string | null>(asciiHead("topic"));
/** Fewer topics and lengths kept than other pieces: their product is what stays (about 2 MiB at most). */
const PUBLICATION_PREFIXES = new Pieces<string, Prefixes | null>((topic) => {
  const head = PUBLICATION_HEADS.get(topic);
  return head === null ? null : new Prefixes(Kind.pub, head + "[");
}, 256);
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

/**
 * The frame as text when all of it is ASCII; as a buffer made from the same JSON when only the
 * middle is not; undefined when codec.ts's encoder must make it (see above), decided before any
 * JSON is made but for a frame over the size limit, which that encoder refuses.
 */
function frameOf(kind: Kind, id: number, head: string | null, value: unknown, tail: string, limits: Limits): string | Buffer | undefined {
  if (head === null || !isPlain(value, 1, limits)) return undefined;
  const middle = json(value);
  return middle === undefined ? undefined : joined(kind, id, head, middle, tail, limits);
}

/** The JSON of a value isPlain passed; undefined when it has none (a toJSON giving undefined) or JSON.stringify throws. */
function json(value: unknown): string | undefined {
  try {
    return JSON.stringify(value);
  } catch {
    return undefined;
  }
}

/** The frame of `head`, `middle` and `tail` (see frameOf); the text before `middle` from `prefixes` when given (no request id). */
function joined(kind: Kind, id: number, head: string, middle: string, tail: string, limits: Limits, prefixes?: Prefixes): string | Buffer | undefined {
  const middleBytes = Buffer.byteLength(middle);
  const jsonBytes = head.length + middleBytes + tail.length;
  // JSON.stringify escapes lone surrogates: a text of as many bytes as characters is ASCII.
  // Over the limit: codec.ts's encoder says so (the JSON made again, for an error only).
  if (MESSAGE_HEADER_BYTES + jsonBytes > limits.maxFrameBytes) return undefined;
  if (middleBytes !== middle.length) return bodyFrame(kind, id, head, middle, middleBytes, tail, limits);
  if (prefixes) return prefixes.get(jsonBytes) + middle + tail;
  const ids = id === 0 ? "\0\0\0\0" : String.fromCharCode(id >>> 24, (id >>> 16) & 0xff, (id >>> 8) & 0xff, id & 0xff);
  return STARTS.get(jsonBytes * 32 + kind) + ids + LENGTHS.get(jsonBytes) + head + middle + tail;
}

/** A head's frame text up to its middle, by the body's length, for frames without a request id (publications). */
class Prefixes {
  private readonly byLength: Pieces<number, string>;
  constructor(kind: Kind, readonly head: string) {
    // A topic's bodies mostly differ in length by a few bytes (a counter, a reading).
    this.byLength = new Pieces((jsonBytes) => STARTS.get(jsonBytes * 32 + kind) + "\0\0\0\0" + LENGTHS.get(jsonBytes) + head, 64);
  }

  get(jsonBytes: number): string {
    return this.byLength.get(jsonBytes);
  }
}

/** A text of as many bytes as characters is ASCII. */
function isAscii(text: string): boolean {
  return Buffer.byteLength(text) === text.length;
}

function u32(value: number): number[] {
  return [value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff];
}

function latin1(bytes: number[]): string {
  return String.fromCharCode(...bytes);
}
