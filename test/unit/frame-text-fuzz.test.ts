import { expect, test } from "vitest";
import { BadArgumentsError } from "../../lib/errors.js";
import { decodeMessage, encodeMessage, encodePublication, encodeReply, encodeRequest } from "../../lib/wire/codec.js";
import { publicationFrame, replyFrame, requestFrame, type Frame } from "../../lib/wire/frame-text.js";
import { DEFAULT_LIMITS, type Limits } from "../../lib/wire/limits.js";
import { Kind, type ReqBody } from "../../lib/wire/message.js";
import { prng, same } from "../fuzz.js";

/**
 * The hot paths' frames (frame-text.ts: latin1 text when all ASCII, else a buffer from the same
 * JSON, else the encoder) against the buffer encoders of codec.ts, on random values, names, ids,
 * timeouts, targets and size limits: the same bytes, a refusal exactly when the encoder refuses,
 * and never a frame over the limit.
 */

/** The frame's bytes, whether it was made as text or as buffers. */
function frameBytes(frame: Frame): Buffer {
  return typeof frame === "string" ? Buffer.from(frame, "latin1") : bytes(frame);
}

class Shown {
  constructor(private readonly form: unknown) {}
  toJSON(): unknown {
    return this.form;
  }
}

function generator(random: () => number) {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const int = (n: number) => Math.floor(random() * n);
  const STRINGS = ["", "hello", "ü", "a\"b", "back\\slash", "tab\t", "\u0000", "\u001f", "\u007f", "😀", "\ud800", "\udc00", "\u2028", "é", "</script>", "x".repeat(300)];
  const scalar = (): unknown =>
    pick<() => unknown>([
      () => int(1e6) - 5e5,
      () => (random() - 0.5) * 10 ** (int(40) - 20),
      () => pick([0, -0, 1.5, 2 ** 53 + 2, 1e21, 5e-324, Number.MAX_VALUE, NaN, Infinity, -Infinity]),
      () => pick(STRINGS),
      () => pick([true, false, null, undefined]),
      () => pick([10n, Symbol("s"), () => 1]),
      () => pick([new Date(0), Buffer.from([1, 2]), new Uint8Array(3), new Map([[1, 2]]), new Set([1])]),
      () => new Shown(pick([undefined, "text", "ü", { a: 1 }, () => 1, 5, null])),
    ])();
  const KEYS = ["s", "b", "", "1", "0", "__proto__", "constructor", "ü", "a\"b", "\u0000"];
  const value = (depth: number): unknown => {
    const roll = random();
    if (depth > 3 || roll < 0.5) return scalar();
    if (roll < 0.75) {
      const items = Array.from({ length: int(4) }, () => value(depth + 1));
      if (random() < 0.05) items.length += 1; // a hole
      return items;
    }
    const record: Record<string, unknown> = random() < 0.1 ? Object.create(null) : {};
    for (let i = int(4); i > 0; i--) Object.defineProperty(record, pick(KEYS), { value: value(depth + 1), enumerable: true, configurable: true, writable: true });
    return record;
  };
  const NAMES = ["f", "echo", "bench.msg", "", "ü", "a\"b", "\u0000", "\ud800", "x".repeat(200)];
  const IDS = [0, 1, 255, 256, 65535, 2 ** 24, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1];
  const id = () => (random() < 0.5 ? pick(IDS) : int(2 ** 32));
  const timeout = () => pick([undefined, 1, 5, 500, 30000, 1.5, 0.001, 2 ** 31, 2 ** 53, 1e21, 123456789012345]);
  const target = () => pick([undefined, undefined, "s1", "a1b2c3", "", "ü", "a\"b"]);
  const limits = (): Limits => (random() < 0.3 ? { ...DEFAULT_LIMITS, maxFrameBytes: 20 + int(200), maxDepth: int(6) } : DEFAULT_LIMITS);
  return { pick, int, value, name: () => pick(NAMES), id, timeout, target, limits };
}

const bytes = (frame: Buffer | Buffer[]) => Buffer.concat([frame].flat());

/** What `make` gives, or the error it throws. */
function attempt<T>(make: () => T): { value?: T; error?: unknown } {
  try {
    return { value: make() };
  } catch (error) {
    return { error };
  }
}

for (const seed of [11, 12, 13]) {
  test(`text frames are the buffer encoders' bytes, or undefined (seed ${seed})`, () => {
    const random = prng(seed);
    const g = generator(random);
    const tally = { text: 0, buffer: 0, refused: 0 };
    for (let n = 0; n < 4000; n++) {
      const limits = g.limits();
      const kind = g.pick(["pub", "req", "rep"] as const);
      const name = g.name();
      const args = Array.from({ length: g.int(4) }, () => g.value(1));
      const value = g.value(0);
      const id = g.id();
      const ms = g.timeout();
      const target = g.target();
      const trace = kind === "req" ? g.pick([undefined, undefined, undefined, "t", "ü"]) : undefined;
      const flags = kind === "req" ? g.pick([0, 0, 0, 1, 2, 3]) : 0;
      const what = `seed ${seed} #${n} ${kind} ${JSON.stringify({ name, id, ms, target, trace, flags, max: limits.maxFrameBytes }, (_, v) => (typeof v === "bigint" ? `${v}n` : v))}`;
      const made = attempt(() =>
        kind === "pub" ? publicationFrame(name, args, limits) : kind === "req" ? requestFrame(id, name, args, ms, limits, trace, flags, target) : replyFrame(id, value, limits),
      );
      const buffer = attempt(() =>
        kind === "pub" ? encodePublication(name, args, limits) : kind === "req" ? encodeRequest(id, name, args, ms, limits, trace, flags, target) : encodeReply(id, value, limits),
      );
      if (buffer.error !== undefined) {
        tally.refused++;
        expect(made.error, what).toBeDefined();
        expect((made.error as Error).constructor, what).toBe((buffer.error as Error).constructor);
        continue;
      }
      expect(made.error, what).toBeUndefined();
      const expected = bytes(buffer.value!);
      expect(expected.length, what).toBeLessThanOrEqual(4 + limits.maxFrameBytes);
      if (kind === "req") {
        // The generic encoder's bytes, keys in the order target, timeoutMs, trace; the flags in the header.
        const body: ReqBody = { fn: name, args };
        if (target !== undefined) body.target = target;
        if (ms !== undefined) body.timeoutMs = ms;
        if (trace !== undefined) body.trace = trace;
        const generic = bytes(encodeMessage(Kind.req, id, body, limits));
        generic[5] = flags;
        expect(expected.equals(generic), what).toBe(true);
        if (flags !== 0) expect(typeof made.value, what).not.toBe("string");
      }
      if (typeof made.value === "string") {
        tally.text++;
        // Each character one byte: nothing latin1 would cut down.
        expect(/[^\u0000-\u00ff]/.test(made.value), what).toBe(false);
      } else tally.buffer++;
      const got = frameBytes(made.value!);
      expect(got.equals(expected), what).toBe(true);
      // And it reads back as what the buffer reads back as.
      expect(same(decodeMessage(got.subarray(4)).body, decodeMessage(expected.subarray(4)).body), what).toBe(true);
    }
    expect(tally.text).toBeGreaterThan(300);
    expect(tally.buffer).toBeGreaterThan(300);
    expect(tally.refused).toBeGreaterThan(300);
  });
}

test("a reply whose value's toJSON gives nothing is the buffer encoder's `{}` (v left out), not a throw", () => {
  for (const form of [undefined, () => 1, Symbol("s")]) {
    const value = new Shown(form);
    expect(frameBytes(replyFrame(1, value)).equals(bytes(encodeReply(1, value)))).toBe(true);
    expect(decodeMessage(bytes(encodeReply(1, value)).subarray(4)).body).toStrictEqual({});
  }
});

test("a publication of one argument is the array's bytes, also for a toJSON told its key, and its pieces follow the body's length", () => {
  // In the array the argument's toJSON is told "0"; alone it would be told "".
  const keyed = new (class Keyed {
    toJSON(key: string): string {
      return `key ${JSON.stringify(key)}`;
    }
  })();
  const cases: unknown[][] = [[keyed], [new Date(0)], [{ s: 1, b: "hello" }], [{ s: 123456, b: "hello" }], ["ü"], [undefined], [null], [[1, [2]]], []];
  for (const args of cases) {
    const made = publicationFrame("bench.msg", args);
    expect(frameBytes(made).equals(bytes(encodePublication("bench.msg", args))), JSON.stringify(args)).toBe(true);
  }
  expect(decodeMessage(frameBytes(publicationFrame("t", [keyed])).subarray(4)).body).toStrictEqual({ topic: "t", args: ['key "0"'] });
  // The array itself is one level deep; and a value that throws when its toJSON is looked for is refused as the encoder refuses it.
  const flat = { ...DEFAULT_LIMITS, maxDepth: 0 };
  expect(() => publicationFrame("t", [false], flat)).toThrow(/nested deeper than 0 levels/);
  const strict = new Proxy({}, { get: (_, key) => { throw new Error(`no property ${String(key)}`); } });
  expect(() => publicationFrame("t", [strict])).toThrow(BadArgumentsError);
  expect(() => encodePublication("t", [strict])).toThrow(BadArgumentsError);
  // Bodies of every length from a few bytes to past the pieces kept (1024 lengths of one topic).
  for (let n = 0; n < 1100; n += 7) {
    const args = [{ b: "x".repeat(n) }];
    expect(frameBytes(publicationFrame("t", args)).equals(bytes(encodePublication("t", args)))).toBe(true);
  }
});
