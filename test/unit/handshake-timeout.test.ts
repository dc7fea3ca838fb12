import { expect, test } from "vitest";
import { handshakeTimeout } from "../../lib/net/handshake-timeout.js";

/** Keeps the event loop from turning for `ms`, as a script's long synchronous loop does. */
const busy = (ms: number) => {
  const until = Date.now() + ms;
  while (Date.now() < until);
};

test("it expires once its time has passed with the event loop free", async () => {
  const start = Date.now();
  await new Promise<void>((expired) => handshakeTimeout(100, expired));
  expect(Date.now() - start).toBeGreaterThanOrEqual(95);
  expect(Date.now() - start).toBeLessThan(1000);
});

test("a timer made late by a busy loop waits again, so an answer read in that turn of the loop comes first", async () => {
  let expired = false;
  const cancel = handshakeTimeout(100, () => (expired = true));
  busy(300);
  // Runs after the turn's timers and its reads: where a connect's or a handshake's answer lands.
  setImmediate(cancel);
  await new Promise((resolve) => setTimeout(resolve, 300));
  expect(expired).toBe(false);
});

test("a timer that fires a little late, the wait under way, still lets that turn's reads come first", async () => {
  let expired = false;
  const cancel = handshakeTimeout(100, () => (expired = true));
  await new Promise((resolve) => setImmediate(resolve));
  // Due at 100 ms, fired at about 120: within LATE_MS, so no second wait, but a verdict after the reads.
  busy(120);
  setImmediate(cancel);
  await new Promise((resolve) => setTimeout(resolve, 300));
  expect(expired).toBe(false);
});

test("the wait begins when the caller's own code has let the loop turn", async () => {
  let expired = false;
  const cancel = handshakeTimeout(100, () => (expired = true));
  // As a script that publishes, then loops for a while before the loop first turns.
  busy(1030);
  setTimeout(cancel, 50);
  await new Promise((resolve) => setTimeout(resolve, 200));
  expect(expired).toBe(false);
});

test("a peer that never answers is still given up, its time after the loop was last free", async () => {
  let expiredAt = 0;
  handshakeTimeout(100, () => (expiredAt = Date.now()));
  busy(300);
  const free = Date.now();
  await new Promise((resolve) => setTimeout(resolve, 500));
  expect(expiredAt - free).toBeGreaterThanOrEqual(95);
  expect(expiredAt - free).toBeLessThan(400);
});

test("a loop that is always busy when the timer is due does not keep it waiting for ever", async () => {
  let expired = false;
  handshakeTimeout(50, () => (expired = true));
  const blocker = setInterval(() => busy(120), 5);
  try {
    const until = Date.now() + 3000;
    while (!expired && Date.now() < until) await new Promise((resolve) => setImmediate(resolve));
  } finally {
    clearInterval(blocker);
  }
  expect(expired).toBe(true);
});

test("cancelled, it never expires", async () => {
  let expired = false;
  const cancel = handshakeTimeout(50, () => (expired = true));
  cancel();
  await new Promise((resolve) => setTimeout(resolve, 150));
  expect(expired).toBe(false);
});

test("with one restart (the accepting side), a loop late at both deadlines gives up at the second; a dial waits again", async () => {
  const expiredWith = async (restarts: number) => {
    let expired = false;
    const cancel = handshakeTimeout(100, () => (expired = true), restarts);
    // The wait begins; late at its deadline, it starts again from the loop's next turn.
    await new Promise((resolve) => setImmediate(resolve));
    busy(200);
    await new Promise((resolve) => setTimeout(resolve, 50));
    // Late at the second.
    busy(200);
    await new Promise((resolve) => setTimeout(resolve, 0));
    await new Promise((resolve) => setImmediate(resolve));
    cancel();
    return expired;
  };
  expect(await expiredWith(1)).toBe(true);
  expect(await expiredWith(3)).toBe(false);
});
