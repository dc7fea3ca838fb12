import { describe, expect, test } from "vitest";
import { BadArgumentsError, MalformedFrameError } from "../../lib/errors.js";
import { decodeMessage, encodeMessage, encodeReply, encodeRequest } from "../../lib/wire/codec.js";
import { Kind } from "../../lib/wire/message.js";
import { frameOf } from "../../bench/hostile-peer.js";

const bytes = (value: Buffer | Buffer[]) => Buffer.concat([value].flat());
const decode = (frame: Buffer | Buffer[]) => decodeMessage(bytes(frame).subarray(4));
const roundTrip = (value: unknown) => decode(encodeReply(1, value)).body.v;

/** A frame of `kind` whose body is `json` (no binary parts), as a hostile peer writes it, less its length prefix. */
const rawFrame = (kind: Kind, json: string) => frameOf(kind, 1, json).subarray(4);

describe("values beyond JSON", () => {
  class Custom extends Error {
    details = { attempt: 3, when: new Date(7) };
  }
  const cases: [string, unknown][] = [
    ["Date", new Date(1_700_000_000_123)],
    ["invalid Date", new Date(Number.NaN)],
    ["Map with any keys", new Map<unknown, unknown>([["a", 1], [2, new Date(5)], [{ k: 1 }, new Set([1])]])],
    ["Set", new Set(["x", 2, null])],
    ["BigInt", [0n, 255n, -255n, 2n ** 200n, -(2n ** 64n)]],
    ["undefined in arrays", [1, undefined, [undefined], 3]],
    ["numbers JSON changes", [Number.NaN, Infinity, -Infinity, -0, 0]],
    ["typed arrays", [new Float32Array([1.5, -2]), new Int16Array([-3, 4]), new BigInt64Array([-5n]), new Uint8Array([1]), new Uint8ClampedArray([9]), new Float64Array([Math.PI])]],
    ["ArrayBuffer and DataView", [new Uint8Array([1, 2, 3]).buffer, new DataView(new Uint8Array([4, 5]).buffer)]],
    ["Buffer", Buffer.from("hi")],
    ["RegExp", /a+(b)?/giu],
    ["nested in everything", { list: [new Map([["m", [new Set([10n])]]])], at: { deep: new Date(0) } }],
  ];

  test.each(cases)("%s arrives as what was sent", (_name, value) => {
    const back = roundTrip(value);
    expect(back).toStrictEqual(value);
  });

  test("a hole in an array arrives as undefined", () => {
    const back = roundTrip([1, , 3]); // eslint-disable-line no-sparse-arrays
    expect(back).toHaveLength(3);
    expect(Object.hasOwn(back, 1)).toBe(true);
    expect(back[1]).toBeUndefined();
  });

  test("typed arrays keep their type, also where the part is not aligned in the frame", () => {
    // One byte of binary data first puts the next part at an odd offset in the frame.
    const [odd, floats] = decode(encodeRequest(1, "f", [new Uint8Array([1]), new Float64Array([1.25, 2.5])], undefined)).body.args;
    expect(odd).toBeInstanceOf(Uint8Array);
    expect(Buffer.isBuffer(odd)).toBe(false);
    expect(floats).toBeInstanceOf(Float64Array);
    expect([...floats]).toEqual([1.25, 2.5]);
  });

  test("errors arrive with name, message, cause and their own fields, without the sender's stack", () => {
    const sent = new Custom("disk full", { cause: new RangeError("quota") });
    const back = roundTrip([sent, new TypeError("t"), new AggregateError([new Error("one")], "many")]);
    expect(back[0]).toBeInstanceOf(Error);
    expect(back[0].message).toBe("disk full");
    expect(back[0].details).toStrictEqual({ attempt: 3, when: new Date(7) });
    expect(back[0].cause).toBeInstanceOf(RangeError);
    expect(back[0].cause.message).toBe("quota");
    expect(Object.keys(back[0])).toEqual(["details"]);
    expect(back[0].stack).toBe("Error: disk full");
    expect(back[1]).toBeInstanceOf(TypeError);
    expect(back[2]).toBeInstanceOf(AggregateError);
    expect(back[2].errors[0].message).toBe("one");
    const named = Object.assign(new Error("x"), { name: "SensorError" });
    expect(roundTrip(named).name).toBe("SensorError");
  });

  test("plain values are written as plain JSON, without a list of kinds", () => {
    const value = { a: [1, "two", null, { b: true }], c: 1.5, skipped: undefined };
    const text = bytes(encodeReply(1, value)).subarray(16).toString();
    expect(text).toBe(JSON.stringify({ v: value }));
  });

  test("the encoding is the one docs/protocol.md shows", () => {
    const text = bytes(encodeRequest(2, "log", [new Date(0), 10n, [undefined], new Map([["k", new Set([1])]])], undefined)).subarray(16).toString();
    expect(text).toBe(
      `{"fn":"log","args":[0,"a",[null],[["k",[1]]]],"$types":[["Date","args",0],["BigInt","args",1],` +
        `["undefined","args",2,0],["Set","args",3,0,1],["Map","args",3]]}`,
    );
  });

  test.each([
    ["a function", { when: () => 1 }, /^args\[0\]\.when: a function \(when\) cannot be sent$/],
    ["a symbol in an array", [1, Symbol("s")], /^args\[0\]\[1\]: a symbol \(Symbol\(s\)\) cannot be sent$/],
    ["a function in a Map", new Map([["k", { f() {} }]]), /^args\[0\]\.get\("k"\)\.f: a function/],
    ["a function in a Set", new Set([Math.max]), /^args\[0\]<item 0>: a function \(max\)/],
    ["a function as an error's field", Object.assign(new Error("e"), { retry: () => 1 }), /^args\[0\]\.retry: a function/],
  ])("%s fails with its path", (_name, value, message) => {
    let thrown: unknown;
    try {
      encodeRequest(1, "f", [value], undefined);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(BadArgumentsError);
    expect((thrown as Error).message).toMatch(message);
  });

  test("a value too deep or cyclic fails with a path cut short", () => {
    const cyclic: Record<string, unknown> = {};
    cyclic["self"] = cyclic;
    expect(() => encodeReply(1, { at: new Date(0), cyclic })).toThrow(/^result\.cyclic\.self\.self.*…: nested deeper than \d+ levels \(or cyclic\)$/);
  });

  test.each([
    ["an unknown kind", `{"v":1,"$types":[["Function","v"]]}`, /unknown value kind "Function"/],
    ["a path that does not exist", `{"v":[1],"$types":[["Date","v",5]]}`, /does not exist/],
    ["a path through the prototype", `{"v":{},"$types":[["Date","v","__proto__"]]}`, /does not exist/],
    ["a path through a string", `{"v":"abc","$types":[["Date","v",0]]}`, /bad typed value's path/],
    ["a bad entry", `{"v":1,"$types":[["Date"]]}`, /bad "\$types" entry/],
    ["a list that is not a list", `{"v":1,"$types":{"0":1}}`, /not a list/],
    ["a BigInt that is not hex", `{"v":"-x12","$types":[["BigInt","v"]]}`, /bad BigInt value/],
    ["a Map of loose items", `{"v":[1,2],"$types":[["Map","v"]]}`, /bad Map value/],
    ["a number JSON can carry", `{"v":"5","$types":[["Number","v"]]}`, /bad Number value/],
    ["a bad RegExp", `{"v":["(",""],"$types":[["RegExp","v"]]}`, /bad RegExp value/],
    ["a typed array without binary data", `{"v":[1],"$types":[["Float32Array","v"]]}`, /bad Float32Array value/],
    ["an error without a message", `{"v":{"name":"E"},"$types":[["Error","v"]]}`, /bad Error value/],
  ])("a hostile peer's %s is a malformed frame", (_name, json, message) => {
    expect(() => decodeMessage(rawFrame(Kind.rep, json))).toThrow(MalformedFrameError);
    expect(() => decodeMessage(rawFrame(Kind.rep, json))).toThrow(message);
  });

  test("an error's fields named __proto__ or constructor stay plain fields", () => {
    const body = `{"v":{"name":"constructor","message":"m","__proto__":{"polluted":1}},"$types":[["Error","v"]]}`;
    const error = decodeMessage(rawFrame(Kind.rep, body)).body.v;
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe("constructor");
    expect(Object.getPrototypeOf(error)).toBe(Error.prototype);
    expect(Object.hasOwn(error, "__proto__")).toBe(true);
    expect(({} as Record<string, unknown>)["polluted"]).toBeUndefined();
  });

  test("a message's own keys are not mistaken for user data", () => {
    const message = decode(encodeMessage(Kind.pub, 0, { topic: "t", args: [{ $types: [["Date", "x"]], x: 1 }] }));
    expect(message.body.args[0]).toStrictEqual({ $types: [["Date", "x"]], x: 1 });
  });
});
