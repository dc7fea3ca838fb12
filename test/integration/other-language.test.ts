import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { frameOf, HostilePeer, KIND } from "../../bench/hostile-peer.js";
import { PACKAGE_ROOT } from "../../lib/paths.js";
import type { Runtime } from "../../lib/runtime/runtime.js";
import { ECHO, FIXTURES, TestHost, eventually } from "../helpers.js";

/**
 * test/fixtures/labc_client.py, a client written in Python's standard library from
 * docs/protocol.md alone, calls, serves and subscribes against a running labc.
 */

const python = spawnSync("python3", ["--version"]).status === 0;
let host: TestHost;
let labc: Runtime;
let client: ChildProcess | undefined;

beforeAll(async () => {
  host = await TestHost.start();
  await host.serve([ECHO]);
  labc = host.runtime();
});
afterAll(async () => {
  client?.kill("SIGKILL");
  await host.cleanup();
});

test.runIf(python)("a Python client calls, serves and subscribes, from the protocol document alone", async () => {
  client = spawn("python3", [join(FIXTURES, "labc_client.py"), String(host.port)], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  client.stderr!.on("data", (chunk) => (stderr += chunk));
  const events: Record<string, unknown>[] = [];
  createInterface({ input: client.stdout! }).on("line", (line) => events.push(JSON.parse(line)));
  const exited = new Promise<number | null>((resolve) => client!.once("exit", resolve));
  const seen = (event: string) => events.find((e) => e.event === event);
  await eventually(() => seen("serving") !== undefined || client!.exitCode !== null, 15_000, `the Python client serves (stderr: ${stderr})`);

  // As a caller: text, numbers and binary data, and labc's refusal of a wrong count told apart from a function's own error.
  expect(events.slice(0, 4)).toEqual([
    { event: "welcome", host: labc.identity.host, port: host.port },
    { event: "called", fn: "echo", value: "from python" },
    { event: "called", fn: "add", value: 42 },
    { event: "called", fn: "echo binary", name: "frame", pixels: [0, 1, 254, 255] },
  ]);
  expect(seen("refused")).toMatchObject({ code: "LABC_BAD_ARGUMENTS", labc: true, message: "add(a: number, b: number) takes 2 arguments, not 1" });
  expect(seen("version refused")).toEqual({ event: "version refused", code: "LABC_BAD_ARGUMENTS", message: "protocol version 2 is not 1" });
  expect(seen("closed by the router")).toBeDefined();

  // As a server: labc calls it directly, and through the router over its lifeline.
  await labc.link.ready();
  const offering = () => [...labc.link.pool.servers.values()].find((server) => server.functions.has("py.mul"));
  await eventually(() => offering() !== undefined, 5000, "py.mul in the pool");
  expect(await labc.call("py.mul", 6, 7)).toBe(42);
  const pyServer = offering()!;
  const peer = await HostilePeer.connect(host.port);
  try {
    peer.hello();
    peer.send(frameOf(KIND.req, 5, { fn: "py.mul", args: [3, 4], target: pyServer.id }));
    expect((await peer.expect((frame) => frame.id === 5)).body).toEqual({ v: 12 });
  } finally {
    peer.destroy();
  }

  // As a subscriber.
  expect(await labc.publish("py.temp.room1", 21.5, { unit: "C" })).toBe(1);
  await labc.publish("py.stop");
  expect(await exited).toBe(0);
  expect(events.filter((e) => e.event === "publication")).toEqual([
    { event: "publication", topic: "py.temp.room1", args: [21.5, { unit: "C" }] },
    { event: "publication", topic: "py.stop", args: [] },
  ]);
  expect(events.at(-1)).toEqual({ event: "done" });
  expect(stderr).toBe("");
});

test.runIf(python)("the minimal client of docs/protocol.md runs as written, binary parts included", async () => {
  const doc = readFileSync(join(PACKAGE_ROOT, "docs", "protocol.md"), "utf8");
  const code = /## A minimal client[\s\S]*?```python\n([\s\S]*?)```/.exec(doc)![1]!;
  const echo = [...(await labc.link.ready().then(() => labc.link.pool.servers.values()))].find((server) => server.functions.has("echo"))!;
  const run = spawnSync("python3", ["-c", `server_port = ${echo.port}\n${code}`], { encoding: "utf8", timeout: 20_000 });
  expect(run.stderr).toBe("");
  expect(run.stdout).toBe("(3, 1, {'v': b'\\x00\\xff'})\n");
});
