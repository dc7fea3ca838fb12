/**
 * Writes the `refusals` of test/vectors/frames.json from labc's real answers: each frame is sent
 * by hand over its own connection to a real router or a real TypeScript server (`labc serve
 * services/echo.ts`), after the frames listed in `before`, and what comes back is recorded as
 * bytes: the answer frame (none when the connection closes without one) and whether the
 * connection then closes. Run it again after changing a refusal: `npx tsx test/vectors/refusals.ts`.
 */
import net from "node:net";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { frameOf, KIND } from "../../bench/hostile-peer.js";
import { ECHO, FIXTURES, TestHost, sleep } from "../helpers.js";

interface Case {
  name: string;
  about: string;
  to: "router" | "server";
  before: Buffer[];
  sent: Buffer;
  /** The header id of the answer looked for (the sent frame's, unless another answer comes first). */
  answerId: number;
}

/** A client's hello; the same bytes on every run. */
const HELLO = { v: 1, role: "client", id: "vectors", pid: 1, host: "vectors", hostId: "vectors" };
const hello = frameOf(KIND.hello, 0, HELLO);
const CASES: Case[] = [
  {
    name: "hello of protocol version 2, id 1",
    about: "refused with its reason, then the connection is closed (docs/protocol.md, Field details)",
    to: "router",
    before: [],
    sent: frameOf(KIND.hello, 1, { ...HELLO, v: 2 }),
    answerId: 1,
  },
  {
    name: "hello with a role that is none of server, client, router, id 1",
    about: "a bad hello with an id: answered, then the connection is closed (docs/protocol.md#refusals)",
    to: "server",
    before: [],
    sent: frameOf(KIND.hello, 1, { ...HELLO, role: "admin" }),
    answerId: 1,
  },
  {
    name: "hello without its id, id 1",
    about: "a bad hello with an id: answered, then the connection is closed",
    to: "server",
    before: [],
    sent: frameOf(KIND.hello, 1, { v: 1, role: "client", pid: 1, host: "", hostId: "" }),
    answerId: 1,
  },
  {
    name: "hello without its id, id 0",
    about: "a bad hello nobody waits on: the connection is closed, nothing answered",
    to: "server",
    before: [],
    sent: frameOf(KIND.hello, 0, { v: 1, role: "client", pid: 1, host: "", hostId: "" }),
    answerId: 0,
  },
  {
    name: "req before hello, id 1",
    about: "anything but a hello first: the connection is closed, nothing answered",
    to: "server",
    before: [],
    sent: frameOf(KIND.req, 1, { fn: "echo", args: ["no hello"] }),
    answerId: 1,
  },
  {
    name: "req whose fn is 42, id 1",
    about: "a body that does not fit its kind, of a kind that is answered: an exc naming the field; the connection stays",
    to: "server",
    before: [hello],
    sent: frameOf(KIND.req, 1, { fn: 42, args: [] }),
    answerId: 1,
  },
  {
    name: "req whose args are not an array, id 2",
    about: "answered with an exc naming the field; the connection stays",
    to: "server",
    before: [hello],
    sent: frameOf(KIND.req, 2, { fn: "echo", args: "hi" }),
    answerId: 2,
  },
  {
    name: "req reusing the id of one still served, id 3",
    about: "the first (slowEcho of 500 ms) is answered as usual; the second gets an exc; the connection stays",
    to: "server",
    before: [hello, frameOf(KIND.req, 3, { fn: "slowEcho", args: [500, "first"] })],
    sent: frameOf(KIND.req, 3, { fn: "echo", args: ["second"] }),
    answerId: 3,
  },
  {
    name: "ping before hello, id 1",
    about: "anything but a hello first, a ping too: the connection is closed, nothing answered",
    to: "server",
    before: [],
    sent: frameOf(KIND.ping, 1, {}),
    answerId: 1,
  },
  {
    name: "credit of 0 for id 1",
    about: "a bad body of a kind nobody answers: the connection is closed",
    to: "server",
    before: [hello],
    sent: frameOf(KIND.credit, 1, { n: 0 }),
    answerId: 0,
  },
  {
    name: "pub whose topic is 5",
    about: "a bad body of a kind nobody answers: the connection is closed",
    to: "server",
    before: [hello],
    sent: frameOf(KIND.pub, 0, { topic: 5, args: [] }),
    answerId: 0,
  },
];

/** Sends `before` then `sent`; resolves with the first frame of `answerId` that came after `sent`, and whether the connection closed. */
function play(port: number, c: Case): Promise<{ answer: string | null; closes: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: "127.0.0.1" });
    let buffer = Buffer.alloc(0);
    let answer: string | null = null;
    let closed = false;
    socket.on("error", () => {});
    socket.on("data", (chunk) => {
      buffer = Buffer.concat([buffer, chunk]);
      while (buffer.length >= 4 && buffer.length >= 4 + buffer.readUInt32BE(0)) {
        const frame = buffer.subarray(0, 4 + buffer.readUInt32BE(0));
        buffer = buffer.subarray(frame.length);
        const id = frame.readUInt32BE(8);
        if (answer === null && c.answerId !== 0 && id === c.answerId && frame[4] !== KIND.rep) answer = frame.toString("hex");
      }
    });
    socket.on("close", () => (closed = true));
    socket.once("connect", async () => {
      for (const frame of c.before) socket.write(frame);
      await sleep(100);
      socket.write(c.sent);
      // Long enough for an answer and a close (a refused hello closes within 1 s of its answer).
      await sleep(1500);
      socket.destroy();
      resolve({ answer, closes: closed });
    });
    setTimeout(() => reject(new Error(`${c.name}: no verdict`)), 5000);
  });
}

const host = await TestHost.start();
try {
  const server = await host.serve([ECHO, join(FIXTURES, "lab.ts")]);
  const refusals = [];
  for (const c of CASES) {
    const { answer, closes } = await play(c.to === "router" ? host.port : server.port, c);
    refusals.push({
      name: c.name,
      about: c.about,
      to: c.to,
      before: c.before.map((frame) => frame.toString("hex")),
      sent: c.sent.toString("hex"),
      answer,
      closes,
    });
    console.log(`${c.name}: ${answer ? JSON.parse(Buffer.from(answer, "hex").subarray(16).toString()).message : "no answer"}${closes ? ", closed" : ""}`);
  }
  const file = join(import.meta.dirname, "frames.json");
  const vectors = JSON.parse(readFileSync(file, "utf8"));
  vectors.refusals = refusals;
  writeFileSync(file, `${JSON.stringify(vectors, null, 1)}\n`);
} finally {
  await host.cleanup();
}
