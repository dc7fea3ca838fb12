import { MalformedFrameError } from "../errors.js";
import { Kind, KIND_NAMES } from "./message.js";
import { has, NAMES, NOT_SIMPLE, simpleValue, utf8 } from "./simple-value.js";

// How codec.ts writes the bodies of requests, publications and replies, and the reader that
// takes such a body apart by that shape instead of parsing all of it.

export const REPLY_HEAD = Buffer.from(`{"v":`);
export const CLOSE = Buffer.from("}");
const REQUEST_START = Buffer.from(`{"fn":"`);
const PUBLICATION_START = Buffer.from(`{"topic":"`);
const ARGS_KEY = Buffer.from(`","args":`);
const TIMEOUT_KEY = Buffer.from(`,"timeoutMs":`);
/** Up to the target's opening quote. */
const TARGET_KEY = Buffer.from(`,"target":"`);

/**
 * The body of a request, publication or reply written as codec.ts's encoders write it, read by
 * its known shape: only the arguments (or the value) are parsed (simple ones by hand, see
 * `simpleValue`), the name and the timeout are taken from where they stand. That halves what a
 * small call's decoding costs; reading simple values by hand takes another 35-45 % off.
 * Undefined for any other body, which is then parsed whole. The result is what JSON.parse of
 * the whole body gives: a name between quotes without `\` or control characters is the name
 * itself, and a middle that is one JSON value proves the body is exactly
 * `{"fn":name,"args":value,"timeoutMs":n}` (or, passed on by the routers,
 * `{"fn":name,"args":value,"target":id,"timeoutMs":n}`), with nothing else in it. The middle is
 * checked to be one value before it is parsed (see `oneValue`), so a body of another shape
 * never costs a failed parse: a throw costs ten times a small parse.
 */
export function readShaped(kind: Kind, frame: Buffer, start: number, end: number): object | undefined {
  if (kind === Kind.rep || kind === Kind.item) {
    if (!has(frame, start, REPLY_HEAD) || frame[end - 1] !== CLOSE[0]) return undefined;
    const at = start + REPLY_HEAD.length;
    const v = middleValue(kind, frame, at, end - 1);
    return v === NOT_SHAPED ? undefined : { v };
  }
  const head = kind === Kind.req ? REQUEST_START : kind === Kind.pub ? PUBLICATION_START : undefined;
  if (!head || !has(frame, start, head) || frame[end - 1] !== CLOSE[0]) return undefined;
  let quote = start + head.length;
  let ascii = true;
  for (; quote < end; quote++) {
    const byte = frame[quote]!;
    if (byte === 0x22) break;
    if (byte === 0x5c || byte < 0x20) return undefined;
    if (byte > 0x7f) ascii = false;
  }
  if (!has(frame, quote, ARGS_KEY)) return undefined;
  const name = NAMES.at(frame, start + head.length, quote, ascii);
  const argsAt = quote + ARGS_KEY.length;
  let argsEnd = end - 1;
  let timeoutMs: number | undefined;
  if (kind === Kind.req) {
    // A whole number of milliseconds (up to 15 digits, no leading zero: exactly what JSON.parse
    // reads) ends the body when there is a timeout.
    let digits = end - 1;
    let ms = 0;
    for (let scale = 1; digits > argsAt && scale <= 1e15; scale *= 10) {
      const digit = frame[digits - 1]! - 0x30;
      if (digit < 0 || digit > 9) break;
      ms += digit * scale;
      digits--;
    }
    const count = end - 1 - digits;
    if (count > 0 && count <= 15 && (count === 1 || frame[digits] !== 0x30) && has(frame, digits - TIMEOUT_KEY.length, TIMEOUT_KEY)) {
      timeoutMs = ms;
      argsEnd = digits - TIMEOUT_KEY.length;
    }
    // A request passed on by the routers names its server before the timeout: `,"target":"id"`.
    if (timeoutMs !== undefined && frame[argsEnd - 1] === 0x22) {
      let open = argsEnd - 2;
      for (; open > argsAt; open--) {
        const byte = frame[open]!;
        if (byte === 0x22) break;
        if (byte === 0x5c || byte < 0x20 || byte > 0x7f) return undefined;
      }
      if (has(frame, open - TARGET_KEY.length + 1, TARGET_KEY)) {
        const target = NAMES.at(frame, open + 1, argsEnd - 1, true);
        const args = middleValue(kind, frame, argsAt, open - TARGET_KEY.length + 1);
        return args === NOT_SHAPED ? undefined : { fn: name, args, target, timeoutMs };
      }
    }
  }
  const args = middleValue(kind, frame, argsAt, argsEnd);
  if (args === NOT_SHAPED) return undefined;
  if (kind === Kind.pub) return { topic: name, args };
  return timeoutMs === undefined ? { fn: name, args } : { fn: name, args, timeoutMs };
}

/** Bodies with a longer middle are parsed whole: the saving is in small messages. */
const SHAPED_MAX_BYTES = 1024;

/**
 * Whether `start..end` is one JSON value as far as its delimiters go: a string, or an array or
 * object whose first bracket closes at its last byte (strings skipped), or a bare number or
 * literal. Then the whole body is valid JSON exactly when this middle is, so a failed parse of
 * it is a malformed frame, as the whole parse would have found.
 */
function oneValue(frame: Buffer, start: number, end: number): boolean {
  const first = frame[start]!;
  if (first === 0x22) return closingQuote(frame, start + 1, end) === end - 1;
  if (first === 0x5b || first === 0x7b) {
    let depth = 0;
    for (let i = start; i < end; i++) {
      const byte = frame[i]!;
      if (byte === 0x22) {
        i = closingQuote(frame, i + 1, end);
        if (i < 0) return false;
      } else if (byte === 0x5b || byte === 0x7b) depth++;
      else if ((byte === 0x5d || byte === 0x7d) && --depth === 0) return i === end - 1;
    }
    return false;
  }
  for (let i = start; i < end; i++) if (!SCALAR_BYTES[frame[i]!]) return false;
  return true;
}

/** The index of the quote that ends a string whose content starts at `from`, or -1. */
function closingQuote(frame: Buffer, from: number, end: number): number {
  for (let i = from; i < end; i++) {
    const byte = frame[i]!;
    if (byte === 0x22) return i;
    if (byte === 0x5c) i++;
  }
  return -1;
}

/** The bytes of JSON numbers and of true, false, null. */
const SCALAR_BYTES = new Uint8Array(256);
for (const byte of Buffer.from("0123456789+-.eEtrufalsn")) SCALAR_BYTES[byte] = 1;

/**
 * The value of a body's middle: read by hand when it is simple (which proves it is one value:
 * no second scan), else parsed once `oneValue` says it is one value; NOT_SHAPED when it is not,
 * or is too long to be worth it (the whole body is then parsed).
 */
function middleValue(kind: Kind, frame: Buffer, start: number, end: number): unknown {
  if (end <= start || end - start > SHAPED_MAX_BYTES) return NOT_SHAPED;
  const simple = simpleValue(frame, start, end);
  if (simple !== NOT_SIMPLE) return simple;
  return oneValue(frame, start, end) ? parseValue(kind, frame, start, end) : NOT_SHAPED;
}

const NOT_SHAPED = Symbol("not shaped");
export function parseValue(kind: Kind, frame: Buffer, start: number, end: number): unknown {
  try {
    return JSON.parse(utf8(frame, start, end));
  } catch (error) {
    throw new MalformedFrameError(`${KIND_NAMES[kind]} body is not JSON`, error);
  }
}
