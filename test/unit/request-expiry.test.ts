import { afterEach, beforeEach, expect, test, vi } from "vitest";
import { nowMs } from "../../lib/clock.js";
import { RequestExpiry, type Expiring } from "../../lib/net/request-expiry.js";

beforeEach(() => {
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "setImmediate", "clearImmediate", "hrtime"] });
});
afterEach(() => {
  vi.useRealTimers();
});

/** Holds requests by deadline as a Connection does; `asked` counts the times it was asked to expire. */
class Holder implements Expiring {
  nextExpiry = Infinity;
  readonly due = new Map<string, number>();
  readonly expired: string[] = [];
  asked = 0;

  constructor(private readonly expiry: RequestExpiry) {}

  add(name: string, ms: number): void {
    const at = nowMs() + ms;
    this.due.set(name, at);
    if (at < this.nextExpiry) {
      this.nextExpiry = at;
      this.expiry.watch(this);
    }
  }

  answer(name: string): void {
    this.due.delete(name);
  }

  expire(now: number): void {
    this.asked++;
    let next = Infinity;
    for (const [name, at] of this.due) {
      if (at > now) next = Math.min(next, at);
      else {
        this.due.delete(name);
        this.expired.push(name);
      }
    }
    this.nextExpiry = next;
  }
}

test("each request times out at its deadline, not before, the earliest first", () => {
  const expiry = new RequestExpiry();
  const holder = new Holder(expiry);
  holder.add("slow", 300);
  holder.add("fast", 100);
  vi.advanceTimersByTime(99);
  expect(holder.expired).toEqual([]);
  vi.advanceTimersByTime(2);
  expect(holder.expired).toEqual(["fast"]);
  vi.advanceTimersByTime(198);
  expect(holder.expired).toEqual(["fast"]);
  vi.advanceTimersByTime(2);
  expect(holder.expired).toEqual(["fast", "slow"]);
  expect(vi.getTimerCount()).toBe(0);
});

test("answered requests cost one question at their old deadline, and no timer once none waits", () => {
  const expiry = new RequestExpiry();
  const holder = new Holder(expiry);
  for (let i = 0; i < 1000; i++) holder.add(`r${i}`, 100 + i);
  for (let i = 0; i < 1000; i++) holder.answer(`r${i}`);
  vi.advanceTimersByTime(2000);
  expect(holder.expired).toEqual([]);
  expect(holder.asked).toBe(1);
  expect(vi.getTimerCount()).toBe(0);
});

test("a request due sooner than every other, on another holder, is not served late", () => {
  const expiry = new RequestExpiry();
  const [a, b] = [new Holder(expiry), new Holder(expiry)];
  a.add("long", 10_000);
  b.add("short", 50);
  vi.advanceTimersByTime(51);
  expect(b.expired).toEqual(["short"]);
  expect(a.asked).toBe(0);
  vi.advanceTimersByTime(10_000);
  expect(a.expired).toEqual(["long"]);
});

test("an answer read after the timer fired, before its verdict, is not timed out; one watched then is served", () => {
  const expiry = new RequestExpiry();
  const holder = new Holder(expiry);
  holder.add("answered", 100);
  holder.add("unanswered", 100);
  // The timer fires; the verdict waits for the reads of that turn of the loop.
  vi.advanceTimersToNextTimer();
  expect(holder.expired).toEqual([]);
  holder.answer("answered");
  const other = new Holder(expiry);
  other.add("new", 50);
  vi.advanceTimersToNextTimer();
  expect(holder.expired).toEqual(["unanswered"]);
  vi.advanceTimersByTime(49);
  expect(other.expired).toEqual([]);
  vi.advanceTimersByTime(2);
  expect(other.expired).toEqual(["new"]);
  expect(vi.getTimerCount()).toBe(0);
});
