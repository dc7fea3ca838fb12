import { randomBytes } from "node:crypto";
import net from "node:net";
import { join } from "node:path";
import tls from "node:tls";
import { afterAll, beforeAll, expect, test } from "vitest";
import { PACKAGE_ROOT } from "../../lib/paths.js";
import { frameOf, helloBody, KIND } from "../../bench/hostile-peer.js";
import { networkKey } from "../../lib/trust/network-key.js";
import { TestHost, eventually, type Served } from "../helpers.js";

/**
 * Processes that keep their event loop busy past a deadline while what they wait for has come
 * (in a turn of the loop timers run before reads). A script that publishes without awaiting and
 * is busy past a dial's timeout (1 s) before the loop first turns: its link to the router is
 * answered while it cannot read, and every publication still arrives, without the secret and
 * with it (the local proof); one busy for longer than a router may take to start, on a host
 * whose router is not running, still starts one. A caller busy past its call's timeout gets the
 * answer that came in time. A server busy past its handshake timeout takes the member whose TLS
 * handshake came meanwhile.
 */

const TALLY = join(PACKAGE_ROOT, "test", "fixtures", "tally.ts");
const SCRIPT = join(PACKAGE_ROOT, "test", "fixtures", "publish-busy.mjs");
const CALLER = join(PACKAGE_ROOT, "test", "fixtures", "call-busy.mjs");
const BLOCKER = join(PACKAGE_ROOT, "test", "fixtures", "blocker.ts");
let plain: TestHost;
let secured: TestHost;
const tallies = new Map<TestHost, Served>();

beforeAll(async () => {
  plain = await TestHost.start();
  secured = await TestHost.start();
  expect((await secured.cli(["secret", "new"])).code).toBe(0);
  for (const host of [plain, secured]) tallies.set(host, await host.serve([TALLY]));
  await plain.serve([BLOCKER]);
}, 30_000);
afterAll(async () => {
  await plain?.cleanup();
  await secured?.cleanup();
});

test.each([
  ["without", () => plain],
  ["with", () => secured],
])("a publisher busy for 1.5 s after its first publish (%s the secret): all 2 000 arrive", async (_, hostOf) => {
  const host = hostOf();
  const result = await host.node([SCRIPT, "1", "2000", "1500"]);
  expect(result).toMatchObject({ code: 0, stderr: "", stdout: "reached 1\n" });
  let seen: number[] = [];
  await eventually(
    async () => {
      seen = JSON.parse((await host.cli(["call", "tally", "--json"])).stdout || "[]") as number[];
      return seen.length === 2000;
    },
    10_000,
    `2 000 publications at the subscriber (it has ${seen.length}; its stderr: ${tallies.get(host)!.stderr()})`,
  );
  expect(seen).toEqual(Array.from({ length: 2000 }, (_, i) => i + 1));
}, 30_000);

test("a publisher busy for 5.5 s after its first publish, on a host whose router is not running: it starts one", async () => {
  const host = await TestHost.start();
  try {
    const result = await host.node([SCRIPT, "1", "10", "5500"]);
    expect(result).toMatchObject({ code: 0, stderr: "", stdout: "reached 0\n" });
  } finally {
    await host.cleanup();
  }
}, 30_000);

test("a caller busy for 1.5 s past its call's 1 s timeout gets the answer that came at once", async () => {
  const result = await plain.node([CALLER, "tally", "1000", "1500"]);
  expect(result).toMatchObject({ code: 0, stderr: "" });
  // What the publishers' tests left at the subscriber, or nothing.
  expect(result.stdout).toMatch(/^answered \[[\d,]*\]\n$/);
  // The control: a caller as busy whose answer does not come in time still times out.
  const late = await plain.node([CALLER, "block", "500", "1000", "3000"]);
  expect(late).toMatchObject({ code: 0, stderr: "" });
  expect(late.stdout).toMatch(/^failed LABC_TIMEOUT: call to "block" .* timed out after 500 ms/);
}, 30_000);

test("a server busy for 1.5 s past its 1 s handshake timeout takes the TLS handshake that came meanwhile", async () => {
  const host = await TestHost.start();
  let raw: net.Socket | undefined;
  try {
    const secret = `labc1_${randomBytes(32).toString("base64url")}`;
    host.env.LABC_SECRET = secret;
    const server = await host.serve([BLOCKER], { LABC_LIMITS_HELLO_TIMEOUT: "1" });
    // A caller whose links are open, so that the server starts blocking as soon as it is asked.
    const caller = host.runtime();
    expect(await caller.callWith("block", [0])).toBe(0);
    // Accepted while the server is free: its wait for this connection's handshake starts.
    raw = net.connect({ host: "127.0.0.1", port: server.port });
    raw.on("error", () => {});
    await new Promise((connected) => raw!.once("connect", connected));
    // `connect` is the kernel's handshake: give the server the turn in which it accepts and
    // starts its wait, or it could block first and read the ClientHello in time (no test).
    await new Promise((accepted) => setTimeout(accepted, 200));
    const blocked = caller.callWith("block", [1500]);
    await eventually(() => server.stderr().includes("blocking 1500"), 5000, `the server to block (its stderr: ${server.stderr()})`);
    // The ClientHello arrives while the server cannot read; it reads it after its wait is due.
    const key = networkKey(secret);
    const member = tls.connect({
      socket: raw,
      minVersion: "TLSv1.3",
      ciphers: "TLS_AES_128_GCM_SHA256",
      pskCallback: () => ({ psk: key.psk, identity: key.identity }),
      checkServerIdentity: () => undefined,
    });
    // The link is the server's too: it answers a call made on it (a refusal would close it).
    const answer = await new Promise<string>((done) => {
      let buffer = Buffer.alloc(0);
      member.once("secureConnect", () => member.write(Buffer.concat([frameOf(KIND.hello, 0, helloBody("client")), frameOf(KIND.req, 7, { fn: "block", args: [1] })])));
      member.on("data", (chunk: Buffer) => {
        buffer = Buffer.concat([buffer, chunk]);
        while (buffer.length >= 4 && buffer.length >= 4 + buffer.readUInt32BE(0)) {
          const frame = buffer.subarray(4, 4 + buffer.readUInt32BE(0));
          buffer = buffer.subarray(4 + frame.length);
          if (frame.readUInt32BE(4) === 7) done(`kind ${frame[0]}: ${frame.toString("utf8", 12, 12 + frame.readUInt32BE(8))}`);
        }
      });
      member.once("error", (error) => done(`error: ${error.message}`));
      member.once("close", () => done(`closed (the server's stderr: ${server.stderr()})`));
    });
    member.destroy();
    expect(answer).toBe(`kind ${KIND.rep}: {"v":1}`);
    expect(await blocked).toBe(1500);
  } finally {
    raw?.destroy();
    await host.cleanup();
  }
}, 30_000);
