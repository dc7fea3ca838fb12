import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, expect, test } from "vitest";
import { LABC_URL } from "../../lib/paths.js";
import { compiled } from "../../lib/services/compile.js";

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((dir) => rmSync(dir, { recursive: true, force: true })));

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
