import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { frameOf, HostilePeer, KIND, rssMb } from "../../bench/hostile-peer.js";
import type { LabcError } from "../../lib/errors.js";
import type { Runtime } from "../../lib/runtime/runtime.js";
import { ECHO, FIXTURES, TestHost, eventually, sleep, type Served } from "../helpers.js";

/**
 * Each test plays a hostile or careless peer at the byte level, against a real server and a
 * real router with small limits, while a well-behaved caller keeps calling.
 */

const MiB = 1024 * 1024;
let host: TestHost;
let server: Served;
let labc: Runtime;
let routerPid: number;
const peers: HostilePeer[] = [];

async function peer(port = server.port): Promise<HostilePeer> {
  const connected = await HostilePeer.connect(port);
  peers.push(connected);
  return connected;
}

beforeAll(async () => {
  host = await TestHost.start();
  Object.assign(host.env, {
    LABC_LIMITS_HELLO_TIMEOUT: "1",
    LABC_LIMITS_FRAME_TIMEOUT: "1",
    LABC_LIMITS_PARTIAL_FRAMES: String(32 * MiB),
    LABC_LIMITS_IN_FLIGHT: "256",
    LABC_LIMITS_UNSENT: String(1 * MiB),
    LABC_LIMITS_CONNECTIONS_PER_ADDRESS: "40",
  });
  server = await host.serve([ECHO, join(FIXTURES, "lab.ts")]);
  labc = host.runtime();
  routerPid = (await host.routerPid())!;
});
afterEach(() => {
  for (const hostile of peers.splice(0)) hostile.destroy();
});
afterAll(() => host.cleanup());

/** A well-behaved caller meanwhile: every call must succeed. */
async function stillServed(count = 20): Promise<void> {
  for (let i = 0; i < count; i++) expect(await labc.callWith("echo", [`ok ${i}`], { timeoutMs: 3000 })).toBe(`ok ${i}`);
}

describe("bounded memory", () => {
  test("a client that sends requests and never reads the answers is not read either; memory stays bounded", async () => {
    await stillServed(1);
    const before = rssMb(server.pid);
    const hostile = await peer();
    hostile.hello();
    hostile.stopReading();
    const request = (id: number) => frameOf(KIND.req, id, { fn: "echo", args: ["x".repeat(200)] });
    for (let id = 1; id <= 200_000; id++) hostile.send(request(id));
    await sleep(1500);
    // The server stopped reading: most of what the peer wrote is still in the peer's own buffer.
    expect(hostile.socket.writableLength).toBeGreaterThan(10 * MiB);
    const during = rssMb(server.pid);
    await stillServed();
    expect(during - before).toBeLessThan(64);
    hostile.destroy();
    await stillServed();
    expect(rssMb(server.pid) - before).toBeLessThan(64);
  });

  test("many connections holding large partial frames cannot add up past the budget; a frame that stops arriving is dropped", async () => {
    await stillServed(1);
    const before = rssMb(server.pid);
    const hostiles = await Promise.all(Array.from({ length: 6 }, () => peer()));
    for (const hostile of hostiles) {
      hostile.hello();
      const head = Buffer.alloc(4);
      head.writeUInt32BE(12 * MiB, 0);
      hostile.send(head);
      hostile.send(Buffer.alloc(10 * MiB, 7));
    }
    await sleep(400);
    // 32 MiB of budget holds two frames of 12 MiB: the others are refused at once.
    expect(hostiles.filter((h) => h.isClosed).length).toBeGreaterThanOrEqual(4);
    expect(rssMb(server.pid) - before).toBeLessThan(64);
    await stillServed();
    // The frame timeout (1 s here) drops the two that stalled.
    await eventually(() => hostiles.every((h) => h.isClosed), 3000, "stalled frames dropped");
    await stillServed();
    expect(server.stderr()).toMatch(/partial_frames tripped by 127\.0\.0\.1/);
  });

  test("connections that never say hello, or trickle a frame byte by byte, are dropped", async () => {
    const silent = await Promise.all(Array.from({ length: 25 }, () => peer()));
    const trickler = await peer(host.port);
    trickler.hello();
    // 100 bytes at one every 100 ms: whole after 10 s, so a close before that is the frame
    // timeout's (1 s here, started again once when bytes of it waited to be read: at most 2 s).
    const frame = frameOf(KIND.ping, 1, { pad: "x".repeat(100 - 16 - 10) });
    let at = 0;
    const drip = setInterval(() => at < frame.length && trickler.send(frame.subarray(at, ++at)), 100);
    try {
      const started = Date.now();
      expect(await Promise.all(silent.map((s) => s.closedWithin(3000)))).toEqual(silent.map(() => true));
      // 2 s, with room for a loaded machine, and well before the frame is whole.
      expect(await trickler.closedWithin(6000 - (Date.now() - started))).toBe(true);
      // Its ping was never whole: nothing answered it.
      expect(trickler.received.filter((f) => f.id === 1)).toEqual([]);
    } finally {
      clearInterval(drip);
    }
    await stillServed();
  });

  test("a server that stalled past the frame timeout reads what came meanwhile before it blames the peer", async () => {
    const slow = await peer();
    slow.hello();
    const frame = frameOf(KIND.req, 9, { fn: "echo", args: ["sent in two halves"] });
    slow.send(frame.subarray(0, 10));
    await sleep(100);
    // The server's event loop is held 1.5 s (its frame timeout is 1 s); the rest arrives meanwhile.
    const blocked = labc.callWith("block", [1500], { timeoutMs: 5000 });
    await sleep(300);
    slow.send(frame.subarray(10));
    expect(await blocked).toBe("unblocked");
    expect((await slow.expect((f) => f.id === 9)).body).toEqual({ v: "sent in two halves" });
    expect(slow.isClosed).toBe(false);
  });

  test("past the cap per address of connections that have not said hello, the oldest are closed; those that said hello stay", async () => {
    const idle = [];
    for (let i = 0; i < 60; i++) idle.push(await peer());
    await sleep(300);
    // The cap is 40: the 20 oldest idle ones were closed to make room, the newest are open.
    expect(idle.filter((h) => h.isClosed).length).toBeGreaterThanOrEqual(20);
    expect(idle.slice(-20).every((h) => !h.isClosed)).toBe(true);
    for (const hostile of idle) hostile.destroy();
    // A host's own processes say hello at once: they do not count, however many there are
    // (60 opened together before any hello would be 60 idle ones for a moment: the cap's case).
    const greeted = [];
    for (let i = 0; i < 60; i++) {
      const hostile = await peer();
      hostile.hello();
      greeted.push(hostile);
    }
    await sleep(300);
    expect(greeted.filter((h) => h.isClosed).length).toBe(0);
    await stillServed(3);
    for (const hostile of greeted) hostile.destroy();
    await sleep(100);
    const fresh = await peer();
    fresh.hello();
    fresh.send(frameOf(KIND.req, 7, { fn: "echo", args: ["after"] }));
    expect((await fresh.expect((f) => f.id === 7)).body).toEqual({ v: "after" });
  });
});

describe("every message is checked at the edge", () => {
  test("a server that answers a relayed request with a pong: its caller gets LABC_BAD_MESSAGE, and the router relays on", async () => {
    const forged = await peer(host.port);
    forged.hello("server", { id: "pongs-back", port: server.port }, 1);
    await forged.expect((f) => f.id === 1 && f.kind === KIND.rep);
    forged.send(frameOf(KIND.announce, 2, { functions: [{ name: "pongs", scope: "network", visibility: "public" }], topics: [] }));
    await forged.expect((f) => f.id === 2 && f.kind === KIND.rep);
    await eventually(async () => (await labc.admin.sync(), labc.admin.pool.servers.has("pongs-back")));
    const asked = labc.admin.forward("pongs-back", "pongs", ["first"], 3000).catch((e) => e);
    const request = await forged.expect((f) => f.kind === KIND.req);
    forged.send(frameOf(12, request.id, {}));
    const error = (await asked) as LabcError;
    expect(error.code).toBe("LABC_BAD_MESSAGE");
    expect(error.message).toMatch(/pong/);
    const again = labc.admin.forward("pongs-back", "pongs", ["second"], 3000);
    const next = await forged.expect((f) => f.kind === KIND.req && f.body.args[0] === "second");
    forged.send(frameOf(KIND.rep, next.id, { v: "answered" }));
    expect(await again).toBe("answered");
    expect(forged.isClosed).toBe(false);
    await stillServed();
  });

  test("malformed announces and withdraws to the router get LABC_BAD_MESSAGE and leave the pool whole", async () => {
    const fake = await peer(host.port);
    fake.hello("server", { port: 1 }, 1);
    await fake.expect((f) => f.id === 1 && f.kind === KIND.rep);
    const bad: [number, unknown][] = [
      [KIND.announce, { functions: "echo" }],
      [KIND.announce, { functions: [null] }],
      [KIND.announce, { functions: ["echo", "stopService"] }],
      [KIND.announce, { functions: [{ name: "x", scope: "galaxy", visibility: "public" }] }],
      [KIND.announce, { topics: [5] }],
      [KIND.withdraw, { functions: [{ name: "echo" }] }],
    ];
    let id = 10;
    for (const [kind, body] of bad) fake.send(frameOf(kind, ++id, body));
    for (let n = 11; n <= id; n++) {
      const answer = await fake.expect((f) => f.id === n);
      expect(answer.kind).toBe(KIND.exc);
      expect(answer.body.code).toBe("LABC_BAD_MESSAGE");
    }
    // A body that is not even an object ends the connection: it is not labc speaking.
    fake.send(frameOf(KIND.announce, ++id, "[1,2,3]"));
    expect(await fake.closedWithin(2000)).toBe(true);
    const ls = await host.cli(["ls"]);
    expect(ls.code).toBe(0);
    expect(ls.stdout).not.toMatch(/stopService\s.*hostile/);
    await stillServed(3);
  }, 20000);

  test("a request with a bad body is answered with LABC_BAD_MESSAGE; a duplicate id is refused; nothing before hello", async () => {
    const careless = await peer();
    careless.hello();
    careless.send(frameOf(KIND.req, 1, { fn: 5, args: [] }));
    careless.send(frameOf(KIND.req, 2, { fn: "slowEcho", args: [300, "first"] }));
    careless.send(frameOf(KIND.req, 2, { fn: "echo", args: ["second"] }));
    expect((await careless.expect((f) => f.id === 1)).body).toMatchObject({ code: "LABC_BAD_MESSAGE" });
    const answers = [await careless.expect((f) => f.id === 2 && f.kind === KIND.exc), await careless.expect((f) => f.id === 2 && f.kind === KIND.rep)];
    expect(answers[0]!.body.message).toMatch(/already in use/);
    expect(answers[1]!.body).toEqual({ v: "first" });
    const rude = await peer();
    rude.send(frameOf(KIND.req, 1, { fn: "echo", args: ["no hello"] }));
    expect(await rude.closedWithin(2000)).toBe(true);
    expect(rude.received).toEqual([]);
    expect(rssMb(routerPid)).toBeGreaterThan(0);
  });
});
