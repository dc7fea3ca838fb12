import net from "node:net";
import { afterAll, beforeAll, expect, test } from "vitest";
import { frameOf, helloBody, rssMb } from "../../bench/hostile-peer.js";
import type { Runtime } from "../../lib/runtime/runtime.js";
import { ECHO, TestHost, running, type Served } from "../helpers.js";

/**
 * 100 000 random and mutated frames, from a seeded generator, at a running router and a
 * running server. Both must stay up, stay under a memory bound, and answer a real call after.
 */

const FRAMES = 100_000;
/** What the router or a server may reach under this test (docs/reliability.md). */
const RSS_BOUND_MB = 120;

/** A small seeded generator (mulberry32): a failure can be replayed with its seed. */
function generator(seed: number) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
  return { next, int, pick };
}

type Random = ReturnType<typeof generator>;

const NAMES = ["echo", "add", "labc.hosts", "labc.stats", "listServices", "", "__proto__", "constructor", "x".repeat(300)];
const TOPICS = ["lab.temp", "lab.*", "#", "a..b", "", "x.y.z", "__proto__"];

/** Any JSON value, of the shapes a confused peer might send, nested a little. */
function value(r: Random, depth = 0): unknown {
  switch (r.int(depth > 2 ? 6 : 9)) {
    case 0: return null;
    case 1: return r.int(2) === 0;
    case 2: return r.int(1e6) - 5e5;
    case 3: return r.pick(NAMES);
    case 4: return r.pick(TOPICS);
    case 5: return r.next() * 1e300;
    case 6: return Array.from({ length: r.int(4) }, () => value(r, depth + 1));
    case 7: return { name: value(r, depth + 1), scope: r.pick(["network", "host", "galaxy"]), visibility: r.pick(["public", "secret", 5]) };
    default: return Object.fromEntries(Array.from({ length: r.int(4) }, () => [r.pick(["fn", "args", "topic", "server", "functions", "topics", "target", "v", "role", "port"]), value(r, depth + 1)]));
  }
}

/** A body that is right for its kind, or almost. */
function body(r: Random, kind: number): unknown {
  const entry = () => ({ name: r.pick(NAMES), scope: r.pick(["network", "host"]), visibility: "public" });
  const server = () => ({ id: `s${r.int(50)}`, host: "h", hostId: `h${r.int(5)}`, address: "127.0.0.1", port: r.int(65536), pid: r.int(1e5), functions: [entry()], topics: [] });
  const base: Record<number, () => Record<string, unknown>> = {
    1: () => helloBody(r.pick(["client", "server", "router"] as const), { port: r.int(70000), watch: r.int(2) === 0 }),
    2: () => ({ fn: r.pick(NAMES), args: [value(r)], ...(r.int(4) === 0 ? { target: r.pick(NAMES) } : {}), timeoutMs: r.int(3) * 100 }),
    3: () => ({ v: value(r) }),
    4: () => ({ name: "Error", message: "fuzz" }),
    5: () => ({ topic: r.pick(TOPICS), args: [value(r)], ...(r.int(3) === 0 ? { target: `s${r.int(50)}` } : {}) }),
    7: () => ({ functions: [r.int(3) === 0 ? value(r) : entry()], topics: [r.pick(TOPICS)] }),
    8: () => ({ functions: [r.pick(NAMES)], topics: [r.pick(TOPICS)] }),
    9: () => ({ servers: [server()] }),
    10: () => (r.int(2) === 0 ? { server: `s${r.int(50)}` } : { host: `h${r.int(5)}` }),
    14: () => ({ server: `s${r.int(50)}`, suspect: r.int(2) === 0 }),
  };
  const made = base[kind]?.() ?? (value(r) as Record<string, unknown>);
  // Now and then a field of the wrong type, or a body that is not an object at all.
  if (r.int(12) === 0 && made && typeof made === "object") (made as Record<string, unknown>)[r.pick(["fn", "args", "v", "id", "topic"])] = value(r);
  return r.int(300) === 0 ? r.pick(["[]", "null", "7", '"x"', "{", "{\"fn\":"]) : made;
}

/** One frame: mostly well framed with a random body, sometimes broken at the byte level. */
function frame(r: Random): Buffer {
  // Mostly well framed, so that the frames that follow on the connection are read too.
  const kind = r.int(300) === 0 ? r.int(256) : r.pick([1, 2, 2, 2, 3, 4, 5, 5, 7, 8, 9, 10, 11, 12, 13, 14]);
  const bytes = frameOf(kind, r.int(5) === 0 ? 0 : r.int(1000), body(r, kind));
  switch (r.int(1200)) {
    case 0: // a flipped byte anywhere
      bytes[r.int(bytes.length)] ^= 1 << r.int(8);
      return bytes;
    case 1: // a lying length
      bytes.writeUInt32BE(r.pick([0, 3, 11, bytes.length + 100, 0x7fffffff]), 0);
      return bytes;
    case 2: // binary parts that are not there
      bytes.writeUInt16BE(1 + r.int(3), 6);
      return bytes;
    case 3: // cut short
      return bytes.subarray(0, r.int(bytes.length));
    default:
      return bytes;
  }
}

let host: TestHost;
let server: Served;
let labc: Runtime;

beforeAll(async () => {
  host = await TestHost.start();
  // Frames cut short must not hold a connection for long.
  host.env.LABC_LIMITS_FRAME_TIMEOUT = "1";
  host.env.LABC_LIMITS_HELLO_TIMEOUT = "1";
  server = await host.serve([ECHO]);
  labc = host.runtime();
});
afterAll(() => host.cleanup());

/** Throws `count` frames at `port` over many connections, 8 at a time; returns the peak RSS of `pid`. */
async function storm(port: number, pid: number, seed: number, count: number): Promise<number> {
  const r = generator(seed);
  let sent = 0;
  let answers = 0;
  let peak = rssMb(pid);
  const connection = () =>
    new Promise<void>((done) => {
      const socket = net.connect({ port, host: "127.0.0.1" });
      socket.on("error", () => {});
      socket.on("data", (chunk) => (answers += chunk.length));
      socket.once("close", () => done());
      socket.once("connect", () => {
        if (r.int(20) !== 0) socket.write(frameOf(1, 0, helloBody(r.pick(["client", "server"] as const), { port: 1 + r.int(60000) })));
        const batch = 1 + r.int(200);
        const frames: Buffer[] = [];
        for (let i = 0; i < batch && sent < count; i++, sent++) frames.push(frame(r));
        socket.end(Buffer.concat(frames));
        // A peer that lingers is cut: the storm must end in bounded time.
        setTimeout(() => socket.destroy(), 1500).unref();
      });
    });
  const workers = Array.from({ length: 8 }, async () => {
    while (sent < count) {
      await connection();
      peak = Math.max(peak, rssMb(pid));
    }
  });
  await Promise.all(workers);
  // Many frames were read and answered or refused one by one, not just dropped with their
  // connection (about a third of them are requests and pings; an answer is 20 to 200 bytes).
  expect(answers).toBeGreaterThan(count);
  return peak;
}

test(`${FRAMES} random and mutated frames at a router and a server: both stay up, bounded, and answer after`, async () => {
  const routerPid = (await host.routerPid())!;
  const started = Date.now();
  const seed = Number(process.env.LABC_FUZZ_SEED ?? 20261123);
  const routerPeak = await storm(host.port, routerPid, seed, FRAMES);
  const serverPeak = await storm(server.port, server.pid, seed + 1, FRAMES);
  expect(Date.now() - started).toBeLessThan(90_000);
  expect(running(routerPid)).toBe(true);
  expect(running(server.pid)).toBe(true);
  expect(await host.routerPid()).toBe(routerPid);
  expect(await labc.call("echo", "after the storm")).toBe("after the storm");
  expect((await host.cli(["ls"])).code).toBe(0);
  expect(routerPeak).toBeLessThan(RSS_BOUND_MB);
  expect(serverPeak).toBeLessThan(RSS_BOUND_MB);
  expect(rssMb(routerPid)).toBeLessThan(RSS_BOUND_MB);
  expect(rssMb(server.pid)).toBeLessThan(RSS_BOUND_MB);
  console.log(`fuzz: seed ${seed}, ${2 * FRAMES} frames in ${Date.now() - started} ms; peak RSS router ${routerPeak.toFixed(0)} MB, server ${serverPeak.toFixed(0)} MB`);
}, 120_000);
