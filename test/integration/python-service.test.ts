import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { CLI_PATH, PACKAGE_ROOT } from "../../lib/paths.js";
import { FIXTURES, TestHost, eventually, ranToEnd, type CliResult } from "../helpers.js";

/**
 * A service written in Python, installed and run by ServiceControl as a TypeScript one is:
 * `labc install driver.py`, `labc start-service`, its log, state id, needs, and a stop that
 * answers the call in flight.
 */

const python = spawnSync("python3", ["--version"]).status === 0;
const SUPPLY = join(FIXTURES, "power_supply.py");
const ECHO = join(PACKAGE_ROOT, "services", "echo.ts");

let host: TestHost;
let servicesDir: string;

beforeAll(async () => {
  host = await TestHost.start();
  servicesDir = join(host.dir, "labc", "services");
  mkdirSync(join(host.dir, "labc"), { recursive: true });
  writeFileSync(join(host.dir, "labc", "config.toml"), ["[services.PowerSupply]", "volts = 1.5", 'needs = ["Echo"]', "[services.PyCrasher]", 'restart = "on-failure"', ""].join("\n"));
});
afterAll(() => host.cleanup());

const ok = async (args: string[]) => {
  const result = await host.cli(args, {}, 60000);
  if (result.code !== 0) throw new Error(`labc ${args.join(" ")} failed: ${result.stderr}`);
  return result.stdout;
};
const services = async () =>
  JSON.parse(await ok(["services", "--json"])) as { name: string; state: string; pid?: number; stateId: string; source: string; lastError?: string }[];

/** The Python side on this host: `python3 -m labc ...` or a script, with the package of this repository. */
const pyEnv = () => ({
  ...host.env,
  PYTHONPATH: join(PACKAGE_ROOT, "clients", "python"),
  LABC_COMMAND: `${process.execPath} ${CLI_PATH}`,
});
function py(args: string[], ms = 20000): Promise<CliResult> {
  const child = spawn("python3", args, { env: pyEnv(), cwd: host.dir, stdio: ["ignore", "pipe", "pipe"] });
  return ranToEnd(child, `python3 ${args.join(" ")}`, ms);
}

describe.runIf(python)("a Python service", () => {
  test("installs by its class name, with the state id of its file; what does not load is refused with the reason", async () => {
    await ok(["install", ECHO]);
    expect(await ok(["install", SUPPLY])).toMatch(/^labc: installed PowerSupply \(copied to .*power_supply\.py\)\n$/);
    const supply = (await services()).find((s) => s.name === "PowerSupply")!;
    expect(supply).toMatchObject({ state: "stopped", stateId: expect.stringMatching(/^[0-9a-f]{12}$/), source: SUPPLY });
    const manifest = JSON.parse(readFileSync(join(servicesDir, "services.json"), "utf8"));
    expect(manifest.PowerSupply).toMatchObject({ entry: "power_supply.py", classes: ["PowerSupply"], linked: false });

    const broken = await host.cli(["install", join(FIXTURES, "broken_service.py")], { PYTHONPATH: "" }, 60000);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toContain(`${join(FIXTURES, "broken_service.py")}: does not load: RuntimeError: no instrument on /dev/ttyUSB9 [LABC_SERVICE_LOAD]`);
    expect(existsSync(join(servicesDir, "broken_service.py"))).toBe(false);
    const missing = await host.cli(["install", SUPPLY], { LABC_PYTHON: "python3-not-here" });
    expect(missing.stderr).toMatch(/a Python service needs python3-not-here, which is not installed here/);
  });

  test("starts by name (its needs first), runs python3 -m labc serve with its config, and answers labc call and Python", async () => {
    expect(await ok(["start-service", "power_supply"])).toMatch(/PowerSupply\s+running\s+\d+/);
    const listed = await services();
    expect(Object.fromEntries(listed.map((s) => [s.name, s.state]))).toMatchObject({ PowerSupply: "running", Echo: "running" });
    const supply = listed.find((s) => s.name === "PowerSupply")!;
    const command = readFileSync(`/proc/${supply.pid}/cmdline`, "utf8").split("\0");
    expect(command.slice(1)).toEqual(["-m", "labc", "serve", join(servicesDir, "power_supply.py"), "--as", "PowerSupply", ""]);

    // From the TypeScript CLI: the options of [services.PowerSupply] reached the constructor.
    expect(JSON.parse(await ok(["call", "--json", "power_supply.measure"]))).toEqual({ volts: 1.5, unit: "V", pid: supply.pid });
    expect(await ok(["call", "power_supply.set_voltage", "3.3"])).toBe("3.3\n");
    expect(await ok(["call", "power_supply.ramp", "3"])).toBe("0\n0.5\n1\n");
    expect(await ok(["call", "supply_greet", "42"])).toBe("hello 42, from Python\n");
    // Pinned to its state id.
    expect(await ok(["call", "--state", supply.stateId, "supply_greet", "pinned"])).toBe("hello pinned, from Python\n");

    // From Python: the CLI and a script.
    const cli = await py(["-m", "labc", "call", "power_supply.measure"]);
    expect(cli.stderr).toBe("");
    expect(JSON.parse(cli.stdout)).toMatchObject({ volts: 3.3, unit: "V" });
    const script = await py(["-c", 'import labc; print(labc.network.power_supply.measure(0)["volts"], labc.call_with("supply_greet", ["py"], timeout=5))']);
    expect(script).toMatchObject({ code: 0, stdout: "3.3 hello py, from Python\n" });

    // Its subscription works.
    await ok(["publish", "lab.supply.off"]);
    await eventually(async () => (await ok(["call", "power_supply.measure", "0"])).includes('"volts": 0'), 5000, "volts 0 after lab.supply.off");
  });

  test("its log holds its serving line and its prints", async () => {
    const log = await ok(["logs", "power"]);
    expect(log).toMatch(/--- \S+ starting PowerSupply\n/);
    const { stateId } = (await services()).find((s) => s.name === "PowerSupply")!;
    expect(log).toMatch(new RegExp(`labc: serving PowerSupply, supply_greet on 0\\.0\\.0\\.0:\\d+ \\(router on port ${host.port}, pid \\d+, state ${stateId}\\); Ctrl-C stops`));
    expect(log).toContain("measured 1.5 V\n");
    expect(log).toContain("measured 3.3 V\n");
  });

  test("it outlives its router: it starts a new one, whose ServiceControl adopts it", async () => {
    const { pid } = (await services()).find((s) => s.name === "PowerSupply")!;
    const router = (await host.routerPid())!;
    process.kill(router, "SIGKILL");
    await eventually(async () => ((await host.routerPid()) ?? router) !== router, 15000, "a new router, started by a service");
    let seen: unknown;
    await eventually(
      async () => (seen = await services()) && (seen as { name: string; state: string; pid?: number }[]).some((s) => s.name === "PowerSupply" && s.state === "running" && s.pid === pid),
      15000,
      "PowerSupply adopted by the new router",
    ).catch((error) => {
      throw new Error(`${error.message}: ${JSON.stringify(seen)} ${readFileSync(join(host.dir, "labc", "services-running.json"), "utf8")}`);
    });
    expect(await ok(["call", "supply_greet", "again"])).toBe("hello again, from Python\n");
  });

  test("stop-service answers the call in flight, then takes its functions out of the pool", async () => {
    const { pid } = (await services()).find((s) => s.name === "PowerSupply")!;
    const inFlight = host.cli(["call", "--json", "power_supply.measure", "1.5"]);
    await new Promise((done) => setTimeout(done, 500));
    const stopped = await ok(["stop-service", "PowerSupply"]);
    expect(stopped).toMatch(/PowerSupply\s+stopped/);
    const answer = await inFlight;
    expect(answer.stderr).toBe("");
    expect(JSON.parse(answer.stdout)).toMatchObject({ volts: 0, pid });
    // Ended (a zombie at most: after the router's restart it is nobody's child to reap).
    const ended = () => {
      try {
        return readFileSync(`/proc/${pid}/stat`, "utf8").includes(") Z ");
      } catch {
        return true;
      }
    };
    expect(ended()).toBe(true);
    const after = await host.cli(["call", "supply_greet", "x"]);
    expect(after.stderr).toMatch(/no function "supply_greet"/);
    expect((await services()).find((s) => s.name === "PowerSupply")).toMatchObject({ state: "stopped" });
    await ok(["stop-service", "echo"]);
  });

  test("one that crashes is recorded, and restarted with a growing pause when it asks for it", async () => {
    await ok(["install", join(FIXTURES, "py_crasher.py")]);
    await ok(["start-service", "py_crasher"]);
    const startsIn = (log: string) => [...log.matchAll(/--- (\S+) starting PyCrasher/g)].map((m) => Date.parse(m[1]!));
    await eventually(async () => startsIn(await ok(["logs", "py_crasher"])).length >= 3, 15000, "two restarts");
    const crasher = (await services()).find((s) => s.name === "PyCrasher")!;
    expect(crasher.lastError ?? "").toMatch(/exit code 2/);
    expect(crasher.lastError ?? "").toContain("py_crasher: giving up in a moment, on purpose");
    const starts = startsIn(await ok(["logs", "py_crasher"]));
    const pauses = starts.slice(1).map((at, i) => at - starts[i]!);
    expect(pauses[1]!).toBeGreaterThan(pauses[0]!);
    await ok(["stop-service", "py_crasher"]);
    await ok(["uninstall", "py_crasher"]);
  });

  test("python -m labc serve runs the same file in the foreground, with the same state id", async () => {
    const { stateId } = (await services()).find((s) => s.name === "PowerSupply")!;
    const listed = await py(["-m", "labc", "serve", "--list", join(servicesDir, "power_supply.py")]);
    expect(JSON.parse(listed.stdout)).toEqual({ name: "PowerSupply", classes: ["PowerSupply"], functions: ["supply_greet"], subscriptions: [] });
    const child = spawn("python3", ["-m", "labc", "serve", join(servicesDir, "power_supply.py")], { env: pyEnv(), cwd: host.dir, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (chunk) => (out += chunk));
    const exited = new Promise<number | null>((done) => child.once("exit", done));
    try {
      await eventually(() => out.includes("labc: serving"), 15000, "the foreground service serves");
      expect(out).toContain(`state ${stateId});`);
      expect(await ok(["call", "supply_greet", "fg"])).toBe("hello fg, from Python\n");
    } finally {
      child.kill("SIGTERM");
    }
    expect(await exited).toBe(0);
  });
});
