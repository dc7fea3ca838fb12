import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, expect, test } from "vitest";
import { PACKAGE_ROOT } from "../../lib/paths.js";
import { freePort } from "../../lib/net/free-port.js";
import { installPacked, packLabc } from "../packed.js";

// The package as a user gets it: packed, installed into a project of their own (offline: the
// tarball, and the dependencies this checkout already has), used from ESM, TypeScript,
// CommonJS and the shell, and type-checked under a strict consumer's flags.

let dir: string;
let project: string;
let tarball: string;
let env: NodeJS.ProcessEnv;
let server: ReturnType<typeof spawn> | undefined;

const run = (command: string, args: string[], cwd = project) => {
  const result = spawnSync(command, args, { cwd, env, encoding: "utf8", timeout: 60_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "labc-package-"));
  const packed = packLabc(dir);
  tarball = packed.tarball;
  (globalThis as { packedFiles?: string[] }).packedFiles = packed.files;

  project = join(dir, "project");
  mkdirSync(join(project, "services"), { recursive: true });
  writeFileSync(join(project, "package.json"), '{ "name": "consumer", "version": "1.0.0", "type": "module" }\n');
  installPacked(tarball, project);

  writeFileSync(join(project, "services", "greeter.ts"), 'import { register } from "labc";\nexport class Greeter {\n  @register greet(who: string): string { return `hello ${who}`; }\n}\n');
  writeFileSync(join(project, "use.mjs"), 'import * as labc from "labc";\nconsole.log(await labc.call("greet", "mjs"));\nawait labc.close();\n');
  writeFileSync(join(project, "use.ts"), 'import * as labc from "labc";\nconst answer: string = await labc.call("greet", "ts");\nconsole.log(answer);\nawait labc.close();\n');
  writeFileSync(join(project, "use.cjs"), 'const labc = require("labc");\nlabc.call("greet", "cjs").then((answer) => { console.log(answer); return labc.close(); });\n');
  // The published types refuse a decorator off an instance method, as the sources do.
  writeFileSync(join(project, "refused.ts"), 'import { register } from "labc";\nexport class Wrong {\n  // @ts-expect-error: static\n  @register static reset(): void {}\n}\n');
  const strict = {
    target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", strict: true, exactOptionalPropertyTypes: true,
    noPropertyAccessFromIndexSignature: true, noImplicitOverride: true, skipLibCheck: false, noEmit: true, types: ["node"],
  };
  writeFileSync(join(project, "tsconfig.json"), JSON.stringify({ compilerOptions: { ...strict, experimentalDecorators: true }, include: ["use.ts", "refused.ts", "services"] }));
  writeFileSync(join(project, "tsconfig.tc39.json"), JSON.stringify({ compilerOptions: strict, include: ["use.ts", "refused.ts", "services"] }));

  const state = join(dir, "state");
  env = {
    ...process.env,
    XDG_CONFIG_HOME: state,
    XDG_STATE_HOME: state,
    XDG_CACHE_HOME: state,
    LABC_ROUTER_PORT: String(await freePort()),
    LABC_ROUTER_LINGER: "1",
    LABC_DISCOVERY_ENABLED: "false",
    NODE_DEBUG: "",
  };
  // `labc serve greeter`: found in ./services of the project, as a user runs it.
  server = spawn(process.execPath, [join(project, "node_modules", ".bin", "labc"), "serve", "greeter"], { cwd: project, env, stdio: ["ignore", "pipe", "pipe"] });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("labc serve greeter: not serving in 20 s")), 20_000);
    createInterface({ input: server!.stdout! }).on("line", (line) => {
      if (line.startsWith("labc: serving Greeter")) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}, 90_000);

afterAll(() => {
  server?.kill("SIGTERM");
  rmSync(dir, { recursive: true, force: true });
});

test("the tarball holds the built library, CLI, router, types, docs, license and the Python package (services in Python run it), and nothing of tests, benchmarks or CI", () => {
  const files = (globalThis as { packedFiles?: string[] }).packedFiles!;
  for (const needed of ["dist/labc.js", "dist/cli.js", "dist/router.js", "dist/types/lib/index.d.ts", "bin/labc.js", "README.md", "LICENSE", "docs/protocol.md", "services/service-control.ts", "config.example.toml", "dist/status-page.html", "clients/python/labc/__init__.py", "clients/python/labc/__main__.py"]) {
    expect(files).toContain(needed);
  }
  expect(files.filter((file) => /^(test|bench|\.ci|lib|cli)\/|\.labc-build|^dist\/(lib|bench|test)\/|^tsconfig/.test(file))).toEqual([]);
});

test("installed into a project: import from ESM and from TypeScript under tsx, require, and npx labc", () => {
  expect(run(process.execPath, ["use.mjs"])).toMatchObject({ code: 0, stdout: "hello mjs\n" });
  expect(run(process.execPath, ["--import", "tsx", "use.ts"])).toMatchObject({ code: 0, stdout: "hello ts\n" });
  expect(run(process.execPath, ["use.cjs"])).toMatchObject({ code: 0, stdout: "hello cjs\n" });
  expect(run("npx", ["--no-install", "labc", "call", "greet", "npx"])).toMatchObject({ code: 0, stdout: "hello npx\n" });
  // The service was compiled into the cache folder, not into the project.
  expect(existsSync(join(project, "services", ".labc-build"))).toBe(false);
});

test("a strict consumer's tsc passes against the published types, in both decorator modes", () => {
  const tsc = join(PACKAGE_ROOT, "node_modules", "typescript", "bin", "tsc");
  for (const config of ["tsconfig.json", "tsconfig.tc39.json"]) {
    const checked = run(process.execPath, [tsc, "-p", config]);
    expect(checked.stdout + checked.stderr).toBe("");
    expect(checked.code).toBe(0);
  }
});
