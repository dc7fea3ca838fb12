import { describe, expect, test, vi } from "vitest";
import { MalformedFrameError } from "../../lib/errors.js";
import { decodeMessage } from "../../lib/wire/codec.js";
import { Kind } from "../../lib/wire/message.js";
import { NAMES } from "../../lib/wire/simple-value.js";
import { problemWith } from "../../lib/wire/validate.js";
import { prng, same } from "../fuzz.js";

/**
 * The bodies codec.ts reads by their shape (readShaped, simpleValue) against JSON.parse of the
 * whole body, on JSON text of the request, publication and reply shapes written with what the
 * hand reader must refuse or get right (escapes, spaces, exponents, -0, long numbers,
 * `__proto__`, duplicate keys, surrogates, control characters, non-ASCII names and targets), then
 * mutated byte by byte (invalid UTF-8 included). Deterministic: a failure names its seed and body.
 */

function generator(random: () => number) {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const int = (n: number) => Math.floor(random() * n);
  const digits = (n: number) => Array.from({ length: n }, () => int(10)).join("");
  const space = () => (random() < 0.04 ? pick([" ", "\t", "\n", "\r", "  "]) : "");
  const number = (): string =>
    pick<() => string>([
      () => String(int(1000)),
      () => `-${int(1000)}`,
      () => pick(["0", "-0", "-0.0", "0e0", "1E+2", "1e-7", "1e400", "-1e400", "5e-324", "1e-400", "9007199254740993"]),
      () => `${1 + int(9)}${digits(int(25))}`,
      () => `${pick(["", "-"])}${int(100)}.${digits(1 + int(20))}`,
      () => `${int(100)}${pick(["e", "E"])}${pick(["", "+", "-"])}${digits(1 + int(3))}`,
      () => `${int(10)}.${digits(1 + int(3))}e${pick(["", "-"])}${int(400)}`,
      // Near misses JSON.parse refuses.
      () => pick(["01", "-", "1.", ".5", "1e", "1e+", "-.5", "00", "+1", "0x10", "1_000", "Infinity", "NaN", "1.5.5", "--1"]),
    ])();
  const char = (): string =>
    pick([
      () => String.fromCharCode(0x61 + int(26)),
      () => pick(["\\\"", "\\\\", "\\/", "\\n", "\\t", "\\b", "\\f", "\\r", "\\u0000", "\\u0041", "\\u005f", "\\ud83d\\ude00", "\\ud800", "\\udc00x", "\\u2028"]),
      () => pick(["ü", "€", "😀", "\u2028", "\u007f", "é"]),
      () => pick(["\t", "\n", "\u0001", "\\x", "\\u12", "\\U0041", "'"]), // refused raw or bad escapes
      () => pick([" ", ":", ",", "{", "}", "[", "]"]),
    ])();
  const stringText = (): string => {
    const n = random() < 0.5 ? int(4) : int(12);
    let s = "";
    for (let i = 0; i < n; i++) s += random() < 0.6 ? String.fromCharCode(0x61 + int(26)) : char();
    return `"${s}"`;
  };
  const KEYS = ["s", "b", "t", "value", "", "1", "0", "10", "4294967295", "__proto__", "constructor", "toString", "hasOwnProperty", "ü", "a b", "$", "v", "fn", "args"];
  const key = (): string => (random() < 0.85 ? JSON.stringify(pick(KEYS)) : random() < 0.5 ? `"\\u005f_proto__"` : stringText());
  const value = (depth: number): string => {
    const roll = random();
    if (depth > 3 || roll < 0.45) {
      return pick<() => string>([number, number, stringText, stringText, () => pick(["true", "false", "null", "tru", "nul", "falsey", "True"])])();
    }
    if (roll < 0.7) {
      const items = Array.from({ length: int(5) }, () => space() + value(depth + 1) + space());
      return `[${items.join(",")}${random() < 0.03 ? "," : ""}]`;
    }
    const entries = Array.from({ length: int(5) }, () => `${space()}${key()}${space()}:${space()}${value(depth + 1)}${space()}`);
    return `{${entries.join(",")}${random() < 0.03 ? "," : ""}}`;
  };
  const NAMES = ["f", "echo", "bench.msg", "lab.t", "", "ü", "a\\\"b", "a\\u0041", "x".repeat(1025), "tab\t", "😀"];
  const name = (): string => (random() < 0.9 ? `"${pick(NAMES)}"` : pick(["5", "null", "[]", `"a`]));
  const TIMEOUTS = ["5", "0", "30000", "00", "05", "1.5", "-1", "1e3", "123456789012345", "1234567890123456", "null", `"5"`, "99999999999999999999"];
  const extras = [`"x":1`, `"trace":"t"`, `"credit":2`, `"credit":null`, `"groups":["a"]`, `"groups":null`, `"target":null`, `"target":"s1"`, `"fn":"g"`, `"args":[2]`, `"v":3`, `"__proto__":{"fn":"p"}`, `"timeoutMs":7`];
  const args = () => (random() < 0.85 ? `[${Array.from({ length: int(4) }, () => value(1)).join(",")}]` : value(0));
  /** A body of `kind`'s shape, its fields sometimes out of order, doubled, or with more. */
  const body = (kind: Kind): string => {
    let fields: string[];
    if (kind === Kind.req) {
      fields = [`"fn":${name()}`, `"args":${args()}`];
      if (random() < 0.3) fields.push(`"target":${random() < 0.85 ? JSON.stringify(pick(["s1", "a1b2", "", "x".repeat(1025)])) : pick([`"ü"`, `"a\\u0041"`, "5", `"a\u0001"`])}`);
      if (random() < 0.7) fields.push(`"timeoutMs":${pick(TIMEOUTS)}`);
    } else if (kind === Kind.pub) {
      fields = [`"topic":${name()}`, `"args":${args()}`];
    } else {
      fields = [`"v":${value(0)}`];
    }
    if (random() < 0.15) fields.push(pick(extras));
    if (random() < 0.05) fields.reverse();
    return `{${fields.map((field) => space() + field.replace(":", `${space()}:${space()}`) + space()).join(",")}}`;
  };
  const INTERESTING = [0x00, 0x09, 0x0a, 0x20, 0x22, 0x2b, 0x2c, 0x2d, 0x2e, 0x30, 0x31, 0x39, 0x3a, 0x45, 0x5b, 0x5c, 0x5d, 0x65, 0x74, 0x7b, 0x7d, 0x7f, 0x80, 0xbf, 0xc0, 0xc3, 0xe2, 0xed, 0xf0, 0xff];
  const byte = () => (random() < 0.8 ? pick(INTERESTING) : int(256));
  /** One to three edits at the level of bytes: UTF-8 cut in two, quotes and brackets lost or added. */
  const mutate = (bytes: Buffer): Buffer => {
    let out = [...bytes];
    for (let n = 1 + int(3); n > 0 && out.length > 0; n--) {
      const at = int(out.length);
      const op = int(6);
      if (op === 0) out.splice(at, 1);
      else if (op === 1) out.splice(at, 0, out[at]!);
      else if (op === 2) out[at] = byte();
      else if (op === 3) out.splice(at, 0, byte());
      else if (op === 4 && at + 1 < out.length) [out[at], out[at + 1]] = [out[at + 1]!, out[at]!];
      else out = out.slice(0, at);
    }
    return Buffer.from(out);
  };
  return { pick, int, body, mutate };
}

/** The frame of `json` under `kind`, as a view into a larger buffer (as frames come from chunks). */
function frameOf(kind: Kind, id: number, json: Buffer, random: () => number): Buffer {
  const before = Math.floor(random() * 4);
  const after = Math.floor(random() * 4);
  const chunk = Buffer.alloc(before + 12 + json.length + after, 0x7d);
  chunk[before] = kind;
  chunk.fill(0, before + 1, before + 4);
  chunk.writeUInt32BE(id >>> 0, before + 4);
  chunk.writeUInt32BE(json.length, before + 8);
  json.copy(chunk, before + 12);
  return chunk.subarray(before, before + 12 + json.length);
}

/** The whole schema, not its fast path: a field it allows as null makes `common`'s usual test fail. */
function problemByFullSchema(kind: Kind, body: object): string | undefined {
  const copy = Object.create(Object.getPrototypeOf(body));
  for (const key of Reflect.ownKeys(body)) Object.defineProperty(copy, key, Object.getOwnPropertyDescriptor(body, key)!);
  const optional = kind === Kind.req ? "credit" : "groups";
  if (!Object.hasOwn(copy, optional)) copy[optional] = null;
  return problemWith(kind, copy);
}

describe("bodies read by their shape, fuzzed at the byte level", () => {
  const KINDS = [Kind.req, Kind.req, Kind.pub, Kind.rep, Kind.item];
  for (const seed of [1, 2, 3, 4]) {
    test(`agree with JSON.parse of the whole body, and validation with the whole schema (seed ${seed})`, () => {
      const random = prng(seed);
      const { pick, int, body, mutate } = generator(random);
      const tally = { parsed: 0, malformed: 0, mutated: 0, refused: 0 };
      for (let n = 0; n < 6000; n++) {
        const shapeOf = pick(KINDS);
        // Mostly a body under its own kind; sometimes another kind's body.
        const kind = random() < 0.9 ? shapeOf : pick(KINDS);
        let json: Buffer = Buffer.from(body(shapeOf));
        if (random() < 0.5) {
          json = mutate(json);
          tally.mutated++;
        }
        const what = `seed ${seed} #${n} kind ${kind}: ${JSON.stringify(json.toString("latin1"))}`;
        let whole: unknown;
        let malformed = false;
        try {
          whole = JSON.parse(json.toString("utf8"));
        } catch {
          malformed = true;
        }
        const frame = frameOf(kind, int(2 ** 32), json, random);
        if (malformed || typeof whole !== "object" || whole === null || Array.isArray(whole)) {
          tally.malformed++;
          expect(() => decodeMessage(frame), what).toThrow(MalformedFrameError);
          continue;
        }
        tally.parsed++;
        const message = decodeMessage(frame);
        expect(same(message.body, whole), what).toBe(true);
        if (kind === Kind.req || kind === Kind.pub) {
          const fast = problemWith(kind, message.body);
          const full = problemByFullSchema(kind, message.body);
          if (full !== undefined) tally.refused++;
          expect(fast === undefined, `${what}: ${fast} / ${full}`).toBe(full === undefined);
        }
      }
      // The run must reach both sides, and the hand reader's paths, not only JSON.parse.
      expect(tally.parsed).toBeGreaterThan(1500);
      expect(tally.malformed).toBeGreaterThan(1500);
      expect(tally.refused).toBeGreaterThan(100);
    });
  }

  test("the hand reader handles most of the well-formed bodies generated (the fuzz reaches it)", () => {
    const random = prng(99);
    const { pick, body } = generator(random);
    const parse = JSON.parse;
    let calls = 0;
    JSON.parse = (...a: Parameters<typeof JSON.parse>) => (calls++, parse(...a));
    let byHand = 0;
    try {
      for (let n = 0; n < 2000; n++) {
        const kind = pick([Kind.req, Kind.pub, Kind.rep]);
        const json = Buffer.from(body(kind));
        const before = calls;
        try {
          decodeMessage(frameOf(kind, 1, json, random));
        } catch {
          continue;
        }
        if (calls === before) byHand++;
      }
    } finally {
      JSON.parse = parse;
    }
    expect(byHand).toBeGreaterThan(300);
  });
});

test("the names the reader keeps (NAMES) are short: a peer's long names are read, not kept", () => {
  const kept = () => (NAMES as unknown as { names: string[] }).names;
  // Eight distinct long names, as a peer that has not said hello yet may send them (a frame may
  // be 64 MiB: the cache held 8 such strings, 512 MiB, for as long as nobody used 8 others).
  for (let i = 0; i < 8; i++) {
    const fn = `${"a".repeat(100_000)}${i}`;
    const json = Buffer.from(`{"fn":"${fn}","args":[],"target":"${"t".repeat(5000)}${i}","timeoutMs":5}`);
    const message = decodeMessage(frameOf(Kind.req, 1, json, prng(i)));
    expect(message.body).toStrictEqual({ fn, args: [], target: `${"t".repeat(5000)}${i}`, timeoutMs: 5 });
  }
  expect(Math.max(0, ...kept().map((name) => name.length))).toBeLessThanOrEqual(1024);
  // Short ones are still kept, and still right.
  const short = decodeMessage(frameOf(Kind.pub, 0, Buffer.from(`{"topic":"lab.t","args":[1]}`), prng(9)));
  expect(short.body).toStrictEqual({ topic: "lab.t", args: [1] });
  expect(kept()).toContain("lab.t");
});

test("a body of many keys alike costs the key cache (KEYS) a few comparisons per byte, not 64 per key", () => {
  // Keys of one length that differ only at their end, new in every body: each was compared with
  // every kept key of its length (up to 64) before being read, 20-45 times what JSON.parse of the
  // same kilobyte costs.
  const body = (length: number, salt: number) => {
    const entries: string[] = [];
    for (let k = 0; entries.join(",").length < 900; k++) entries.push(`"${"a".repeat(length - 5)}${String(salt * 1000 + k).padStart(5, "0")}":0`);
    return Buffer.from(`{"v":{${entries.join(",")}}}`);
  };
  for (const length of [8, 32, 128]) {
    const frames = Array.from({ length: 20 }, (_, salt) => frameOf(Kind.rep, 1, body(length, salt), prng(salt)));
    const compared = vi.spyOn(String.prototype, "charCodeAt");
    let bytes = 0;
    try {
      for (const frame of frames) {
        bytes += frame.length;
        expect(Object.keys(decodeMessage(frame).body.v).length).toBeGreaterThan(5);
      }
      expect(compared.mock.calls.length / bytes, `keys of ${length}`).toBeLessThan(8);
    } finally {
      compared.mockRestore();
    }
  }
});

test("a stream's keys move to the front of the key cache (KEYS): a record costs a few comparisons after many keys read once", () => {
  // A process reads many keys once (its welcome, the pool's entries), then a stream of records
  // alike: each of the stream's keys was compared with every key kept before it, of its length.
  const once = [..."ACDEFGHIJKLMNOPQRTUVWXYZacdefghijklmnopq"].map((key, i) => `"${key}":${i}`).join(",");
  decodeMessage(frameOf(Kind.rep, 1, Buffer.from(`{"v":{${once}}}`), prng(1)));
  const record = (s: number) => frameOf(Kind.pub, 0, Buffer.from(`{"topic":"lab.t","args":[{"s":${s},"b":"x"}]}`), prng(s));
  // Each record moves its keys one place forward: within 60 they lead, wherever they started.
  for (let s = 0; s < 60; s++) decodeMessage(record(s));
  const compared = vi.spyOn(String.prototype, "charCodeAt");
  try {
    for (let s = 60; s < 160; s++) expect(decodeMessage(record(s)).body).toStrictEqual({ topic: "lab.t", args: [{ s, b: "x" }] });
    // Two keys of one character and the topic, each found within the first places.
    expect(compared.mock.calls.length / 100).toBeLessThan(12);
  } finally {
    compared.mockRestore();
  }
});
