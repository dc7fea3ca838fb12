import { spawn, spawnSync } from "node:child_process";
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cac } from "cac";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { registerCalls } from "../../cli/commands/calls.js";
import { CLI_PATH, PACKAGE_ROOT } from "../../lib/paths.js";
import { ECHO, ranToEnd, TestHost, type CliResult } from "../helpers.js";

/**
 * The command as a user runs it, `node bin/labc.js`: the network commands start from dist/cli.cjs
 * with a V8 code cache, the others import dist/cli.js (docs/performance.md, the CLI's start). Each
 * must print and exit as dist/cli.js itself does, with no cache yet and with one.
 */

const BIN = join(PACKAGE_ROOT, "bin", "labc.js");
let host: TestHost;

beforeAll(async () => {
  host = await TestHost.start();
  await host.serve([ECHO]);
  writeFileSync(join(host.dir, "argument.json"), '{"from":"a file"}\n');
});
afterAll(() => host.cleanup());

/** Runs `node <entry> ...args` on the test host, to its end. */
function run(entry: string, args: string[], input?: string): Promise<CliResult> {
  const child = spawn(process.execPath, [entry, ...args], {
    env: host.env,
    cwd: host.dir,
    stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
  });
  if (input !== undefined) child.stdin!.end(input);
  return ranToEnd(child, `node ${entry} ${args.join(" ")}`, 20000);
}

// labc map's progress line holds its rate, which differs from run to run.
const printed = ({ code, stdout, stderr }: CliResult) => ({ code, stdout, stderr: stderr.replace(/\d+\/s/g, "N/s") });

const cacheFiles = () => readdirSync(join(host.dir, "labc")).filter((file) => file.endsWith(".v8")).sort();

describe("bin/labc.js starts each command as dist/cli.js runs it", () => {
  test("bin/labc.js starts from the bundle exactly the commands cli/commands/calls.ts registers", () => {
    const listed = /const NETWORK_COMMANDS = new Set\((\[[^\]]*\])\)/.exec(readFileSync(BIN, "utf8"));
    expect(listed).not.toBeNull();
    const cli = cac("labc");
    registerCalls(cli);
    expect((JSON.parse(listed![1]!) as string[]).sort()).toEqual(cli.commands.map((command) => command.name).sort());
  });

  const cases: [string, string[], string?][] = [
    ["a call", ["call", "echo", "hi"]],
    ["typed arguments", ["call", "add", "1", "2"]],
    ["--json", ["call", "echo", '{"a":[1,true]}', "--json"]],
    ["an argument from stdin", ["call", "echo", "-"], "lines\nfrom stdin\n"],
    ["an argument from a file", ["call", "echo", "@argument.json", "--json"]],
    ["an argument file that is not there (exit 2)", ["call", "echo", "@nothere.json"]],
    ["too few arguments (exit 2)", ["call", "echo"]],
    ["no such function (exit 1)", ["call", "nosuch"]],
    ["a missing argument of the command (exit 2)", ["call"]],
    ["an option without its value (exit 2)", ["call", "echo", "hi", "--timeout"]],
    ["call --help", ["call", "--help"]],
    ["map --help", ["map", "--help"]],
    ["publish --help", ["publish", "--help"]],
    ["subscribe --help", ["subscribe", "--help"]],
    ["a publication", ["publish", "lab.print", "from bin"]],
    ["--help", ["--help"]],
    ["--version", ["--version"]],
    ["an unknown command (exit 2)", ["bogus"]],
    ["labc ls", ["ls"]],
  ];
  test.each(cases)("%s", async (_, args, input) => {
    const expected = printed(await run(CLI_PATH, args, input));
    // The first run of a network command writes its cache as it exits; the second starts from it.
    expect(printed(await run(BIN, args, input))).toEqual(expected);
    expect(printed(await run(BIN, args, input))).toEqual(expected);
  });

  test("map, from a file of items", async () => {
    writeFileSync(join(host.dir, "items.txt"), "a\nb\n3\n");
    const expected = printed(await run(CLI_PATH, ["map", "echo", "items.txt", "--json"]));
    expect(expected).toMatchObject({ code: 0, stdout: '["a","b",3]\n' });
    expect(printed(await run(BIN, ["map", "echo", "items.txt", "--json"]))).toEqual(expected);
  });

  test("a call loads no Node module it does not use: TLS, fs/promises, perf_hooks, readline", async () => {
    // Each costs the start of every call (docs/performance.md, the CLI's start, eighth session).
    const preload = join(host.dir, "modules-loaded.cjs");
    const list = join(host.dir, "modules-loaded.txt");
    writeFileSync(preload, `process.on("exit", () => require("node:fs").writeFileSync(${JSON.stringify(list)}, process.moduleLoadList.join("\\n")));\n`);
    const child = spawn(process.execPath, ["--require", preload, BIN, "call", "echo", "hi"], { env: host.env, cwd: host.dir, stdio: ["ignore", "pipe", "pipe"] });
    expect(await ranToEnd(child, "labc call echo hi", 20000)).toMatchObject({ code: 0, stdout: "hi\n" });
    const loaded = readFileSync(list, "utf8").split("\n");
    expect(loaded).toContain("NativeModule net");
    // By their internal names too: `require("node:fs").promises` loads internal/fs/promises only.
    const unused = /^NativeModule (tls|_tls_wrap|fs\/promises|internal\/fs\/promises|perf_hooks|internal\/perf\/performance|readline|internal\/readline\/.*)$/;
    expect(loaded.filter((name) => unused.test(name))).toEqual([]);
  });

  test("output that cannot be written (a full disk) is one line and exit code 1, from either entry", () => {
    for (const entry of [BIN, CLI_PATH]) {
      const full = openSync("/dev/full", "w");
      try {
        const ran = spawnSync(process.execPath, [entry, "call", "echo", "hi"], { env: host.env, cwd: host.dir, stdio: ["ignore", full, "pipe"], timeout: 20000 });
        expect({ entry, code: ran.status, stderr: ran.stderr.toString() }).toEqual({ entry, code: 1, stderr: "labc: cannot write the output: ENOSPC: no space left on device, write\n" });
      } finally {
        closeSync(full);
      }
    }
  });

  test("one cache per network command, in $XDG_CACHE_HOME/labc, none for the others", () => {
    const names = cacheFiles().map((file) => file.split("-")[1]);
    expect(names).toEqual(["call", "map", "publish", "subscribe"]);
  });

  test("a cache that does not fit is replaced, and the command still runs", async () => {
    const file = cacheFiles().find((name) => name.startsWith("cli-call-"))!;
    writeFileSync(join(host.dir, "labc", file), Buffer.from("not V8's cached data"));
    expect(printed(await run(BIN, ["call", "echo", "hi"]))).toEqual({ code: 0, stdout: "hi\n", stderr: "" });
    expect(readFileSync(join(host.dir, "labc", file)).length).toBeGreaterThan(1000);
    expect(printed(await run(BIN, ["call", "echo", "hi"]))).toEqual({ code: 0, stdout: "hi\n", stderr: "" });
  });

  test("other builds' caches: the three newest stay when a cache is written, older ones go", async () => {
    const dir = join(host.dir, "labc");
    const current = cacheFiles().find((name) => name.startsWith("cli-call-"))!;
    rmSync(join(dir, current));
    const others = [1, 2, 3, 4, 5].map((age) => {
      const name = `cli-call-${"0".repeat(15)}${age}-${process.version}-${process.arch}.v8`;
      writeFileSync(join(dir, name), "another build's");
      utimesSync(join(dir, name), Date.now() / 1000 - age * 60, Date.now() / 1000 - age * 60);
      return name;
    });
    expect(printed(await run(BIN, ["call", "echo", "hi"]))).toEqual({ code: 0, stdout: "hi\n", stderr: "" });
    expect(cacheFiles().filter((name) => name.startsWith("cli-call-"))).toEqual([...others.slice(0, 3), current].sort());
  });

  test("subscribe prints what is published and ends on Ctrl-C", async () => {
    const child = spawn(process.execPath, [BIN, "subscribe", "lab.start.*"], { env: host.env, cwd: host.dir, stdio: ["ignore", "pipe", "pipe"] });
    const ended = ranToEnd(child, "labc subscribe", 20000);
    let seen = "";
    child.stdout!.on("data", (chunk: Buffer) => (seen += chunk));
    await new Promise<void>((ready) => child.stderr!.on("data", (chunk: Buffer) => chunk.toString().includes("Ctrl-C stops") && ready()));
    expect((await run(BIN, ["publish", "lab.start.x", "42"])).stderr).toMatch(/published on lab\.start\.x to 1 server/);
    await expect.poll(() => seen, { timeout: 5000 }).toBe("lab.start.x 42\n");
    child.kill("SIGINT");
    expect(await ended).toMatchObject({ code: 0, stdout: "lab.start.x 42\n" });
  });
});

describe("the labc command loads reflect-metadata on first use", () => {
  test("a service tsc compiled with emitDecoratorMetadata, served by bin/labc.js, shows its types", async () => {
    const dir = join(host.dir, "tsc-built");
    mkdirSync(join(dir, "node_modules"), { recursive: true });
    symlinkSync(PACKAGE_ROOT, join(dir, "node_modules", "labc"));
    writeFileSync(join(dir, "package.json"), '{ "type": "module" }\n');
    writeFileSync(
      join(dir, "gauge.ts"),
      'import { register } from "labc";\nexport class Gauge {\n  @register() reading(channel: number, label: string, at: Date) { return [channel, label, at]; }\n}\n',
    );
    const tsc = spawnSync(
      process.execPath,
      [join(PACKAGE_ROOT, "node_modules", "typescript", "bin", "tsc"), "--experimentalDecorators", "--emitDecoratorMetadata", "--target", "ES2022",
        "--module", "NodeNext", "--moduleResolution", "NodeNext", "--skipLibCheck", "--outDir", dir, join(dir, "gauge.ts")],
      { encoding: "utf8" },
    );
    expect(tsc.stdout + tsc.stderr).toBe("");
    const server = spawn(process.execPath, [BIN, "serve", join(dir, "gauge.js")], { env: host.env, cwd: host.dir, stdio: ["ignore", "pipe", "pipe"] });
    try {
      await new Promise<void>((serving, failed) => {
        server.stdout!.on("data", (chunk: Buffer) => chunk.toString().includes("labc: serving") && serving());
        server.once("exit", (code) => failed(new Error(`serve exited (${code})`)));
      });
      const listed = await run(BIN, ["ls", "--long"]);
      expect(listed.stdout).toMatch(/^reading\(channel: number, label: string, at: Date\) /m);
    } finally {
      server.kill("SIGKILL");
    }
  });

  test("`labc call` through bin/labc.js leaves Reflect without metadata functions", async () => {
    const probe = join(host.dir, "probe.cjs");
    writeFileSync(probe, 'process.on("exit", () => process.stderr.write(`reflect-metadata: ${typeof Reflect.getOwnMetadata}\\n`));\n');
    const child = spawn(process.execPath, ["--require", probe, BIN, "call", "echo", "hi"], { env: host.env, cwd: host.dir, stdio: ["ignore", "pipe", "pipe"] });
    const result = await ranToEnd(child, "labc call with a probe", 20000);
    expect(result).toMatchObject({ code: 0, stdout: "hi\n", stderr: "reflect-metadata: undefined\n" });
  });
});
