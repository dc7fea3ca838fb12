/**
 * Links between processes of one host with a network secret: the local proof on loopback
 * (docs/protocol.md#local-links), attacked by hand with its own sockets and its own HMAC
 * (bench/hostile-peer.ts), against a real router and server.
 */
import { hkdfSync, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { frameOf, HostilePeer, helloBody, KIND } from "../../bench/hostile-peer.js";
import { ECHO, eventually, type Served, TestHost } from "../helpers.js";

let host: TestHost;
let served: Served;
let secret: Buffer;
let keyId: string;
const derive = (use: string, bytes = 32) => Buffer.from(hkdfSync("sha256", secret, "labc network", use, bytes));

beforeAll(async () => {
  host = await TestHost.start();
  expect((await host.cli(["secret", "new"])).code).toBe(0);
  secret = Buffer.from((await host.cli(["secret", "show"])).stdout.trim().slice("labc1_".length), "base64url");
  keyId = derive("key id", 8).toString("hex");
  served = await host.serve([ECHO]);
});
afterAll(() => host.cleanup());

const routerLog = () => readFileSync(join(host.dir, "labc", `router-${host.port}.log`), "utf8");

test("a process with the secret proves it on loopback and gets answers in plain frames, from the router and from a server", async () => {
  expect((await host.cli(["call", "echo", "on loopback"])).stdout).toBe("on loopback\n");
  for (const port of [host.port, served.port]) {
    const { answer, serverProved, peer } = await HostilePeer.localProof(port, "127.0.0.1", keyId, derive("local proof"));
    expect(answer.subarray(0, 4).toString()).toBe("LCL1");
    // The answer proves the secret for this very connection.
    expect(serverProved).toBe(true);
    peer!.send(frameOf(KIND.hello, 1, helloBody("client")));
    peer!.send(frameOf(KIND.req, 2, { fn: "echo", args: ["proved"] }));
    // The router answers a hello; a server, the request.
    if (port === host.port) expect(await peer!.expect((frame) => frame.kind === KIND.rep && frame.id === 1)).toBeTruthy();
    else expect((await peer!.expect((frame) => frame.id === 2)).body).toEqual({ v: "proved" });
    peer!.destroy();
  }
});

test("TLS with the secret's key is still taken on loopback (a client that dials a name, another language)", async () => {
  const peer = await HostilePeer.connectTls(host.port, "127.0.0.1", derive("tls psk"), `labc1 ${keyId}`);
  peer.hello("client", {}, 1);
  expect(await peer.expect((frame) => frame.kind === KIND.rep && frame.id === 1)).toBeTruthy();
  peer.destroy();
});

test("a wrong proof is refused before any frame is read; the router says so", async () => {
  for (const port of [host.port, served.port]) {
    // The key id is public (logs, refusals): the proof is what it cannot make.
    // From an address of its own: the router logs one refusal per address and minute.
    const { serverProved, peer } = await HostilePeer.localProof(port, "127.0.0.1", keyId, randomBytes(32), "127.0.0.2");
    expect(serverProved).toBe(false);
    peer!.send(frameOf(KIND.hello, 1, helloBody("server", { port: 1 })));
    peer!.send(frameOf(KIND.req, 2, { fn: "echo", args: ["unproved"] }));
    expect(await peer!.closedWithin(3000)).toBe(true);
    expect(peer!.received).toEqual([]);
  }
  await eventually(() => routerLog().includes("its local proof of the network secret was wrong"), 5000, "the refusal in the router's log");
  expect((await host.cli(["list"])).stdout).not.toContain("hostile");
});

test("a key id that is not the network's is answered LCLX and closed", async () => {
  const { answer, peer } = await HostilePeer.localProof(host.port, "127.0.0.1", "0123456789abcdef", randomBytes(32), "127.0.0.3");
  expect(answer.toString()).toBe("LCLX");
  expect(peer).toBeUndefined();
  await eventually(() => routerLog().includes("key id 0123456789abcdef"), 5000, "the refusal in the router's log");
});

test("a process in the middle that relays the exchange proves nothing: the caller refuses the answer, the router gets no proof", async () => {
  // A process that took the router's port (say, while the router was down) and relays to the real one.
  const relayed: Buffer[] = [];
  const relay = net.createServer((inner) => {
    const outer = net.connect({ host: "127.0.0.1", port: host.port });
    inner.on("data", (chunk) => (relayed.push(chunk), outer.write(chunk)));
    outer.on("data", (chunk) => inner.write(chunk));
    inner.on("close", () => outer.destroy());
    outer.on("close", () => inner.destroy());
    inner.on("error", () => {});
    outer.on("error", () => {});
  });
  await new Promise<void>((done) => relay.listen(0, "127.0.0.1", done));
  try {
    const port = (relay.address() as net.AddressInfo).port;
    const call = await host.cli(["call", "echo", "through the relay"], { LABC_ROUTER_PORT: String(port) });
    expect(call.code).toBe(1);
    expect(call.stderr).toMatch(/127\.0\.0\.1:\d+: its answer to the local proof was wrong: it does not hold the network secret \[LABC_NOT_TRUSTED\]/);
    // The caller sent its challenge and nothing after it: no proof of its own, no frame.
    expect(Buffer.concat(relayed).length).toBe(44);
  } finally {
    relay.close();
  }
});

test("a labc that reads the challenge as a frame and answers it (one from before local links) is dialed again with TLS", async () => {
  // What an older server does with a challenge whose key id starts with 01: a hello with an id, so an exc.
  const firstBytes: number[] = [];
  const older = net.createServer((socket) => {
    socket.on("error", () => {});
    socket.once("data", (chunk) => {
      firstBytes.push(chunk[0]!);
      if (chunk[0] === 0x4c) socket.end(frameOf(KIND.exc, 1, { code: "LABC_NOT_TRUSTED", message: "this host requires the network secret" }));
      else socket.destroy();
    });
  });
  await new Promise<void>((done) => older.listen(0, "127.0.0.1", done));
  try {
    const port = (older.address() as net.AddressInfo).port;
    const call = await host.cli(["call", "echo", "x"], { LABC_ROUTER_PORT: String(port) });
    expect(call.code).not.toBe(0);
    // The challenge, then a TLS ClientHello on a new connection.
    expect(firstBytes).toEqual([0x4c, 0x16]);
  } finally {
    older.close();
  }
});

test("network.local_proof = false keeps TLS on loopback: its router closes a challenge without a word, and a dialer then uses TLS", async () => {
  const strict = await TestHost.start();
  try {
    const env = { LABC_SECRET: `labc1_${secret.toString("base64url")}`, LABC_NETWORK_LOCAL_PROOF: "false" };
    await strict.serve([ECHO], env);
    const { answer, peer } = await HostilePeer.localProof(strict.port, "127.0.0.1", keyId, derive("local proof"), "127.0.0.4");
    expect([answer.length, peer]).toEqual([0, undefined]);
    // A caller that offers the proof (the default) falls back to TLS; one set to false uses TLS at once.
    expect((await strict.cli(["call", "echo", "fell back"], { LABC_SECRET: env.LABC_SECRET })).stdout).toBe("fell back\n");
    expect((await strict.cli(["call", "echo", "tls"], env)).stdout).toBe("tls\n");
    const log = readFileSync(join(strict.dir, "labc", `router-${strict.port}.log`), "utf8");
    expect(log).toContain("this host takes TLS only (network.local_proof = false)");
  } finally {
    await strict.cleanup();
  }
});
