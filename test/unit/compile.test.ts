import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, afterEach, beforeAll, expect, test } from "vitest";
import { LABC_URL } from "../../lib/paths.js";
import { compiled } from "../../lib/services/compile.js";

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((dir) => rmSync(dir, { recursive: true, force: true })));
// Builds go to the user's cache folder: this test's own.
const cache = mkdtempSync(join(tmpdir(), "labc-cache-"));
beforeAll(() => {
  process.env["XDG_CACHE_HOME"] = cache;
});
afterAll(() => rmSync(cache, { recursive: true, force: true }));

function service(): string {
  const dir = mkdtempSync(join(tmpdir(), "labc-compile-"));
  dirs.push(dir);
  const file = join(dir, "greeter.ts");
  writeFileSync(file, 'import { register } from "labc";\nexport class Greeter {\n  @register() hi() { return "hi"; }\n}\n');
  return file;
}

test("a service is compiled once, bound to this copy of labc, and reused while nothing changed", async () => {
  const file = service();
  const out = await compiled(file);
  expect(readFileSync(out, "utf8")).toContain(`from "${LABC_URL}"`);
  writeFileSync(out, "// the cached build\n");
  expect(await compiled(file)).toBe(out);
  expect(readFileSync(out, "utf8")).toBe("// the cached build\n");
});

test("a build made against another copy of labc is made again", async () => {
  const file = service();
  const out = await compiled(file);
  const record = out.replace(/\.mjs$/, ".inputs.json");
  const built = JSON.parse(readFileSync(record, "utf8"));
  writeFileSync(record, JSON.stringify({ ...built, labc: "file:///elsewhere/labc.js" }));
  writeFileSync(out, "// built against the other copy\n");
  await compiled(file);
  expect(readFileSync(out, "utf8")).toContain(`from "${LABC_URL}"`);
});

test("the build goes to the cache folder, not the project; packages resolve from the service's folder", async () => {
  const file = service();
  const dir = join(file, "..");
  // A package installed beside the service, as in a project of the user's.
  mkdirSync(join(dir, "node_modules", "shade"), { recursive: true });
  writeFileSync(join(dir, "node_modules", "shade", "package.json"), '{"name":"shade","type":"module","exports":"./main.js"}');
  writeFileSync(join(dir, "node_modules", "shade", "main.js"), 'export const tone = "dark";\n');
  writeFileSync(file, 'import { register } from "labc";\nimport { tone } from "shade";\nimport { hostname } from "node:os";\nexport class Greeter {\n  @register() hi() { return tone + typeof hostname; }\n}\n');
  const out = await compiled(file);
  expect(out.startsWith(join(cache, "labc", "builds"))).toBe(true);
  expect(readdirSync(dir).sort()).toEqual(["greeter.ts", "node_modules"]);
  const { Greeter } = await import(pathToFileURL(out).href);
  expect(new Greeter().hi()).toBe("darkfunction");
  // A package that is not installed names itself.
  writeFileSync(file, 'import { nothing } from "not-installed-anywhere";\nexport const x = nothing;\n');
  await expect(compiled(file)).rejects.toThrow(/does not load: Could not resolve "not-installed-anywhere"/);
});
