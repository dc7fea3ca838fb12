import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, test } from "vitest";
import { register, subscribe, watch } from "../../lib/index.js";
import { decoratedMethods } from "../../lib/decorators.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

// Decorators applied by hand, with exactly the arguments each of TypeScript's modes passes, so
// that a JavaScript caller or a cast gets the same refusal the compiler gives.
function tc39(kind: string, name: string, isStatic = false) {
  return { kind, name, static: isStatic, private: false, addInitializer() {}, access: {}, metadata: {} };
}

describe("decorators at run time", () => {
  test("bare and called forms mark instance methods in both modes", () => {
    class Lab {
      add(a: number, b: number) {
        return a + b;
      }
      onTemp() {}
    }
    const proto = Lab.prototype as unknown as Record<string, Function>;
    (register as Function)(proto["add"], tc39("method", "add"));
    (subscribe as Function)(proto, "onTemp", Object.getOwnPropertyDescriptor(proto, "onTemp"));
    const marked = decoratedMethods(new Lab());
    expect(marked.map((m) => [m.key, m.register, m.subscribe])).toEqual([
      ["add", {}, undefined],
      ["onTemp", undefined, [{ pattern: undefined, group: undefined }]],
    ]);
  });

  test.each([
    ["a static method (TC39)", () => (register as Function)(() => 1, tc39("method", "reset", true)), '@register goes on instance methods, not on the static method "reset"'],
    ["a static method (experimental)", () => (register as Function)(class {}, "reset", { value() {}, configurable: true }), '@register goes on instance methods, not on the static member "reset"'],
    ["a field (TC39)", () => (register() as Function)(undefined, tc39("field", "count")), '@register goes on instance methods, not on the field "count"'],
    ["a field (experimental)", () => (register() as Function)({}, "count", undefined), '@register goes on instance methods, not on the field "count"'],
    ["a getter (TC39)", () => (subscribe("x") as Function)(() => 1, tc39("getter", "value")), '@subscribe goes on instance methods, not on the getter "value"'],
    ["an accessor (experimental)", () => (subscribe as Function)({}, "value", { get() {}, configurable: true }), '@subscribe goes on instance methods, not on the accessor "value"'],
    ["a static subscriber (TC39)", () => (watch("t") as Function)(() => 1, tc39("method", "poll", true)), '@watch goes on instance methods, not on the static method "poll"'],
  ])("refused on %s, naming it", (_what, apply, message) => {
    expect(apply).toThrow(new TypeError(message));
  });

  test("bare @watch says it needs a topic", () => {
    expect(() => (watch as Function)(() => 1, tc39("method", "level"))).toThrow('@watch needs a topic: @watch("lab.lights.level")');
  });
});

// test/types/decorators.ts holds accepted members and `@ts-expect-error` refused ones; the
// compiler fails on a refusal that is not an error, in either mode.
test.each(["test/types/tsconfig.json", "test/types/tsconfig.tc39.json"])("the compiler accepts only instance methods (%s)", (config) => {
  const tsc = spawnSync(process.execPath, [`${ROOT}node_modules/typescript/bin/tsc`, "-p", config, "--noEmit"], { cwd: ROOT, encoding: "utf8" });
  expect(tsc.stdout + tsc.stderr).toBe("");
  expect(tsc.status).toBe(0);
}, 120_000);
