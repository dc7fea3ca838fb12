import { describe, expect, test } from "vitest";
import { arity, countProblem, formatSignature, paramsOfFunction, typesInSource } from "../../lib/signature.js";

describe("parameters from a function's text", () => {
  class Sample {
    add(a: number, b: number) {
      return a + b;
    }
    async *gen(n = 3, { x, y } = { x: 1, y: 2 }, ...rest: unknown[]) {
      yield [n, x, y, rest];
    }
    tricky(a: string /* c, d */, b = (x: number) => x >= 1, c = "a,b)", d = [1, 2]) {
      return [a, b, c, d];
    }
  }

  test.each([
    ["a method", Sample.prototype.add, [{ name: "a" }, { name: "b" }]],
    ["defaults, destructuring and rest", Sample.prototype.gen, [{ name: "n", optional: true }, { name: "{ x, y }", optional: true }, { name: "rest", rest: true }]],
    ["commas and parentheses inside comments, strings and defaults", Sample.prototype.tricky, [{ name: "a" }, { name: "b", optional: true }, { name: "c", optional: true }, { name: "d", optional: true }]],
    ["an arrow function", (x: number, y: number) => x + y, [{ name: "x" }, { name: "y" }]],
    ["a function", async function named(a: unknown) { return a; }, [{ name: "a" }]],
  ])("%s", (_what, fn, params) => {
    expect(paramsOfFunction(fn as Function)?.map((p) => ({ ...p, name: p.name.replace(/\s+/g, " ") }))).toEqual(params);
  });

  test("a native or bound function has none to read", () => {
    expect(paramsOfFunction(Math.max)).toBeUndefined();
    expect(paramsOfFunction(function f(a: number) { return a; }.bind(null))).toBeUndefined();
  });
});

describe("types from a TypeScript source", () => {
  test("each decorated method once, with types, ? and rest; other methods left out", () => {
    const source = `
      export class Lights {
        @register() set(level: number, fade?: number) {}
        helper(x: string) {}
        @register({
          scope: "host", // a comment (with parentheses)
        })
        @watch("lab.lights")
        async scene<T extends object>(this: Lights, name: string, cb: (x: number) => void = () => {}, opts: { a: string, b: Map<string, number> } = { a: "=" }, ...more: Buffer[]): Promise<void> {}
        @subscribe("lab.#") public onAny(topic: string) {}
      }`;
    expect(typesInSource(source)).toEqual([
      { method: "set", params: [{ name: "level", type: "number" }, { name: "fade", type: "number", optional: true }] },
      {
        method: "scene",
        params: [
          { name: "name", type: "string" },
          { name: "cb", type: "(x: number) => void", optional: true },
          { name: "opts", type: "{ a: string, b: Map<string, number> }", optional: true },
          { name: "more", type: "Buffer[]", rest: true },
        ],
      },
      { method: "onAny", params: [{ name: "topic", type: "string" }] },
    ]);
  });
});

test("arity, the count check and the signature as shown", () => {
  const entry = { name: "scale", scope: "network" as const, visibility: "public" as const, params: [{ name: "v", type: "number" }, { name: "f", optional: true }] };
  expect(formatSignature(entry)).toBe("scale(v: number, f?)");
  expect(arity(entry.params)).toEqual([1, 2]);
  expect(countProblem(entry, 1)).toBeUndefined();
  expect(countProblem(entry, 3)).toBe("scale(v: number, f?) takes 1 to 2 arguments, not 3");
  expect(countProblem({ ...entry, params: [{ name: "v" }, { name: "r", rest: true }] }, 0)).toBe("scale(v, ...r) takes at least 1 argument, not 0");
  expect(countProblem({ ...entry, params: undefined }, 99)).toBeUndefined();
  expect(formatSignature({ ...entry, params: undefined })).toBe("scale(...)");
});
