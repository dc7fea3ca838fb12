import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import { Lan, lanUnavailable, within, type LanHost } from "./lan.js";

const why = lanUnavailable();
if (why) console.warn(`skipping the tests of several hosts: ${why}`);

let lan: Lan | undefined;
afterEach(() => {
  lan?.cleanup();
  lan = undefined;
});

/** Each host serves a function of its own (`on_hostN`) and one they all have (`where`). */
async function serveEach(hosts: LanHost[]): Promise<void> {
  await Promise.all(
    hosts.map((host) =>
      host.serve([host.service(`Svc${host.name}`, { [`on_${host.name}`]: `return "${host.name}";`, where: `return "${host.name}";` })]),
    ),
  );
}

/** Every host sees every other alive, with its functions. */
async function allLinked(hosts: LanHost[], ms: number): Promise<void> {
  for (const host of hosts) {
    await within(ms, `${host.name} seeing every host`, async () => {
      const seen = await host.hosts();
      return seen.length === hosts.length && seen.every((h) => (h.state === "alive" || h.state === "self") && h.functions > 0);
    });
  }
}

const SECRET = `labc1_${randomBytes(32).toString("base64url")}`;

describe.skipIf(why)("discovery, 3 hosts in network namespaces", () => {
  test.each([
    ["mDNS alone", { LABC_DISCOVERY_UDP: "false" }],
    ["UDP beacons alone", { LABC_DISCOVERY_MDNS: "false" }],
    [
      "static peers alone",
      { LABC_DISCOVERY_ENABLED: "false", LABC_DISCOVERY_PEERS: "10.77.0.11,10.77.0.12:55555,10.77.0.13" },
    ],
    // With a network secret: signed announcements, and every link between hosts over TLS.
    ["mDNS alone, with a secret", { LABC_DISCOVERY_UDP: "false", LABC_SECRET: SECRET }],
    ["UDP beacons alone, with a secret", { LABC_DISCOVERY_MDNS: "false", LABC_SECRET: SECRET }],
  ])("%s finds every host; calls cross hosts", async (_method, env) => {
    lan = Lan.create(3, env);
    const hosts = lan.hosts;
    await serveEach(hosts);
    await allLinked(hosts, 8000);
    for (const from of hosts) {
      for (const to of hosts) {
        const result = await from.cli(["call", `on_${to.name}`]);
        expect(result.stderr).toBe("");
        expect(result.stdout).toBe(`${to.name}\n`);
      }
      // Bottom-up: the caller's own host answers first.
      expect((await from.cli(["call", "where"])).stdout).toBe(`${from.name}\n`);
    }
  });

  test("the first call on a fresh host, with no router yet, finds a function of another host", async () => {
    lan = Lan.create(3);
    const [h1, h2, h3] = lan.hosts as [LanHost, LanHost, LanHost];
    await serveEach([h1, h2]);
    await allLinked([h1, h2], 8000);
    expect(h3.pids()).toEqual([]);
    const first = await h3.cli(["call", "on_host2"]);
    expect(first.stderr).toBe("");
    expect(first.stdout).toBe("host2\n");
    expect((await h3.cli(["call", "--host", "host1", "where"])).stdout).toBe("host1\n");
  });

  test("a multi-homed host is linked over the address that answers and never flaps", async () => {
    lan = Lan.create(3);
    const [h1, h2, h3] = lan.hosts as [LanHost, LanHost, LanHost];
    // host2 advertises an address on a second interface that no other host can reach.
    h2.addDeadEndInterface("10.99.0.2");
    await h2.serve([h2.service("Svchost2", { on_host2: 'return "host2";' })], { LABC_DISCOVERY_INTERFACES: "" });
    await serveEach([h1, h3]);
    await allLinked([h1, h2, h3], 8000);
    const seen = (await h1.hosts()).find((h) => h.name === "host2") as unknown as { addresses: string[] };
    expect(seen.addresses[0]).toBe(h2.address);
    for (let i = 0; i < 6; i++) {
      await new Promise((done) => setTimeout(done, 500));
      for (const host of [h1, h3]) expect((await host.hosts()).find((h) => h.name === "host2")?.state).toBe("alive");
    }
    expect((await h1.cli(["call", "on_host2"])).stdout).toBe("host2\n");
  });

  test("a host that starts later appears in every pool within 2 s", async () => {
    lan = Lan.create(3);
    const [h1, h2, h3] = lan.hosts as [LanHost, LanHost, LanHost];
    await serveEach([h1, h2]);
    await allLinked([h1, h2], 8000);
    const file = h3.service("Late", { late: 'return "late";' });
    const started = Date.now();
    const serving = h3.serve([file]);
    for (const host of [h1, h2]) {
      // When the probe that succeeds began, counted from the start of the new host's `labc serve`.
      let callableAt = 0;
      await within(5000, `${host.name} calling the new host`, async () => {
        const probe = Date.now();
        const ok = (await host.cli(["call", "late"])).stdout === "late\n";
        if (ok) callableAt = probe - started;
        return ok;
      });
      expect(callableAt).toBeLessThan(2000);
    }
    await serving;
  });

  test("machines cloned from one image (one machine id, names of their own) link with no configuration", async () => {
    // Namespaces share this machine's /etc/machine-id, as clones of one image do.
    lan = Lan.create(2, { LABC_HOST_ID: "" });
    const hosts = lan.hosts;
    await serveEach(hosts);
    await allLinked(hosts, 8000);
    const ids = await Promise.all(hosts.map(async (host) => (await host.hosts()).find((h) => h.name === host.name)!));
    expect(new Set(ids.map((h) => (h as { hostId?: string }).hostId)).size).toBe(2);
    expect((await hosts[0]!.cli(["call", "on_host2"])).stdout).toBe("host2\n");
  });

  test("a true clash (same machine id and same name) is detected and logged with the fix", async () => {
    lan = Lan.create(2, { LABC_HOST_ID: "", LABC_HOST_NAME: "twin" });
    const hosts = lan.hosts;
    await serveEach(hosts);
    const log = (host: LanHost) => {
      try {
        return readFileSync(join(host.dir, "labc", "router-55555.log"), "utf8");
      } catch {
        return "";
      }
    };
    await within(8000, "both routers logging the clash", async () => hosts.every((host) => /host id clash/.test(log(host))));
    const said = log(hosts[0]!);
    expect(said).toMatch(/at 10\.77\.0\.12 .* has this host's id [0-9a-f]{12} and its name "twin"/);
    expect(said).toMatch(/hostnamectl set-hostname|systemd-machine-id-setup|\[host\] id/);
    // Said once a minute at most, not at every beacon.
    expect(said.match(/host id clash/g)!.length).toBe(1);
  });
});
