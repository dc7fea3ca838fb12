import { connect, createServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, expect, test } from "vitest";
import { frameOf, KIND } from "../../bench/hostile-peer.js";
import { ECHO, TestHost, eventually } from "../helpers.js";

/**
 * A host may run thousands of labc processes (worker pools): the limit of connections per
 * address counts only those that have not proved themselves yet (said hello), so the host's own
 * processes are never shut out, and a flood of idle local connections is cut without cutting them.
 * Each "process" here is a lifeline of this test's own, written frame by frame: 3,000 of them
 * would need 3,000 Node processes otherwise.
 */

const SERVERS = 3000;
let host: TestHost;
let listener: Server;
let listenPort = 0;
const lifelines: Socket[] = [];
const flood: Socket[] = [];

/** Reads frames off a socket: answers pings, hands the rest to `onFrame`. */
function frames(socket: Socket, onFrame: (kind: number, id: number, body: any) => void): void {
  let buffered = Buffer.alloc(0);
  socket.on("data", (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    while (buffered.length >= 4 && buffered.length >= 4 + buffered.readUInt32BE(0)) {
      const length = buffered.readUInt32BE(0);
      const kind = buffered[4]!;
      const id = buffered.readUInt32BE(8);
      const json = buffered.readUInt32BE(12);
      const body = JSON.parse(buffered.subarray(16, 16 + json).toString());
      buffered = buffered.subarray(4 + length);
      if (kind === KIND.ping) socket.write(frameOf(12, id, {}));
      else onFrame(kind, id, body);
    }
  });
  socket.on("error", () => {});
}

/** One server's lifeline: hello as a server listening on the shared port, then its function. */
function register(i: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect(host.port, "127.0.0.1");
    lifelines.push(socket);
    socket.once("close", () => reject(new Error(`lifeline ${i} was closed by the router`)));
    frames(socket, (kind, id, body) => {
      if (kind === KIND.exc) reject(new Error(`lifeline ${i}: ${body.message}`));
      if (kind === 3 && id === 2) resolve();
    });
    socket.write(frameOf(KIND.hello, 1, { v: 1, role: "server", id: `many-${i}`, pid: process.pid, host: "", hostId: "", port: listenPort }));
    socket.write(frameOf(KIND.announce, 2, { functions: [{ name: `many.${i}`, scope: "network", visibility: "public" }], topics: [] }));
  });
}

beforeAll(async () => {
  host = await TestHost.start();
  await host.serve([ECHO]);
  // Every server's port is this one: a caller's hello, then its requests, answered with the name.
  listener = createServer((socket) => frames(socket, (kind, id, body) => {
    if (kind === KIND.req) socket.write(frameOf(3, id, { v: `answered ${body.fn}` }));
  }));
  await new Promise<void>((done) => listener.listen(0, "127.0.0.1", done));
  listenPort = (listener.address() as { port: number }).port;
}, 30_000);

afterAll(async () => {
  for (const socket of [...lifelines, ...flood]) socket.destroy();
  listener?.close();
  await host?.cleanup();
});

test(`${SERVERS} servers on one host register and are callable`, async () => {
  // In batches: a host's processes start over time, not in one instant.
  for (let i = 0; i < SERVERS; i += 250) {
    await Promise.all(Array.from({ length: Math.min(250, SERVERS - i) }, (_, j) => register(i + j)));
  }
  for (const name of ["many.0", "many.1500", `many.${SERVERS - 1}`]) {
    const result = await host.cli(["call", name]);
    expect(result.stderr).toBe("");
    expect(result.stdout).toBe(`answered ${name}\n`);
  }
}, 120_000);

test("a flood of idle local connections leaves registered processes working, and new ones register", async () => {
  // More idle connections than limits.connections_per_address (1000) allows not proved at once.
  for (let i = 0; i < 1500; i++) {
    const socket = connect(host.port, "127.0.0.1");
    socket.on("error", () => {});
    flood.push(socket);
  }
  await eventually(() => flood.filter((socket) => socket.readyState === "open").length >= 1000, 10_000, "the flood connected");
  // The registered processes stay: their lifelines were not cut.
  expect(lifelines.filter((socket) => socket.destroyed).length).toBe(0);
  expect((await host.cli(["call", "many.42"])).stdout).toBe("answered many.42\n");
  expect((await host.cli(["call", "echo", "still here"])).stdout).toBe("still here\n");
  // A process starting now registers and is called.
  await register(SERVERS);
  expect((await host.cli(["call", `many.${SERVERS}`])).stdout).toBe(`answered many.${SERVERS}\n`);
  // The flood was cut down to the limit: the oldest idle ones were closed.
  await eventually(() => flood.filter((socket) => socket.destroyed || socket.readyState === "closed").length >= 500, 10_000, "the oldest idle connections closed");
}, 60_000);
