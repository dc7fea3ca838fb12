import net from "node:net";
import { afterAll, beforeAll, expect, test } from "vitest";
import { ECHO, TestHost, type Served } from "../helpers.js";

/**
 * A client written from docs/protocol.md alone, its frames made by hand: it knows nothing of its
 * host yet (hostId ""), and a hello it gets wrong is answered with why before the close.
 */

const HELLO = 1;
const REQ = 2;
const REP = 3;
const EXC = 4;

function frame(kind: number, id: number, body: object): Buffer {
  const json = Buffer.from(JSON.stringify(body));
  const head = Buffer.alloc(16);
  head.writeUInt32BE(12 + json.length, 0);
  head.writeUInt8(kind, 4);
  head.writeUInt8(0, 5);
  head.writeUInt16BE(0, 6);
  head.writeUInt32BE(id, 8);
  head.writeUInt32BE(json.length, 12);
  return Buffer.concat([head, json]);
}

interface Frame {
  kind: number;
  id: number;
  body: any;
}

/** Sends `frames` on a socket of its own; collects every frame that comes back until the peer closes or `ms` pass. */
function talk(port: number, frames: Buffer[], ms = 3000): Promise<{ frames: Frame[]; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    let data = Buffer.alloc(0);
    const got: Frame[] = [];
    let closed = false;
    const end = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ frames: got, closed });
    };
    const timer = setTimeout(end, ms);
    socket.on("connect", () => socket.write(Buffer.concat(frames)));
    socket.on("error", () => {});
    socket.on("data", (chunk) => {
      data = Buffer.concat([data, chunk]);
      while (data.length >= 4 && data.length >= 4 + data.readUInt32BE(0)) {
        const length = data.readUInt32BE(0);
        const jsonLength = data.readUInt32BE(12);
        got.push({ kind: data[4]!, id: data.readUInt32BE(8), body: JSON.parse(data.subarray(16, 16 + jsonLength).toString()) });
        data = data.subarray(4 + length);
      }
    });
    socket.on("close", () => {
      closed = true;
      end();
    });
  });
}

const hello = (extra: object = {}) => ({ v: 1, role: "client", id: "by-hand", pid: process.pid, host: "", hostId: "", ...extra });

let host: TestHost;
let echo: Served;

beforeAll(async () => {
  host = await TestHost.start();
  echo = await host.serve([ECHO]);
}, 30000);
afterAll(() => host?.cleanup());

test("a client that knows nothing of its host (hostId \"\") is welcomed by the router and served by a server", async () => {
  const router = await talk(host.port, [frame(HELLO, 1, hello())], 1000);
  expect(router.frames.find((f) => f.id === 1)).toMatchObject({ kind: REP, body: { v: { v: 1, hostId: expect.any(String) } } });

  const server = await talk(echo.port, [frame(HELLO, 0, hello()), frame(REQ, 2, { fn: "echo", args: ["hi"] })], 1000);
  expect(server.frames.find((f) => f.id === 2)).toEqual({ kind: REP, id: 2, body: { v: "hi" } });
});

test("a hello that is refused is answered with its reason under its id before the connection closes", async () => {
  for (const [port, body, why] of [
    [host.port, { ...hello(), pid: "not a number" }, /pid/],
    [echo.port, { v: 1, role: "client", pid: 1, host: "", hostId: "" }, /id is missing/],
    [echo.port, { ...hello(), role: "visitor" }, /role/],
  ] as const) {
    const { frames, closed } = await talk(port, [frame(HELLO, 7, body)]);
    expect(frames).toHaveLength(1);
    expect(frames[0]).toMatchObject({ kind: EXC, id: 7, body: { code: "LABC_BAD_MESSAGE", message: expect.stringMatching(why) } });
    expect(closed).toBe(true);
  }
});

test("a router's own hello must name its host", async () => {
  const { frames } = await talk(host.port, [frame(HELLO, 3, { ...hello(), role: "router", port: 1 })]);
  expect(frames.find((f) => f.id === 3)).toMatchObject({ kind: EXC, body: { message: expect.stringContaining("names its host id") } });
});
