import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { Runtime } from "../../lib/runtime/runtime.js";
import { Echo } from "../../services/echo.js";
import { ECHO, TestHost } from "../helpers.js";

// What the compiler accepts and refuses is checked by `npm run typecheck` (this file is part of
// it): each `@ts-expect-error` line must be an error, or the type check fails.

let host: TestHost;
let labc: Runtime;
beforeAll(async () => {
  host = await TestHost.start();
  await host.serve([ECHO]);
  labc = host.runtime();
});
afterAll(() => host.cleanup());

describe("typed calls", () => {
  test("use(Echo) calls the service's functions, typed by the class", async () => {
    const echo = labc.use(Echo);
    const sum: number = await echo.sum(1, 2); // registered as "add": called as echo.add
    expect(sum).toBe(3);
    const said: unknown = await echo.echo("hi");
    expect(said).toBe("hi");
    // @ts-expect-error: Echo has no method "missing"
    expect(() => echo.missing).toBeDefined();
    // @ts-expect-error: sum takes numbers
    await expect(echo.sum("1", 2)).resolves.toBe("12");
    // @ts-expect-error: a result is a promise of the method's result, not the result
    const notAwaited: number = echo.sum(1, 2);
    expect(notAwaited).toBeInstanceOf(Promise);
  });

  test("use<Echo>(route name) and getHost(h).use(Echo); call<T> and callWith<T>", async () => {
    const byName = labc.use<Echo>("echo");
    expect(await byName.echo(42)).toBe(42);
    expect(await labc.getHost(labc.identity.host).use(Echo).sum(2, 3)).toBe(5);
    const text: string = await labc.call<string>("echo", "typed");
    expect(text).toBe("typed");
    const n = await labc.callWith<number>("add", [1, 1]);
    expect(n + 1).toBe(3);
    const viaNetwork: number = await labc.network.echo.add<number>(2, 2);
    expect(viaNetwork).toBe(4);
    // Untyped results are unknown, not any: using one unchecked does not compile.
    // @ts-expect-error: call's result is unknown until typed
    await expect(async () => (await labc.call("echo", "x")).this.does.not.exist()).rejects.toThrow(TypeError);
    // @ts-expect-error: the same through network.*
    await expect(async () => (await labc.network.echo("x")).does.not.exist()).rejects.toThrow(TypeError);
    // Awaiting a handle gives the handle, not a call of "then".
    expect(await Promise.resolve(byName)).toBe(byName);
  });
});
