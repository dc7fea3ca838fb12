import { randomBytes } from "node:crypto";
import net from "node:net";
import { join } from "node:path";
import tls from "node:tls";
import { afterAll, beforeAll, expect, test } from "vitest";
import { PACKAGE_ROOT } from "../../lib/paths.js";
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
  // The control: an answer that does not come in time still times out.
  const late = await plain.node([CALLER, "block", "500", "0", "1500"]);
  expect(late.stdout).toMatch(/^failed LABC_TIMEOUT: call to "block" .* timed out after 500 ms/);
}, 30_000);

test("a server busy for 1.5 s past its 1 s handshake timeout takes the TLS handshake that came meanwhile", async () => {
  const host = await TestHost.start();
  try {
    const secret = `labc1_${randomBytes(32).toString("base64url")}`;
    host.env.LABC_SECRET = secret;
    const server = await host.serve([BLOCKER], { LABC_LIMITS_HELLO_TIMEOUT: "1" });
    // Accepted while the server is free: its timer for this handshake starts.
    const raw = net.connect({ host: "127.0.0.1", port: server.port });
    await new Promise((connected) => raw.once("connect", connected));
    await new Promise((accepted) => setTimeout(accepted, 100));
    const blocked = host.cli(["call", "block", "1500"]);
    await eventually(() => server.stderr().includes("blocking"), 10_000, `the server to block (its stderr: ${server.stderr()})`);
    // The ClientHello arrives while the server cannot read; it reads it after its timer is due.
    const key = networkKey(secret);
    const member = tls.connect({
      socket: raw,
      minVersion: "TLSv1.3",
      ciphers: "TLS_AES_128_GCM_SHA256",
      pskCallback: () => ({ psk: key.psk, identity: key.identity }),
      checkServerIdentity: () => undefined,
    });
    try {
      const outcome = await new Promise<string>((done) => {
        member.once("secureConnect", () => done("secure"));
        member.once("error", (error) => done(`error: ${error.message}`));
        member.once("close", () => done("closed"));
      });
      expect(outcome).toBe("secure");
    } finally {
      member.destroy();
    }
    expect(await blocked).toMatchObject({ code: 0, stdout: "1500\n" });
  } finally {
    await host.cleanup();
  }
}, 30_000);
