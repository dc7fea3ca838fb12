import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import { describe, expect, test } from "vitest";

/**
 * The layout docs/architecture.md draws, held: rooms small enough to read, no import circle, the
 * process side (lib/runtime/) and the router side (lib/router/) apart, and the lower floors
 * knowing nothing of what stands on them.
 */

const ROOT = join(__dirname, "..", "..");
const MAX_LINES = 400;

function sources(folder: string): string[] {
  return readdirSync(join(ROOT, folder), { recursive: true, encoding: "utf8" })
    .filter((file) => file.endsWith(".ts") && !file.endsWith(".d.ts"))
    .map((file) => join(folder, file));
}

const files = [...sources("lib"), ...sources("cli")];

/** Every module a file imports (values and types, static and dynamic), as paths from the root. */
function importsOf(file: string): string[] {
  const text = readFileSync(join(ROOT, file), "utf8");
  const found = new Set<string>();
  for (const match of text.matchAll(/(?:from\s+|import\s*\(\s*)"(\.{1,2}\/[^"]+)"/g)) {
    found.add(normalize(join(dirname(file), match[1]!)).replace(/\.js$/, ".ts"));
  }
  return [...found];
}

const graph = new Map(files.map((file) => [file, importsOf(file).filter((target) => files.includes(target))]));

/** Which floor a file stands on; a file may import its own floor and those below. */
function floor(file: string): number {
  if (/^lib\/(errors|log|paths|metrics|clock)\.ts$/.test(file)) return 0; // they import nothing of labc (metrics.ts but clock.ts)
  if (file.startsWith("lib/wire/")) return 1;
  if (file.startsWith("lib/net/") || file.startsWith("lib/trust/")) return 2;
  if (file.startsWith("lib/runtime/") || file.startsWith("lib/router/") || file === "lib/index.ts") return 4;
  if (file.startsWith("cli/")) return 5;
  return 3; // pool, discovery, services, backplane, config, the server and what it runs
}

describe("the house", () => {
  test(`no file of lib/ or cli/ is over ${MAX_LINES} lines`, () => {
    const big = files
      .map((file) => ({ file, lines: readFileSync(join(ROOT, file), "utf8").split("\n").length - 1 }))
      .filter(({ lines }) => lines > MAX_LINES);
    expect(big).toEqual([]);
  });

  test("no import circle", () => {
    const circles: string[] = [];
    const state = new Map<string, "open" | "done">();
    const path: string[] = [];
    const visit = (file: string) => {
      state.set(file, "open");
      path.push(file);
      for (const target of graph.get(file) ?? []) {
        if (state.get(target) === "open") circles.push([...path.slice(path.indexOf(target)), target].join(" -> "));
        else if (!state.has(target)) visit(target);
      }
      path.pop();
      state.set(file, "done");
    };
    for (const file of files) if (!state.has(file)) visit(file);
    expect(circles).toEqual([]);
  });

  test("the process side and the router side do not import each other", () => {
    const crossing = [...graph].flatMap(([file, targets]) =>
      targets
        .filter((target) => (file.startsWith("lib/runtime/") && target.startsWith("lib/router/")) || (file.startsWith("lib/router/") && target.startsWith("lib/runtime/")))
        .map((target) => `${file} -> ${target}`),
    );
    expect(crossing).toEqual([]);
  });

  test("no import runs from a lower floor up", () => {
    const upward = [...graph].flatMap(([file, targets]) =>
      targets.filter((target) => floor(target) > floor(file)).map((target) => `${file} -> ${target}`),
    );
    expect(upward).toEqual([]);
  });

  test("lib/ times deadlines and durations by one clock, lib/clock.ts (hooks.ts's documented startedAt aside)", () => {
    // Mixed, they would expire every deadline at once: nowMs() counts from the boot, performance.now() from the start.
    const code = (file: string) => readFileSync(join(ROOT, file), "utf8").replace(/\/\*[\s\S]*?\*\/|\/\/.*/g, "");
    const other = files.filter((file) => file.startsWith("lib/") && file !== "lib/hooks.ts" && /\bperformance\.now\(/.test(code(file)));
    expect(other).toEqual([]);
  });

  test("the checks see the whole tree", () => {
    expect(files.length).toBeGreaterThan(50);
    expect(relative(ROOT, join(ROOT, "lib", "index.ts"))).toBe(join("lib", "index.ts"));
    expect(graph.get(join("lib", "index.ts"))!.length).toBeGreaterThan(5);
  });
});
