import { afterEach, describe, expect, test, vi } from "vitest";
import { CallContext, context, runWith } from "../../lib/context.js";
import { CancelledError, NoCallContextError, TimeoutError } from "../../lib/errors.js";

afterEach(() => vi.useRealTimers());

describe("the call context", () => {
  test("is what labc.context() returns during the function's synchronous part, and only then", async () => {
    const call = new CallContext("f", undefined, { id: "c", host: "h", hostId: "h1", pid: 1 });
    const seen = runWith(call, context, undefined, []);
    expect(seen).toBe(call);
    expect(() => context()).toThrow(NoCallContextError);
    // Nested calls (a function calling another of its process) restore the outer one.
    const inner = new CallContext("g", undefined, undefined);
    runWith(call, () => {
      runWith(inner, () => expect(context()).toBe(inner), undefined, []);
      expect(context()).toBe(call);
    }, undefined, []);
  });

  test("cancel fires the signal, whether it was read before or after", () => {
    const early = new CallContext("f", undefined, undefined);
    const signal = early.signal;
    early.cancel();
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBeInstanceOf(CancelledError);
    const late = new CallContext("f", undefined, undefined);
    late.cancel(new Error("gone"));
    expect(late.aborted).toBe(true);
    expect(late.signal.aborted).toBe(true);
    expect((late.signal.reason as Error).message).toBe("gone");
  });

  test("past its deadline (and a little grace for the caller's own cancel) the signal fires with a TimeoutError", () => {
    vi.useFakeTimers();
    const call = new CallContext("f", Date.now() + 1000, undefined);
    const signal = call.signal;
    vi.advanceTimersByTime(1000);
    expect(signal.aborted).toBe(false);
    vi.advanceTimersByTime(300);
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBeInstanceOf(TimeoutError);
  });

  test("a finished call is never cancelled afterwards", () => {
    vi.useFakeTimers();
    const call = new CallContext("f", Date.now() + 10, undefined);
    const signal = call.signal;
    call.finish();
    call.cancel();
    vi.advanceTimersByTime(1000);
    expect(signal.aborted).toBe(false);
  });
});
