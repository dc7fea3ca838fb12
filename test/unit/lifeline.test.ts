import { afterEach, beforeEach, expect, test, vi } from "vitest";
import { Lifeline, type LifelineStatus } from "../../lib/router/lifeline.js";

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

function lifeline() {
  const statuses: LifelineStatus[] = [];
  const ping = vi.fn();
  const line = new Lifeline({
    intervalMs: 100,
    suspectAfter: 2,
    deadAfter: 5,
    ping,
    onStatus: (status) => statuses.push(status),
  });
  line.start();
  return { line, statuses, ping };
}

test("a peer that answers stays alive, and is pinged every interval", () => {
  const { line, statuses, ping } = lifeline();
  for (let i = 0; i < 20; i++) {
    vi.advanceTimersByTime(100);
    line.heard();
  }
  expect(statuses).toEqual([]);
  expect(ping.mock.calls.length).toBeGreaterThanOrEqual(18);
  line.stop();
});

test("a silent peer is suspect after 2 missed heartbeats and dead after 5, once", () => {
  const { statuses } = lifeline();
  vi.advanceTimersByTime(199);
  expect(statuses).toEqual([]);
  // A beat comes at most one interval after the threshold is crossed.
  vi.advanceTimersByTime(101);
  expect(statuses).toEqual(["suspect"]);
  vi.advanceTimersByTime(199);
  expect(statuses).toEqual(["suspect"]);
  vi.advanceTimersByTime(101);
  expect(statuses).toEqual(["suspect", "dead"]);
  vi.advanceTimersByTime(5000);
  expect(statuses).toEqual(["suspect", "dead"]);
});

test("a suspect peer heard again is alive", () => {
  const { line, statuses } = lifeline();
  vi.advanceTimersByTime(300);
  line.heard();
  vi.advanceTimersByTime(90);
  expect(statuses).toEqual(["suspect", "alive"]);
  line.stop();
});
