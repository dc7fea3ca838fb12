import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import net from "node:net";
import tls from "node:tls";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { frameOf, helloBody, KIND } from "../../bench/hostile-peer.js";
import { networkKey } from "../../lib/trust/network-key.js";
import { ECHO, eventually, TestHost } from "../helpers.js";

/**
 * A stranger floods a router that has a secret with refused connections, each from an address of
 * its own (all of 127.0.0.0/8 is this machine's: the test's sockets bind 127.0.x.y), and puts
 * line breaks and terminal escapes in what the refusal quotes. The router's log stays a bounded
 * number of lines, says how many were counted and not logged, and every line is one line.
 */

const ADDRESSES = 300;
const secret = `labc1_${randomBytes(32).toString("base64url")}`;
let host: TestHost;

beforeAll(async () => {
  host = await TestHost.start();
  host.env.LABC_SECRET = secret;
  await host.serve([ECHO]);
}, 30000);
afterAll(() => host?.cleanup());

const routerLog = () => readFileSync(join(host.dir, "labc", `router-${host.port}.log`), "utf8");

/** A plain labc hello from `localAddress`, as a host without the secret sends it; resolves once the router closed on it (or a second passed). */
function plainHello(localAddress: string): Promise<void> {
  return new Promise((done) => {
    const socket = net.connect({ host: "127.0.0.1", port: host.port, localAddress });
    const end = () => {
      clearTimeout(timer);
      socket.destroy();
      done();
    };
    const timer = setTimeout(end, 1000);
    socket.on("error", end);
    socket.on("close", end);
    socket.on("data", end);
    socket.on("connect", () => socket.write(frameOf(KIND.hello, 1, helloBody("client"))));
  });
}

/** A TLS handshake from `localAddress` offering PSK `identity` (with a key of its own): the router refuses it, quoting the identity. */
function handshake(localAddress: string, identity: string): Promise<void> {
  return new Promise((done) => {
    // Node's tls.connect binds no local address itself: the TCP socket under it does.
    const socket = tls.connect({
      socket: net.connect({ host: "127.0.0.1", port: host.port, localAddress }),
      minVersion: "TLSv1.3",
      ciphers: "TLS_AES_128_GCM_SHA256",
      pskCallback: () => ({ psk: randomBytes(32), identity }),
      checkServerIdentity: () => undefined,
    });
    const end = () => {
      clearTimeout(timer);
      socket.destroy();
      done();
    };
    const timer = setTimeout(end, 3000);
    socket.on("error", end);
    socket.on("close", end);
    socket.on("secureConnect", end);
  });
}

interface Frame {
  kind: number;
  id: number;
  body: any;
}

/** A member (over TLS with the network key) says hello, sends `frames`, and resolves with the answer to the last, which has id `lastId`. */
async function asMember(frames: Buffer[], lastId: number): Promise<Frame> {
  const key = networkKey(secret);
  const socket = tls.connect({
    host: "127.0.0.1",
    port: host.port,
    minVersion: "TLSv1.3",
    ciphers: "TLS_AES_128_GCM_SHA256",
    pskCallback: () => ({ psk: key.psk, identity: key.identity }),
    checkServerIdentity: () => undefined,
  });
  let buffer = Buffer.alloc(0);
  try {
    return await new Promise((resolve, reject) => {
      socket.once("error", reject);
      socket.once("secureConnect", () => socket.write(Buffer.concat([frameOf(KIND.hello, 0, helloBody("client")), ...frames])));
      socket.on("data", (chunk: Buffer) => {
        buffer = Buffer.concat([buffer, chunk]);
        while (buffer.length >= 4 && buffer.length >= 4 + buffer.readUInt32BE(0)) {
          const frame = buffer.subarray(4, 4 + buffer.readUInt32BE(0));
          buffer = buffer.subarray(4 + frame.length);
          if (frame.readUInt32BE(4) === lastId) resolve({ kind: frame[0]!, id: lastId, body: JSON.parse(frame.toString("utf8", 12, 12 + frame.readUInt32BE(8))) });
        }
      });
    });
  } finally {
    socket.destroy();
  }
}

/** The router's labc.stats, asked as a member. */
async function stats(): Promise<{ trips: Record<string, number> }> {
  return (await asMember([frameOf(KIND.req, 7, { fn: "labc.stats", args: [] })], 7)).body.v;
}

test("a PSK identity with line breaks and terminal escapes is quoted on one line, escaped", async () => {
  const forged = "evil\nlabc[1]: refused 10.0.0.1: forged line\r\x1b[2J\x1b]0;owned\x07\u202etxt.exe";
  await handshake("127.0.9.1", `labc1 ${forged}`);
  await eventually(() => routerLog().includes("refused 127.0.9.1: "), 5000, "the refusal logged");
  const lines = routerLog().split("\n");
  const line = lines.find((l) => l.includes("refused 127.0.9.1: "))!;
  expect(line).toMatch(/^labc\[\d+\]: refused 127\.0\.9\.1: it has another network secret \(key id evil\\nlabc\[1\]: refused 10\.0\.0\.1: forged line\\r\\x1b\[2J\\x1b\]0;owned\\x07\\u202etxt\.exe; ours is [0-9a-f]{16}\)/);
  expect(lines.some((l) => l.startsWith("labc[1]:"))).toBe(false);
  expect(routerLog()).not.toMatch(/[\x1b\x07\r\u202e]/);
});

test("a member sending 500 messages the router refuses is said once, not 500 times; every one is counted and answered", async () => {
  const before = (await stats()).trips.bad_message ?? 0;
  const announces = Array.from({ length: 500 }, (_, i) => frameOf(KIND.announce, i + 1, { functions: [{ name: `f${i}`, scope: "network", visibility: "public" }] }));
  const last = await asMember(announces, 500);
  expect(last).toMatchObject({ kind: KIND.exc, body: { code: "LABC_BAD_ARGUMENTS" } });
  expect((await stats()).trips.bad_message).toBe(before + 500);
  const lines = routerLog().split("\n").filter((l) => l.includes("announce before a server hello"));
  expect(lines.length).toBe(1);
  expect(lines[0]).toMatch(/^labc\[\d+\]: bad_message tripped by 127\.0\.0\.1: router: bad message from client hostile\d+ \(pid \d+\): announce before a server hello/);
});

test(`connections refused from ${ADDRESSES} addresses write a bounded number of lines, then one line with how many were not logged`, async () => {
  const started = Date.now();
  // 20 at a time: the router sees a steady flood, the test's own sockets stay few.
  for (let i = 0; i < ADDRESSES; i += 20) {
    await Promise.all(Array.from({ length: Math.min(20, ADDRESSES - i) }, (_, j) => plainHello(`127.0.${1 + Math.floor((i + j) / 250)}.${2 + ((i + j) % 250)}`)));
  }
  const elapsedMs = Date.now() - started;
  const refusedLines = () => routerLog().split("\n").filter((l) => / refused 127\.0\.\d+\.\d+: it speaks labc without TLS/.test(l));
  // Every refusal is counted, logged or not.
  expect((await stats()).trips.refused).toBeGreaterThanOrEqual(ADDRESSES + 1);
  // 20 lines at once (the tests above took two of them), then 20 a minute (the flood took `elapsedMs`).
  const logged = refusedLines().length;
  expect(logged).toBeLessThanOrEqual(20 + Math.ceil((elapsedMs / 60_000) * 20));
  expect(logged).toBeGreaterThan(0);
  const summary = /labc\[\d+\]: (\d+) refusal\(s\) from (\d+) address\(es\) \(127\.0\.[\d., ]+\) in the last \d+ s were counted, not logged: at most 20 such lines a minute are \(labc\.stats counts them all\)/;
  await eventually(() => summary.test(routerLog()), 20000, "the summary line");
  const [, count, addresses] = summary.exec(routerLog())!;
  expect(Number(count)).toBe(ADDRESSES - logged);
  expect(Number(addresses)).toBe(ADDRESSES - logged);
}, 60000);
