import { afterEach, beforeEach, expect, test, vi } from "vitest";
import { DeadlineWheel } from "../../lib/net/deadline-wheel.js";

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

test("fires each deadline once, not before its time", () => {
  const wheel = new DeadlineWheel(10);
  const fired: string[] = [];
  wheel.add(50, () => fired.push("50"));
  wheel.add(20, () => fired.push("20"));
  vi.advanceTimersByTime(15);
  expect(fired).toEqual([]);
  vi.advanceTimersByTime(20);
  expect(fired).toEqual(["20"]);
  vi.advanceTimersByTime(100);
  expect(fired).toEqual(["20", "50"]);
});

test("cancelled deadlines never fire, and the timer stops when nothing waits", () => {
  const wheel = new DeadlineWheel(10);
  const fire = vi.fn();
  const deadline = wheel.add(30, fire);
  wheel.cancel(deadline);
  expect(vi.getTimerCount()).toBe(0);
  vi.advanceTimersByTime(100);
  expect(fire).not.toHaveBeenCalled();
});

test("a zero timeout still fires", () => {
  const wheel = new DeadlineWheel(10);
  const fire = vi.fn();
  wheel.add(0, fire);
  vi.advanceTimersByTime(25);
  expect(fire).toHaveBeenCalledOnce();
});
