import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { PACKAGE_ROOT } from "../../lib/paths.js";
import { Lan, lanUnavailable, within, type LanHost } from "./lan.js";

const why = lanUnavailable();

let lan: Lan;
let h1: LanHost;
let h2: LanHost;

describe.skipIf(why)("services on other hosts, 3 hosts in network namespaces with a network secret", () => {
  beforeAll(async () => {
    // Other hosts may use a host's ServiceControl in a network with a secret only
    // (trust.test.ts shows the open network's refusal).
    lan = Lan.create(3, { LABC_SECRET: `labc1_${randomBytes(32).toString("base64url")}` });
    [h1, h2] = lan.hosts as [LanHost, LanHost];
    const installed = await h2.cli(["install", join(PACKAGE_ROOT, "services", "light-control.ts")]);
    expect(installed.stderr).toBe("");
    // Every host runs a router (with its ServiceControl) and serves something.
    await Promise.all(lan.hosts.map((host) => host.serve([host.service(`S${host.name}`, { [`on_${host.name}`]: "return 1;" })])));
    for (const host of lan.hosts) {
      await within(8000, `${host.name} linked`, async () => (await host.hosts()).filter((h) => h.functions > 0).length === 3);
    }
  }, 60000);
  afterAll(() => lan?.cleanup());

  test("start, list, call, read the logs of and stop a service on another host", async () => {
    const started = await h1.cli(["start-service", "light", "--host", "host2"]);
    expect(started.stderr).toBe("");
    expect(started.stdout).toMatch(/LightControl\s+running\s+\d+/);
    expect((await h1.cli(["call", "--host", "host2", "light_control.set", "desk", "55"])).stdout).toBe("55\n");
    expect((await h1.cli(["call", "get", "desk"])).stdout).toBe("55\n");

    const all = JSON.parse((await h1.cli(["services", "--all", "--json"])).stdout) as { host: string; name: string; state: string }[];
    expect(all).toEqual([expect.objectContaining({ host: "host2", name: "LightControl", state: "running" })]);
    const logs = await h1.cli(["logs", "light", "--host", "host2"]);
    expect(logs.stdout).toMatch(/labc: serving LightControl/);

    const stopped = await h1.cli(["stop-service", "light_control", "--host", "host2"]);
    expect(stopped.stdout).toMatch(/LightControl\s+stopped/);
    const gone = await h1.cli(["call", "get", "desk"]);
    expect(gone.stderr).toMatch(/no function "get"/);
  });

  test("a host only starts what is installed on it", async () => {
    const elsewhere = await h1.cli(["start-service", "light", "--host", "host3"]);
    expect(elsewhere.code).toBe(1);
    expect(elsewhere.stderr).toMatch(/no installed service is called "light" \(nothing is installed\) \[LABC_NO_SUCH_SERVICE\]/);
    const path = await h1.cli(["start-service", "/tmp/evil.ts", "--host", "host2"]);
    expect(path.stderr).toMatch(/is a path, not a service name/);
  });
});
