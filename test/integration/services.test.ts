import { existsSync, lstatSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { PACKAGE_ROOT } from "../../lib/paths.js";
import { FIXTURES, TestHost, eventually } from "../helpers.js";

const LIGHT = join(PACKAGE_ROOT, "services", "light-control.ts");

let host: TestHost;
let servicesDir: string;

beforeAll(async () => {
  host = await TestHost.start();
  servicesDir = join(host.dir, "labc", "services");
  mkdirSync(join(host.dir, "labc"), { recursive: true });
  writeFileSync(
    join(host.dir, "labc", "config.toml"),
    [
      "[services.LightControl]",
      'port = "/dev/ttyUSB7"',
      'channels = ["ceiling", "desk", "lab"]',
      "[services.Crasher]",
      'restart = "on-failure"',
      "[services.Needy]",
      'needs = ["LightControl"]',
      "",
    ].join("\n"),
  );
});
afterAll(() => host.cleanup());

const ok = async (args: string[]) => {
  const result = await host.cli(args, {}, 60000);
  if (result.code !== 0) throw new Error(`labc ${args.join(" ")} failed: ${result.stderr}`);
  return result.stdout;
};
const services = async () =>
  JSON.parse(await ok(["services", "--json"])) as { name: string; state: string; pid?: number; stateId: string; restarts: number; lastError?: string }[];

describe("install and uninstall", () => {
  test("install copies a service and lists it as stopped, with its state id", async () => {
    expect(await ok(["install", LIGHT])).toMatch(/installed LightControl \(copied to .*light-control\.ts\)/);
    expect(lstatSync(join(servicesDir, "light-control.ts")).isSymbolicLink()).toBe(false);
    const [light] = (await services()).filter((s) => s.name === "LightControl");
    expect(light).toMatchObject({ state: "stopped", stateId: expect.stringMatching(/^[0-9a-f]{12}$/) });
  });

  test("what does not load, or clashes, is refused with the file and the reason, and nothing changes", async () => {
    const before = readFileSync(join(servicesDir, "services.json"), "utf8");
    const broken = join(host.dir, "broken.ts");
    writeFileSync(broken, "export class Broken {\n");
    const syntax = await host.cli(["install", broken]);
    expect(syntax.code).toBe(1);
    expect(syntax.stderr).toContain(`${broken}: does not load`);
    const plain = join(host.dir, "plain.ts");
    writeFileSync(plain, "export const x = 1;\n");
    expect((await host.cli(["install", plain])).stderr).toContain(`${plain}: exports no class with @register or @subscribe`);
    const again = await host.cli(["install", LIGHT]);
    expect(again.stderr).toMatch(/LightControl is already installed .*; uninstall LightControl first/);
    expect(readFileSync(join(servicesDir, "services.json"), "utf8")).toBe(before);
    expect(existsSync(join(servicesDir, "broken.ts"))).toBe(false);
  });

  test("install -e links: an edit takes effect at the next start, with a new state id", async () => {
    const file = join(host.dir, "greeter.ts");
    const write = (greeting: string) =>
      writeFileSync(file, `import { register } from "labc";\nexport class Greeter {\n  @register() greet() { return "${greeting}"; }\n}\n`);
    write("hello");
    expect(await ok(["install", "-e", file])).toMatch(/installed Greeter \(linked/);
    expect(lstatSync(join(servicesDir, "greeter.ts")).isSymbolicLink()).toBe(true);
    await ok(["start-service", "greeter"]);
    expect(await ok(["call", "greet"])).toBe("hello\n");
    const first = (await services()).find((s) => s.name === "Greeter")!.stateId;
    write("bonjour");
    await ok(["stop-service", "greeter"]);
    await ok(["start-service", "greeter"]);
    expect(await ok(["call", "greet"])).toBe("bonjour\n");
    const second = (await services()).find((s) => s.name === "Greeter")!.stateId;
    expect(second).not.toBe(first);
    expect(await ok(["uninstall", "greet"])).toBe("labc: uninstalled Greeter\n");
    expect(existsSync(file)).toBe(true); // the original of a link stays
    expect(existsSync(join(servicesDir, "greeter.ts"))).toBe(false);
    expect((await host.cli(["call", "greet"])).stderr).toMatch(/no function "greet"/);
  });
});

describe("a service folder", () => {
  test("a folder with a package.json main and files of its own installs, starts and answers", async () => {
    const folder = join(host.dir, "thermo");
    mkdirSync(folder);
    writeFileSync(join(folder, "package.json"), JSON.stringify({ name: "thermo", type: "module", main: "main.ts" }));
    writeFileSync(join(folder, "convert.ts"), "export const toFahrenheit = (c: number) => c * 1.8 + 32;\n");
    writeFileSync(
      join(folder, "main.ts"),
      'import { register } from "labc";\nimport { toFahrenheit } from "./convert.js";\n' +
        "export class Thermo {\n  @register() fahrenheit(c: number) { return toFahrenheit(c); }\n}\n",
    );
    expect(await ok(["install", folder])).toMatch(/installed Thermo \(copied to .*thermo\)/);
    expect(existsSync(join(servicesDir, "thermo", "convert.ts"))).toBe(true);
    await ok(["start-service", "thermo"]);
    expect(await ok(["call", "fahrenheit", "100"])).toBe("212\n");
    await ok(["stop-service", "thermo"]);
    await ok(["uninstall", "thermo"]);
  });
});

describe("start and stop", () => {
  test("a started service serves with its config options; stopping takes its functions out of the pool", async () => {
    const started = await ok(["start-service", "light_control"]);
    expect(started).toMatch(/LightControl\s+running\s+\d+/);
    expect(await ok(["call", "port"])).toBe("/dev/ttyUSB7\n");
    expect(await ok(["call", "light_control.set", "lab", "70"])).toBe("70\n");
    const pid = (await services()).find((s) => s.name === "LightControl")!.pid!;
    expect(readFileSync(`/proc/${pid}/cmdline`, "utf8")).toMatch(/^labc service LightControl/);
    await ok(["stop-service", "LIGHT"]);
    const after = await host.cli(["call", "port"]);
    expect(after.stderr).toMatch(/no function "port"/);
    expect((await services()).find((s) => s.name === "LightControl")).toMatchObject({ state: "stopped" });
    expect(await ok(["logs", "light"])).toMatch(/labc: serving LightControl/);
  });

  test("a service's needs start first", async () => {
    await ok(["install", join(FIXTURES, "needy.ts")]);
    await ok(["start-service", "needy"]);
    expect(await ok(["call", "deskLevel"])).toBe("0\n");
    const states = Object.fromEntries((await services()).map((s) => [s.name, s.state]));
    expect(states).toMatchObject({ Needy: "running", LightControl: "running" });
    await ok(["stop-service", "needy"]);
    await ok(["stop-service", "light"]);
  });

  test("names: unknown, ambiguous and path-like ones are refused with what is there", async () => {
    await ok(["install", join(FIXTURES, "crasher.ts")]);
    const unknown = await host.cli(["start-service", "nothing"]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/no installed service is called "nothing" \(installed: Crasher, LightControl, Needy\) \[LABC_NO_SUCH_SERVICE\]/);
    await ok(["install", join(FIXTURES, "lab.ts")]);
    const lab = await host.cli(["start-service", "l"]);
    expect(lab.stderr).toMatch(/"l" could be any of: Lab, LightControl/);
    expect((await host.cli(["start-service", "../../etc/passwd"])).stderr).toMatch(/is a path, not a service name/);
    await ok(["uninstall", "lab"]);
  });

  test("a service that crashes is recorded, and restarted with a growing pause when it asks for it", async () => {
    await ok(["start-service", "crasher"]);
    const startsIn = (log: string) => [...log.matchAll(/--- (\S+) starting Crasher/g)].map((m) => Date.parse(m[1]!));
    await eventually(async () => startsIn(await ok(["logs", "crasher"])).length >= 3, 15000, "two restarts");
    const crasher = (await services()).find((s) => s.name === "Crasher")!;
    expect(crasher.lastError ?? "").toMatch(/exit code 2/);
    const log = await ok(["logs", "crasher"]);
    const starts = startsIn(log);
    const pauses = starts.slice(1).map((at, i) => at - starts[i]!);
    expect(pauses[1]!).toBeGreaterThan(pauses[0]!);
    expect(log).toContain("crasher: giving up on purpose");
    await ok(["stop-service", "crasher"]);
    const stopped = (await services()).find((s) => s.name === "Crasher")!;
    expect(["stopped", "crashed"]).toContain(stopped.state);
    expect(crasher.restarts).toBeGreaterThanOrEqual(2);
  });
});

describe("state ids", () => {
  test("a call pinned to a state id reaches only a server running it, and says what runs where otherwise", async () => {
    await ok(["start-service", "light"]);
    const { stateId } = (await services()).find((s) => s.name === "LightControl")!;
    expect(await ok(["call", "--state", stateId, "port"])).toBe("/dev/ttyUSB7\n");
    const wrong = await host.cli(["call", "--state", "000000000000", "port"]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(
      new RegExp(`no server runs "port" in state 000000000000 \\(running: ${stateId} on \\S+ \\(pid \\d+\\)\\) \\[LABC_STATE_MISMATCH\\]`),
    );
    await ok(["stop-service", "light"]);
  });
});

describe("services where the user works", () => {
  const service = (className: string, body: string) =>
    `import { register } from "labc";\nexport class ${className} {\n  @register() ${body}\n}\n`;

  test("labc serve NAME takes ./services of the current folder first, then the installed ones, and says where it looked", async () => {
    if (!(await services()).some((s) => s.name === "LightControl")) await ok(["install", LIGHT]);
    mkdirSync(join(host.dir, "services"), { recursive: true });
    writeFileSync(join(host.dir, "services", "greeter.ts"), service("Greeter", 'greet() { return "hello from ./services"; }'));
    writeFileSync(join(host.dir, "services", "light-control.ts"), service("LightControl", 'where() { return "local"; }'));
    const local = await host.serve(["light"]);
    expect(await ok(["call", "where"])).toBe("local\n");
    local.child.kill("SIGTERM");
    await local.exited;
    rmSync(join(host.dir, "services", "light-control.ts"));
    const installed = await host.serve(["LightControl"]);
    expect(await ok(["call", "port"])).toBe("/dev/ttyUSB7\n");
    installed.child.kill("SIGTERM");
    await installed.exited;
    const missing = await host.cli(["serve", "nothing"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(
      new RegExp(`no service "nothing" in ${join(host.dir, "services").replace(/[/.]/g, "\\$&")} \\(greeter\\) or installed \\(.*LightControl.*\\)`),
    );
  });

  test("labc.load(name) serves a local or an installed service inside the calling process", async () => {
    const script = join(host.dir, "load.mjs");
    writeFileSync(
      script,
      `import * as labc from ${JSON.stringify(new URL("../../dist/labc.js", import.meta.url).href)};\n` +
        'const loaded = [...(await labc.load("greeter")), ...(await labc.load("light_control"))];\n' +
        'const here = { scope: "server" };\n' +
        'console.log(JSON.stringify([loaded.map((o) => o.constructor.name), await labc.callWith("greet", [], here), await labc.callWith("port", [], here)]));\n' +
        "await labc.close();\n",
    );
    const result = await host.node([script]);
    expect(result.stderr).toBe("");
    expect(JSON.parse(result.stdout)).toEqual([["Greeter", "LightControl"], "hello from ./services", "/dev/ttyUSB7"]);
  });
});

describe("a service outlives its router", () => {
  test("the next router adopts it, and what it prints after its router died goes to its log: it never ends it", async () => {
    await ok(["install", join(PACKAGE_ROOT, "services", "echo.ts")]);
    await ok(["start-service", "Echo"]);
    const { pid } = (await services()).find((s) => s.name === "Echo")!;
    await ok(["publish", "lab.print", "before its router died"]);
    const router = (await host.routerPid())!;
    process.kill(router, "SIGKILL");
    await eventually(async () => ((await host.routerPid()) ?? router) !== router, 15000, "a new router, started by a service");
    await eventually(async () => (await services()).some((s) => s.name === "Echo" && s.state === "running" && s.pid === pid), 15000, "Echo adopted by the new router");
    // Its stdout is a pipe to the dead router: each print finds it broken, or goes to the log.
    for (let i = 1; i <= 3; i++) await ok(["publish", "lab.print", `after its router died ${i}`]);
    await eventually(async () => (await ok(["logs", "Echo"])).includes("after its router died 3"), 10000, "the prints in Echo's log");
    const log = await ok(["logs", "Echo"]);
    expect(log).toContain("before its router died\n");
    for (let i = 1; i <= 3; i++) expect(log).toContain(`after its router died ${i}\n`);
    expect(await ok(["call", "echo", "still here"])).toBe("still here\n");
    expect((await services()).find((s) => s.name === "Echo")).toMatchObject({ state: "running", pid });
    await ok(["stop-service", "Echo"]);
  });
});
