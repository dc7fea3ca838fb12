import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { Lan, lanUnavailable, within, type LanHost } from "./lan.js";

/**
 * Forged UDP beacons against a router with a secret (issue 27, item 7), on hosts in namespaces
 * where discovery runs: one beacon whose host id holds line breaks, terminal escapes and 60 kB,
 * then beacons from 120 addresses of the stranger's own (it adds them to its cable). The router's
 * log quotes the first on one line, escaped and cut, and holds the flood to a bounded number of
 * lines and one summary.
 */

const why = lanUnavailable();
const FLOOD = 120;

describe.skipIf(why)("forged beacons: host1 holds a secret, host2 is a stranger", () => {
  let lan: Lan;
  let h1: LanHost;
  let stranger: LanHost;
  const routerLog = () => readFileSync(join(h1.dir, "labc", "router-55555.log"), "utf8");

  beforeAll(async () => {
    lan = Lan.create(2, { LABC_SECRET: `labc1_${randomBytes(32).toString("base64url")}` });
    [h1, stranger] = lan.hosts as [LanHost, LanHost];
    delete stranger.env.LABC_SECRET;
    await h1.serve([h1.service("Lab", { echo: "return args[0];" })]);
  }, 60000);
  afterAll(() => lan?.cleanup());

  // The announcement's own check (lib/trust/signed-announcement.ts) refuses such a host id before
  // anything quotes it; the escaping and the cut of what is quoted are tested in
  // test/unit/trips.test.ts and test/integration/log-flood.test.ts.
  test("a beacon whose host id holds line breaks, escapes and 60 kB is refused on one line that quotes none of it", async () => {
    const hostId = `evil\nlabc[1]: refused 10.77.0.99: forged line\r\x1b[2J\x1b]0;owned\x07\u202e${"A".repeat(60_000)}END`;
    const beacon = { labc: 1, hostId, name: "forged", port: 55600, addresses: [stranger.address], t: Date.now(), mac: "AAAAAAAAAAAAAAAAAAAAAA" };
    expect(Buffer.byteLength(JSON.stringify(beacon))).toBeGreaterThan(60_000);
    await stranger.stranger("beacon", { host: h1.address, port: 55555, payload: JSON.stringify(beacon) });
    await within(5000, "the refusal logged", () => routerLog().includes(`refused ${stranger.address}: `));
    const lines = routerLog().split("\n");
    const line = lines.find((l) => l.includes(`refused ${stranger.address}: `))!;
    expect(line).toMatch(/host id that is not 1 to 255 characters without control characters/);
    expect(line).not.toContain("evil");
    expect(line.length).toBeLessThan(2000);
    expect(lines.some((l) => l.startsWith("labc[1]:"))).toBe(false);
    expect(routerLog()).not.toMatch(/[\x1b\x07\r\u202e]/);
    expect(routerLog().length).toBeLessThan(10_000);
  });

  test(`beacons from ${FLOOD} addresses write a bounded number of lines, then one line with how many were not logged`, async () => {
    const addresses = Array.from({ length: FLOOD }, (_, i) => `10.77.0.${100 + i}`);
    const added = spawnSync("ip", ["-n", stranger.ns, "-batch", "-"], { input: addresses.map((a) => `addr add ${a}/24 dev eth0\n`).join(""), encoding: "utf8" });
    expect(added.stderr).toBe("");
    const started = Date.now();
    // One forged beacon from each address, sent by a script of the stranger's own.
    const script = `
      const dgram = require("node:dgram");
      const addresses = ${JSON.stringify(addresses)};
      (async () => {
        for (const address of addresses) {
          const socket = dgram.createSocket("udp4");
          await new Promise((done) => socket.bind({ address, port: 0 }, done));
          const beacon = { labc: 1, hostId: "id-" + address, name: "forged", port: 55600, addresses: [address], t: Date.now(), mac: "AAAAAAAAAAAAAAAAAAAAAA" };
          await new Promise((done) => socket.send(JSON.stringify(beacon), 55555, ${JSON.stringify(h1.address)}, done));
          socket.close();
        }
      })();`;
    const sent = await stranger.node(["-e", script]);
    expect(sent.stderr).toBe("");
    const elapsedMs = Date.now() - started;
    const flooded = (l: string) => /refused 10\.77\.0\.(1\d\d|2\d\d): an announcement of host id-10\.77/.test(l);
    const summary = /(\d+) refusal\(s\) from (\d+) address\(es\) \(10\.77\.0\.\d+, [\d., ]+\) in the last \d+ s were counted, not logged/;
    await within(20000, "the summary line", () => summary.test(routerLog()));
    const logged = routerLog().split("\n").filter(flooded).length;
    // 20 lines at once (the beacon above took one), then 20 a minute.
    expect(logged).toBeLessThanOrEqual(20 + Math.ceil((elapsedMs / 60_000) * 20));
    expect(logged).toBeGreaterThan(0);
    const [, count, from] = summary.exec(routerLog())!;
    expect(Number(count)).toBe(FLOOD - logged);
    expect(Number(from)).toBe(FLOOD - logged);
  }, 40000);
});
