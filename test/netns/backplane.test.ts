import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import { Lan, lanUnavailable, sleep, within, type LanHost } from "./lan.js";
import { NatsHub, natsUnavailable } from "./nats-hub.js";

const why = lanUnavailable() ?? natsUnavailable();

let sites: Lan[] = [];
let hub: NatsHub | undefined;
afterEach(() => {
  for (const site of sites) site.cleanup();
  sites = [];
  hub?.cleanup();
  hub = undefined;
});

/**
 * Two sites that cannot discover each other: LAN a (a1, a2) and LAN b (b1, b2), each on a
 * bridge of its own; a1 and b1 are also cabled to a hub running nats-server and are their
 * sites' gateways (`[backplane] nats`); a2 and b2 have no backplane setting.
 */
async function twoSites(): Promise<{ a1: LanHost; a2: LanHost; b1: LanHost; b2: LanHost; hub: NatsHub }> {
  hub = new NatsHub();
  const a = Lan.create(2, {}, ["a1", "a2"]);
  const b = Lan.create(2, {}, ["b1", "b2"]);
  sites = [a, b];
  const [a1, a2] = a.hosts as [LanHost, LanHost];
  const [b1, b2] = b.hosts as [LanHost, LanHost];
  a1.env.LABC_BACKPLANE_NATS = hub.wire(a1);
  b1.env.LABC_BACKPLANE_NATS = hub.wire(b1);
  await hub.start();
  await Promise.all([
    a1.serve([a1.service("OnA1", { where: 'return "a1";' })]),
    a2.serve([
      a2.service("OnA2", {
        where: 'return "a2";',
        onlyA2: 'return "a2 only";',
        jobs: "return globalThis.jobs ?? [];",
        work: { decorator: 'subscribe("jobs.#", { group: "workers" })', body: "(globalThis.jobs ??= []).push(args[0]);" },
      }),
    ]),
    b1.serve([b1.service("OnB1", { where: 'return "b1";' })]),
    b2.serve([
      b2.service("OnB2", {
        where: 'return "b2";',
        onlyB2: "return `b2 got ${args[0]}`;",
        heard: "return globalThis.heard ?? [];",
        news: { decorator: 'subscribe("site.#")', body: "(globalThis.heard ??= []).push(args[0]);" },
        ticks: { decorator: "register()", body: "return (async function* () { for (let i = 0; i < 3; i++) yield i; })();" },
        jobs: "return globalThis.jobs ?? [];",
        work: { decorator: 'subscribe("jobs.#", { group: "workers" })', body: "(globalThis.jobs ??= []).push(args[0]);" },
        ask: { decorator: 'subscribe("ask.*")', body: "return `b2 answers ${args[0]}`;" },
        far: "return globalThis.far ?? [];",
        farWork: { decorator: 'subscribe("site.far.#", { group: "far" })', body: "(globalThis.far ??= []).push(args[0]);" },
      }),
    ]),
  ]);
  for (const [host, other] of [[a2, "b2"], [b2, "a2"], [a1, "b2"], [b1, "a2"]] as const) {
    await within(15000, `${host.name} knowing ${other} across the backplane`, async () => (await host.hosts()).some((h) => h.name === other && h.functions > 0));
  }
  return { a1, a2, b1, b2, hub };
}

describe.skipIf(why)("the NATS backplane: two sites in network namespaces", () => {
  test("calls, streams and publications cross sites, from gateways and from hosts without the setting; LAN calls never touch NATS", async () => {
    const { a1, a2, b1, b2, hub } = await twoSites();
    const tap = await hub.tap("labc.main.req.>");

    // The LAN answers what it can: `where` exists on both sites, and stays home.
    for (const host of [a1, a2]) {
      for (let i = 0; i < 5; i++) expect((await host.cli(["call", "where"])).stdout).toMatch(/^a[12]\n$/);
    }
    expect((await a1.cli(["call", "onlyA2"])).stdout).toBe("a2 only\n");
    await sleep(300);
    expect(tap.seen).toEqual([]);

    // What only the other site has crosses, from its gateway and from a host behind it.
    expect((await a1.cli(["call", "onlyB2", "x"])).stdout).toBe("b2 got x\n");
    expect((await a2.cli(["call", "onlyB2", "y"])).stdout).toBe("b2 got y\n");
    expect((await a2.cli(["call", "--host", "b2", "where"])).stdout).toBe("b2\n");
    expect((await a2.cli(["call", "ticks"])).stdout).toBe("0\n1\n2\n");
    await within(2000, "the requests seen on NATS", () => tap.seen.length >= 4);
    expect(tap.seen.every((subject) => subject === "labc.main.req.id-b1")).toBe(true);
    // Between processes on the gateways' own hosts, calls skip both gateways: the server's own subject.
    const direct = await hub.tap("labc.main.srv.>");
    const relayed = tap.seen.length;
    expect((await a1.cli(["call", "--host", "b1", "where"])).stdout).toBe("b1\n");
    await within(2000, "the call on b1's server's own subject", () => direct.seen.length > 0);
    expect(tap.seen.length).toBe(relayed);
    direct.stop();

    // A publication from site a reaches site b's subscriber once, and says it reached it.
    const published = await a2.cli(["publish", "site.news.today", '"hello b"']);
    expect(published.stdout + published.stderr).toMatch(/to 1 server/);
    await within(3000, "b2's subscriber heard it", async () => (await b2.cli(["call", "heard"])).stdout.includes("hello b"));
    expect(JSON.parse((await a2.cli(["call", "heard"])).stdout)).toEqual(["hello b"]);

    // A queue group's publications go to its members on the publisher's LAN, once each, and to
    // another site's only when the LAN has none; a reqpub is answered across sites.
    const asked = await a2.script([
      'for (let i = 0; i < 4; i++) await labc.publish("jobs.a", i);',
      'console.log(await labc.reqpub("ask.x", 7));',
      'console.log(JSON.stringify(await labc.getHost("b2").call("jobs")));',
    ]);
    expect(asked.stderr).toBe("");
    expect(asked.stdout).toBe("b2 answers 7\n[]\n");
    expect(JSON.parse((await a2.cli(["call", "--host", "a2", "jobs"])).stdout)).toEqual([0, 1, 2, 3]);
    const fromB = await b1.script(['for (let i = 0; i < 3; i++) await labc.publish("jobs.b", i);']);
    expect(fromB.stderr).toBe("");
    await within(3000, "site b's jobs on b2", async () => (await b1.cli(["call", "--host", "b2", "jobs", "--json"])).stdout.replace(/\s/g, "") === "[0,1,2]");
    // A group with members on another site only: one of them runs each publication, and b2's
    // subscriber outside groups (site.#) gets each once, by the site subject, not twice.
    const far = await a2.script(['for (let i = 0; i < 3; i++) await labc.publish("site.far.x", i);']);
    expect(far.stderr).toBe("");
    await within(3000, "the far group's publications on b2", async () => (await a2.cli(["call", "far", "--json"])).stdout.replace(/\s/g, "") === "[0,1,2]");
    await within(3000, "b2's subscriber outside groups", async () => JSON.parse((await a2.cli(["call", "heard"])).stdout).length === 4);
    expect(JSON.parse((await a2.cli(["call", "heard"])).stdout)).toEqual(["hello b", 0, 1, 2]);

    // Errors cross as they are: a function's own and an unknown name.
    const unknown = await a2.cli(["call", "nowhere"]);
    expect(unknown.stderr).toMatch(/LABC_NO_SUCH_FUNCTION/);

    // Every host's router answers core.ping, whichever site; ServiceControl of another site
    // refuses (it does not cross sites unless service_control.remote = true), naming the host and the fix.
    const pings = await a2.cli(["call", "--all", "core.ping"]);
    expect(pings.stdout.split("\n").filter(Boolean).map((line) => line.split(" ")[0]).sort()).toEqual(["a1", "a2", "b1", "b2"]);
    const services = await a2.cli(["services", "--host", "b2"]);
    expect(services.stderr).toMatch(/b2 does not let other sites list its services.*status page.*LABC_NOT_PERMITTED/);

    const listed = (await a2.cli(["ls"])).stdout.split("\n");
    expect(listed.find((line) => line.startsWith("onlyB2 "))).toMatch(/b2 +\d+ +other site, via a1 +ok/);

    const hosts = await a2.hosts();
    expect(hosts.map((h) => h.name).sort()).toEqual(["a1", "a2", "b1", "b2"]);
    expect(hosts.find((h) => h.name === "b2")).toMatchObject({ state: "alive", gateway: "a1" });
    tap.stop();
  });

  test("a site's gateway killed is detected within the backplane's heartbeats; NATS stopped degrades to the LAN and comes back by itself", async () => {
    const { a1, a2, b1, hub } = await twoSites();

    await hub.stop();
    const stopped = Date.now();
    await within(5000, "b2's functions leaving site a", async () => !(await a2.cli(["ls"])).stdout.includes("onlyB2"));
    expect(Date.now() - stopped).toBeLessThan(5000);
    // The LAN goes on by itself.
    expect((await a2.cli(["call", "onlyA2"])).stdout).toBe("a2 only\n");
    const lost = await a2.cli(["call", "onlyB2", "z"]);
    expect(lost.stderr).toMatch(/LABC_NO_SUCH_FUNCTION/);
    const log = () => readFileSync(join(a1.dir, "labc", "router-55555.log"), "utf8");
    await within(3000, "a1's warning", () => log().includes("backplane: lost NATS"));
    expect((await a1.cli(["hosts"])).stdout).toMatch(/\nbackplane: not linked: lost NATS \(10\.78\.1\.1:4222\).*other sites are out of reach\n$/);

    await hub.start();
    const back = await within(15000, "b2's functions back on site a", async () => (await a2.cli(["call", "onlyB2", "again"])).stdout === "b2 got again\n");
    expect(back).toBeLessThan(15000);
    expect(log()).toMatch(/backplane: NATS is back/);
    expect((await a1.cli(["hosts"])).stdout).toMatch(/\nbackplane: linked to NATS at 10\.78\.1\.1:4222 \(realm main\), 1 other site\n$/);

    // The gateway of site b dies without a word: its site leaves site a within 4 of its beats (1 s).
    b1.killAll();
    const killed = Date.now();
    await within(8000, "site b gone from a1", async () => !(await a1.hosts()).some((h) => h.name === "b2"));
    expect(Date.now() - killed).toBeLessThan(7000);
    const gone = await a2.cli(["call", "onlyB2", "late"]);
    expect(gone.stderr).toMatch(/LABC_NO_SUCH_FUNCTION/);
  });
});
