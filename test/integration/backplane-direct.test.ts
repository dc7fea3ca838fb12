import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { frameOf, KIND } from "../../bench/hostile-peer.js";
import { freePort } from "../../lib/net/free-port.js";
import { PACKAGE_ROOT } from "../../lib/paths.js";
import { ECHO, TestHost, eventually, sleep, type Served } from "../helpers.js";

/**
 * Calls between processes on two gateways' hosts go on NATS by themselves, past both gateways
 * (docs/backplane.md#direct-calls): two sites on 127.0.0.1 that meet only on a nats-server of
 * the test's own, a tap on every labc subject, and a stranger with a NATS client of its own.
 */

const noNats = spawnSync("nats-server", ["--version"]).status !== 0;
const FAR_SIDE = join(PACKAGE_ROOT, "test", "fixtures", "far-side.ts");
let natsPort = 0;
let nats: ChildProcess;
let tap: NatsConnection;
const seen: string[] = [];
let a: TestHost;
let b: TestHost;
let far: Served;
let farSubject = "";

function startNats(): ChildProcess {
  return spawn("nats-server", ["-a", "127.0.0.1", "-p", String(natsPort)], { stdio: "ignore" });
}

/** What crossed NATS while `run` ran, by labc's subjects (a call's own subject, or a gateway's). */
async function crossing(run: () => Promise<void>): Promise<string[]> {
  const subjects = await crossingIfTapped(run);
  if (subjects === undefined) throw new Error("the tap lost NATS while it listened");
  return subjects;
}

/**
 * As crossing, or undefined when the tap itself was away from NATS meanwhile (its flush fails
 * while it reconnects after NATS restarts), so what it saw says nothing.
 */
async function crossingIfTapped(run: () => Promise<void>): Promise<string[] | undefined> {
  seen.length = 0;
  await run();
  try {
    await tap.flush();
  } catch {
    return undefined;
  }
  await sleep(100);
  return seen.filter((subject) => subject.startsWith("labc.main.srv.") || subject.startsWith("labc.main.req."));
}

/**
 * Site a (a gateway serving echo, which keeps its router up between the test's CLI calls) and
 * site b (a gateway serving FarSide) on the NATS server at `url`; resolves once site a can call
 * site b, with the id of b's server as its listing says it, and whether it takes calls on NATS.
 */
async function twoSites(url: string, hosts: TestHost[], env: NodeJS.ProcessEnv = {}): Promise<{ a: TestHost; b: TestHost; far: Served; farId: string; onNats: boolean }> {
  const a = await TestHost.start();
  const b = await TestHost.start();
  hosts.push(a, b);
  Object.assign(a.env, { LABC_HOST_ID: "site-a", LABC_HOST_NAME: "alpha", LABC_BACKPLANE_NATS: url, ...env });
  Object.assign(b.env, { LABC_HOST_ID: "site-b", LABC_HOST_NAME: "beta", LABC_BACKPLANE_NATS: url, ...env });
  await a.serve([ECHO]);
  const far = await b.serve([FAR_SIDE]);
  let listed: { id: string; nats?: boolean } | undefined;
  await eventually(
    async () => {
      const servers = JSON.parse((await a.cli(["ls", "--json"])).stdout || "[]") as { id: string; pid: number; nats?: boolean }[];
      listed = servers.find((server) => server.pid === far.pid);
      return listed !== undefined && (await a.cli(["call", "farPid"])).code === 0;
    },
    15_000,
    "site a knowing site b's server",
  );
  return { a, b, far, farId: listed?.id ?? "", onNats: listed?.nats === true };
}

beforeAll(async () => {
  if (noNats) return;
  natsPort = await freePort();
  nats = startNats();
  await sleep(300);
  tap = await connect({ servers: `nats://127.0.0.1:${natsPort}`, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
  tap.subscribe("labc.main.>", { callback: (_error, msg) => void seen.push(msg.subject) });
  let farId: string;
  let onNats: boolean;
  // A server links to NATS again 20 s after it lost it (`relink`, 10 s by default): the test of
  // a restart sees calls through the gateways meanwhile, however loaded the machine.
  ({ a, b, far, farId, onNats } = await twoSites(`nats://127.0.0.1:${natsPort}`, [], { LABC_BACKPLANE_RELINK: "20" }));
  expect(onNats).toBe(true);
  farSubject = `labc.main.srv.${farId}`;
}, 40_000);
afterAll(async () => {
  if (noNats) return;
  await tap.close();
  await a.cleanup();
  await b.cleanup();
  nats.kill("SIGKILL");
});

describe.skipIf(noNats)("calls between gateways' hosts on NATS", () => {
  test("a call, a stream and a script's calls go to the server's own subject: neither gateway relays them", async () => {
    const subjects = await crossing(async () => {
      expect((await a.cli(["call", "farPid"])).stdout).toBe(`${far.pid}\n`);
      expect((await a.cli(["call", "farTicks", "3"])).stdout).toBe("0\n1\n2\n");
      // The server knows its caller by the caller's hello, and as one on another host.
      expect(JSON.parse((await a.cli(["call", "farCaller", "--json"])).stdout)).toEqual({ host: "alpha", fromOtherHost: true });
    });
    expect(subjects.length).toBeGreaterThan(0);
    expect(new Set(subjects)).toEqual(new Set([farSubject]));

    // A script that calls and neither serves nor closes ends by itself once answered: its NATS
    // link keeps it alive only while a call waits.
    const script = join(a.dir, "far-call.mjs");
    writeFileSync(script, `import * as labc from ${JSON.stringify(join(PACKAGE_ROOT, "dist", "labc.js"))};\nconsole.log(await labc.call("farPid"));\n`);
    const ran = await crossing(async () => {
      const result = await a.node([script], 10_000);
      expect(result.stderr).toBe("");
      expect(result).toMatchObject({ code: 0, stdout: `${far.pid}\n` });
    });
    expect(new Set(ran)).toEqual(new Set([farSubject]));

    // What other hosts may not call is not offered across sites either.
    expect((await a.cli(["call", "farHostOnly"])).stderr).toMatch(/LABC_NO_SUCH_FUNCTION/);
  });

  test("a stranger's frames on a server's subject: garbage ends only its own pipe, a request without hello is a far caller's", async () => {
    const stranger = await connect({ servers: `nats://127.0.0.1:${natsPort}` });
    try {
      const ask = async (bytes: Buffer) => {
        const answer = Buffer.from((await stranger.request(farSubject, bytes, { timeout: 3000 })).data);
        return { kind: answer[4], body: JSON.parse(answer.subarray(16, 16 + answer.readUInt32BE(12)).toString()) };
      };
      // No hello first: served, as a caller that did not say who it is, from another host.
      expect(await ask(frameOf(KIND.req, 1, { fn: "farPid", args: [] }))).toEqual({ kind: KIND.rep, body: { v: far.pid } });
      const local = await ask(frameOf(KIND.req, 1, { fn: "farHostOnly", args: [] }));
      expect(local).toMatchObject({ kind: KIND.exc, body: { code: "LABC_NO_SUCH_FUNCTION" } });
      const wrong = await ask(frameOf(KIND.req, 2, { fn: 42, args: "no" }));
      expect(wrong).toMatchObject({ kind: KIND.exc, body: { code: "LABC_BAD_MESSAGE" } });
      // Garbage, and a frame declaring 3 GB: the pipe they came on is closed, nothing more.
      const inbox = stranger.subscribe("stranger.inbox");
      stranger.publish(farSubject, Buffer.from("\x00\x00\x00\x05\xffhello"), { reply: "stranger.inbox" });
      stranger.publish(farSubject, Buffer.from([0xc0, 0, 0, 0, 1, 2, 3]), { reply: "stranger.other" });
      await stranger.flush();
      await sleep(300);
      expect(inbox.getProcessed()).toBe(0);
      inbox.unsubscribe();
      expect((await a.cli(["call", "farPid"])).stdout).toBe(`${far.pid}\n`);
    } finally {
      await stranger.close();
    }
  });

  test("NATS restarted: calls come back by themselves, through the gateways while the server's own link is away", async () => {
    nats.kill("SIGKILL");
    await sleep(500);
    nats = startNats();
    // The gateways link again within a second or two, and greet: site b is back in site a's pool.
    // Its server's own link is not back yet (`relink`, 20 s): the call goes through both gateways.
    let through: string[] | undefined;
    await eventually(
      async () => {
        let answered = false;
        through = await crossingIfTapped(async () => void (answered = (await a.cli(["call", "farPid"])).stdout === `${far.pid}\n`));
        return answered && through !== undefined;
      },
      18_000,
      "a call across sites again",
    );
    expect(through).toContain("labc.main.req.site-b");
    // The server's own link comes back too (20 s after it was lost): a new caller goes to it on NATS.
    await eventually(
      async () => {
        const subjects = await crossingIfTapped(async () => void (await a.cli(["call", "farPid"])));
        return subjects !== undefined && subjects.length > 0 && subjects.every((subject) => subject === farSubject);
      },
      30_000,
      "calls on the server's own subject again",
    );
  }, 60_000);
});

describe.skipIf(noNats)("a NATS login that may not take calls on a server's own subject", () => {
  test("its servers do not say they take calls on NATS, and calls to them go through the gateways", async () => {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), "labc-nats-deny-"));
    const conf = join(dir, "nats.conf");
    writeFileSync(conf, 'authorization { users = [ { user: lab, password: s3cret, permissions: { subscribe: { deny: ["labc.*.srv.>"] } } } ] }\n');
    const server = spawn("nats-server", ["-a", "127.0.0.1", "-p", String(port), "-c", conf], { stdio: "ignore" });
    const hosts: TestHost[] = [];
    try {
      await sleep(300);
      const sites = await twoSites(`nats://127.0.0.1:${port}`, hosts, { LABC_BACKPLANE_USER: "lab", LABC_BACKPLANE_PASS: "s3cret" });
      expect(sites.onNats).toBe(false);
      expect((await sites.a.cli(["call", "farTicks", "2"])).stdout).toBe("0\n1\n");
    } finally {
      for (const host of hosts) await host.cleanup();
      server.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
