import { spawn, spawnSync } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { CLI_PATH, PACKAGE_ROOT } from "../../lib/paths.js";
import { ranToEnd } from "../helpers.js";
import { Lan, lanUnavailable, sleep, within, type CliResult, type LanHost } from "./lan.js";

const why = lanUnavailable() ?? (spawnSync("python3", ["--version"]).status === 0 ? undefined : "no python3");
const SUPPLY = join(PACKAGE_ROOT, "test", "fixtures", "power_supply.py");

let lan: Lan;
let h1: LanHost;
let h2: LanHost;

/** `python3 ARGS` inside a host's namespace, with the Python package of this repository. */
function py(host: LanHost, args: string[], ms = 20000): Promise<CliResult> {
  const env = { ...host.env, PYTHONPATH: join(PACKAGE_ROOT, "clients", "python"), LABC_COMMAND: `${process.execPath} ${CLI_PATH}` };
  // Ended with the namespace (Lan.cleanup) if a test fails before it ends.
  const child = spawn("ip", ["netns", "exec", host.ns, "python3", ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
  return ranToEnd(child, `${host.name}: python3 ${args.join(" ")}`, ms);
}

// An open network whose hosts let each other use their ServiceControl (service_control.remote):
// Python's secured links need Python 3.13 (docs/python.md), which these hosts may not have.
describe.skipIf(why)("a Python service on another host, 2 hosts in network namespaces", () => {
  beforeAll(async () => {
    lan = Lan.create(2, { LABC_SERVICE_CONTROL_REMOTE: "true" });
    [h1, h2] = lan.hosts as [LanHost, LanHost];
    const installed = await h2.cli(["install", SUPPLY], {}, 60000);
    expect(installed.stderr).toBe("");
    await Promise.all(lan.hosts.map((host) => host.serve([host.service(`S${host.name}`, { [`on_${host.name}`]: "return 1;" })])));
    for (const host of lan.hosts) {
      await within(8000, `${host.name} linked`, async () => (await host.hosts()).filter((h) => h.functions > 0).length === 2);
    }
  }, 60000);
  afterAll(() => lan?.cleanup());

  test("started from host1, called from TypeScript and Python there, its log read, stopped with a call in flight answered", async () => {
    const started = await h1.cli(["start-service", "power", "--host", "host2"], {}, 60000);
    expect(started.stderr).toBe("");
    expect(started.stdout).toMatch(/PowerSupply\s+running\s+\d+/);

    expect((await h1.cli(["call", "--host", "host2", "power_supply.set_voltage", "12"])).stdout).toBe("12\n");
    expect((await h1.cli(["call", "supply_greet", "host1"])).stdout).toBe("hello host1, from Python\n");
    const fromPython = await py(h1, ["-m", "labc", "call", "--json", "power_supply.measure"]);
    expect(fromPython.stderr).toBe("");
    expect(JSON.parse(fromPython.stdout)).toMatchObject({ volts: 12, unit: "V" });

    const all = JSON.parse((await h1.cli(["services", "--all", "--json"])).stdout) as { host: string; name: string; state: string }[];
    expect(all).toEqual([expect.objectContaining({ host: "host2", name: "PowerSupply", state: "running" })]);
    const logs = await h1.cli(["logs", "power", "--host", "host2"]);
    expect(logs.stdout).toMatch(/labc: serving PowerSupply, supply_greet on 0\.0\.0\.0:\d+/);
    expect(logs.stdout).toContain("measured 12 V\n");

    // A slow measurement from host1's Python is in flight on host2 when host1 stops the service.
    const inFlight = py(h1, ["-c", "import labc; print(labc.call('power_supply.measure', 2)['volts'])"]);
    await sleep(1000);
    const stopped = await h1.cli(["stop-service", "PowerSupply", "--host", "host2"], {}, 30000);
    expect(stopped.stdout).toMatch(/PowerSupply\s+stopped/);
    expect(await inFlight).toMatchObject({ code: 0, stdout: "12\n", stderr: "" });
    const gone = await h1.cli(["call", "supply_greet", "x"]);
    expect(gone.stderr).toMatch(/no function "supply_greet"/);
  }, 90000);
});
