import { connect } from "node:net";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  BadArgumentsError,
  ConnectionLostError,
  NoSuchFunctionError,
  RemoteError,
  TimeoutError,
} from "../../lib/errors.js";
import { register, subscribe } from "../../lib/index.js";
import type { Runtime } from "../../lib/runtime/runtime.js";
import { ECHO, FIXTURES, TestHost, eventually, sleep, type Served } from "../helpers.js";

const LAB = join(FIXTURES, "lab.ts");

let host: TestHost;
let lab: Served;
let labc: Runtime;

beforeAll(async () => {
  host = await TestHost.start();
  lab = await host.serve([LAB, ECHO]);
  labc = host.runtime();
});
afterAll(() => host.cleanup());

describe("calls across processes", () => {
  test("a decorated method answers from another process", async () => {
    expect(await labc.call<any>("echo", "Hello World!")).toBe("Hello World!");
    expect(await labc.call<any>("add", 1, 2)).toBe(3);
  });

  test("a service class is reachable under its route name, and through the namespace proxy", async () => {
    expect(await labc.call<any>("echo.echo", "routed")).toBe("routed");
    expect(await labc.call<any>("lab.pid")).toBe(lab.pid);
    expect(await labc.network.echo!.add!(20, 22)).toBe(42);
    expect(await labc.network.echo!("proxied")).toBe("proxied");
  });

  test("sync and async methods; any JSON value round-trips", async () => {
    const value = { text: "ü€😀", list: [1, 2.5, -3, null, true], nested: { deep: [[{}], []] } };
    expect(await labc.call<any>("echo", value)).toEqual(value);
    expect(await labc.call<any>("slowEcho", 5, value)).toEqual(value);
  });

  test("binary data round-trips byte-exact, even 16 MiB", async () => {
    const big = Buffer.alloc(16 * 1024 * 1024);
    for (let i = 0; i < big.length; i += 4096) big.writeUInt32LE(i, i);
    const back: Buffer = await labc.call<any>("echo", big);
    expect(Buffer.isBuffer(back)).toBe(true);
    expect(back.equals(big)).toBe(true);
    expect(await labc.call<any>("size", new Uint8Array(12345))).toBe(12345);
    const mixed = await labc.call<any>("echo", { name: "frame", pixels: Buffer.from([1, 2, 3]) });
    expect(mixed.name).toBe("frame");
    expect([...mixed.pixels]).toEqual([1, 2, 3]);
  });

  test("many concurrent calls share one persistent connection and each gets its own answer", async () => {
    const results = await Promise.all(
      Array.from({ length: 300 }, (_, i) => labc.call<any>("slowEcho", (i * 7) % 20, i)),
    );
    expect(results).toEqual(Array.from({ length: 300 }, (_, i) => i));
    expect((labc as unknown as { links: { open: Map<string, unknown> } }).links.open.size).toBe(1);
  });
});

describe("through the router", () => {
  test("a request relayed by the router comes back unchanged: values, binary data and errors", async () => {
    await labc.link.ready();
    const target = [...labc.link.pool.servers.values()].find((server) => server.pid === lab.pid)!;
    const bytes = Buffer.from([1, 2, 3, 250]);
    expect(await labc.link.forward(target.id, "echo", [{ bytes, text: "ü" }], 5000)).toEqual({ bytes, text: "ü" });
    const error = await labc.link.forward(target.id, "fail", ["relayed"], 5000).catch((e) => e);
    expect(error).toBeInstanceOf(RemoteError);
    expect(error.remoteName).toBe("TypeError");
    expect(error.remoteCode).toBe("E_LAB");
    expect(error.message).toContain("relayed");
    const missing = await labc.link.forward(target.id, "nowhere", [], 5000).catch((e) => e);
    expect(missing).toBeInstanceOf(NoSuchFunctionError);
  });
});

describe("errors", () => {
  test("a remote throw reaches the caller with its name, code and message, without the stack", async () => {
    const error = await labc.call<any>("fail", "bad input").catch((e) => e);
    expect(error).toBeInstanceOf(RemoteError);
    expect(error.code).toBe("LABC_REMOTE_ERROR");
    expect(error.remoteName).toBe("TypeError");
    expect(error.remoteCode).toBe("E_LAB");
    expect(error.message).toContain("fail");
    expect(error.message).toContain("bad input");
    expect(error.remoteStack).toBeUndefined();
    const later = await labc.call<any>("failLater", "later").catch((e) => e);
    expect(later.remoteName).toBe("RangeError");
  });

  test("a thrown error whose fields cannot travel still answers, and says what was left out", async () => {
    const error = await labc.call<any>("failWithHandle").catch((e) => e);
    expect(error).toBeInstanceOf(RemoteError);
    expect(error.message).toMatch(/with a handle \(its fields were not sent: data\.retry: a function \(retry\) cannot be sent\)$/);
    expect(error.attempt).toBeUndefined();
  });

  test("the remote stack comes along when the server is configured to send it", async () => {
    const verbose = await host.serve([join(FIXTURES, "thrower.ts")], { LABC_ERRORS_SEND_STACK: "true" });
    const error = await labc.call<any>("explode").catch((e) => e);
    expect(error).toBeInstanceOf(RemoteError);
    expect(error.message).toContain("exploded on purpose");
    expect(error.remoteStack).toMatch(/Error: exploded on purpose\n\s+at .*thrower\.ts/);
    verbose.child.kill("SIGKILL");
    await verbose.exited;
  });

  test("no such function names the function and the scope searched", async () => {
    const error = await labc.call<any>("nowhere").catch((e) => e);
    expect(error).toBeInstanceOf(NoSuchFunctionError);
    expect(error.code).toBe("LABC_NO_SUCH_FUNCTION");
    expect(error.message).toMatch(/"nowhere" in network scope/);
    const scoped = await labc.callWith<any>("echo", ["x"], { scope: "server" }).catch((e) => e);
    expect(scoped.message).toMatch(/"echo" in server scope/);
  });

  test("a call times out after the default of the config, or its own timeout", async () => {
    const quick = host.runtime({ "call.timeout": 0.1 });
    const error = await quick.call<any>("slowEcho", 2000, "late").catch((e) => e);
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error.code).toBe("LABC_TIMEOUT");
    expect(error.message).toMatch(/"slowEcho" .* timed out after 100 ms/);
    const own = await labc.callWith<any>("slowEcho", [2000, "late"], { timeoutMs: 50 }).catch((e) => e);
    expect(own).toBeInstanceOf(TimeoutError);
    expect(await labc.callWith<any>("slowEcho", [10, "in time"], { timeoutMs: 2000 })).toBe("in time");
  });

  test("arguments that cannot be sent fail with bad arguments, naming the function", async () => {
    const error = await labc.call<any>("echo", "ok", { onDone: () => 1 }).catch((e) => e);
    expect(error).toBeInstanceOf(BadArgumentsError);
    expect(error.message).toBe("echo: args[1].onDone: a function (onDone) cannot be sent");
    // What JSON cannot carry but labc can goes through.
    const returned = await labc.call<any>("echo", 10n);
    expect(returned).toBe(10n);
  });

  test("an option a function does not take is refused, naming the function and the options it takes", async () => {
    // As a plain script writes them: TypeScript refuses these where it compiles.
    const loose = labc as unknown as Record<string, (...args: unknown[]) => any>;
    const refusal = async (run: () => unknown) => {
      try {
        await run();
      } catch (error) {
        expect(error).toBeInstanceOf(BadArgumentsError);
        return (error as Error).message;
      }
      throw new Error("not refused");
    };
    const calls = "timeoutMs, scope, host, port, state, order, signal";
    expect(await refusal(() => loose.callWith!("echo", ["x"], { timeout: 50 }))).toBe(`callWith("echo"): no option "timeout" (did you mean "timeoutMs"?); its options are ${calls}`);
    expect(await refusal(() => loose.callWith!("echo", ["x"], 50))).toBe(`callWith("echo"): its options are an object with ${calls}, not 50`);
    const here = labc.identity.host;
    const hostCalls = "timeoutMs, scope, state, order, signal";
    expect(await refusal(() => labc.getHost(here).callWith("echo", ["x"], { Scope: "host" } as never))).toBe(`callWith("echo") on ${here}: no option "Scope" (did you mean "scope"?); its options are ${hostCalls}`);
    // A host's handle fixes the host itself: another one given is refused, not overridden.
    expect(await refusal(() => labc.getHost(here).callWith("echo", ["x"], { host: "elsewhere" } as never))).toBe(`callWith("echo") on ${here}: no option "host"; its options are ${hostCalls}`);
    expect(await refusal(() => loose.subscribe!(function heard() {}, { group: "w" }))).toBe(`subscribe(heard, pattern): the pattern is a topic pattern, not an object; options come third: subscribe(fn, "lab.temp.*", { group: "workers" })`);
    expect(await refusal(() => (subscribe as (pattern: unknown) => unknown)(5))).toBe(`@subscribe: its first argument is a topic pattern, not 5`);
    expect(await refusal(() => loose.callAll!("echo", ["x"], { timeout: 50 }))).toMatch(/^callAll\("echo"\): no option "timeout"/);
    expect(await refusal(() => loose.streamWith!("echo", ["x"], { windowSize: 8 }))).toBe(`streamWith("echo"): no option "windowSize"; its options are ${calls}, window`);
    expect(await refusal(() => loose.map!("echo", [1], { perserver: 1 }))).toBe(`map("echo"): no option "perserver" (did you mean "perServer"?); its options are concurrency, perServer, timeoutMs, signal, scope, host`);
    expect(await refusal(() => loose.register!(function tare() {}, { timeoutMs: 5 }))).toBe(`register("tare"): no option "timeoutMs"; its options are name, scope, visibility, idempotent`);
    expect(await refusal(() => loose.subscribe!(function heard() {}, "lab.temp.*", { queue: "w" }))).toBe(`subscribe("lab.temp.*"): no option "queue"; its options are group, withTopic`);
    expect(await refusal(() => (register as (options: unknown) => unknown)("echo"))).toBe(`@register: its options are an object with name, scope, visibility, idempotent, not "echo"`);
    expect(await refusal(() => (subscribe as (pattern: string, options: unknown) => unknown)("lab.temp.*", { grp: "w" }))).toBe(`@subscribe("lab.temp.*"): no option "grp"; its options are group`);
    expect(await refusal(() => (subscribe as (pattern: unknown) => unknown)({ group: "w" }))).toBe(`@subscribe: its first argument is a topic pattern, not an object; options come second: @subscribe("lab.temp.*", { group: "workers" })`);
    expect(await refusal(() => labc.getHost(here).callWith("echo", ["x"], 500 as never))).toBe(`callWith("echo") on ${here}: its options are an object with ${hostCalls}, not 500`);
    expect(await refusal(() => loose.subscribe!(function heard() {}, "lab.temp.*", () => 1))).toBe(`subscribe("lab.temp.*"): its options are an object with group, withTopic, not a function`);
    expect(await refusal(() => loose.register!(() => 1, { name: "tare", timeout: 5 }))).toMatch(/^register\("tare"\): no option "timeout"/);
    // What the options allow still goes, and the refused ones registered nothing.
    expect(await labc.callWith("echo", ["x"], { timeoutMs: 5000, scope: "host" })).toBe("x");
    await expect(labc.callWith("tare", [], { scope: "server" })).rejects.toBeInstanceOf(NoSuchFunctionError);
  });

  test("server-scope and secret functions cannot be called from another process", async () => {
    await expect(labc.call<any>("serverOnly")).rejects.toBeInstanceOf(NoSuchFunctionError);
    await expect(labc.call<any>("secret")).rejects.toBeInstanceOf(NoSuchFunctionError);
    expect(await labc.call<any>("hostOnly")).toBe("host");
  });

  test("a server dying mid-call fails the call with connection lost, naming the server", async () => {
    const doomed = await host.serve([join(FIXTURES, "mortal.ts")]);
    const error = await labc.call<any>("die").catch((e) => e);
    expect(error).toBeInstanceOf(ConnectionLostError);
    expect(error.code).toBe("LABC_CONNECTION_LOST");
    expect(error.message).toContain(`pid ${doomed.pid}`);
    expect(error.message).toContain('"die"');
    expect(await doomed.exited).toBe(3);
  });

  test("a malformed or oversized frame closes that connection only", async () => {
    for (const bytes of [
      Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
      Buffer.from([0x7f, 0xff, 0xff, 0xff, 1, 2, 3]),
    ]) {
      const closed = await new Promise<boolean>((resolve) => {
        const socket = connect(lab.port, "127.0.0.1", () => socket.write(bytes));
        socket.on("error", () => {});
        socket.on("close", () => resolve(true));
        setTimeout(() => resolve(false), 3000);
      });
      expect(closed).toBe(true);
    }
    expect(await labc.call<any>("echo", "still serving")).toBe("still serving");
    // Said once for the peer's address; the second refusal within the minute is only counted.
    await eventually(() => /max_frame_size tripped by 127\.0\.0\.1: .*exceeds the limit.*closed the connection/.test(lab.stderr()), 2000, "a logged reason");
    expect(lab.stderr().match(/tripped by 127\.0\.0\.1/g)).toHaveLength(1);
  });
});

describe("pub/sub across processes", () => {
  test("publications reach every matching subscription; a throwing subscriber hurts nobody", async () => {
    const before = (await labc.call<any>("log")).length;
    expect(await labc.publish("lab.temp.room1", 21.5)).toBeGreaterThanOrEqual(1);
    await eventually(async () => (await labc.call<any>("log")).length >= before + 2, 3000, "two deliveries");
    const log: [string, unknown][] = (await labc.call<any>("log")).slice(before);
    expect(log).toEqual(expect.arrayContaining([["lab.temp.*", 21.5], ["lab.#", 21.5]]));
    expect(lab.stderr()).toMatch(/subscriber Lab\.broken failed on "lab\.temp\.room1"/);
    await labc.publish("lab.light.on", true);
    await eventually(async () => (await labc.call<any>("log")).some((e: unknown[]) => e[1] === true), 3000, "rest match");
  });

  test("a publication reaches subscribers in every process of the host, this one included", async () => {
    const got: unknown[] = [];
    const listener = host.runtime();
    await listener.subscribe((value: unknown) => got.push(["listener", value]), "lab.temp.*");
    await labc.subscribe((value: unknown) => got.push(["self", value]), "lab.temp.#");
    const before = (await labc.call<any>("log")).length;
    expect(await labc.publish("lab.temp.room2", 19)).toBe(3);
    await eventually(() => got.length === 2, 3000, "local deliveries");
    expect(got).toEqual(expect.arrayContaining([["listener", 19], ["self", 19]]));
    await eventually(async () => (await labc.call<any>("log")).length >= before + 2, 3000, "lab's deliveries");
    await listener.close();
  });
});

describe("@watch", () => {
  test("a watched method publishes what each successful call returns, awaited; a failed call publishes nothing", async () => {
    const dimmer = await host.serve([join(FIXTURES, "dimmer.ts")]);
    const follower = host.runtime();
    const levels: unknown[] = [];
    await follower.subscribe((level: unknown) => levels.push(level), "dimmer.level");
    expect(await labc.call<any>("set", 3)).toBe(3);
    expect(await labc.call<any>("fade", 7)).toBe(7);
    await expect(labc.call<any>("refuse")).rejects.toThrow(/no change/);
    expect(await labc.call<any>("dimmer.set", 9)).toBe(9);
    await eventually(() => levels.length === 3, 3000, "three publications");
    await sleep(200);
    expect(levels).toEqual([3, 7, 9]);
    await follower.close();
    dimmer.child.kill("SIGTERM");
    await dimmer.exited;
  });

  test("@watch without @register is refused when served, naming the method", async () => {
    const script = join(host.dir, "watch-alone.ts");
    writeFileSync(script, 'import { watch } from "labc";\nexport class Lonely {\n  @watch("t") lonely() { return 1; }\n}\n');
    const result = await host.cli(["serve", script]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/Lonely\.lonely: @watch publishes what calls return, so it needs @register too/);
  });
});

describe("the pool on one host", () => {
  test("functions registered or removed while running appear and vanish at once", async () => {
    const other = host.runtime();
    await other.register((a: number) => a * 2, { name: "double" });
    expect(await labc.call<any>("double", 21)).toBe(42);
    expect(await other.unregister("double")).toBe(true);
    await expect(labc.call<any>("double", 1)).rejects.toBeInstanceOf(NoSuchFunctionError);
    await other.close();
  });

  test("a process that exits or is killed takes its functions out of the pool at once", async () => {
    const leaving = host.runtime();
    await leaving.register(() => "here", { name: "leaving" });
    expect(await labc.call<any>("leaving")).toBe("here");
    const left = Date.now();
    await leaving.close();
    await eventually(() => !labc.link.pool.resolve("leaving", "host", { hostId: labc.identity.hostId }), 2000, "gone");
    expect(Date.now() - left).toBeLessThan(500);
    await expect(labc.call<any>("leaving")).rejects.toBeInstanceOf(NoSuchFunctionError);

    const killed = await host.serve([ECHO]);
    await labc.link.sync();
    const has = () => [...labc.link.pool.servers.values()].some((s) => s.pid === killed.pid);
    expect(has()).toBe(true);
    const start = Date.now();
    killed.child.kill("SIGKILL");
    await eventually(() => !has(), 2000, "the killed server leaving the pool");
    expect(Date.now() - start).toBeLessThan(500);
  });

  test("getHost(name, port) addresses one server; callAll answers from every server", async () => {
    const second = await host.serve([ECHO]);
    await labc.link.sync();
    const own = labc.identity.host;
    for (const port of [lab.port, second.port]) {
      const pid = port === lab.port ? lab.pid : second.pid;
      for (let i = 0; i < 5; i++) expect(await labc.getHost(own, port).call<any>("echo.echo", pid)).toBe(pid);
    }
    const all = await labc.network.callAll("echo", "to all");
    expect(all.map((a) => a.pid).sort()).toEqual([lab.pid, second.pid].sort());
    expect(all.every((a) => a.value === "to all" && a.host === own)).toBe(true);
    second.child.kill("SIGKILL");
    await second.exited;
    await eventually(() => ![...labc.link.pool.servers.values()].some((s) => s.pid === second.pid), 2000, "gone");
  });

  test("a function of the caller's own process is called in-process, whatever its scope", async () => {
    const self = host.runtime();
    await self.register(() => "mine", { name: "echo", scope: "server" });
    expect(await self.call<any>("echo")).toBe("mine");
    expect(await labc.call<any>("echo", "theirs")).toBe("theirs");
    // order "random": any server offering it, this one included.
    await self.register((_message: unknown) => "mine", { name: "echo.echo" });
    const answers = new Set();
    for (let i = 0; i < 40; i++) answers.add(await self.callWith<any>("echo.echo", ["theirs"], { order: "random" }));
    expect([...answers].sort()).toEqual(["mine", "theirs"]);
    await self.close();
  });
});
