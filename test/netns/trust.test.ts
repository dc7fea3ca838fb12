import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { KIND } from "../../bench/hostile-peer.js";
import { CLI_PATH } from "../../lib/paths.js";
import { Lan, lanUnavailable, sleep, within, type LanHost } from "./lan.js";

/**
 * Who may do what, on hosts in network namespaces. The stranger is a host of the same LAN that
 * speaks labc by hand (test/fixtures/stranger.ts): the attacks of issue 10, byte by byte.
 */

const why = lanUnavailable();
const noTcpdump = spawnSync("tcpdump", ["--version"]).status === 0 ? undefined : "tcpdump is not installed (.ci/run installs it)";
const EXC = KIND.exc;
const REP = KIND.rep;

const newSecret = () => `labc1_${randomBytes(32).toString("base64url")}`;

interface PoolServer {
  id: string;
  host: string;
  address: string;
  port: number;
  functions: { name: string }[];
}

/** The servers `host` knows, by `labc ls --json`. */
async function pool(host: LanHost): Promise<PoolServer[]> {
  const result = await host.cli(["ls", "--json"]);
  expect(result.stderr).toBe("");
  return JSON.parse(result.stdout);
}

/** What the stranger on `from` gets for `frames` sent to `to`'s address and `port`. */
function talk(from: LanHost, to: { address: string }, port: number, frames: object[], answers: number, extra: object = {}) {
  return from.stranger("talk", { host: to.address, port, frames, answers, waitMs: 3000, ...extra });
}

const hello = (role: string, extra: object = {}) => ({
  kind: KIND.hello,
  id: 1,
  body: { v: 1, role, id: "stranger", pid: 4242, host: "stranger", hostId: "stranger", ...extra },
});
const req = (id: number, fn: string, args: unknown[] = [], extra: object = {}) => ({ kind: KIND.req, id, body: { fn, args, ...extra } });

/**
 * Records every packet `host` sends or receives on its LAN cable (its eth0: a bridge forwards
 * unicast between its ports without showing it on br0) from when it resolves until `stop()`.
 */
async function capture(host: LanHost): Promise<{ stop: () => Promise<Buffer> }> {
  const file = join(host.dir, `capture-${process.pid}.pcap`);
  const child = spawn("ip", ["netns", "exec", host.ns, "tcpdump", "-i", "eth0", "--immediate-mode", "-U", "-w", file], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  // tcpdump says "listening on" once it captures; --immediate-mode writes each packet as it
  // comes (else packets wait in the kernel's ring, and a stop loses them).
  await new Promise<void>((ready, failed) => {
    let said = "";
    child.stderr!.on("data", (chunk) => {
      said += chunk;
      if (said.includes("listening on")) ready();
    });
    child.once("exit", (code) => failed(new Error(`tcpdump exited (${code}): ${said}`)));
  });
  return {
    stop: async () => {
      child.kill("SIGINT");
      await new Promise((done) => child.once("exit", done));
      const bytes = readFileSync(file);
      rmSync(file, { force: true });
      return bytes;
    },
  };
}

/** What h1 serves in both networks: public, local, host-scoped and secret functions, and a subscriber. */
function serveH1(h1: LanHost) {
  return h1.serve([
    h1.service("Lab", {
      echo: 'return "host1:" + args[0];',
      loc: { decorator: 'register({ visibility: "local" })', body: 'return "loc";' },
      hostScoped: { decorator: 'register({ scope: "host" })', body: 'return "hostScoped";' },
      sec: { decorator: 'register({ visibility: "secret" })', body: 'return "sec";' },
      listen: { decorator: 'subscribe("lab.#")', body: "this.heard.push(args[0]);" },
      heard: "return this.heard;",
    }),
  ]);
}

describe.skipIf(why)("an open network (no secret): 3 hosts in namespaces, host3 a stranger", () => {
  let lan: Lan;
  let h1: LanHost;
  let h2: LanHost;
  let stranger: LanHost;

  beforeAll(async () => {
    lan = Lan.create(3);
    [h1, h2, stranger] = lan.hosts as [LanHost, LanHost, LanHost];
    await serveH1(h1);
    await h2.serve([h2.service("Two", { two: "return 2;" })]);
    await within(8000, "host1 and host2 linked", async () => (await h2.hosts()).filter((h) => h.functions > 0).length === 2);
  }, 60000);
  afterAll(() => lan?.cleanup());

  test("serve and the router say once, at start, that the network is open, and how to close it", async () => {
    const child = h2.spawn([CLI_PATH, "serve", h2.service("Brief", { brief: "return 1;" })], {
      // A router of its own, out of the LAN's way: not found, and not taken for host2.
      LABC_ROUTER_PORT: "55601",
      LABC_DISCOVERY_ENABLED: "false",
      LABC_HOST_ID: "id-brief",
    });
    let out = "";
    child.stdout!.on("data", (chunk) => (out += chunk));
    try {
      await within(15000, "the notice", () => out.includes("network is open"));
    } finally {
      child.kill();
    }
    expect(out).toMatch(/the network is open \(no secret\).*`labc secret new` closes it/);
    const log = readFileSync(join(h2.dir, "labc", "router-55601.log"), "utf8");
    expect(log).toMatch(/, open network\nlabc: the network is open \(no secret\)/);
  });

  test("a stranger cannot register as a server of another host: calls on that host stay with its own servers", async () => {
    const answer = await talk(stranger, h1, 55555, [hello("server", { port: 4000 }), { kind: KIND.announce, id: 2, body: { functions: [{ name: "echo", scope: "network", visibility: "public" }] } }], 2);
    expect(answer.received[0]).toMatchObject({ kind: EXC, id: 1, body: { code: "LABC_NOT_PERMITTED" } });
    expect(answer.received[0].body.message).toMatch(/registers with the router of its own host/);
    expect(answer.closed).toBe(true);
    expect((await pool(h1)).map((server) => server.id)).not.toContain("stranger");
    for (let i = 0; i < 20; i++) expect((await h1.cli(["call", "echo", `"n${i}"`])).stdout).toBe(`host1:n${i}\n`);
  });

  test("a server refuses local, host-scoped and secret functions to other hosts, sent straight to its port", async () => {
    const lab = (await pool(h2)).find((server) => server.functions.some((f) => f.name === "echo"))!;
    expect(lab.host).toBe("host1");
    const frames = [hello("client"), req(2, "loc"), req(3, "hostScoped"), req(4, "sec"), req(5, "echo", ["x"])];
    const answer = await talk(stranger, h1, lab.port, frames, 4);
    const byId = new Map<number, any>(answer.received.map((frame: any) => [frame.id, frame]));
    for (const id of [2, 3, 4]) expect(byId.get(id)).toMatchObject({ kind: EXC, body: { code: "LABC_NO_SUCH_FUNCTION" } });
    expect(byId.get(5)).toMatchObject({ kind: REP, body: { v: "host1:x" } });
    // The same functions still answer on their own host.
    for (const name of ["loc", "hostScoped"]) expect((await h1.cli(["call", name])).stdout).toBe(`${name}\n`);
  });

  test("the router refuses them too when asked to pass them on (the caller names the server)", async () => {
    const lab = (await pool(h2)).find((server) => server.functions.some((f) => f.name === "echo"))!;
    const frames = [hello("client"), req(2, "loc", [], { target: lab.id }), req(3, "hostScoped", [], { target: lab.id }), req(4, "echo", ["y"], { target: lab.id })];
    const answer = await talk(stranger, h1, 55555, frames, 4);
    const byId = new Map<number, any>(answer.received.map((frame: any) => [frame.id, frame]));
    for (const id of [2, 3]) expect(byId.get(id)).toMatchObject({ kind: EXC, body: { code: "LABC_NO_SUCH_FUNCTION" } });
    expect(byId.get(4)).toMatchObject({ kind: REP, body: { v: "host1:y" } });
  });

  test("ServiceControl takes nothing from other hosts, by CLI or by hand, and says how to allow it", async () => {
    const cli = await h2.cli(["start-service", "echo", "--host", "host1"]);
    expect(cli.code).toBe(1);
    expect(cli.stderr).toMatch(/host1 does not let other hosts start echo: its network is open.*labc secret new.*service_control.remote = true.*\[LABC_NOT_PERMITTED\]/);
    const control = (await pool(h2)).find((server) => server.host === "host1" && server.functions.some((f) => f.name === "service_control.listServices"))!;
    const frames = [hello("client"), req(2, "service_control.listServices"), req(3, "service_control.serviceLogs", ["echo"])];
    const answer = await talk(stranger, h1, control.port, frames, 3);
    for (const id of [2, 3]) {
      expect(answer.received.find((frame: any) => frame.id === id)).toMatchObject({ kind: EXC, body: { code: "LABC_NOT_PERMITTED" } });
    }
    // On its own host it works.
    expect((await h1.cli(["services"])).code).toBe(0);
  });

  test("an unsigned beacon is taken (the control for the signed network below): its host is dialed", async () => {
    const listening = stranger.stranger("listen", { port: 55600, waitMs: 2500 });
    await sleep(300);
    const beacon = { labc: 1, hostId: "id-forged", name: "forged", port: 55600, addresses: [stranger.address] };
    await stranger.stranger("beacon", { host: h1.address, port: 55555, payload: JSON.stringify(beacon) });
    expect((await listening).connections).toBeGreaterThan(0);
  });

  test("a host that opts in (service_control.remote = true) lets other hosts use its ServiceControl", async () => {
    await stranger.serve([stranger.service("Three", { three: "return 3;" })], { LABC_SERVICE_CONTROL_REMOTE: "true" });
    await within(8000, "host3 linked", async () => (await h1.hosts()).filter((h) => h.functions > 0).length === 3);
    const services = await h1.cli(["services", "--host", "host3"]);
    expect(services.stderr).toBe("");
    expect(services.code).toBe(0);
    expect((await h1.cli(["services", "--host", "host2"])).stderr).toMatch(/host2 does not let other hosts list its services/);
  });

  test.skipIf(noTcpdump)("without a secret, a capture shows the arguments (the control for the capture below)", async () => {
    const marker = `plain-${randomBytes(6).toString("hex")}`;
    const recording = await capture(h1);
    expect((await h2.cli(["call", "echo", JSON.stringify(marker)])).stdout).toBe(`host1:${marker}\n`);
    const bytes = await recording.stop();
    expect(bytes.includes(marker)).toBe(true);
  });
});

describe.skipIf(why)("a network with a secret: host1 and host2 hold it, host3 is a stranger", () => {
  const secret = newSecret();
  let lan: Lan;
  let h1: LanHost;
  let h2: LanHost;
  let stranger: LanHost;

  beforeAll(async () => {
    lan = Lan.create(3, { LABC_SECRET: secret });
    [h1, h2, stranger] = lan.hosts as [LanHost, LanHost, LanHost];
    delete stranger.env.LABC_SECRET;
    await serveH1(h1);
    await h2.serve([h2.service("Two", { two: "return 2;" })]);
    await within(8000, "host1 and host2 linked", async () => (await h2.hosts()).filter((h) => h.functions > 0).length === 2);
  }, 60000);
  afterAll(() => lan?.cleanup());

  test("members call each other and use each other's ServiceControl; the stranger's labc is refused", async () => {
    expect((await h2.cli(["call", "echo", '"m"'])).stdout).toBe("host1:m\n");
    const services = await h2.cli(["services", "--host", "host1"]);
    expect(services.stderr).toBe("");
    expect(services.code).toBe(0);
    // The stranger runs labc too, without the secret: its own router finds nobody it may link to.
    await stranger.serve([stranger.service("Three", { three: "return 3;" })]);
    const call = await stranger.cli(["call", "echo", '"s"']);
    expect(call.stderr).toMatch(/no function "echo"/);
    expect((await h1.hosts()).map((h) => h.name).sort()).toEqual(["host1", "host2"]);
    // With a wrong secret (a router of its own, told where host1 is), it finds nobody either.
    const wrong = { LABC_SECRET: newSecret(), LABC_ROUTER_PORT: "55556", LABC_DISCOVERY_PEERS: `${h1.address}:55555` };
    const call2 = await stranger.cli(["call", "--host", "host1", "echo", '"s"'], wrong);
    expect(call2.stderr).toMatch(/no host "host1" is known/);
  });

  test("plain labc frames are refused on every port (router, server, lifeline, router link): no call, no publication; a hello gets the reason", async () => {
    const lab = (await pool(h2)).find((server) => server.functions.some((f) => f.name === "echo"))!;
    const atRouter = await talk(stranger, h1, 55555, [hello("server", { port: 4000 })], 1);
    expect(atRouter.received[0]).toMatchObject({ kind: EXC, id: 1, body: { code: "LABC_NOT_TRUSTED" } });
    expect(atRouter.received[0].body.message).toMatch(/requires the network secret/);
    expect(atRouter.closed).toBe(true);
    const atServer = await talk(stranger, h1, lab.port, [hello("client"), req(2, "echo", ["z"])], 2);
    expect(atServer.received.filter((frame: any) => frame.kind === REP)).toEqual([]);
    expect(atServer.closed).toBe(true);
    // A publication sent by hand to the server's port is never delivered.
    const marker = `plain-pub-${randomBytes(4).toString("hex")}`;
    const pub = { kind: KIND.pub, id: 0, body: { topic: "lab.stranger", args: [marker] } };
    expect((await talk(stranger, h1, lab.port, [hello("client"), pub], 1)).closed).toBe(true);
    expect((await h2.cli(["publish", "lab.member", '"member"'])).code).toBe(0);
    await within(5000, "the member's publication delivered", async () => (await h2.cli(["call", "heard"])).stdout.includes("member"));
    expect((await h2.cli(["call", "heard"])).stdout).not.toContain(marker);
    const asRouter = await talk(stranger, h1, 55555, [hello("router", { port: 55555, instance: "x" })], 1);
    expect(asRouter.received.filter((frame: any) => frame.kind === REP)).toEqual([]);
    expect(asRouter.closed).toBe(true);
  });

  test("TLS with a key of the stranger's own is refused in the handshake", async () => {
    for (const identity of ["labc1 0000000000000000", "anything"]) {
      const answer = await talk(stranger, h1, 55555, [hello("client")], 1, { psk: randomBytes(32).toString("hex"), identity });
      expect(answer.connected).toBe(false);
    }
  });

  test("a process of this host without the secret can neither call nor register", async () => {
    const call = await h1.cli(["call", "echo", '"local"'], { LABC_SECRET: "", XDG_CONFIG_HOME: stranger.dir });
    expect(call.code).toBe(1);
    expect(call.stderr).toMatch(/127\.0\.0\.1:55555: this host requires the network secret.*\[LABC_NOT_TRUSTED\]/);
    const register = await talk(h1, { address: "127.0.0.1" }, 55555, [hello("server", { port: 4000 })], 1);
    expect(register.received[0]).toMatchObject({ kind: EXC, body: { code: "LABC_NOT_TRUSTED" } });
  });

  test("the refusing router says who tried from where, once a minute", async () => {
    const logged = () => {
      const log = readFileSync(join(h1.dir, "labc", "router-55555.log"), "utf8");
      return log.split("\n").filter((line) => line.includes(`refused ${stranger.address}: `));
    };
    await talk(stranger, h1, 55555, [hello("client")], 1);
    const before = logged();
    expect(before.length).toBeGreaterThan(0);
    expect(before.join("\n")).toMatch(/it speaks labc without TLS|another network secret|not signed with this network's key/);
    for (let i = 0; i < 5; i++) await talk(stranger, h1, 55555, [hello("client")], 1);
    expect(logged().length).toBe(before.length);
  });

  test("forged, unsigned and replayed beacons are ignored: nobody dials their address", async () => {
    // The stranger's own labc (open) beacons too: a member's beacon is the one to replay.
    const heard = await stranger.stranger("overhear", { port: 55555, waitMs: 3000, notFrom: stranger.address });
    expect(heard.heard).toBeTruthy();
    const real = JSON.parse(heard.heard);
    expect(real.mac).toEqual(expect.any(String));
    expect(JSON.stringify(real)).not.toContain(secret.slice(6));
    const listening = stranger.stranger("listen", { port: 55600, waitMs: 3000 });
    await sleep(300);
    const forged = { ...real, hostId: "id-forged", name: "forged", port: 55600, addresses: [stranger.address] };
    const unsigned = { labc: 1, hostId: "id-unsigned", name: "unsigned", port: 55600, addresses: [stranger.address] };
    for (const beacon of [forged, unsigned, real]) {
      await stranger.stranger("beacon", { host: h1.address, port: 55555, payload: JSON.stringify(beacon) });
    }
    expect((await listening).connections).toBe(0);
    expect((await h1.hosts()).map((h) => h.name).sort()).toEqual(["host1", "host2"]);
  });

  test.skipIf(noTcpdump)("a capture between the hosts shows neither a call's arguments nor a publication", async () => {
    const argument = `arg-${randomBytes(6).toString("hex")}`;
    const published = `pub-${randomBytes(6).toString("hex")}`;
    const recording = await capture(h1);
    expect((await h2.cli(["call", "echo", JSON.stringify(argument)])).stdout).toBe(`host1:${argument}\n`);
    expect((await h2.cli(["publish", "lab.capture", JSON.stringify(published)])).code).toBe(0);
    await within(5000, "the publication delivered", async () => (await h2.cli(["call", "heard"])).stdout.includes(published));
    const bytes = await recording.stop();
    expect(bytes.length).toBeGreaterThan(1000);
    expect(bytes.includes(argument)).toBe(false);
    expect(bytes.includes(published)).toBe(false);
    expect(bytes.includes(secret.slice(6))).toBe(false);
  });
});
