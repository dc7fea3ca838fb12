import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { frameOf, HostilePeer, KIND } from "../../bench/hostile-peer.js";
import { hooks, type HookEvent } from "../../lib/hooks.js";
import type { Runtime } from "../../lib/runtime/runtime.js";
import { slowCalls } from "../../lib/slow-calls.js";
import { FIXTURES, TestHost, eventually, type Served } from "../helpers.js";

/**
 * Hooks on both sides of real calls between processes: this test process calls with a hook of
 * its own, two servers (test/fixtures/traced.ts) record what their hooks see.
 */

let host: TestHost;
let a: Served;
let labc: Runtime;
const mine: { event: HookEvent; outcome: string }[] = [];
let removeMine: () => void;

beforeAll(async () => {
  host = await TestHost.start();
  a = await host.serve([join(FIXTURES, "traced.ts")], { TRACED_AS: "a" });
  await host.serve([join(FIXTURES, "traced.ts")], { TRACED_AS: "b" });
  labc = host.runtime();
  removeMine = hooks.add({
    after: (event) => void mine.push({ event, outcome: "answered" }),
    failed: (event, error) => void mine.push({ event, outcome: (error as { code?: string }).code ?? "error" }),
  });
});
afterAll(() => {
  removeMine?.();
  return host.cleanup();
});

type Span = Pick<HookEvent, "kind" | "side" | "name" | "args" | "traceId" | "spanId" | "parentSpanId" | "subscriber" | "deadline"> & {
  callerPid?: number;
  outcome: string;
};
const spans = (server: string) => labc.call<Span[]>(`${server}.spans`);
const ID = { traceId: expect.stringMatching(/^[0-9a-f]{32}$/), spanId: expect.stringMatching(/^[0-9a-f]{16}$/) };

test("one trace id follows a call from process to process, across the awaits of the function serving it", async () => {
  mine.length = 0;
  // a.hop awaits, then calls b.double: b's before turns "21" into 21.
  expect(await labc.callWith("a.hop", ["b.double", "21"], { timeoutMs: 5000 })).toBe(42);

  const [calling] = mine.filter((m) => m.event.name === "a.hop");
  expect(calling!.event).toMatchObject({ kind: "call", side: "calling", args: ["b.double", "21"], ...ID });
  expect(calling!.event.parentSpanId).toBeUndefined();
  expect(calling!.event.deadline).toBeGreaterThan(Date.now());
  expect(calling!.event.durationMs).toBeGreaterThan(0);
  const { traceId } = calling!.event;

  const atA = (await spans("a")).filter((s) => s.traceId === traceId);
  const servedA = atA.find((s) => s.side === "serving" && s.name === "a.hop")!;
  expect(servedA).toMatchObject({ kind: "call", parentSpanId: calling!.event.spanId, callerPid: process.pid, outcome: "answered" });
  const callingB = atA.find((s) => s.side === "calling" && s.name === "b.double")!;
  expect(callingB).toMatchObject({ parentSpanId: servedA.spanId, args: ["21"], outcome: "answered" });

  const servedB = (await spans("b")).find((s) => s.traceId === traceId)!;
  expect(servedB).toMatchObject({ side: "serving", name: "b.double", parentSpanId: callingB.spanId, callerPid: a.pid, args: [21], outcome: "answered" });
  expect(new Set([calling!.event.spanId, servedA.spanId, callingB.spanId, servedB.spanId]).size).toBe(4);
});

test("a before hook refuses a call with its error, which reaches the caller and both sides' failed hooks", async () => {
  mine.length = 0;
  await expect(labc.call("a.guarded", "guess")).rejects.toMatchObject({ code: "LABC_NOT_PERMITTED", message: expect.stringContaining("a.guarded needs the password") });
  expect(await labc.call("a.guarded", "open sesame")).toBe("let in");
  expect(mine.map((m) => [m.event.name, m.outcome])).toEqual([
    ["a.guarded", "LABC_NOT_PERMITTED"],
    ["a.guarded", "answered"],
  ]);
  const served = (await spans("a")).filter((s) => s.name === "a.guarded");
  expect(served.map((s) => s.outcome)).toEqual(["LABC_NOT_PERMITTED", "answered"]);
});

test("a before hook of the caller that throws rejects the call's promise, and nothing is sent", async () => {
  const seen: string[] = [];
  const remove = hooks.add({
    before: (event) => {
      if (event.name === "b.double") throw new RangeError("not from here");
    },
    failed: (event, error) => void seen.push(`${event.name}: ${(error as Error).message}`),
  });
  try {
    const refused = labc.call("b.double", 3);
    expect(refused).toBeInstanceOf(Promise);
    await expect(refused).rejects.toThrow("not from here");
    await expect(labc.publish("b.double", 1)).rejects.toThrow("not from here");
  } finally {
    remove();
  }
  expect(seen).toEqual(["b.double: not from here", "b.double: not from here"]);
  expect((await spans("b")).some((s) => s.name === "b.double" && s.args[0] === 3)).toBe(false);
});

test("publications: the publisher's hooks see it leave, the subscriber's see each subscriber run", async () => {
  mine.length = 0;
  expect(await labc.publish("a.news", { level: 3 })).toBe(1);
  expect(mine[0]!.event).toMatchObject({ kind: "publication", side: "calling", name: "a.news", args: [{ level: 3 }] });
  expect(mine[0]).toMatchObject({ outcome: "answered" });
  await eventually(async () => (await spans("a")).some((s) => s.kind === "publication"));
  const delivered = (await spans("a")).find((s) => s.kind === "publication")!;
  expect(delivered).toMatchObject({ side: "serving", name: "a.news", subscriber: expect.stringContaining("news"), args: [{ level: 3 }], outcome: "answered" });
});

test("a hook that throws after a call is reported and the call goes on; a removed hook sees nothing", async () => {
  const remove = hooks.add({
    after: () => {
      throw new Error("broken logger");
    },
  });
  expect(await labc.call("b.double", 4)).toBe(8);
  remove();
  removeMine();
  mine.length = 0;
  expect(await labc.call("b.double", 5)).toBe(10);
  expect(mine).toEqual([]);
  expect(() => hooks.add({ befor: () => {} } as never)).toThrow(/unknown hook "befor"/);
  removeMine = hooks.add({ after: (event) => void mine.push({ event, outcome: "answered" }) });
});

test("slowCalls reports what took longer than its threshold, naming the function, the side and the trace", async () => {
  const lines: string[] = [];
  const remove = hooks.add(slowCalls(0, (line) => lines.push(line)));
  await labc.call("b.double", 1);
  await expect(labc.call("a.guarded", "guess")).rejects.toThrow();
  remove();
  expect(lines[0]).toMatch(/^labc: slow call of b\.double: answered after \d+\.\d ms \(trace [0-9a-f]{32}\)$/);
  expect(lines[1]).toMatch(/^labc: slow call of a\.guarded: failed with LABC_NOT_PERMITTED after/);
  const quiet: string[] = [];
  const removeQuiet = hooks.add(slowCalls(60_000, (line) => quiet.push(line)));
  await labc.call("b.double", 1);
  removeQuiet();
  expect(quiet).toEqual([]);
});

test("a peer's trace field: a well-formed one is continued, a malformed one replaced, a non-string one refused", async () => {
  const peer = await HostilePeer.connect(a.port);
  try {
    peer.hello();
    const traceId = "0af7651916cd43dd8448eb211c80319c";
    peer.send(frameOf(KIND.req, 1, { fn: "a.double", args: [2], trace: `${traceId}-b7ad6b7169203331` }));
    peer.send(frameOf(KIND.req, 2, { fn: "a.double", args: [3], trace: "not a trace" }));
    peer.send(frameOf(KIND.req, 3, { fn: "a.double", args: [4], trace: 7 }));
    expect((await peer.expect((f) => f.id === 1)).body).toEqual({ v: 4 });
    expect((await peer.expect((f) => f.id === 2)).body).toEqual({ v: 6 });
    const refused = await peer.expect((f) => f.id === 3 || f.kind === KIND.exc);
    expect(refused.body.message).toMatch(/trace must be a string/);
    const served = (await spans("a")).filter((s) => s.name === "a.double");
    expect(served.find((s) => s.args[0] === 2)).toMatchObject({ traceId, parentSpanId: "b7ad6b7169203331" });
    const replaced = served.find((s) => s.args[0] === 3)!;
    expect(replaced.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(replaced.parentSpanId).toBeUndefined();
  } finally {
    peer.destroy();
  }
});
