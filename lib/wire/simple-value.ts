// Values read from a frame's bytes by hand, without JSON.parse: what most small calls and
// publications carry. Used by shaped-body.ts, which proves the bytes it hands here are the whole
// of one value.

export const NOT_SIMPLE = Symbol("not simple");
const TRUE = Buffer.from("true");
const FALSE = Buffer.from("false");
const NULL = Buffer.from("null");

/**
 * What most small calls and publications carry, read without JSON.parse (a third of its cost
 * for `["hello"]`, 0.4x for `[{"s":1,"b":"hello"}]`): a string without escapes or control
 * characters, a number, true, false, null, an object of those, or an array of those and such
 * objects, written without spaces. NOT_SIMPLE for anything else, which JSON.parse then reads (or
 * finds malformed) as before.
 */
export function simpleValue(frame: Buffer, start: number, end: number): unknown {
  // Two comparisons a byte, and two looks at every kept key: a small record finds its keys.
  KEYS.allow(128 + 2 * (end - start));
  if (frame[start] !== 0x5b) return itemAt(frame, start, end) === end ? scalar : NOT_SIMPLE;
  if (frame[end - 1] !== 0x5d) return NOT_SIMPLE;
  const items: unknown[] = [];
  let at = start + 1;
  if (at === end - 1) return items;
  for (;;) {
    at = itemAt(frame, at, end - 1);
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
    let ascii = true;
    for (let i = at + 1; i < end; i++) {
      const byte = frame[i]!;
      if (byte === 0x22) {
        scalar = ascii ? asciiText(frame, at + 1, i) : utf8(frame, at + 1, i);
        return i + 1;
      }
      if (byte === 0x5c || byte < 0x20) return -1;
      if (byte > 0x7f) ascii = false;
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
  // JSON's own rules: at least one digit, no leading zero.
  if (digits === 0 || (digits > 1 && frame[digitsAt] === 0x30)) return -1;
  // Up to 15 digits stay exact as they are summed; longer ones, fractions and exponents not.
  if (digits > 15 || (i < end && (frame[i] === 0x2e || frame[i] === 0x65 || frame[i] === 0x45))) return decimalAt(frame, at, i, end);
  scalar = negative ? -value : value;
  return i;
}

/**
 * The rest of a number that is not a short whole one, from `i` (after some of its integer
 * digits), checked against JSON's grammar by hand and then read by `Number`, which rounds as
 * JSON.parse does (both are the language's one reading of decimal text): measurements are
 * mostly fractions.
 */
function decimalAt(frame: Buffer, at: number, i: number, end: number): number {
  while (i < end && isDigit(frame[i]!)) i++;
  if (i < end && frame[i] === 0x2e) {
    const from = ++i;
    while (i < end && isDigit(frame[i]!)) i++;
    if (i === from) return -1;
  }
  if (i < end && (frame[i] === 0x65 || frame[i] === 0x45)) {
    i++;
    if (i < end && (frame[i] === 0x2b || frame[i] === 0x2d)) i++;
    const from = i;
    while (i < end && isDigit(frame[i]!)) i++;
    if (i === from) return -1;
  }
  scalar = Number(latin1(frame, at, i));
  return i;
}

function isDigit(byte: number): boolean {
  return byte >= 0x30 && byte <= 0x39;
}

/** Reads a simple scalar, or an object of them (a record: `{"s":1,"b":"hello"}`), into `scalar`. */
function itemAt(frame: Buffer, at: number, end: number): number {
  return frame[at] === 0x7b ? objectAt(frame, at, end) : scalarAt(frame, at, end);
}

/**
 * Reads an object of simple scalars written without spaces, starting at `at` (into `scalar`);
 * where it ends, or -1. Its keys are read as names are (no `\` or control characters), the
 * same strings again for the same bytes (KEYS). `__proto__` is left to JSON.parse, for which it
 * is a property of its own: an assignment would set the object's prototype instead.
 */
function objectAt(frame: Buffer, at: number, end: number): number {
  const record: Record<string, unknown> = {};
  let i = at + 1;
  if (i < end && frame[i] === 0x7d) {
    scalar = record;
    return i + 1;
  }
  for (;;) {
    if (i >= end || frame[i] !== 0x22) return -1;
    let quote = i + 1;
    let ascii = true;
    for (; quote < end; quote++) {
      const byte = frame[quote]!;
      if (byte === 0x22) break;
      if (byte === 0x5c || byte < 0x20) return -1;
      if (byte > 0x7f) ascii = false;
    }
    if (quote + 1 >= end || frame[quote + 1] !== 0x3a) return -1;
    const key = KEYS.at(frame, i + 1, quote, ascii);
    if (key === "__proto__") return -1;
    i = scalarAt(frame, quote + 2, end);
    if (i < 0 || i >= end) return -1;
    record[key] = scalar;
    if (frame[i] === 0x7d) {
      scalar = record;
      return i + 1;
    }
    if (frame[i] !== 0x2c) return -1;
    i++;
  }
}

function literalAt(frame: Buffer, at: number, end: number, bytes: Buffer, value: unknown): number {
  if (at + bytes.length > end || !has(frame, at, bytes)) return -1;
  scalar = value;
  return at + bytes.length;
}

/**
 * The strings of recent names (topics, functions, keys), by their bytes: a subscriber reads one
 * topic, a server a few names, and records the same keys, over and over. Compared as ASCII,
 * which every kept name is; past `size` names it starts again rather than grow. Names longer
 * than any valid one (validate.ts refuses names over 1024 characters) are neither looked for nor
 * kept: a peer, before its hello is checked, could otherwise leave `size` strings of a frame's
 * size each (64 MiB) in every process it reaches, and make each lookup compare that much again.
 */
class Names {
  private names: string[] = [];
  /** What the lookups may still cost (names visited and characters compared): see `allow`. */
  private budget = Infinity;
  constructor(private readonly size: number) {}

  /**
   * The lookups from now on may cost this much in all; past it, names are read without one and
   * not kept. A body of many keys alike, new each time, was compared with every kept key of its
   * length: 20-45 times what JSON.parse of the same kilobyte costs.
   */
  allow(cost: number): void {
    this.budget = cost;
  }

  /** The name in `frame[start..end)`, the same string as before for the same bytes. */
  at(frame: Buffer, start: number, end: number, ascii: boolean): string {
    const length = end - start;
    if (length > LONGEST_NAME || this.budget < 0) return ascii ? latin1(frame, start, end) : utf8(frame, start, end);
    const names = this.names;
    for (let at = 0; at < names.length; at++) {
      const name = names[at]!;
      if (--this.budget < 0) break;
      if (name.length !== length) continue;
      let i = 0;
      while (i < length && name.charCodeAt(i) === frame[start + i]) i++;
      if (i === length) {
        // A name found moves one place forward: a stream's keys and topic come first, ahead of
        // those a process read once (its welcome's and pool's keys cost each record tens of
        // compares). Two keys of one record trade places each time: two stores, not compares.
        if (at > 0) {
          names[at] = names[at - 1]!;
          names[at - 1] = name;
        }
        return name;
      }
      this.budget -= i;
    }
    const name = ascii ? latin1(frame, start, end) : utf8(frame, start, end);
    if (ascii) {
      if (this.names.length >= this.size) this.names = [];
      this.names.push(name);
    }
    return name;
  }
}

const LONGEST_NAME = 1024;

/** Topics and function names (shaped-body.ts), and the keys of records. */
export const NAMES = new Names(8);
const KEYS = new Names(64);

/**
 * The text of `frame[start..end)`: `toString("utf8", ...)` without its checks of the encoding
 * and the bounds (ours are in range), which cost more than the decoding of a short text. Node's
 * Buffer has had `utf8Slice` and `latin1Slice` since its first versions; should one ever lack
 * them, toString.
 */
export const utf8 = slicer("utf8");
/** The same for text known to be ASCII, which latin1 reads faster. */
const latin1 = slicer("latin1");

/**
 * ASCII text of a few characters, as `String.fromCharCode` of its bytes: a quarter of what a
 * call into Buffer's slicing costs (13 against 57 ns for "hello"), which such short strings
 * (units, states, names) pay whole.
 */
function asciiText(frame: Buffer, start: number, end: number): string {
  switch (end - start) {
    case 0:
      return "";
    case 1:
      return String.fromCharCode(frame[start]!);
    case 2:
      return String.fromCharCode(frame[start]!, frame[start + 1]!);
    case 3:
      return String.fromCharCode(frame[start]!, frame[start + 1]!, frame[start + 2]!);
    case 4:
      return String.fromCharCode(frame[start]!, frame[start + 1]!, frame[start + 2]!, frame[start + 3]!);
    case 5:
      return String.fromCharCode(frame[start]!, frame[start + 1]!, frame[start + 2]!, frame[start + 3]!, frame[start + 4]!);
    case 6:
      return String.fromCharCode(frame[start]!, frame[start + 1]!, frame[start + 2]!, frame[start + 3]!, frame[start + 4]!, frame[start + 5]!);
    case 7:
      return String.fromCharCode(frame[start]!, frame[start + 1]!, frame[start + 2]!, frame[start + 3]!, frame[start + 4]!, frame[start + 5]!, frame[start + 6]!);
    case 8:
      return String.fromCharCode(frame[start]!, frame[start + 1]!, frame[start + 2]!, frame[start + 3]!, frame[start + 4]!, frame[start + 5]!, frame[start + 6]!, frame[start + 7]!);
    default:
      return latin1(frame, start, end);
  }
}

function slicer(encoding: "utf8" | "latin1"): (frame: Buffer, start: number, end: number) => string {
  const method = `${encoding}Slice`;
  if (typeof (Buffer.prototype as unknown as Record<string, unknown>)[method] !== "function") {
    return (frame, start, end) => frame.toString(encoding, start, end);
  }
  return encoding === "utf8"
    ? (frame, start, end) => (frame as unknown as { utf8Slice(start: number, end: number): string }).utf8Slice(start, end)
    : (frame, start, end) => (frame as unknown as { latin1Slice(start: number, end: number): string }).latin1Slice(start, end);
}

/** Whether `frame` holds the bytes of `piece` at `at`. */
export function has(frame: Buffer, at: number, piece: Buffer): boolean {
  if (at < 0 || at + piece.length > frame.length) return false;
  for (let i = 0; i < piece.length; i++) if (frame[at + i] !== piece[i]) return false;
  return true;
}
