import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { PACKAGE_ROOT } from "../../lib/paths.js";
import { networkKey } from "../../lib/trust/network-key.js";
import { sign, type Announcement } from "../../lib/trust/signed-announcement.js";
import { Lan, lanUnavailable, sleep, type LanHost } from "./lan.js";

/**
 * Replayed announcements (issue 27, item 2), on hosts in network namespaces. host2 is a member
 * that has left (its processes ended, its address kept); host3 is a stranger without the secret
 * that recorded what host2 announced, and plays it back, edited or not, from its own address to
 * host1's router just after it (re)started: nothing taken from host2 before, so only signatures,
 * signing times and the addresses signed stand between the stranger and a dial.
 */

const why = lanUnavailable();
const secret = `labc1_${randomBytes(32).toString("base64url")}`;
const REPLAYER = join(PACKAGE_ROOT, "test", "fixtures", "replayer.ts");
/** How long a listener waits for the dial a replay would cause (a dial starts within ms). */
const WAIT_MS = 4000;

/** A TCP listener on `host`'s root port, counting who connects; resolves once it listens. */
async function listener(host: LanHost): Promise<{ result: Promise<{ connections: number; from: string[] }> }> {
  const child = host.spawn(["--import", "tsx", REPLAYER, "listen", JSON.stringify({ port: 55555, waitMs: WAIT_MS + 1000 })]);
  const lines = createInterface({ input: child.stdout! });
  const said: any[] = [];
  let stderr = "";
  child.stderr!.on("data", (chunk) => (stderr += chunk));
  let heard: () => void = () => {};
  lines.on("line", (line) => {
    said.push(JSON.parse(line));
    heard();
  });
  const next = () => new Promise<void>((done) => (heard = done));
  const exited = new Promise<void>((done) => child.once("exit", () => done()));
  await Promise.race([next(), exited]);
  if (!said[0]?.listening) throw new Error(`${host.name}: listener did not start: ${stderr}`);
  return {
    result: exited.then(() => {
      if (!said[1]) throw new Error(`${host.name}: listener said nothing at its end: ${stderr}`);
      return said[1];
    }),
  };
}

function routerLog(host: LanHost): string {
  try {
    return readFileSync(join(host.dir, "labc", "router-55555.log"), "utf8");
  } catch {
    return "";
  }
}

/** host1's router, started afresh (no announcement taken yet); then what its log says since. */
async function freshRouter(h1: LanHost): Promise<{ logSince: () => string }> {
  h1.killAll();
  const start = routerLog(h1).length;
  await h1.serve([h1.service("One", { one: "return 1;" })]);
  // Its discovery listens once the router serves; give its sockets a moment.
  await sleep(500);
  return { logSince: () => routerLog(h1).slice(start) };
}

describe.skipIf(why)("replayed announcements: host1 (re)starts, host2 has left, host3 a stranger replays", () => {
  let lan: Lan;
  let h1: LanHost;
  let h2: LanHost;
  let stranger: LanHost;
  /** Two beacons host2 sent, as the stranger recorded them (JSON text), the older first. */
  const recorded: string[] = [];

  beforeAll(async () => {
    lan = Lan.create(3, { LABC_SECRET: secret });
    [h1, h2, stranger] = lan.hosts as [LanHost, LanHost, LanHost];
    delete stranger.env.LABC_SECRET;
    await h2.serve([h2.service("Two", { two: "return 2;" })]);
    for (let tries = 0; recorded.length < 2 && tries < 5; tries++) {
      const { heard } = await stranger.stranger("overhear", { port: 55555, waitMs: 5000, notFrom: stranger.address });
      if (!heard) throw new Error("the stranger heard no beacon of host2");
      if (!recorded.includes(heard)) recorded.push(heard);
    }
    if (recorded.length < 2) throw new Error("the stranger heard the same beacon of host2 five times");
    // host2 leaves; its beacons, under 5 minutes old, are still in the window.
    h2.killAll();
  }, 60000);
  afterAll(() => lan?.cleanup());

  test("the recorded beacons are host2's, signed, and list its address", () => {
    const beacon = JSON.parse(recorded[0]!);
    expect(beacon).toMatchObject({ hostId: "id-host2", port: 55555, mac: expect.any(String) });
    expect(beacon.addresses).toEqual([h2.address]);
  });

  test("a beacon with its addresses edited to the stranger's is refused: nobody dials the stranger", async () => {
    const router = await freshRouter(h1);
    const atStranger = await listener(stranger);
    const real = JSON.parse(recorded[0]!);
    for (const addresses of [[stranger.address], [stranger.address, h2.address], [h2.address, stranger.address]]) {
      await stranger.stranger("beacon", { host: h1.address, port: 55555, payload: JSON.stringify({ ...real, addresses }) });
    }
    expect(await atStranger.result).toMatchObject({ connections: 0 });
    expect(router.logSince()).toContain(`refused ${stranger.address}: an announcement of host id-host2 not signed with this network's key`);
  });

  test("a beacon replayed as recorded, from the stranger's address: host1 dials host2's signed address only", async () => {
    await freshRouter(h1);
    const atStranger = await listener(stranger);
    // Where host2 was: what host1 dials if it takes the replay as it should.
    const atHost2 = await listener(h2);
    await stranger.stranger("beacon", { host: h1.address, port: 55555, payload: recorded[1]! });
    expect(await atStranger.result).toMatchObject({ connections: 0 });
    expect((await atHost2.result).from).toContain(h1.address);
  });

  /** An mDNS response for host2's `_labc._tcp` service, its TXT record and A record as given. */
  function mdnsAnswers(txt: Record<string, string>, a: string): object[] {
    const instance = `labc host2 id-host2._labc._tcp.local`;
    return [
      { name: "_labc._tcp.local", type: "PTR", ttl: 4500, data: instance },
      { name: instance, type: "SRV", ttl: 120, data: { port: 55555, target: "host2.local" } },
      { name: instance, type: "TXT", ttl: 4500, data: Object.entries(txt).map(([key, value]) => `${key}=${value}`) },
      { name: "host2.local", type: "A", ttl: 120, data: a },
    ];
  }

  /**
   * host2's TXT record as it published it `ageMs` ago, signed over `addresses`: made with the
   * test's own copy of the key, standing for one the stranger recorded back then.
   */
  function recordedTxt(ageMs: number, addresses: string[]): Record<string, string> {
    const signed = sign<Announcement>({ hostId: "id-host2", name: "host2", port: 55555, addresses }, networkKey(secret), Date.now() - ageMs);
    return { id: "id-host2", name: "host2", port: "55555", v: "1", addrs: addresses.join(","), t: String(signed.t), mac: signed.mac! };
  }

  async function replayMdns(answers: object[]): Promise<void> {
    const result = await stranger.node(["--import", "tsx", REPLAYER, "mdns", JSON.stringify({ answers, times: 3, gapMs: 200 })]);
    if (result.code !== 0) throw new Error(`replaying mDNS failed: ${result.stderr}`);
  }

  test("an mDNS record signed 11 minutes ago is refused, even pointing at an address host2 had then", async () => {
    const router = await freshRouter(h1);
    const atStranger = await listener(stranger);
    // Since recorded, host2 gave up the address and the stranger took it.
    await replayMdns(mdnsAnswers(recordedTxt(11 * 60_000, [stranger.address]), stranger.address));
    expect(await atStranger.result).toMatchObject({ connections: 0 });
    expect(router.logSince()).toMatch(/an announcement of host id-host2 signed 66\d s ago/);
  });

  test("a fresh mDNS record sent from the stranger, with an A record of its own: host1 dials host2's signed address only", async () => {
    await freshRouter(h1);
    const atStranger = await listener(stranger);
    const atHost2 = await listener(h2);
    await replayMdns(mdnsAnswers(recordedTxt(60_000, [h2.address]), stranger.address));
    expect(await atStranger.result).toMatchObject({ connections: 0 });
    expect((await atHost2.result).from).toContain(h1.address);
  });

  test("an mDNS record with its signed addresses edited to the stranger's is refused", async () => {
    const router = await freshRouter(h1);
    const atStranger = await listener(stranger);
    const txt = { ...recordedTxt(60_000, [h2.address]), addrs: stranger.address };
    await replayMdns(mdnsAnswers(txt, stranger.address));
    expect(await atStranger.result).toMatchObject({ connections: 0 });
    expect(router.logSince()).toContain(`refused ${stranger.address}: an announcement of host id-host2 not signed with this network's key`);
  });

  test("a member signs its mDNS record again and again, and the others take each new signature", async () => {
    h1.killAll();
    // labc's own mDNS discovery on both sides, host2's signing every 1.5 s instead of 4 minutes.
    const run = (host: LanHost, hostId: string, resignEveryMs: number, waitMs: number) =>
      host.node(["--import", "tsx", REPLAYER, "discover", JSON.stringify({ hostId, name: hostId, secret, resignEveryMs, waitMs })]);
    const [signer, watcher] = await Promise.all([run(h2, "id-signer", 1500, 8000), run(h1, "id-watcher", 600_000, 7000)]);
    expect(signer.code, signer.stderr).toBe(0);
    expect(watcher.code, watcher.stderr).toBe(0);
    const seen = JSON.parse(watcher.stdout).sightings.filter((sighting: { hostId: string }) => sighting.hostId === "id-signer");
    expect(seen.length).toBeGreaterThanOrEqual(3);
    for (const sighting of seen) expect(sighting).toMatchObject({ addresses: [h2.address], port: 55555, via: "mdns" });
  });
});
