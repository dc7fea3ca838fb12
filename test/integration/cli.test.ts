import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { PACKAGE_ROOT } from "../../lib/paths.js";
import { ECHO, TestHost, running, type Served } from "../helpers.js";

let host: TestHost;
let echo: Served;

beforeAll(async () => {
  host = await TestHost.start();
  echo = await host.serve([ECHO]);
});
afterAll(() => host.cleanup());

describe("labc call", () => {
  test("prints a string result as it is", async () => {
    const result = await host.cli(["call", "echo", "Hello World!"]);
    expect(result).toMatchObject({ code: 0, stdout: "Hello World!\n", stderr: "" });
  });

  test("parses arguments as JSON when they are JSON, strings otherwise", async () => {
    expect((await host.cli(["call", "add", "1", "2"])).stdout).toBe("3\n");
    expect((await host.cli(["call", "echo", '{"a":[1,true]}', "--json"])).stdout).toBe('{"a":[1,true]}\n');
    expect((await host.cli(["call", "echo", '"42"', "--json"])).stdout).toBe('"42"\n');
    expect((await host.cli(["call", "echo", "not json"])).stdout).toBe("not json\n");
    expect((await host.cli(["call", "add", "--", "-1", "2"])).stdout).toBe("1\n");
  });

  test("an argument from stdin (-) or from a file (@path): text read as typed, other bytes as bytes", async () => {
    expect(await host.cliWithInput(["call", "echo", "-"], "lines\nfrom stdin\n")).toMatchObject({ code: 0, stdout: "lines\nfrom stdin\n" });
    expect((await host.cliWithInput(["call", "add", "-", "2"], "40\n")).stdout).toBe("42\n");
    writeFileSync(join(host.dir, "args.json"), '{"a":[1,true]}\n');
    writeFileSync(join(host.dir, "blob.bin"), Buffer.from([0, 1, 2, 255]));
    expect((await host.cli(["call", "echo", "@args.json", "--json"])).stdout).toBe('{"a":[1,true]}\n');
    expect((await host.cli(["call", "echo", "@blob.bin", "--json"])).stdout).toBe('{"$binary":"AAEC/w=="}\n');
    expect((await host.cli(["call", "echo", "@@home"])).stdout).toBe("@home\n");
    const published = await host.cliWithInput(["publish", "lab.print", "-"], "from a pipe");
    expect(published.stderr).toMatch(/published on lab\.print to 1 server/);
    await echo.waitFor(/^from a pipe$/, 5000);
    const missing = await host.cli(["call", "echo", "@nowhere.json"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^labc: cannot read the argument file nowhere\.json: ENOENT.*\(write @@ for a text starting with @\)\n$/);
    const twice = await host.cliWithInput(["call", "add", "-", "-"], "1");
    expect(twice).toMatchObject({ code: 2, stderr: "labc: only one argument can come from stdin (-)\n" });
  });

  test("fails with one line and a non-zero exit code", async () => {
    const missing = await host.cli(["call", "nowhere"]);
    expect(missing.code).toBe(1);
    expect(missing.stdout).toBe("");
    expect(missing.stderr).toMatch(
      /^labc: no function "nowhere" in network scope \(searched \d+ server\(s\) on 1 host\(s\)\) \[LABC_NO_SUCH_FUNCTION\]\n$/,
    );
    const scope = await host.cli(["call", "echo", "x", "--scope", "planet"]);
    expect(scope.code).toBe(2);
    expect(scope.stderr).toMatch(/--scope must be one of server, host, network/);
    const timeout = await host.cli(["call", "echo", "x", "--timeout", "soon"]);
    expect(timeout.code).toBe(1);
    expect(timeout.stderr).toMatch(/call\.timeout: expected a number of seconds/);
  });
});

describe("pub/sub from the shell", () => {
  test("`labc publish` makes the subscriber print, `labc subscribe` prints what arrives", async () => {
    const watcher = host.spawn(["subscribe", "lab.#"]);
    let seen = "";
    watcher.stdout!.on("data", (chunk) => (seen += chunk));
    await new Promise<void>((resolve) => watcher.stderr!.on("data", (chunk) => String(chunk).includes("subscribed") && resolve()));

    const published = await host.cli(["publish", "lab.print", "hi"]);
    expect(published.code).toBe(0);
    expect(published.stderr).toMatch(/published on lab\.print to 2 server\(s\)/);
    await echo.waitFor(/^hi$/, 5000);
    await host.cli(["publish", "lab.temp.room1", "21.5", '{"unit":"C"}']);
    // Piped, one line per message: objects as compact JSON, a text with a line break quoted.
    await expect.poll(() => seen, { timeout: 5000 }).toContain('lab.temp.room1 21.5 {"unit":"C"}\n');
    expect(seen).toContain("lab.print hi\n");
    await host.cli(["publish", "lab.note", '"two\\nlines"']);
    await expect.poll(() => seen, { timeout: 5000 }).toContain('lab.note "two\\nlines"\n');
    watcher.kill("SIGINT");
  });
});

describe("in a pipeline", () => {
  test("a reader that stops early ends `labc subscribe` quietly, not with a stack trace", async () => {
    const watcher = host.spawn(["subscribe", "lab.piped"]);
    let stderr = "";
    watcher.stderr!.on("data", (chunk) => (stderr += chunk));
    const exited = new Promise<number | null>((resolve) => watcher.once("exit", resolve));
    await expect.poll(() => stderr, { timeout: 5000 }).toContain("subscribed");
    const first = new Promise<void>((resolve) => watcher.stdout!.once("data", () => resolve()));
    await host.cli(["publish", "lab.piped", "one"]);
    await first;
    watcher.stdout!.destroy(); // as `head -1` does after its line
    for (let i = 0; i < 3 && watcher.exitCode === null; i++) await host.cli(["publish", "lab.piped", "more"]);
    expect(await exited).toBe(0);
    expect(stderr).not.toMatch(/EPIPE|at /);
  });
});

describe("other commands", () => {
  test("`labc ls` lists the host's functions and subscriptions", async () => {
    const result = await host.cli(["ls"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^FUNCTION\s+SCOPE\s+VISIBILITY\s+HOST\s+PID\s+ADDRESS/);
    for (const name of ["add", "echo", "echo.add", "echo.echo"]) {
      expect(result.stdout).toMatch(new RegExp(`^${name.replace(".", "\\.")}\\s+network\\s+public\\s+\\S+\\s+${echo.pid}\\s`, "m"));
    }
    expect(result.stdout).toMatch(new RegExp(`^lab\\.print\\s+\\S+\\s+${echo.pid}`, "m"));
  });

  test("`labc config` shows every value and where it came from", async () => {
    writeFileSync(join(host.dir, "labc.toml"), "[call]\ntimeout = 9\n");
    const result = await host.cli(["config", "--set", "call.scope=host"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^router\.port\s+\d+\s+env LABC_ROUTER_PORT/m);
    expect(result.stdout).toMatch(new RegExp(`^call\\.timeout\\s+9\\s+${join(host.dir, "labc.toml")}`, "m"));
    expect(result.stdout).toMatch(/^call\.scope\s+"host"\s+flag/m);
    expect(result.stdout).toMatch(/^wire\.max_frame_size\s+67108864\s+default/m);
    // NATS's password is never printed, only that it is set.
    const withPass = await host.cli(["config"], { LABC_BACKPLANE_PASS: "hunter2" });
    expect(withPass.stdout).toMatch(/^backplane\.pass\s+\(set\)\s+env LABC_BACKPLANE_PASS/m);
    expect(withPass.stdout).not.toContain("hunter2");
  });

  test("a bad config file stops every command with the file, key and expectation", async () => {
    writeFileSync(join(host.dir, "labc.toml"), "[router]\nport = \"high\"\n");
    const result = await host.cli(["call", "echo", "x"]);
    writeFileSync(join(host.dir, "labc.toml"), "");
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(`labc: ${join(host.dir, "labc.toml")}: router.port: expected a port number from 0 to 65535, got "high" [LABC_CONFIG]\n`);
  });

  test("--help, --version, unknown commands and unknown options", async () => {
    const help = await host.cli(["--help"]);
    expect(help.code).toBe(0);
    for (const command of ["serve", "call", "publish", "subscribe", "ls", "config", "demo"]) {
      expect(help.stdout).toContain(`  ${command}`);
    }
    const callHelp = await host.cli(["call", "--help"]);
    expect(callHelp.stdout).toMatch(/--timeout <seconds>/);
    const version = await host.cli(["--version"]);
    const { version: expected } = JSON.parse(readFileSync(join(PACKAGE_ROOT, "package.json"), "utf8"));
    expect(version.stdout).toContain(expected);
    const unknown = await host.cli(["frobnicate"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toBe('labc: unknown command "frobnicate"; see labc --help\n');
    // An option no command takes, with no command: a typo, not a request for help.
    const typo = await host.cli(["--bogus"]);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toBe("labc: Unknown option `--bogus`; see labc --help\n");
    const global = await host.cli(["--port", String(host.port)]);
    expect(global.code).toBe(0);
    expect(global.stdout).toContain("Usage:");
  });

  test("`labc serve` names the file and the reason when it cannot serve it", async () => {
    const missing = await host.cli(["serve", "nope.ts"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/nope\.ts: no such file or folder \[LABC_SERVICE_LOAD\]/);
    const plain = join(host.dir, "plain.ts");
    writeFileSync(plain, "export const x = 1;\n");
    const empty = await host.cli(["serve", plain]);
    expect(empty.stderr).toContain(`${plain}: exports no class with @register or @subscribe methods`);
    const broken = join(host.dir, "broken.ts");
    writeFileSync(broken, "export class {\n");
    const syntax = await host.cli(["serve", broken]);
    expect(syntax.code).toBe(1);
    expect(syntax.stderr).toContain(`${broken}: does not load`);
    const none = await host.cli(["serve"]);
    expect(none.code).toBe(2);
  });

  test("a service outside any package, with TC39 decorators, imports labc and serves", async () => {
    const file = join(host.dir, "greeter.ts");
    writeFileSync(file, 'import { register } from "labc";\nexport class Greeter {\n  @register() greet(who: string) { return `hello ${who}`; }\n}\n');
    await host.serve([file]);
    expect((await host.cli(["call", "greeter.greet", "lab"])).stdout).toBe("hello lab\n");
  });

  test("values beyond JSON print in a form that says what they are", async () => {
    const file = join(host.dir, "kinds.ts");
    writeFileSync(file, [
      'import { register } from "labc";',
      "export class Kinds {",
      "  @register() big() { return 2n ** 70n; }",
      '  @register() kinds() { return { when: new Date(0), tags: new Set(["a"]), byName: new Map([["x", 1n]]), gain: new Float32Array([0.5]), bad: NaN }; }',
      "}",
      "",
    ].join("\n"));
    await host.serve([file]);
    expect((await host.cli(["call", "big"])).stdout).toBe("1180591620717411303424\n");
    const expected = '{"when":"1970-01-01T00:00:00.000Z","tags":{"$set":["a"]},"byName":{"$map":[["x",{"$bigint":"1"}]]},"gain":{"$Float32Array":[0.5]},"bad":{"$number":"NaN"}}';
    expect((await host.cli(["call", "kinds", "--json"])).stdout).toBe(`${expected}\n`);
    expect(JSON.parse((await host.cli(["call", "kinds"])).stdout)).toEqual(JSON.parse(expected));
  });

  test("`labc call` prints a stream's items as they come: a line each, binary data as its bytes", async () => {
    const file = join(host.dir, "lines.ts");
    writeFileSync(file, [
      'import { register } from "labc";',
      "export class Lines {",
      '  @register() async *lines() { yield "one"; yield { two: 2 }; yield Buffer.from("three\\n"); }',
      "  @register() async *endless() { for (let i = 0; ; i++) yield i; }",
      "}",
      "",
    ].join("\n"));
    await host.serve([file]);
    expect(await host.cli(["call", "lines"])).toMatchObject({ code: 0, stdout: 'one\n{"two":2}\nthree\n', stderr: "" });
    expect((await host.cli(["call", "lines", "--json"])).stdout).toBe('"one"\n{"two":2}\n{"$binary":"dGhyZWUK"}\n');
    // A reader that closes the pipe ends the command, and the producer with it.
    const head = await host.node(["-e", `
      const { spawn } = require("node:child_process");
      const child = spawn(process.execPath, [${JSON.stringify(join(PACKAGE_ROOT, "bin", "labc.js"))}, "call", "endless"], { stdio: ["ignore", "pipe", "inherit"] });
      child.stdout.once("data", (chunk) => { process.stdout.write(chunk.toString().split("\\n")[0]); child.stdout.destroy(); });
      child.on("exit", (code) => process.stdout.write(" exit " + code));
    `]);
    expect(head.stdout).toBe("0 exit 0");
  });

  test("`labc map` calls once per item, prints the results in order and its progress on stderr", async () => {
    const items = join(host.dir, "items.txt");
    writeFileSync(items, "alpha\n42\n\n[1,2]\n");
    const mapped = await host.cli(["map", "echo", items]);
    expect(mapped.code).toBe(0);
    expect(mapped.stdout).toBe("alpha\n42\n[1,2]\n");
    // Piped, progress is plain lines: the first, and the last with the time it took.
    expect(mapped.stderr).toMatch(/^labc: echo 0\/3 {2}0\.0\/s {2}ETA -\n(.*\n)*labc: echo 3\/3 {2}[\d.]+\/s {2}took 0:0\d\n$/);
    const json = await host.cliWithInput(["map", "echo", "-", "--json"], '["a", {"b": 1}]');
    expect(json.stdout).toBe('["a",{"b":1}]\n');
    const missing = await host.cli(["map", "echo", join(host.dir, "none.json")]);
    expect(missing).toMatchObject({ code: 2, stderr: expect.stringMatching(/cannot read the items file .*none\.json: ENOENT/) });
    const failing = await host.cli(["map", "nowhere", items]);
    expect(failing.code).toBe(1);
    expect(failing.stdout).toMatch(/^error: no function "nowhere"/);
    expect(failing.stderr).toMatch(/labc: 3 of 3 item\(s\) of nowhere failed\n$/);
  });

  test("`labc demo` runs the main job and exits cleanly", async () => {
    const demo = await host.cli(["demo"], {}, 30000);
    expect(demo.stderr).toBe("");
    expect(demo.code).toBe(0);
    expect(demo.stdout).toContain('-> "Hello World!"');
    expect(demo.stdout).toContain("-> 3");
    expect(demo.stdout).toContain("identical");
    expect(demo.stdout).toMatch(/\[server pid \d+\] hello subscribers/);
    const routerPid = Number(/the router \(pid (\d+)\)/.exec(demo.stdout)![1]);
    await expect.poll(() => running(routerPid)).toBe(false);
  });
});
