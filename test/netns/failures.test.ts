import { readFileSync } from "node:fs";
import { afterEach, describe, expect, test } from "vitest";
import { Lan, lanUnavailable, within, type LanHost } from "./lan.js";

const why = lanUnavailable();

let lan: Lan | undefined;
afterEach(() => {
  lan?.cleanup();
  lan = undefined;
});

/** The documented detection time: heartbeat 0.5 s × dead_after 4, plus one beat of slack. */
const DEAD_WITHIN_MS = 3000;

async function three(): Promise<[LanHost, LanHost, LanHost]> {
  lan = Lan.create(3);
  const hosts = lan.hosts as [LanHost, LanHost, LanHost];
  await Promise.all(
    hosts.map((host) =>
      host.serve([
        host.service(`Svc${host.name}`, {
          [`on_${host.name}`]: `return "${host.name}";`,
          // host1 has no "dup": its calls must go to host2 or host3
          ...(host.name === "host1" ? {} : { dup: `return "${host.name}";` }),
          slow: `return new Promise((done) => setTimeout(() => done("${host.name}"), args[0]));`,
        }),
      ]),
    ),
  );
  for (const host of hosts) {
    await within(8000, `${host.name} linked`, async () => {
      const seen = await host.hosts();
      return seen.length === 3 && seen.every((h) => h.functions > 0 && (h.state === "alive" || h.state === "self"));
    });
  }
  return hosts;
}

const stateOf = async (from: LanHost, name: string) => (await from.hosts()).find((h) => h.name === name);

describe.skipIf(why)("failures, 3 hosts in network namespaces", () => {
  test("a host killed with SIGKILL: its functions vanish, calls fail fast, a duplicate takes over", async () => {
    const [h1, h2] = await three();
    h2.killAll();
    const killed = Date.now();
    await within(1000, "host2's functions leaving host1's pool", async () => (await stateOf(h1, "host2"))?.functions === 0);
    expect(Date.now() - killed).toBeLessThan(1500);
    const gone = await h1.cli(["call", "on_host2"]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/no function "on_host2"/);
    for (let i = 0; i < 5; i++) expect((await h1.cli(["call", "dup"])).stdout).toBe("host3\n");
  });

  test("a server process that exits leaves every host's pool within 0.5 s", async () => {
    const [h1, h2] = await three();
    const brief = await h2.serve([h2.service("Brief", { brief: 'return "brief";' })]);
    await within(3000, "brief callable from host1", async () => (await h1.cli(["call", "brief"])).stdout === "brief\n");
    const stopped = Date.now();
    brief.kill("SIGTERM");
    let goneAt = Infinity;
    await within(3000, "brief gone from host1", async () => {
      const probe = Date.now();
      const gone = !(await h1.cli(["ls"])).stdout.includes("brief");
      if (gone) goneAt = probe - stopped;
      return gone;
    });
    expect(goneAt).toBeLessThan(500);
  });

  test("a host cut off is dead within the documented time, calls to it fail at once, and it comes back", async () => {
    const [h1, , h3] = await three();
    const inFlight = h1.cli(["call", "--host", "host3", "--timeout", "20", "slow", "15000"]);
    await new Promise((done) => setTimeout(done, 500));
    h3.unplug();
    const cut = Date.now();
    await within(DEAD_WITHIN_MS + 1000, "host3 declared dead by host1", async () => (await stateOf(h1, "host3"))?.state === "dead");
    const detected = Date.now() - cut;
    expect(detected).toBeLessThan(DEAD_WITHIN_MS + 500); // the last probe is a CLI run of its own
    const failed = await inFlight;
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/LABC_CONNECTION_LOST/);
    expect(failed.stderr).toMatch(/host3/);
    expect(Date.now() - cut).toBeLessThan(DEAD_WITHIN_MS + 2000);
    expect((await h1.cli(["call", "dup"])).stdout).toBe("host2\n");

    h3.plug();
    await within(4000, "host3 back in host1's pool", async () => (await h1.cli(["call", "on_host3"])).stdout === "host3\n");
    expect((await stateOf(h1, "host3"))?.state).toBe("alive");
  });

  test("a router restarted on one host: its servers register again and every host calls them", async () => {
    const [h1, h2] = await three();
    const routerPids = h2.pids().filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, "utf8").startsWith("labc router");
      } catch {
        return false;
      }
    });
    expect(routerPids).toHaveLength(1);
    process.kill(routerPids[0]!, "SIGKILL");
    await within(4000, "host2's function callable from host1 again", async () => (await h1.cli(["call", "on_host2"])).stdout === "host2\n");
    expect((await h2.cli(["call", "on_host1"])).stdout).toBe("host1\n");
  });
});
