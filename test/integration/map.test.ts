import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { CancelledError, MapError, NoSuchFunctionError, RemoteError } from "../../lib/errors.js";
import type { Runtime } from "../../lib/runtime/runtime.js";
import { TestHost, sleep } from "../helpers.js";

let host: TestHost;
let boss: Runtime;
const did: number[][] = [[], [], []];

beforeAll(async () => {
  host = await TestHost.start();
  // Three workers; the third takes six times as long per item.
  for (const [w, delay] of [5, 5, 30].entries()) {
    await host.runtime().register(
      async function square(x: number) {
        await sleep(delay);
        if (x === 13) throw Object.assign(new Error("thirteen is refused"), { code: "E_13" });
        did[w]!.push(x);
        return x * x;
      },
      { idempotent: true },
    );
  }
  boss = host.runtime();
});
afterAll(() => host.cleanup());

const range = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);

describe("labc.map", () => {
  test("results come in input order, the slow server gets fewer items, and each item once", async () => {
    const items = range(300, 100);
    const results = await boss.map<number>("square", items, { perServer: 2 });
    expect(results).toEqual(items.map((x) => x * x));
    const [a, b, slow] = did.map((list) => list.filter((x) => x >= 100).length);
    expect(a! + b! + slow!).toBe(300);
    expect(slow).toBeLessThan(Math.min(a!, b!) / 2);
    expect(new Set(did.flat().filter((x) => x >= 100)).size).toBe(300);
  });

  test("iterated, each outcome comes as it completes; a failed item is accounted for, the rest go on", async () => {
    const job = boss.map<number>("square", range(20), { perServer: 1 });
    const seen: number[] = [];
    for await (const outcome of job) {
      seen.push(outcome.index);
      if (outcome.index === 13) {
        expect(outcome.ok).toBe(false);
        expect(outcome.error).toBeInstanceOf(RemoteError);
        expect((outcome.error as RemoteError).remoteCode).toBe("E_13");
      } else expect(outcome).toMatchObject({ ok: true, value: outcome.index ** 2, attempts: 1, server: expect.stringMatching(/pid \d+$/) });
    }
    expect(seen.sort((x, y) => x - y)).toEqual(range(20));
    expect([job.done, job.failed]).toEqual([20, 1]);
    const error = await job.then(() => undefined, (e) => e);
    expect(error).toBeInstanceOf(MapError);
    expect(error.message).toMatch(/^"square": 1 of 20 item\(s\) failed \(the first, item 13: square on .*thirteen is refused\)$/);
    expect(error.results.map((r: { ok: boolean }) => r.ok).filter((ok: boolean) => !ok)).toHaveLength(1);
  });

  test("no items, no server, and a cancelled job", async () => {
    expect(await boss.map("square", [])).toEqual([]);
    const missing = await boss.map("nowhere", [1, 2]).catch((e) => e);
    expect(missing.results.map((r: { error: unknown }) => r.error)).toEqual([expect.any(NoSuchFunctionError), expect.any(NoSuchFunctionError)]);
    const abort = new AbortController();
    const job = boss.map("square", range(200), { perServer: 1, signal: abort.signal });
    setTimeout(() => abort.abort(), 30);
    const cancelled = await job.catch((e) => e);
    expect(cancelled).toBeInstanceOf(MapError);
    expect(cancelled.results).toHaveLength(200);
    expect(cancelled.results.filter((r: { error?: unknown }) => r.error instanceof CancelledError).length).toBeGreaterThan(100);
  });
});
