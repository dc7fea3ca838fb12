import { readFileSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import { afterEach, beforeEach, expect, test } from "vitest";
import { Connection } from "../../lib/net/connection.js";
import { TcpTransport } from "../../lib/net/tcp-transport.js";
import { DEFAULT_LIMITS } from "../../lib/wire/limits.js";
import { Kind, PROTOCOL_VERSION } from "../../lib/wire/message.js";
import { ECHO, FIXTURES, TestHost, eventually, running, sleep } from "../helpers.js";

let host: TestHost;
beforeEach(async () => {
  host = await TestHost.start();
});
afterEach(() => host.cleanup());


test("the first server on a host starts the router: a separate process named `labc router`", async () => {
  expect(await host.routerPid()).toBeUndefined();
  const echo = await host.serve([ECHO]);
  const router = await host.routerPid();
  expect(router).toBeDefined();
  expect(router).not.toBe(echo.pid);
  const cmdline = readFileSync(`/proc/${router}/cmdline`, "utf8");
  expect(cmdline).toMatch(/^labc router/);
});

test("a one-shot CLI call on a host with no router starts one, and says what it found", async () => {
  expect(await host.routerPid()).toBeUndefined();
  const first = await host.cli(["call", "echo", "x"]);
  expect(first.code).toBe(1);
  expect(first.stderr).toMatch(/no function "echo"/);
  expect(await host.routerPid()).toBeDefined();
  await host.serve([ECHO]);
  expect((await host.cli(["call", "echo", "x"])).stdout).toBe("x\n");
});

test("after the router is killed with SIGKILL, a new one serves within 2 s and calls work again", async () => {
  const echo = await host.serve([ECHO]);
  const lab = await host.serve([join(FIXTURES, "lab.ts")]);
  const caller = host.runtime();
  expect(await caller.call("echo", "before")).toBe("before");
  const first = (await host.routerPid())!;

  process.kill(first, "SIGKILL");
  const killedAt = Date.now();
  let second: number | undefined;
  await eventually(async () => {
    second = await host.routerPid();
    return second !== undefined && second !== first;
  }, 2000, "a new router");
  expect(Date.now() - killedAt).toBeLessThan(2000);

  // Both servers registered again with the new router: a fresh process finds them.
  await eventually(async () => {
    const result = await host.cli(["ls", "--json"]);
    const servers = JSON.parse(result.stdout) as { pid: number }[];
    return [echo.pid, lab.pid].every((pid) => servers.some((s) => s.pid === pid));
  }, 3000, "both servers in the new router's pool");
  const fresh = await host.cli(["call", "echo", "after"]);
  expect(fresh.stdout).toBe("after\n");
  // The long-lived caller was not restarted and still calls.
  expect(await caller.call("add", 2, 3)).toBe(5);
  expect(await caller.call("lab.pid")).toBe(lab.pid);
  expect(running(echo.pid) && running(lab.pid)).toBe(true);
});

test("a function blocking its server's event loop does not make the host look dead", async () => {
  await host.serve([join(FIXTURES, "lab.ts")]);
  await host.serve([ECHO]);
  const caller = host.runtime();
  const blocked = caller.call("block", 3000);
  await sleep(200);
  const started = Date.now();
  const listing = await host.cli(["ls"]);
  expect(listing.code).toBe(0);
  expect(listing.stdout).toContain("lab.block");
  expect(await caller.call("echo", "other servers answer")).toBe("other servers answer");
  expect(Date.now() - started).toBeLessThan(2500);
  expect(await blocked).toBe("unblocked");
});

test("the router leaves `router.linger` seconds after its last server, not before", async () => {
  const echo = await host.serve([ECHO], { LABC_ROUTER_LINGER: "1" });
  const router = (await host.routerPid())!;
  echo.child.kill("SIGTERM");
  await echo.exited;
  await sleep(300);
  expect(running(router)).toBe(true);
  await eventually(() => !running(router), 3000, "the router leaving");
});

test("`labc router` runs the router in the foreground: servers use it, and Ctrl-C ends it", async () => {
  const child = host.spawn(["router", "--linger", "0"]);
  const line = await new Promise<string>((resolve, reject) => {
    child.stdout!.once("data", (chunk) => resolve(String(chunk)));
    child.once("exit", (code) => reject(new Error(`labc router exited (${code})`)));
  });
  expect(line).toMatch(new RegExp(`^labc router: .* on port ${host.port}, pid ${child.pid}, discovery off`));
  await host.serve([ECHO]);
  expect(await host.routerPid()).toBe(child.pid);
  expect((await host.cli(["call", "echo", "x"])).stdout).toBe("x\n");
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGINT");
  expect(await exited).toBe(0);
});

test("a caller linked to the router keeps it past `router.linger`; it leaves that long after the caller", async () => {
  const echo = await host.serve([ECHO], { LABC_ROUTER_LINGER: "1" });
  const caller = host.runtime();
  expect(await caller.call("echo", "x")).toBe("x");
  const router = (await host.routerPid())!;
  echo.child.kill("SIGTERM");
  await echo.exited;
  await sleep(1600);
  expect(running(router)).toBe(true);
  await caller.close();
  await eventually(() => !running(router), 3000, "the router leaving after its last caller");
});

test("a one-shot caller waits for the pool even when it arrives in a later read than the welcome", async () => {
  // A router of the test's own making, which sends the pool 300 ms after its welcome.
  const server = net.createServer((socket) => {
    const connection = new Connection(new TcpTransport(socket), {
      label: "caller",
      limits: DEFAULT_LIMITS,
      onMessage: (message, from) => {
        if (message.kind === Kind.ping) return from.send(Kind.pong, {}, message.id);
        if (message.kind !== Kind.hello) return;
        const welcome = { v: PROTOCOL_VERSION, pid: process.pid, host: "fake", hostId: "fake", port: 0, instance: "x", discoveringMs: 0 };
        from.reply(message.id, welcome);
        setTimeout(() => from.send(Kind.pool, { servers: [] }), 300);
      },
    });
    void connection;
  });
  await new Promise<void>((listening) => server.listen(host.port, "127.0.0.1", listening));
  try {
    const result = await host.cli(["call", "echo", "x"]);
    expect(result.stderr).toMatch(/no function "echo"/);
    expect(result.code).toBe(1);
  } finally {
    server.close();
  }
});
