import { readFileSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { frameOf, HostilePeer, KIND } from "../../bench/hostile-peer.js";
import { TestHost, eventually, sleep } from "../helpers.js";

const HOME = join(__dirname, "..", "fixtures", "home.ts");

/**
 * A router link that speaks for hosts it is not (issue 27, item 5), played at the byte level:
 * the test's own socket says hello to the root port of host "home" as the router of another
 * host, "faraway", and then announces servers "on" home (plain, and marked as another site's
 * reached through faraway), reuses the id of home's real server to add a function and make a
 * `local` one public, and offers a `local` function of its own. A trap port of the test's own
 * counts every process that would dial a forged server.
 */

let host: TestHost;
let peer: HostilePeer;
let trap: net.Server;
let trapped = 0;
let trapPort = 0;
let realId = "";
/** Home's real server's functions before the link spoke, as `name visibility`. */
let realFunctions: string[] = [];
let beat: NodeJS.Timeout | undefined;

interface Listed {
  id: string;
  hostId: string;
  gateway?: string;
  functions: { name: string; scope: string; visibility: string }[];
}
const listed = async (): Promise<Listed[]> => JSON.parse((await host.cli(["ls", "--json"])).stdout);
const fn = (name: string, visibility = "public", scope = "network") => ({ name, scope, visibility });
const entry = (id: string, hostId: string, functions: object[], extra: object = {}) => ({
  id,
  host: hostId,
  hostId,
  address: "127.0.0.1",
  port: trapPort,
  pid: 4242,
  functions,
  topics: [],
  ...extra,
});

beforeAll(async () => {
  trap = net.createServer((socket) => {
    trapped++;
    socket.destroy();
  });
  await new Promise<void>((done) => trap.listen(0, "127.0.0.1", () => done()));
  trapPort = (trap.address() as net.AddressInfo).port;
  host = await TestHost.start();
  Object.assign(host.env, { LABC_HOST_ID: "home" });
  const served = await host.serve([HOME]);
  const real = (await listed()).find((server) => server.functions.some((f) => f.name === "where"))!;
  realId = real.id;
  realFunctions = real.functions.map((f) => `${f.name} ${f.visibility}`).sort();
  expect(realFunctions).toContain("loc local");
  expect(served.pid).toBeGreaterThan(0);
  peer = await HostilePeer.connect(host.port);
  peer.send(frameOf(KIND.hello, 1, { v: 1, role: "router", id: "faraway-run", pid: 1, host: "faraway", hostId: "faraway", port: 1 }));
  await peer.expect((frame) => frame.id === 1 && frame.kind === KIND.rep);
  // Anything sent keeps the link alive for home's router: a ping every half second, as long as the test runs.
  beat = setInterval(() => peer.send(frameOf(KIND.ping, 0, {})), 500);
}, 30_000);

afterAll(async () => {
  clearInterval(beat);
  peer?.destroy();
  trap?.close();
  await host?.cleanup();
});

describe("a router link speaks only for its own host", () => {
  test("servers announced on home's id, home's server id taken over, local functions offered: refused; home's calls stay home", async () => {
    const forged = [
      // On home itself, marked as another site's that faraway is the gateway of (what today's check lets by).
      entry("forged-gateway", "home", [fn("where"), fn("loc", "local"), fn("hostOnly", "public", "host")], { gateway: "faraway" }),
      // On home itself, plainly.
      entry("forged-plain", "home", [fn("where"), fn("loc", "local")]),
      // Home's real server, said to be faraway's: one function more, and `loc` made public.
      entry(realId, "faraway", [fn("loc"), fn("evil.extra")]),
      // Home's real server, as another site's reached through faraway.
      entry(realId, "home", [fn("loc"), fn("evil.extra2")], { gateway: "faraway" }),
      // A server of faraway's own offering a local function: never sent by a genuine router.
      entry("far-local", "faraway", [fn("far.loc", "local")]),
    ];
    // The whole pool of a new link, then the same as announces.
    peer.send(frameOf(9, 0, { servers: [...forged, entry("far-1", "faraway", [fn("far.fn")])] }));
    for (const server of forged) peer.send(frameOf(KIND.announce, 0, { server }));
    peer.send(frameOf(KIND.announce, 0, { server: entry("far-2", "faraway", [fn("far.fn2")]) }));
    // Its genuine servers come in: what follows them has been applied too.
    await eventually(async () => (await listed()).some((server) => server.id === "far-2"), 8000, "faraway's own servers listed");
    const servers = await listed();
    // Home's router has its own server too (ServiceControl); of faraway's, only the genuine ones.
    expect.soft(servers.filter((server) => server.hostId !== "home" || server.gateway !== undefined).map((server) => server.id).sort()).toEqual(["far-1", "far-2"]);
    expect.soft(servers.map((server) => server.id)).not.toContain("forged-gateway");
    expect.soft(servers.map((server) => server.id)).not.toContain("forged-plain");
    expect.soft(servers.flatMap((server) => server.functions.map((f) => f.name))).not.toContain("far.loc");
    const real = servers.find((server) => server.id === realId)!;
    expect.soft(real).toMatchObject({ hostId: "home" });
    expect.soft(real.gateway).toBeUndefined();
    expect.soft(real.functions.map((f) => `${f.name} ${f.visibility}`).sort()).toEqual(realFunctions);
    // A withdraw or a death of home's server from the link changes nothing either.
    peer.send(frameOf(KIND.withdraw, 0, { server: realId, functions: ["where"], topics: [] }));
    peer.send(frameOf(10, 0, { server: realId }));
    await sleep(300);
    for (let k = 0; k < 6; k++) {
      expect.soft((await host.cli(["call", "--timeout", "2", "where"])).stdout).toBe("home\n");
      expect.soft((await host.cli(["call", "--timeout", "2", "loc"])).stdout).toBe("loc\n");
    }
    // No call came to the link (a forged server marked as another site's is asked through it), nor to the trap.
    expect.soft(peer.received.filter((frame) => frame.kind === KIND.req).map((frame) => frame.body.fn)).toEqual([]);
    expect.soft(trapped).toBe(0);
    const log = readFileSync(join(host.dir, "labc", `router-${host.port}.log`), "utf8");
    expect(log).toMatch(/refused 127\.0\.0\.1: the router of faraway \(faraway\) is not believed: it (announced|listed) server/);
    // Said once for the minute, not once per entry.
    expect(log.match(/refused 127\.0\.0\.1/g)).toHaveLength(1);
  });
});

describe("a router link cannot take the place of a linked host", () => {
  test("a second link that says it is faraway, from another address, while faraway's answers: refused, faraway's servers stay", async () => {
    const before = (await listed()).filter((server) => server.hostId === "faraway").map((server) => server.id).sort();
    expect(before).toContain("far-1");
    // From 127.0.0.2: another host, as the kernel reports it, that uses faraway's id (another run of it).
    const impostor = await HostilePeer.connect(host.port, "127.0.0.1", "127.0.0.2");
    try {
      impostor.send(frameOf(KIND.hello, 1, { v: 1, role: "router", id: "impostor-run", pid: 1, host: "faraway", hostId: "faraway", port: 1 }));
      impostor.send(frameOf(9, 0, { servers: [entry("impostor-1", "faraway", [fn("impostor.fn")])] }));
      const answer = await impostor.expect((frame) => frame.id === 1);
      expect.soft(answer.kind).toBe(KIND.exc);
      expect.soft(answer.body?.code).toBe("LABC_NOT_PERMITTED");
      expect.soft(await impostor.closedWithin(2000)).toBe(true);
      await sleep(300);
      const after = (await listed()).filter((server) => server.hostId === "faraway").map((server) => server.id).sort();
      expect.soft(after).toEqual(before);
      const log = readFileSync(join(host.dir, "labc", `router-${host.port}.log`), "utf8");
      expect(log).toMatch(/refused 127\.0\.0\.2: it said it is the router of faraway \(faraway\), which is linked from 127\.0\.0\.1 and answering/);
    } finally {
      impostor.destroy();
    }
  });
});
