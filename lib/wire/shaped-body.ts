import { MalformedFrameError } from "../errors.js";
import { Kind, KIND_NAMES } from "./message.js";

// How codec.ts writes the bodies of requests, publications and replies, and the reader that
// takes such a body apart by that shape instead of parsing all of it.

export const REPLY_HEAD = Buffer.from(`{"v":`);
export const CLOSE = Buffer.from("}");
const REQUEST_START = Buffer.from(`{"fn":"`);
const PUBLICATION_START = Buffer.from(`{"topic":"`);
const ARGS_KEY = Buffer.from(`","args":`);
const TIMEOUT_KEY = Buffer.from(`,"timeoutMs":`);

/**
 * The body of a request, publication or reply written as codec.ts's encoders write it, read by
 * its known shape: only the arguments (or the value) are parsed (simple ones by hand, see
 * `simpleValue`), the name and the timeout are taken from where they stand. That halves what a
 * small call's decoding costs; reading simple values by hand takes another 35-45 % off.
 * Undefined for any other body, which is then parsed whole. The result is what JSON.parse of
 * the whole body gives: a name between quotes without `\` or control characters is the name
 * itself, and a middle that is one JSON value proves the body is exactly
 * `{"fn":name,"args":value,"timeoutMs":n}`, with nothing else in it. The middle is checked to
 * be one value before it is parsed (see `oneValue`), so a body of another shape (a forwarded
 * request has a `target`) never costs a failed parse: a throw costs ten times a small parse.
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
  for (; quote < end; quote++) {
    const byte = frame[quote]!;
    if (byte === 0x22) break;
    if (byte === 0x5c || byte < 0x20) return undefined;
  }
  if (!has(frame, quote, ARGS_KEY)) return undefined;
  const name = frame.toString("utf8", start + head.length, quote);
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
const NOT_SIMPLE = Symbol("not simple");
const TRUE = Buffer.from("true");
const FALSE = Buffer.from("false");
const NULL = Buffer.from("null");

/**
 * What most small calls and publications carry, read without JSON.parse (a third of its cost
 * for `["hello"]`): a string without escapes or control characters, a whole number of up to 15
 * digits, true, false, null, or an array of those written without spaces. NOT_SIMPLE for
 * anything else, which JSON.parse then reads (or finds malformed) as before.
 */
function simpleValue(frame: Buffer, start: number, end: number): unknown {
  if (frame[start] !== 0x5b) return scalarAt(frame, start, end) === end ? scalar : NOT_SIMPLE;
  if (frame[end - 1] !== 0x5d) return NOT_SIMPLE;
  const items: unknown[] = [];
  let at = start + 1;
  if (at === end - 1) return items;
  for (;;) {
    at = scalarAt(frame, at, end - 1);
    if (at < 0) return NOT_SIMPLE;
    items.push(scalar);
    if (at === end - 1) return items;
    if (frame[at] !== 0x2c) return NOT_SIMPLE;
    at++;
  }
}

/** The value `scalarAt` read last (a second result without an object per value). */
let scalar: unknown;

/** Reads a simple scalar starting at `at` (into `scalar`); where it ends, or -1. */
function scalarAt(frame: Buffer, at: number, end: number): number {
  const first = frame[at];
  if (first === 0x22) {
    for (let i = at + 1; i < end; i++) {
      const byte = frame[i]!;
      if (byte === 0x22) {
        scalar = frame.toString("utf8", at + 1, i);
        return i + 1;
      }
      if (byte === 0x5c || byte < 0x20) return -1;
    }
    return -1;
  }
  if (first === 0x74) return literalAt(frame, at, end, TRUE, true);
  if (first === 0x66) return literalAt(frame, at, end, FALSE, false);
  if (first === 0x6e) return literalAt(frame, at, end, NULL, null);
  const negative = first === 0x2d;
  let i = negative ? at + 1 : at;
  const digitsAt = i;
  let value = 0;
  for (; i < end && i - digitsAt < 16; i++) {
    const digit = frame[i]! - 0x30;
    if (digit < 0 || digit > 9) break;
    value = value * 10 + digit;
  }
  const digits = i - digitsAt;
  // JSON's own rules: no leading zero; 15 digits stay exact; a fraction or exponent is parsed.
  if (digits === 0 || digits > 15 || (digits > 1 && frame[digitsAt] === 0x30)) return -1;
  if (i < end && (frame[i] === 0x2e || frame[i] === 0x65 || frame[i] === 0x45)) return -1;
  scalar = negative ? -value : value;
  return i;
}

function literalAt(frame: Buffer, at: number, end: number, bytes: Buffer, value: unknown): number {
  if (at + bytes.length > end || !has(frame, at, bytes)) return -1;
  scalar = value;
  return at + bytes.length;
}

export function parseValue(kind: Kind, frame: Buffer, start: number, end: number): unknown {
  try {
    return JSON.parse(frame.toString("utf8", start, end));
  } catch (error) {
    throw new MalformedFrameError(`${KIND_NAMES[kind]} body is not JSON`, error);
  }
}

/** Whether `frame` holds the bytes of `piece` at `at`. */
function has(frame: Buffer, at: number, piece: Buffer): boolean {
  if (at < 0 || at + piece.length > frame.length) return false;
  for (let i = 0; i < piece.length; i++) if (frame[at + i] !== piece[i]) return false;
  return true;
}
