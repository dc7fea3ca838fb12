import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { userInfo } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { systemdRuns } from "../../cli/router-unit.js";
import { CLI_PATH } from "../../lib/paths.js";
import { ECHO, TestHost, eventually, running } from "../helpers.js";

/**
 * `labc enable` / `disable` / `status`. Where systemd runs (with a user manager), the unit is
 * installed and started for real; elsewhere the unit's own command line is run as systemd would
 * run it, and the unit file is checked by `systemd-analyze verify` when that is installed.
 */

let host: TestHost;
const started: ChildProcess[] = [];
const userUnit = () => join(host.dir, "systemd", "user", `labc-router-${host.port}.service`);

beforeAll(async () => {
  host = await TestHost.start();
  // What the unit's router reads, since a unit carries no LABC_* environment: discovery stays off.
  mkdirSync(join(host.dir, "labc"), { recursive: true });
  writeFileSync(join(host.dir, "labc", "config.toml"), "[discovery]\nenabled = false\n");
});
afterAll(async () => {
  for (const child of started) child.kill("SIGKILL");
  await host.cleanup();
});

describe("labc enable --dry-run", () => {
  test("prints a user unit that runs the router without lingering, and the commands; writes nothing", async () => {
    const dry = await host.cli(["enable", "--dry-run"]);
    expect(dry.code).toBe(0);
    const name = `labc-router-${host.port}.service`;
    expect(dry.stdout).toContain(`# ${userUnit()}\n`);
    expect(dry.stdout).toContain(`ExecStart=${process.execPath} --max-semi-space-size=1 ${CLI_PATH} router --linger 0 --port ${host.port}\n`);
    expect(dry.stdout).toContain(`Environment=XDG_CONFIG_HOME=${host.dir}\n`);
    expect(dry.stdout).toContain("Restart=on-failure\n");
    expect(dry.stdout).toContain("WantedBy=default.target\n");
    expect(dry.stdout).toContain(`# then:\nsystemctl --user daemon-reload\nsystemctl --user enable --now ${name}\n`);
    expect(dry.stdout).toContain(`loginctl enable-linger ${userInfo().username}`);
    expect(existsSync(userUnit())).toBe(false);
  });

  test("--system: a system unit run as this user, started with the machine", async () => {
    const dry = await host.cli(["enable", "--system", "--dry-run"]);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain(`# /etc/systemd/system/labc-router-${host.port}.service\n`);
    expect(dry.stdout).toContain(`User=${userInfo().username}\n`);
    expect(dry.stdout).toContain("WantedBy=multi-user.target\n");
    expect(dry.stdout).toContain(`systemctl enable --now labc-router-${host.port}.service\n`);
    expect(dry.stdout).not.toContain("loginctl");
  });

  test("disable --dry-run prints what it would do", async () => {
    const dry = await host.cli(["disable", "--dry-run"]);
    expect(dry.stdout).toBe(
      `systemctl --user disable --now labc-router-${host.port}.service\nrm ${userUnit()}\nsystemctl --user daemon-reload\n`,
    );
  });

  test.runIf(spawnSync("systemd-analyze", ["--version"]).status === 0)("systemd-analyze verify finds nothing wrong in the unit", async () => {
    const dry = await host.cli(["enable", "--system", "--dry-run"]);
    const unit = dry.stdout.split("\n# then:")[0]!.split("\n").slice(1).join("\n");
    const file = join(host.dir, `labc-router-${host.port}.service`);
    writeFileSync(file, unit);
    const verified = spawnSync("systemd-analyze", ["verify", file], { encoding: "utf8" });
    // Only complaints about this unit count: a machine without systemd running adds its own.
    const about = (verified.stdout + verified.stderr).split("\n").filter((line) => line.includes(`labc-router-${host.port}`));
    expect(about).toEqual([]);
  });
});

describe("labc status", () => {
  test("with no router: says so, exits 3, and starts none", async () => {
    const status = await host.cli(["status"]);
    expect(status.code).toBe(3);
    expect(status.stdout).toBe(
      `router: not running on port ${host.port}\n  no unit installed (labc enable keeps the router up from boot)\n  the first labc command on this host starts one on demand\n`,
    );
    expect(await host.routerPid()).toBeUndefined();
  });

  test("the unit's command keeps a router up with nothing linked to it; status says since when, how and what it serves", async () => {
    const dry = await host.cli(["enable", "--dry-run"]);
    const exec = /^ExecStart=(.*)$/m.exec(dry.stdout)![1]!.split(" ");
    const environment = Object.fromEntries([...dry.stdout.matchAll(/^Environment=(\w+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!]));
    // As systemd starts it: the unit's environment only (and PATH, HOME), none of the test's LABC_*.
    const router = spawn(exec[0]!, exec.slice(1), { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...environment }, stdio: "ignore" });
    started.push(router);
    await eventually(async () => (await host.routerPid()) === router.pid, 10_000, "the unit's router answers");
    const echo = await host.serve([ECHO]);
    const status = await host.cli(["status"]);
    expect(status.code).toBe(0);
    const lines = status.stdout.split("\n");
    expect(lines[0]).toMatch(new RegExp(`^router: running on port ${host.port}, pid ${router.pid}, since \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z \\(\\d+ s\\)$`));
    expect(lines[1]).toBe("  started on demand: stays up until stopped");
    expect(status.stdout).toMatch(/^serves: 2 server\(s\) here; functions: add, core\.info, core\.keys, core\.ping, core\.rotate, echo, echo\.add, echo\.echo and 8 more$/m);
    expect(status.stdout).toMatch(/^subscriptions: lab\.print$/m);
    const json = JSON.parse((await host.cli(["status", "--json"])).stdout);
    expect(json).toMatchObject({ running: true, port: host.port, router: { pid: router.pid, lingerS: 0 }, servers: 2, subscriptions: ["lab.print"] });
    echo.child.kill("SIGTERM");
    await echo.exited;
    // Its last server gone, a router started on demand would leave after router.linger; this one stays.
    await new Promise((done) => setTimeout(done, 2500));
    expect(running(router.pid!)).toBe(true);
    expect(await host.routerPid()).toBe(router.pid);
  });

  test.runIf(!systemdRuns())("enable on a machine without systemd prints the unit, installs nothing and says why", async () => {
    const enabled = await host.cli(["enable"]);
    expect(enabled.code).toBe(1);
    expect(enabled.stdout).toContain("ExecStart=");
    expect(enabled.stderr).toBe(
      "labc: systemd does not run on this machine: nothing was installed; have your service manager run the ExecStart line above at boot\n",
    );
    expect(existsSync(userUnit())).toBe(false);
    const disabled = await host.cli(["disable"]);
    expect(disabled).toMatchObject({ code: 2, stderr: `labc: no unit to remove: ${userUnit()} does not exist (a system one? labc disable --system)\n` });
  });
});

// On a machine whose systemd runs a manager for this user, the unit is installed, started, seen
// by `labc status`, and removed.
const userManager = systemdRuns() && spawnSync("systemctl", ["--user", "is-system-running"]).status !== null;
test.runIf(userManager)("enable, status and disable with systemd's user manager", async () => {
  const enabled = await host.cli(["enable"], {}, 60_000);
  expect(enabled.stderr).toBe("");
  expect(enabled.code).toBe(0);
  try {
    await eventually(async () => (await host.routerPid()) !== undefined, 10_000, "the unit's router answers");
    const status = await host.cli(["status"]);
    expect(status.stdout).toContain(`under the systemd user unit labc-router-${host.port}.service`);
  } finally {
    const disabled = await host.cli(["disable"], {}, 60_000);
    expect(disabled.code).toBe(0);
  }
  expect(existsSync(userUnit())).toBe(false);
  await eventually(async () => (await host.routerPid()) === undefined, 10_000, "the router stopped with its unit");
});
