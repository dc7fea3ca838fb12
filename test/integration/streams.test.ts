import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { frameOf, HostilePeer, KIND } from "../../bench/hostile-peer.js";
import { context } from "../../lib/context.js";
import { BadArgumentsError, CancelledError, RemoteError, StreamRequiredError } from "../../lib/errors.js";
import type { Runtime } from "../../lib/runtime/runtime.js";
import { TestHost, eventually, sleep } from "../helpers.js";

let host: TestHost;
let producer: Runtime;
let reader: Runtime;
/** What the producer's generators did: items made, and whether their `finally` ran. */
const made = { count: 0, finished: 0, caller: "" };

beforeAll(async () => {
  host = await TestHost.start();
  producer = host.runtime();
  reader = host.runtime();
  await producer.register(async function* count(n: number, size = 0) {
    made.caller = context().caller?.id ?? "";
    const pad = "x".repeat(size);
    try {
      for (let i = 0; i < n; i++) {
        made.count++;
        yield size ? { i, pad } : i;
      }
    } finally {
      made.finished++;
    }
  });
  await producer.register(function* letters() {
    yield* ["a", "b", "c"];
  });
  await producer.register(async function* failing() {
    yield 1;
    throw Object.assign(new Error("sensor unplugged"), { code: "E_UNPLUGGED", details: { port: 3 } });
  });
  await producer.register(async function* unsendable() {
    yield 1;
    yield { callback: () => 1 };
  });
  await producer.register(async function later() {
    return (async function* () {
      yield "from an async function";
    })();
  });
  await producer.register(function value() {
    return { one: 1 };
  });
});
afterAll(() => host.cleanup());

const all = async <T>(items: AsyncIterable<T>): Promise<T[]> => {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
};

describe("streams", () => {
  test("items arrive in order, from async and plain generators, and from an async function returning one", async () => {
    expect(await all(reader.stream<any>("count", 1000))).toEqual([...Array(1000).keys()]);
    expect(await all(reader.stream<any>("letters"))).toEqual(["a", "b", "c"]);
    expect(await all(reader.stream<any>("later"))).toEqual(["from an async function"]);
    // The generator ran with the call's context: it knows its caller.
    expect(made.caller).toBe(reader.identity.id);
  });

  test("a function that returns a value gives one item; call() of a stream says to read it as one", async () => {
    const stream = reader.stream<any>("value");
    expect(await all(stream)).toEqual([{ one: 1 }]);
    expect(stream.streamed).toBe(false);
    const error = await reader.call<any>("count", 3).catch((e) => e);
    expect(error).toBeInstanceOf(StreamRequiredError);
    expect(error.message).toBe('"count" returns a stream: read it with labc.stream("count", ...)');
  });

  test("a slow reader slows the producer: it is never more than the window ahead", async () => {
    const before = made.count;
    let read = 0;
    let ahead = 0;
    for await (const _ of reader.streamWith<any>("count", [2000], { window: 16 })) {
      read++;
      ahead = Math.max(ahead, made.count - before - read);
      if (read % 100 === 0) await sleep(5);
    }
    expect(read).toBe(2000);
    expect(ahead).toBeLessThanOrEqual(16 + 1);
  });

  test("break, and an abort signal, end the producer: its finally runs", async () => {
    const finished = made.finished;
    const before = made.count;
    for await (const i of reader.streamWith<any>("count", [1_000_000], { window: 8 })) if (i === 10) break;
    await eventually(() => made.finished === finished + 1);
    expect(made.count - before).toBeLessThanOrEqual(10 + 8 + 2);

    const abort = new AbortController();
    const read: number[] = [];
    const error = await (async () => {
      for await (const i of reader.streamWith<any>("count", [1_000_000], { signal: abort.signal })) {
        read.push(i);
        if (i === 5) abort.abort();
      }
    })().catch((e) => e);
    expect(error).toBeInstanceOf(CancelledError);
    await eventually(() => made.finished === finished + 2);
  });

  test("an error of the producer ends the stream with the error, after the items before it", async () => {
    const read: unknown[] = [];
    const error = await (async () => {
      for await (const item of reader.stream<any>("failing")) read.push(item);
    })().catch((e) => e);
    expect(read).toEqual([1]);
    expect(error).toBeInstanceOf(RemoteError);
    expect([error.remoteCode, error.details]).toEqual(["E_UNPLUGGED", { port: 3 }]);
    const unsendable = await all(reader.stream<any>("unsendable")).catch((e) => e);
    expect(unsendable).toBeInstanceOf(BadArgumentsError);
    expect(unsendable.message).toMatch(/unsendable: item 1: result\.callback: a function/);
  });

  test("a stream of a function of the same process hands its items over", async () => {
    expect(await all(producer.stream<any>("letters"))).toEqual(["a", "b", "c"]);
    const before = made.count;
    for await (const i of producer.streamWith<any>("count", [100_000], { window: 4 })) if (i === 3) break;
    expect(made.count - before).toBeLessThanOrEqual(4 + 4 + 1);
  });

  test("a peer granting credit it never reads is held back by the unsent limit, not by memory", async () => {
    const port = producer.port!;
    const hostile = await HostilePeer.connect(port);
    const finished = made.finished;
    try {
      hostile.hello();
      hostile.stopReading();
      const before = made.count;
      hostile.send(frameOf(KIND.req, 1, { fn: "count", args: [1_000_000, 1000], credit: 2 ** 31 }));
      await sleep(1500);
      const produced = made.count - before;
      // About limits.unsent (8 MiB) of 1 kB items, plus what the sockets hold: far from a million.
      expect(produced).toBeGreaterThan(100);
      expect(produced).toBeLessThan(40_000);
    } finally {
      hostile.destroy();
    }
    // The producer was ended when the connection closed.
    await eventually(() => made.finished === finished + 1);
    expect(await reader.call<any>("value")).toEqual({ one: 1 });
  });

  test("credit that is not a count of items closes the connection; credit for no stream is ignored", async () => {
    const hostile = await HostilePeer.connect(producer.port!);
    try {
      hostile.hello();
      hostile.send(frameOf(KIND.credit, 77, { n: 5 }));
      hostile.send(frameOf(KIND.req, 1, { fn: "value", args: [] }));
      expect((await hostile.expect((frame) => frame.id === 1)).body).toEqual({ v: { one: 1 } });
      hostile.send(frameOf(KIND.credit, 1, { n: -5 }));
      expect(await hostile.closedWithin(3000)).toBe(true);
    } finally {
      hostile.destroy();
    }
  });
});
