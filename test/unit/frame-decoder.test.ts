import { describe, expect, test, vi } from "vitest";
import { FrameTooLargeError, MalformedFrameError } from "../../lib/errors.js";
import { decodeMessage, encodeMessage, encodePublication, encodeReply, encodeRequest } from "../../lib/wire/codec.js";
import { publicationFrame, replyFrame, requestFrame, type Frame } from "../../lib/wire/frame-text.js";
import { FrameDecoder } from "../../lib/wire/frame-decoder.js";
import { DEFAULT_LIMITS } from "../../lib/wire/limits.js";
import { Kind, type Message } from "../../lib/wire/message.js";

/** A frame made as text (the hot paths' all-ASCII frames), else undefined. */
const asText = (made: Frame) => (typeof made === "string" ? made : undefined);
const frame = (kind: Kind, id: number, body: object) => Buffer.concat([encodeMessage(kind, id, body)].flat());

function decodeAll(chunks: Buffer[], max = DEFAULT_LIMITS.maxFrameBytes): Message[] {
  const decoder = new FrameDecoder(max);
  const out: Message[] = [];
  for (const chunk of chunks) decoder.push(chunk, (f) => out.push(decodeMessage(f)));
  expect(decoder.idle).toBe(true);
  return out;
}

const messages = [
  frame(Kind.req, 1, { fn: "echo", args: ["Hello World!"] }),
  frame(Kind.rep, 1, { v: { nested: [1, 2, { deep: "ü€😀" }] } }),
  frame(Kind.pub, 0, { topic: "lab.print", args: [null, true, 3.5] }),
  frame(Kind.req, 2, { fn: "size", args: [Buffer.from([1, 2, 3]), { data: new Uint8Array(1000).fill(7) }] }),
];
const stream = Buffer.concat(messages);

describe("FrameDecoder", () => {
  test("decodes frames coalesced in one chunk", () => {
    const out = decodeAll([stream]);
    expect(out.map((m) => m.kind)).toEqual([Kind.req, Kind.rep, Kind.pub, Kind.req]);
    expect(out[1]!.body.v.nested[2].deep).toBe("ü€😀");
  });

  test("decodes frames fed byte by byte", () => {
    const bytes = [...stream].map((byte) => Buffer.from([byte]));
    expect(decodeAll(bytes)).toEqual(decodeAll([stream]));
  });

  test("decodes frames split at every possible point", () => {
    const whole = decodeAll([stream]);
    for (let at = 1; at < stream.length; at += 7) {
      expect(decodeAll([stream.subarray(0, at), stream.subarray(at)])).toEqual(whole);
    }
  });

  test("from a lent chunk, a frame with binary parts is a copy and one without is a view", () => {
    // A chunk of its own memory, as a read slab is (not Node's shared pool of small buffers).
    const joined = Buffer.concat([messages[0]!, messages[3]!]);
    const chunk = Buffer.alloc(joined.length);
    joined.copy(chunk);
    const frames: Buffer[] = [];
    new FrameDecoder(1024 * 1024, undefined, true).push(chunk, (f) => frames.push(f));
    const [plain, binary] = frames;
    expect(plain!.buffer).toBe(chunk.buffer);
    // Not lent (a socket's own read buffer): no copy.
    const views: Buffer[] = [];
    new FrameDecoder(1024 * 1024).push(chunk, (f) => views.push(f));
    expect(views.every((f) => f.buffer === chunk.buffer)).toBe(true);
    // What the receiver keeps is its own: it does not hold the slab (64 KiB) alive.
    const kept = decodeMessage(binary!).body.args[0] as Buffer;
    expect(kept.buffer).not.toBe(chunk.buffer);
    chunk.fill(0);
    expect([...kept]).toEqual([1, 2, 3]);
  });

  test("refuses a declared length over the limit before buffering the body", () => {
    const decoder = new FrameDecoder(1024);
    const header = Buffer.alloc(4);
    header.writeUInt32BE(1_000_000_000);
    expect(() => decoder.push(header, () => {})).toThrow(FrameTooLargeError);
    // Terminal: the stream is no longer trusted.
    expect(() => decoder.push(messages[0]!, () => {})).toThrow(FrameTooLargeError);
  });

  test("refuses a length shorter than a message header", () => {
    expect(() => new FrameDecoder(1024).push(Buffer.from([0, 0, 0, 3, 1, 2, 3]), () => {})).toThrow(MalformedFrameError);
  });

  test("refuses garbage inside a well-framed message", () => {
    const garbage = Buffer.from("this is not a labc message at all");
    const framed = Buffer.concat([Buffer.from([0, 0, 0, garbage.length]), garbage]);
    expect(() => decodeAll([framed])).toThrow(MalformedFrameError);
  });
});

describe("codec", () => {
  test("binary values travel as raw bytes, not base64, and come back byte-exact", () => {
    const payload = Buffer.alloc(100_000, 0xab);
    const parts = encodeMessage(Kind.req, 9, { fn: "echo", args: [payload] });
    expect(Array.isArray(parts)).toBe(true);
    const total = Buffer.concat([parts].flat());
    expect(total.length).toBeLessThan(payload.length + 200);
    const [message] = decodeAll([total]);
    expect(Buffer.isBuffer(message!.body.args[0])).toBe(true);
    expect(message!.body.args[0].equals(payload)).toBe(true);
  });

  test("binary values nested in objects and arrays, and typed arrays, come back in place", () => {
    const body = { fn: "f", args: [{ a: [1, new Uint8Array([9, 8])], b: new Float32Array([1.5]) }, "x"] };
    const [message] = decodeAll([frame(Kind.req, 1, body)]);
    const [first, second] = message!.body.args;
    expect([...first.a[1]]).toEqual([9, 8]);
    expect(new Float32Array(first.b.buffer.slice(first.b.byteOffset, first.b.byteOffset + 4))[0]).toBe(1.5);
    expect(second).toBe("x");
    // The caller's own objects are not touched.
    expect(body.args[0]).toHaveProperty("a.1", new Uint8Array([9, 8]));
  });

  test("a binary path naming __proto__ stays a plain key", () => {
    const json = JSON.stringify({ args: [{}], $bin: [["args", 0, "__proto__"]] });
    const head = Buffer.alloc(16);
    const blob = Buffer.from([1, 2]);
    head.writeUInt32BE(12 + json.length + 4 + 2, 0);
    head.writeUInt8(Kind.pub, 4);
    head.writeUInt16BE(1, 6);
    head.writeUInt32BE(json.length, 12);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(2);
    const [message] = decodeAll([Buffer.concat([head, Buffer.from(json), length, blob])]);
    const target = message!.body.args[0];
    expect(Object.getPrototypeOf(target)).toBe(Object.prototype);
    expect(Object.hasOwn(target, "__proto__")).toBe(true);
  });

  test("unknown kinds and bodies that are not objects are malformed", () => {
    const bad = frame(Kind.req, 1, { fn: "x", args: [] });
    bad.writeUInt8(200, 4);
    expect(() => decodeAll([bad])).toThrow(/unknown message kind/);
  });

  test("values that cannot travel are refused when encoding", () => {
    expect(() => encodeMessage(Kind.req, 1, { fn: "f", args: [Symbol("s")] })).toThrow(/cannot be sent/);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => encodeMessage(Kind.req, 1, { fn: "f", args: [cyclic] })).toThrow(/nested deeper|cyclic/);
  });

  test("a publication is encoded to the same bytes as the message it stands for", () => {
    const cases: [string, unknown[]][] = [
      ["lab.temp", [21.5]],
      ["ünïcode/topic \"quoted\"", [undefined, null, "x", { at: new Date(0), list: [1, undefined] }]],
      ["lab.raw", [Buffer.from([1, 2, 3]), { nested: new Uint8Array([4]) }]],
      ["lab.none", []],
    ];
    for (const [topic, args] of cases) {
      const bytes = (value: Buffer | Buffer[]) => Buffer.concat([value].flat());
      expect(bytes(encodePublication(topic, args))).toEqual(bytes(encodeMessage(Kind.pub, 0, { topic, args })));
    }
    expect(() => encodePublication("t", [() => 1])).toThrow(/args\[0\]: a function .* cannot be sent/);
  });

  test("a publication's text is the bytes of its frame, or undefined when any of them is not ASCII", () => {
    const bytes = (value: Buffer | Buffer[]) => Buffer.concat([value].flat());
    const ascii: [string, unknown[]][] = [["lab.temp", [21.5]], ["bench.msg", [{ s: 1, b: "hello" }]], ["t", []], ["a\"b", ["tab\t", null, [1, { x: "\u0001" }]]], ["t", ["\ud800"]]];
    for (const [topic, args] of ascii) {
      expect(Buffer.from(asText(publicationFrame(topic, args))!, "latin1")).toEqual(bytes(encodePublication(topic, args)));
    }
    // Other characters, values beyond JSON, binary parts: the frame is made as a buffer.
    const other: [string, unknown[]][] = [["lab.é", [1]], ["t", ["é"]], ["t", ["😀"]], ["t", [new Date(0)]], ["t", [Buffer.from([1])]], ["t", [10n]], ["t", [undefined]]];
    for (const [topic, args] of other) expect(asText(publicationFrame(topic, args)), topic).toBeUndefined();
    // Over the size limit: left to encodePublication, which says so.
    const limits = { ...DEFAULT_LIMITS, maxFrameBytes: 64 };
    expect(() => publicationFrame("t", ["x".repeat(100)], limits)).toThrow(/exceeds the maximum frame size/);
    // What cannot travel is left to encodePublication too, whose error names it.
    const refusal = (make: () => unknown) => {
      try {
        make();
      } catch (error) {
        return (error as Error).message;
      }
      return "no refusal";
    };
    expect(refusal(() => publicationFrame("t", [() => 1]))).toBe(refusal(() => encodePublication("t", [() => 1])));
    expect(refusal(() => publicationFrame("t", [() => 1]))).not.toBe("no refusal");
  });

  test("with keys added to Object.prototype, the hot paths do what the encoders do", () => {
    // isPlain reads a plain object's keys without asking whether each is its own: an inherited
    // one is checked too, and can only send the value the encoder's way (a getter that throws
    // included: the encoder's walk reads own keys only).
    const outcome = (make: () => Buffer | Buffer[] | string | undefined) => {
      try {
        const value = make()!;
        return typeof value === "string" ? Buffer.from(value, "latin1") : Buffer.concat([value].flat());
      } catch (error) {
        return (error as Error).message;
      }
    };
    const throwing = {
      get: () => {
        throw new Error("read me not");
      },
    };
    const values = [1, () => 1, new Date(0), undefined].map((value) => ({ value, writable: true }));
    for (const inherited of [...values, throwing]) {
      // Taken while the prototype has the key, compared once it is gone (the test's own
      // comparisons read every enumerable key too).
      const outcomes: [unknown, unknown][] = [];
      Object.defineProperty(Object.prototype, "extra", { ...inherited, enumerable: true, configurable: true });
      try {
        for (const args of [[{ s: 1, b: "hello" }], [{ at: { n: 2 } }], [Object.assign(Object.create(null), { k: 3 })]]) {
          outcomes.push([outcome(() => publicationFrame("lab.t", args)), outcome(() => encodePublication("lab.t", args))]);
          outcomes.push([outcome(() => requestFrame(3, "f", args, 500)), outcome(() => encodeRequest(3, "f", args, 500))]);
        }
      } finally {
        delete (Object.prototype as Record<string, unknown>)["extra"];
      }
      for (const [hot, encoder] of outcomes) {
        // Sent, as without the key: the encoder's walk reads own keys only.
        expect(hot).toEqual(encoder);
        expect(Buffer.isBuffer(hot) && !hot.includes("extra"), String(hot)).toBe(true);
      }
    }
  });

  test("the frames the hot paths send are the encoders' bytes, their JSON made once, text or not", () => {
    const bytes = (value: Buffer | Buffer[] | string) => (typeof value === "string" ? Buffer.from(value, "latin1") : Buffer.concat([value].flat()));
    const cases: unknown[][] = [[{ s: 1, b: "hello" }], [{ t: 21.5, unit: "°C" }], ["😀", "a\u0001"], [new Date(0)], [Buffer.from([1])], []];
    // The names' and timeouts' pieces are made once, at their first use.
    publicationFrame("lab.t", [1]);
    requestFrame(1, "f", [1], 500);
    for (const args of cases) {
      const stringify = vi.spyOn(JSON, "stringify");
      const publication = publicationFrame("lab.t", args);
      const request = requestFrame(9, "f", args, 500);
      const reply = replyFrame(9, args[0]);
      const calls = stringify.mock.calls.length;
      stringify.mockRestore();
      expect(bytes(publication)).toEqual(bytes(encodePublication("lab.t", args)));
      expect(bytes(request)).toEqual(bytes(encodeRequest(9, "f", args, 500)));
      expect(bytes(reply)).toEqual(bytes(encodeReply(9, args[0])));
      // Plain values: one JSON.stringify each (the generic encoder, for the others, makes its own).
      if (args.every((value) => typeof value !== "object" || (value !== null && !(value instanceof Date) && !Buffer.isBuffer(value)))) expect(calls, JSON.stringify(args)).toBe(3);
    }
    expect(typeof publicationFrame("lab.t", [{ unit: "°C" }])).not.toBe("string");
    expect(() => publicationFrame("t", ["x".repeat(100)], { ...DEFAULT_LIMITS, maxFrameBytes: 64 })).toThrow(/exceeds the maximum frame size/);
  });

  test("a request's and a reply's text are the bytes of their frames, whatever the id", () => {
    const bytes = (value: Buffer | Buffer[]) => Buffer.concat([value].flat());
    const ids = [1, 255, 256, 65_535, 0x12345678, 2 ** 31, 2 ** 32 - 1];
    const values: unknown[] = [21.5, null, "x", { a: 1, b: "hello" }, [1, [2, { c: "\u0001" }]], ""];
    for (const id of ids) {
      for (const value of values) {
        for (const timeoutMs of [undefined, 0, 30_000, 1.5]) {
          expect(Buffer.from(asText(requestFrame(id, "echo", [value], timeoutMs))!, "latin1"), `${id} ${timeoutMs}`).toEqual(bytes(encodeRequest(id, "echo", [value], timeoutMs)));
        }
        expect(Buffer.from(asText(replyFrame(id, value))!, "latin1"), String(id)).toEqual(bytes(encodeReply(id, value)));
        // Sent by way of the routers, as the generic encoder writes { fn, args, target, timeoutMs }.
        const forwarded = encodeMessage(Kind.req, id, { fn: "echo", args: [value], target: "s1", timeoutMs: 500 });
        expect(Buffer.from(asText(requestFrame(id, "echo", [value], 500, DEFAULT_LIMITS, undefined, 0, "s1"))!, "latin1")).toEqual(bytes(forwarded));
        expect(bytes(encodeRequest(id, "echo", [value], 500, DEFAULT_LIMITS, undefined, 0, "s1"))).toEqual(bytes(forwarded));
      }
    }
    // A hooked call's trace: text too, the same bytes as the encoder's, with a target or not.
    for (const [timeoutMs, target] of [[undefined, undefined], [500, undefined], [500, "s1"]] as const) {
      const traced = asText(requestFrame(3, "f", [1], timeoutMs, DEFAULT_LIMITS, "0af7651916cd43dd-b7ad6b7169203331", 0, target));
      expect(Buffer.from(traced!, "latin1")).toEqual(bytes(encodeRequest(3, "f", [1], timeoutMs, DEFAULT_LIMITS, "0af7651916cd43dd-b7ad6b7169203331", 0, target)));
    }
    expect(decodeAll([Buffer.from(asText(requestFrame(3, "f", [1], 500, DEFAULT_LIMITS, "t-1"))!, "latin1")])[0]!.body).toEqual({ fn: "f", args: [1], timeoutMs: 500, trace: "t-1" });
    // Flags (a router's FLAG_FAR), other characters (in a trace too), values beyond JSON: buffers.
    expect(asText(requestFrame(1, "f", [1], undefined, DEFAULT_LIMITS, "tracé"))).toBeUndefined();
    expect(asText(requestFrame(1, "f", [1], undefined, DEFAULT_LIMITS, undefined, 1))).toBeUndefined();
    expect(bytes(encodeRequest(1, "f", [1], undefined, DEFAULT_LIMITS, undefined, 1))[5]).toBe(1);
    expect(bytes(encodeRequest(1, "f", [new Date(0)], undefined, DEFAULT_LIMITS, undefined, 1))[5]).toBe(1);
    expect(asText(requestFrame(1, "fé", [1], undefined))).toBeUndefined();
    expect(asText(requestFrame(1, "f", [1], 5, DEFAULT_LIMITS, undefined, 0, "sé"))).toBeUndefined();
    // What a router reads of it, and the server after it: by its shape, no JSON.parse.
    const parse = vi.spyOn(JSON, "parse");
    const [passedOn] = decodeAll([Buffer.from(asText(requestFrame(7, "echo", [{ a: 1, b: "hello" }], 500, DEFAULT_LIMITS, undefined, 0, "s1"))!, "latin1")]);
    expect(parse).not.toHaveBeenCalled();
    parse.mockRestore();
    expect(passedOn!.body).toStrictEqual({ fn: "echo", args: [{ a: 1, b: "hello" }], target: "s1", timeoutMs: 500 });
    const traced = { fn: "f", args: [new Date(0)], target: "s", timeoutMs: 5, trace: "t" };
    expect(bytes(encodeRequest(1, "f", [new Date(0)], 5, DEFAULT_LIMITS, "t", 0, "s"))).toEqual(bytes(encodeMessage(Kind.req, 1, traced)));
    expect(bytes(encodeRequest(1, "f", [1], 5, DEFAULT_LIMITS, "t", 0, "s"))).toEqual(bytes(encodeMessage(Kind.req, 1, { ...traced, args: [1] })));
    expect(asText(requestFrame(1, "f", ["é"], undefined))).toBeUndefined();
    expect(asText(replyFrame(1, undefined))).toBeUndefined();
    expect(asText(replyFrame(1, new Map()))).toBeUndefined();
    expect(asText(replyFrame(1, "é"))).toBeUndefined();
  });

  test("a request and a reply are encoded to the same bytes as the messages they stand for", () => {
    const bytes = (value: Buffer | Buffer[]) => Buffer.concat([value].flat());
    const values: unknown[] = [21.5, undefined, null, "ünï \"q\"", { at: new Date(0), list: [1, undefined] }, Buffer.from([1, 2]), { deep: [new Uint8Array([3])] }, 10n, new Map([[1, NaN]])];
    for (const value of values) {
      for (const timeoutMs of [undefined, 30000, 2.5]) {
        const body = timeoutMs === undefined ? { fn: "lab.f", args: [value] } : { fn: "lab.f", args: [value], timeoutMs };
        expect(bytes(encodeRequest(7, "lab.f", [value], timeoutMs))).toEqual(bytes(encodeMessage(Kind.req, 7, body)));
        const trace = "0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331";
        expect(bytes(encodeRequest(7, "lab.f", [value], timeoutMs, DEFAULT_LIMITS, trace))).toEqual(bytes(encodeMessage(Kind.req, 7, { ...body, trace })));
      }
      expect(bytes(encodeReply(9, value))).toEqual(bytes(encodeMessage(Kind.rep, 9, { v: value })));
    }
    // Names and timeouts are kept as bytes once seen: many of them, and the first ones again.
    for (const round of [0, 1]) {
      for (let i = 0; i < 1500; i += round ? 100 : 1) {
        const fn = `ƒ ${i}`;
        expect(bytes(encodeRequest(i, fn, [i], i))).toEqual(bytes(encodeMessage(Kind.req, i, { fn, args: [i], timeoutMs: i })));
      }
    }
    expect(() => encodeRequest(1, "f", [() => 1], undefined)).toThrow(/cannot be sent/);
    expect(() => encodeReply(1, { f: () => 1 })).toThrow(/result\.f: a function/);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => encodeReply(1, cyclic)).toThrow(/nested deeper|cyclic/);
  });

  test("a body read by its shape is what parsing the whole text gives, or malformed when that fails", () => {
    const textFrame = (kind: Kind, text: string) => {
      const json = Buffer.from(text);
      const head = Buffer.alloc(16);
      head.writeUInt32BE(12 + json.length, 0);
      head.writeUInt8(kind, 4);
      head.writeUInt32BE(3, 8);
      head.writeUInt32BE(json.length, 12);
      return Buffer.concat([head, json]);
    };
    const requests = [
      `{"fn":"f","args":[1],"timeoutMs":0}`, `{"fn":"f","args":[1],"timeoutMs":010}`, `{"fn":"f","args":[1],"timeoutMs":1.5}`,
      `{"fn":"f","args":[1],"timeoutMs":1e3}`, `{"fn":"f","args":[1],"timeoutMs": 5}`, `{"fn":"f","args":[1],"timeoutMs":5 }`,
      `{"fn":"f","args":[1],"timeoutMs":-5}`, `{"fn":"f","args":[1],"timeoutMs":123456789012345}`,
      `{"fn":"f","args":[1],"timeoutMs":12345678901234567}`, `{"fn":"f","args":[1],"timeoutMs":1,"timeoutMs":2}`,
      `{"fn":"f","args":[1],"timeoutMs":}`, `{"fn":"f","args":"x\",\"timeoutMs\":5"}`, `{"fn":"f","args":5,"timeoutMs":5}`,
      `{"fn":"a\"b","args":[]}`, `{"fn":"a\u0041","args":[]}`, `{"fn":"tab\there","args":[]}`, `{"fn":"tab	here","args":[]}`,
      `{"fn":"ünï 😀","args":["€"]}`, `{"fn":"f","args":[1],"fn":"g"}`, `{"fn":"f","args":[1],"extra":true}`,
      `{"fn":"f","args":[1] }`, `{"fn":"f","args": [1]}`, `{ "fn":"f","args":[1]}`, `{"fn":"f","args":[1]`, `{"fn":"f","args":}`,
      `{"fn":"f","args":[1]}}`, `{"fn":"f","args":[1],}`, `{"fn":"f"}`, `{"fn":"f","args":[1],"timeoutMs":5,"timeoutMs":7}`,
      `{"fn":"__proto__","args":{"__proto__":1}}`, `{}`, `[]`, `{"fn":"f","args":[1]} `,
      `{"fn":"f","args":["hello"],"target":"a1","timeoutMs":30000}`, `{"fn":"f","args":[1],"x":[2]}`, `{"fn":"f","args":[1}`,
      `{"fn":"f","args":[1,}`, `{"fn":"f","args":[1]]}`, `{"fn":"f","args":["]"]}`, `{"fn":"f","args":["\\"]}`, `{"fn":"f","args":["\\"]]}`,
      `{"fn":"f","args":1 2}`, `{"fn":"f","args":["x"],"timeoutMs":5}`, `{"fn":"f","args":["x",2,null],"timeoutMs":5}`,
      // Passed on by the routers: a target before the timeout.
      `{"fn":"f","args":[1],"target":"abc","timeoutMs":5}`, `{"fn":"f","args":[{"a":1}],"target":"","timeoutMs":5}`,
      `{"fn":"f","args":[1],"target":"a\"b","timeoutMs":5}`, `{"fn":"f","args":["x","target":"y"],"timeoutMs":5}`,
      `{"fn":"f","args":[1],"target":"ü","timeoutMs":5}`, `{"fn":"f","args":"q","timeoutMs":5}`, `{"fn":"f","args":"target","timeoutMs":5}`,
      `{"fn":"f","args":[1],"target":5,"timeoutMs":5}`, `{"fn":"f","args":[1],"target":"a","timeoutMs":5,"trace":"t"}`,
      `{"fn":"f","args":[1],"x":"y","target":"a","timeoutMs":5}`, `{"fn":"f","args":[1],"target":"a","target":"b","timeoutMs":5}`,
      `{"fn":"f","args":[1] ,"target":"a","timeoutMs":5}`, `{"fn":"f","args":[1],"target":"a" ,"timeoutMs":5}`, `{"fn":"f","args":[1],"target":"a"}`,
      `{"fn":"f","target":"a","args":[1],"timeoutMs":5}`, `{"fn":"f","args":[1],"target":"a\u0001","timeoutMs":5}`, `{"fn":"f","args":[1],"target":"tab	x","timeoutMs":5}`,
      `{"fn":"f","args":[007],"timeoutMs":5}`, `{"fn":"f","args":[-0,true],"timeoutMs":5}`, `{"fn":"f","args":["${"ü".repeat(700)}"],"timeoutMs":5}`,
    ];
    const publications = [`{"topic":"bench.msg","args":[{"s":1,"b":"hello"}]}`, `{"topic":"lab.t","args":[{"t":21.5,"ok":true,"n":null}]}`, `{"topic":"lab.t","args":[1]}`, `{"topic":"lab.t","args":[1],"timeoutMs":5}`, `{"topic":"a\"","args":[]}`, `{"topic":"t","args":[1],"topic":"u"}`];
    const replies = [`{"v":1}`, `{"v":1,"v":2}`, `{"v":}`, `{"v":{"a":[1,"}"]}}`, `{"v":1 }`, `{"error":{"code":"X"}}`, `{"v":"\u0000"}`, `{"v":null}`,
      `{"v":[1]]}`, `{"v":"a"b"}`, `{"v":tru}`, `{"v":nulltrue}`, `{"v":[1,}`, `{"v":"abc}`, `{"v":[1}}`, `{"v":{"a":"}"}}`, `{"v":"\\""}`,
      `{"v":-1.5e3}`, `{"v":"a","w":"b"}`, `{"v":{}}`, `{"v":[]}`, `{"v":""}`, `{"v":x}`,
      // Simple values, read without JSON.parse, and near misses that JSON.parse must judge.
      `{"v":[1,"a",true,false,null,-0,""]}`, `{"v":-0}`, `{"v":-}`, `{"v":[-]}`, `{"v":01}`, `{"v":[01]}`, `{"v":[0]}`,
      `{"v":123456789012345}`, `{"v":-123456789012345}`, `{"v":1234567890123456}`, `{"v":12345678901234567890}`,
      `{"v":"a ü 😀"}`, `{"v":"tab	raw"}`, `{"v":["tab	raw"]}`, `{"v":[1 ,2]}`, `{"v":[1, 2]}`, `{"v":[,]}`, `{"v":[1,]}`,
      `{"v":[,1]}`, `{"v":nul}`, `{"v":[nul]}`, `{"v":truex}`, `{"v":[truex]}`, `{"v":[true]x}`, `{"v":[[1]]}`, `{"v":[1e2]}`,
      `{"v":1.}`, `{"v":[1.5]}`, `{"v":[1E2]}`, `{"v":["a\"b"]}`, `{"v":["a]"]}`, `{"v":["a","b"}`, `{"v":[12x]}`, `{"v":-x}`,
      // Records (objects of simple values) and numbers with fractions and exponents.
      `{"v":{"s":1,"b":"hello"}}`, `{"v":[{"s":1,"b":"hello"}]}`, `{"v":[{},{}]}`, `{"v":[{}]}`, `{"v":{"":1}}`,
      `{"v":{"__proto__":1}}`, `{"v":[{"__proto__":{"x":1}}]}`, `{"v":{"a":1,"__proto__":[]}}`, `{"v":{"constructor":1,"toString":2}}`,
      `{"v":{"a":1,"a":2}}`, `{"v":{"2":1,"1":2,"b":3}}`, `{"v":{"ü":1,"ü":2,"😀":3}}`, `{"v":{"a\"b":1}}`, `{"v":{"a\u0000":1}}`,
      `{"v":{"a":1,}}`, `{"v":{,}}`, `{"v":{"a":}}`, `{"v":{"a"1}}`, `{"v":{"a":1 }}`, `{"v":{ "a":1}}`, `{"v":{"a" :1}}`,
      `{"v":{"a":{"b":1}}}`, `{"v":{"a":[1]}}`, `{"v":{"a":1}x}`, `{"v":{"a":1}}}`, `{"v":{"a":1}`, `{"v":{"a`, `{"v":{"a":"tab	raw"}}`,
      `{"v":[{"a":1},2,"x",{"b":null}]}`, `{"v":[{"a":1}{"b":2}]}`, `{"v":{"a":1}{"b":2}}`, `{"v":{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6}}`,
      `{"v":{"a":1.5,"b":-2e-3,"c":1E+2,"d":0.0,"e":-0.0}}`, `{"v":[1.5,-0.0,1e400,-1e-400,12345678901234567890.5,0.1,1e22,5e-324]}`,
      `{"v":[1.]}`, `{"v":[.5]}`, `{"v":[1e]}`, `{"v":[1e+]}`, `{"v":[-.5]}`, `{"v":[01.5]}`, `{"v":[0.5e1.2]}`, `{"v":[1.5.5]}`,
      `{"v":[-]}`, `{"v":[1e5x]}`, `{"v":[0.000001,123456.789,9007199254740993,-9007199254740993.0]}`, `{"v":1.7976931348623157e308}`,
    ];
    const cases: [Kind, string][] = [
      ...requests.map((text) => [Kind.req, text] as [Kind, string]),
      ...publications.map((text) => [Kind.pub, text] as [Kind, string]),
      ...replies.map((text) => [Kind.rep, text] as [Kind, string]),
      [Kind.rep, requests[0]!], [Kind.req, replies[0]!], [Kind.pub, requests[1]!],
    ];
    for (const [kind, text] of cases) {
      let whole: unknown;
      try {
        whole = JSON.parse(text);
      } catch {
        expect(() => decodeAll([textFrame(kind, text)]), text).toThrow(MalformedFrameError);
        continue;
      }
      if (typeof whole !== "object" || whole === null || Array.isArray(whole)) {
        expect(() => decodeAll([textFrame(kind, text)]), text).toThrow(/not an object/);
        continue;
      }
      // A well-formed body of another shape is parsed whole, never after a failed try: a throw
      // costs ten small parses (a forwarded request, with its target, made the router 5x slower).
      const parse = vi.spyOn(JSON, "parse");
      const [message] = decodeAll([textFrame(kind, text)]);
      expect(parse.mock.results.filter((result) => result.type === "throw"), text).toEqual([]);
      parse.mockRestore();
      expect(message!.body, text).toStrictEqual(whole);
      expect(Object.keys(message!.body), text).toEqual(Object.keys(whole));
    }
  });
  test("bodies read by hand agree with JSON.parse on thousands of random values and their near misses", () => {
    let seed = 12345;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
    const scalars = () => pick<() => unknown>([
      () => Math.floor(random() * 1e6) - 5e5, () => (random() - 0.5) * 10 ** Math.floor(random() * 40 - 20), () => -0,
      () => 2 ** 53 + Math.floor(random() * 100), () => pick(["", "hello", "ü", "a\"b", "tab\t", "😀", "__proto__", "\u0000"]),
      () => true, () => false, () => null,
    ])();
    const key = () => pick(["s", "b", "t", "value", "", "1", "2", "__proto__", "constructor", "ü", "a b", "x\"y"]);
    const value = (depth: number): unknown => {
      const roll = random();
      if (depth > 2 || roll < 0.5) return scalars();
      if (roll < 0.75) return Array.from({ length: Math.floor(random() * 4) }, () => value(depth + 1));
      const record: Record<string, unknown> = {};
      for (let i = Math.floor(random() * 4); i > 0; i--) Object.defineProperty(record, key(), { value: value(depth + 1), enumerable: true, configurable: true, writable: true });
      return record;
    };
    const frameOf = (text: string) => {
      const json = Buffer.from(text);
      const head = Buffer.alloc(16);
      head.writeUInt32BE(12 + json.length, 0);
      head.writeUInt8(Kind.rep, 4);
      head.writeUInt32BE(json.length, 12);
      return Buffer.concat([head, json]);
    };
    // The same JSON value: kinds, -0, own keys in order, prototypes.
    const same = (a: unknown, b: unknown): boolean => {
      if (typeof a !== "object" || a === null || typeof b !== "object" || b === null) return Object.is(a, b);
      if (Array.isArray(a) !== Array.isArray(b) || Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
      const keys = Object.getOwnPropertyNames(a);
      if (keys.join("\u0001") !== Object.getOwnPropertyNames(b).join("\u0001")) return false;
      return keys.every((key) => same(Object.getOwnPropertyDescriptor(a, key)!.value, Object.getOwnPropertyDescriptor(b, key)!.value));
    };
    let readByHand = 0;
    for (let n = 0; n < 4000; n++) {
      let text = `{"v":${JSON.stringify(value(0))}}`;
      // A near miss: a byte of the middle dropped, doubled or changed.
      if (n % 2) {
        const at = 5 + Math.floor(random() * (text.length - 6));
        const edit = pick([(t: string) => t.slice(0, at) + t.slice(at + 1), (t: string) => t.slice(0, at) + t[at] + t.slice(at), (t: string) => t.slice(0, at) + pick([",", ":", "}", "]", "{", "[", '"', " ", "e", ".", "-", "0"]) + t.slice(at + 1)]);
        // As bytes: a surrogate pair cut in two is U+FFFD on the wire.
        text = Buffer.from(edit(text)).toString();
      }
      let whole: { v?: unknown };
      try {
        whole = JSON.parse(text);
      } catch {
        expect(() => decodeAll([frameOf(text)]), text).toThrow(MalformedFrameError);
        continue;
      }
      if (typeof whole !== "object" || whole === null || Array.isArray(whole)) continue;
      const parse = vi.spyOn(JSON, "parse");
      const [message] = decodeAll([frameOf(text)]);
      if (parse.mock.calls.length === 0) readByHand++;
      parse.mockRestore();
      // Compared by hand: toStrictEqual takes an own `constructor` key for the object's class.
      expect(same(message!.body, whole), text).toBe(true);
    }
    // The test must cover the reader, not only JSON.parse.
    expect(readByHand).toBeGreaterThan(500);
  });
});
