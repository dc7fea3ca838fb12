import { getEventListeners } from "node:events";
import { expect, test, vi } from "vitest";
import { Connection } from "../../lib/net/connection.js";
import type { Transport } from "../../lib/net/transport.js";
import { RelayedCall, type Caller } from "../../lib/router/relayed-call.js";
import { DEFAULT_LIMITS } from "../../lib/wire/limits.js";
import { decodeMessage, encodeMessage } from "../../lib/wire/codec.js";
import { Kind } from "../../lib/wire/message.js";

/** A peer that reads nothing: what is written stays queued; `feed` plays what it sends. */
function peer(): Transport & { queued: number; written: Buffer[]; feed(frame: Buffer | Buffer[]): void } {
  let onData: (chunk: Buffer) => void = () => {};
  return {
    remote: "127.0.0.1:1",
    queued: 0,
    written: [],
    get queuedBytes() {
      return this.queued;
    },
    write(data) {
      const bytes = Buffer.concat(Array.isArray(data) ? data : [data]);
      this.written.push(bytes);
      this.queued += bytes.length;
    },
    feed(frame) {
      onData(Buffer.concat(Array.isArray(frame) ? frame : [frame]));
    },
    close: async () => {},
    start(receive) {
      onData = receive;
    },
    pause() {},
    resume() {},
    ref() {},
    unref() {},
  };
}

test("a call whose write closes the connection leaves no listener on its signal", async () => {
  const connection = new Connection(peer(), { label: "a peer that reads nothing", limits: { ...DEFAULT_LIMITS, maxQueuedBytes: 1000 } });
  const aborts = new AbortController();
  const error = await connection.call("f", ["x".repeat(2000)], 1000, aborts.signal).catch((e) => e);
  expect(error.code).toBe("LABC_CONNECTION_LOST");
  expect(getEventListeners(aborts.signal, "abort")).toEqual([]);
});

test("an answer the caller's side cannot take is logged where it failed, and the server's link reads on", () => {
  const server = peer();
  const via = new Connection(server, { label: "server s1", limits: DEFAULT_LIMITS });
  const caller: Caller = {
    replyWith: () => {
      throw new Error("the caller's side refused it");
    },
    replyError: () => {},
    passItem: () => {},
  };
  const warned = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
  try {
    const request = decodeMessage(Buffer.concat([encodeMessage(Kind.req, 7, { fn: "echo", args: ["hi"] })].flat()).subarray(4));
    const answered = vi.fn();
    const calls = [new RelayedCall(caller, 7, via, false), new RelayedCall({ ...caller, replyWith: answered }, 8, via, false)];
    for (const call of calls) call.viaId = via.relay(request, "echo", 1000, call);
    for (const call of calls) server.feed(encodeMessage(Kind.rep, call.viaId, { v: "hi" }));
    expect(via.closed).toBe(false);
    expect(answered).toHaveBeenCalledTimes(1);
    expect(String(warned.mock.calls[0]?.[0])).toMatch(/an answer relayed from server s1 could not be passed back to its caller: .*refused it/);
  } finally {
    warned.mockRestore();
  }
});
