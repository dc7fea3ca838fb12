import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { frameOf, HostilePeer, KIND } from "../../bench/hostile-peer.js";
import { freePort } from "../../lib/net/free-port.js";
import { TestHost, eventually, sleep } from "../helpers.js";

const HOME = join(__dirname, "..", "fixtures", "home.ts");

/**
 * Another "site" on the NATS backplane speaks for hosts of this LAN (issue 27, item 4), played
 * at the byte level: a NATS client of the test's own publishes a site listing with a server on
 * the gateway's own host id (with `local` and host-scoped functions), one on the id of a host
 * linked to the gateway (the test's own socket, linked as the router of host "lanmate"), one
 * on a genuine foreign host offering a `local` function, and one reusing the id of the
 * gateway's real server. nats-server runs on 127.0.0.1, a port of the test's own.
 */

const noNats = spawnSync("nats-server", ["--version"]).status !== 0;
let nats: ChildProcess;
let stranger: NatsConnection;
let host: TestHost;
let lanmate: HostilePeer;
let beat: NodeJS.Timeout | undefined;
let realId = "";
let realFunctions: string[] = [];
/** Requests the gateway relayed to the stranger's site: what a forged server would read. */
const relayed: string[] = [];

interface Listed {
  id: string;
  hostId: string;
  gateway?: string;
  functions: { name: string; scope: string; visibility: string }[];
}
const listed = async (): Promise<Listed[]> => JSON.parse((await host.cli(["ls", "--json"])).stdout);
const fn = (name: string, visibility = "public", scope = "network") => ({ name, scope, visibility });
const entry = (id: string, hostId: string, functions: object[]) => ({ id, host: hostId, hostId, address: "10.9.9.9", port: 1, pid: 4242, functions, topics: [] });

beforeAll(async () => {
  if (noNats) return;
  const port = await freePort();
  nats = spawn("nats-server", ["-a", "127.0.0.1", "-p", String(port)], { stdio: "ignore" });
  await sleep(300);
  stranger = await connect({ servers: `nats://127.0.0.1:${port}` });
  stranger.subscribe("labc.main.req.evil", {
    callback: (_error, msg) => {
      const frame = Buffer.from(msg.data);
      relayed.push(JSON.parse(frame.subarray(12, 12 + frame.readUInt32BE(8)).toString()).fn);
    },
  });
  const listings = stranger.subscribe("labc.main.hosts.gw");
  host = await TestHost.start();
  Object.assign(host.env, { LABC_HOST_ID: "gw", LABC_BACKPLANE_NATS: `nats://127.0.0.1:${port}` });
  const served = await host.serve([HOME]);
  // The gateway is on NATS once its listing names its server.
  for await (const msg of listings) {
    if (msg.json<{ servers?: { pid: number }[] }>().servers?.some((server) => server.pid === served.pid)) break;
  }
  const real = (await listed()).find((server) => server.functions.some((f) => f.name === "where"))!;
  realId = real.id;
  realFunctions = real.functions.map((f) => `${f.name} ${f.visibility}`).sort();
  expect(realFunctions).toContain("loc local");
  // A host of the gateway's LAN: the test's own socket, linked as the router of "lanmate".
  lanmate = await HostilePeer.connect(host.port);
  lanmate.send(frameOf(KIND.hello, 1, { v: 1, role: "router", id: "lanmate-run", pid: 1, host: "lanmate", hostId: "lanmate", port: 1 }));
  await lanmate.expect((frame) => frame.id === 1 && frame.kind === KIND.rep);
  beat = setInterval(() => lanmate.send(frameOf(KIND.ping, 0, {})), 500);
}, 30_000);

afterAll(async () => {
  if (noNats) return;
  clearInterval(beat);
  lanmate?.destroy();
  await stranger?.close();
  await host?.cleanup();
  nats.kill("SIGKILL");
});

describe.skipIf(noNats)("another site speaks only for hosts that are not of this LAN", () => {
  test("servers listed on the gateway's host, on a LAN host, with local functions, or with a LAN server's id: dropped, said in the log", async () => {
    const forged = [
      entry("forged-self", "gw", [fn("where"), fn("loc", "local"), fn("hostOnly", "public", "host")]),
      entry("forged-lan", "lanmate", [fn("lan.fn")]),
      entry("evil-local", "evil", [fn("evil.loc", "local")]),
      entry(realId, "evil", [fn("evil.extra")]),
    ];
    const listing = {
      hostId: "evil",
      name: "evil",
      instance: "i1",
      version: 1,
      servers: [...forged, entry("evil-good", "evil", [fn("evil.fn")])],
      hosts: [{ hostId: "evil", name: "evil" }, { hostId: "gw", name: "gw-by-evil" }],
    };
    // Said again every half second, as a gateway beats: the site stays for the whole test.
    const say = () => stranger.publish("labc.main.hosts.evil", Buffer.from(JSON.stringify(listing)));
    say();
    const beats = setInterval(say, 500);
    try {
      // The rest of the listing is kept: its genuine entry comes in.
      await eventually(async () => (await listed()).some((server) => server.id === "evil-good"), 8000, "the genuine entry listed");
      const servers = await listed();
      const ids = servers.map((server) => server.id);
      for (const id of ["forged-self", "forged-lan", "evil-local"]) expect.soft(ids).not.toContain(id);
      const names = servers.flatMap((server) => server.functions.map((f) => f.name));
      for (const name of ["lan.fn", "evil.loc", "evil.extra", "hostOnly"]) expect.soft(names).not.toContain(name);
      const real = servers.find((server) => server.id === realId)!;
      expect.soft(real.gateway).toBeUndefined();
      expect.soft(real.functions.map((f) => `${f.name} ${f.visibility}`).sort()).toEqual(realFunctions);
      // labc hosts: the gateway's own host is not another site's.
      const hosts = JSON.parse((await host.cli(["hosts", "--json"])).stdout) as { hostId: string; name: string; site?: string }[];
      expect.soft(hosts.filter((h) => h.hostId === "gw").map((h) => h.name)).toHaveLength(1);
      expect.soft(hosts.find((h) => h.hostId === "gw")?.site).toBeUndefined();
      // The gateway host's own calls go to its own server, never over NATS.
      for (let k = 0; k < 6; k++) {
        expect.soft((await host.cli(["call", "--timeout", "2", "where"])).stdout).toBe("home\n");
        expect.soft((await host.cli(["call", "--timeout", "2", "loc"])).stdout).toBe("loc\n");
      }
      expect.soft(relayed).toEqual([]);
      // The LAN's routers are not told of the forged servers either.
      const told = JSON.stringify(lanmate.received.map((frame) => frame.body));
      for (const id of ["forged-self", "forged-lan", "evil-local"]) expect.soft(told).not.toContain(id);
      expect.soft(told).toContain("evil-good");
      const log = readFileSync(join(host.dir, "labc", `router-${host.port}.log`), "utf8");
      expect(log).toMatch(/refused site evil on NATS: its listing is not believed: it listed server forged-self of another site on host gw, a host of this LAN \(this one\)/);
      // Said once for the minute, not once per entry.
      expect(log.match(/refused site evil on NATS/g)).toHaveLength(1);
      // A call to the genuine entry still goes over NATS, to the stranger (which does not answer).
      const far = await host.cli(["call", "--timeout", "2", "evil.fn"]);
      expect(far.stderr).toMatch(/LABC_CONNECTION_LOST|LABC_TIMEOUT/);
      await sleep(100);
      expect(relayed).toEqual(["evil.fn"]);
    } finally {
      clearInterval(beats);
    }
  });
});

describe.skipIf(noNats)("a host that links takes its id back", () => {
  test("a site lists a server on host latecomer; latecomer's router links to the gateway: the site's entry goes", async () => {
    const listing = {
      hostId: "evil2",
      name: "evil2",
      instance: "i1",
      version: 1,
      servers: [entry("late-forged", "latecomer", [fn("late.fn")])],
      hosts: [{ hostId: "evil2", name: "evil2" }],
    };
    const say = () => stranger.publish("labc.main.hosts.evil2", Buffer.from(JSON.stringify(listing)));
    say();
    const beats = setInterval(say, 500);
    let latecomer: HostilePeer | undefined;
    let alive: NodeJS.Timeout | undefined;
    try {
      // Not yet a host of this LAN: another site may list it.
      await eventually(async () => (await listed()).some((server) => server.id === "late-forged"), 8000, "the entry on latecomer listed");
      latecomer = await HostilePeer.connect(host.port);
      latecomer.send(frameOf(KIND.hello, 1, { v: 1, role: "router", id: "late-run", pid: 1, host: "latecomer", hostId: "latecomer", port: 1 }));
      await latecomer.expect((frame) => frame.id === 1 && frame.kind === KIND.rep);
      alive = setInterval(() => latecomer!.send(frameOf(KIND.ping, 0, {})), 500);
      await eventually(async () => !(await listed()).some((server) => server.id === "late-forged"), 5000, "the site's entry on latecomer gone");
      // The site's next listings say it again, and are not believed.
      listing.version = 2;
      await sleep(1200);
      expect((await listed()).map((server) => server.id)).not.toContain("late-forged");
    } finally {
      clearInterval(beats);
      clearInterval(alive);
      latecomer?.destroy();
    }
  });
});
