import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test, vi } from "vitest";
import { tripCounts } from "../../lib/net/trips.js";
import { FIXTURES, TestHost, eventually, sleep } from "../helpers.js";

// A subscriber that stops reading (SIGSTOP: its socket fills, as a machine too slow for its
// publisher does) against the two ways a user publishes: awaiting each publication, or not.

const TALLY = join(FIXTURES, "tally.ts");
const MiB = 1024 * 1024;
const payload = Buffer.alloc(64 * 1024, 7);
/** 25 MiB: more than loopback's socket buffers take from a subscriber that does not read. */
const COUNT = 400;

let host: TestHost;

beforeAll(async () => {
  host = await TestHost.start();
});
afterAll(() => host.cleanup());

describe("a publisher faster than its subscriber", () => {
  test("one that awaits publish() waits while the subscriber does not read, and every publication arrives, in order", async () => {
    const subscriber = await host.serve([TALLY]);
    const publisher = host.runtime({ "limits.unsent": MiB });
    expect(await publisher.publish("tally", 0, payload)).toBe(1);
    process.kill(subscriber.pid, "SIGSTOP");
    let published = 0;
    const loop = (async () => {
      for (let seq = 1; seq <= COUNT; seq++) {
        await publisher.publish("tally", seq, payload);
        published = seq;
      }
    })();
    try {
      await sleep(1500);
      const stalled = published;
      await sleep(1000);
      expect(stalled).toBeLessThan(COUNT);
      expect(published, "the publisher went on while nothing was read").toBe(stalled);
    } finally {
      process.kill(subscriber.pid, "SIGCONT");
    }
    await loop;
    const every = Array.from({ length: COUNT + 1 }, (_, seq) => seq);
    await eventually(async () => (await publisher.call<any>("tally")).length === every.length, 10000, "every publication arrived");
    expect(await publisher.call<any>("tally")).toEqual(every);
    subscriber.child.kill("SIGTERM");
    expect(await subscriber.exited).toBe(0);
  });

  test("one that does not await fills the subscriber's queue up to limits.queued; what does not fit is not sent, said in the log, and counted in publish()'s result", async () => {
    const subscriber = await host.serve([TALLY]);
    const publisher = host.runtime({ "limits.unsent": MiB, "limits.queued": 2 * MiB, "wire.max_frame_size": 256 * 1024 });
    expect(await publisher.publish("tally", 0, payload)).toBe(1);
    const before = tripCounts().queued ?? 0;
    const stderr = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    process.kill(subscriber.pid, "SIGSTOP");
    const results: Promise<number>[] = [];
    try {
      for (let seq = 1; seq <= COUNT; seq++) results.push(publisher.publish("tally", seq, payload));
      await sleep(200);
    } finally {
      process.kill(subscriber.pid, "SIGCONT");
    }
    const warned = stderr.mock.calls.map(([text]) => String(text)).filter((text) => text.includes("a publication was not sent to"));
    stderr.mockRestore();
    const reached = await Promise.all(results);
    const sent = [0, ...reached.flatMap((count, i) => (count === 1 ? [i + 1] : []))];
    const refused = COUNT + 1 - sent.length;
    expect(reached.every((count) => count === 0 || count === 1)).toBe(true);
    expect(refused, "the cap was reached").toBeGreaterThan(0);
    // Frames of this tick wait in the queue (joined into one write), so it holds about the cap.
    expect(sent.length, "the queue was used up to the cap").toBeGreaterThanOrEqual(Math.floor((2 * MiB) / (payload.length + 100)));
    expect(tripCounts().queued! - before).toBe(refused);
    expect(warned.length).toBe(1);
    expect(warned[0]).toMatch(/queued tripped by 127\.0\.0\.1: \d+ bytes queued that it does not read/);
    // Every publication counted as sent arrives: the connection stayed, with all it held.
    await eventually(async () => (await publisher.call<any>("tally")).length === sent.length, 10000, `${sent.length} publications arrived`);
    expect(await publisher.call<any>("tally")).toEqual(sent);
    expect(await publisher.publish("tally", COUNT + 1, payload)).toBe(1);
    await eventually(async () => (await publisher.call<any>("tally")).at(-1) === COUNT + 1, 5000, "a later publication arrived");
  });
});
