import { describe, expect, test } from "vitest";
import { loadConfig } from "../../lib/config.js";
import { ByteBudget } from "../../lib/wire/byte-budget.js";
import { limitsFrom } from "../../lib/config.js";
import { FrameDecoder } from "../../lib/wire/frame-decoder.js";

const MiB = 1024 * 1024;

function head(length: number): Buffer {
  const prefix = Buffer.alloc(4);
  prefix.writeUInt32BE(length, 0);
  return prefix;
}

describe("partial frames share one budget", () => {
  test("a frame that would pass the budget is refused before it is buffered; finished frames give theirs back", () => {
    const budget = new ByteBudget(3 * MiB);
    const a = new FrameDecoder(64 * MiB, budget);
    const b = new FrameDecoder(64 * MiB, budget);
    const c = new FrameDecoder(64 * MiB, budget);
    a.push(Buffer.concat([head(2 * MiB), Buffer.alloc(100)]), () => {});
    expect(budget.inUse).toBe(2 * MiB);
    expect(() => b.push(Buffer.concat([head(2 * MiB), Buffer.alloc(100)]), () => {})).toThrow(/partial_frames/);
    // A whole frame in one chunk is never copied, so it takes nothing.
    const frames: Buffer[] = [];
    c.push(Buffer.concat([head(12), Buffer.alloc(12)]), (frame) => frames.push(frame));
    expect(frames).toHaveLength(1);
    expect(budget.inUse).toBe(2 * MiB);
    a.push(Buffer.alloc(2 * MiB - 100), (frame) => frames.push(frame));
    expect(frames).toHaveLength(2);
    expect(budget.inUse).toBe(0);
  });

  test("a connection that ends mid-frame gives its bytes back", () => {
    const budget = new ByteBudget(MiB);
    const decoder = new FrameDecoder(MiB, budget);
    decoder.push(Buffer.concat([head(1000), Buffer.alloc(10)]), () => {});
    expect(budget.inUse).toBe(1000);
    decoder.release();
    expect(budget.inUse).toBe(0);
  });
});

describe("limits come from the config", () => {
  test("each [limits] key, and a queue that always holds two frames of the largest size", () => {
    const { values } = loadConfig({
      env: {},
      flags: {
        "limits.in_flight": 10,
        "limits.unsent": 4096,
        "limits.queued": 2048,
        "limits.frame_timeout": 2,
        "limits.hello_timeout": 0.5,
        "limits.partial_frames": 8192,
        "limits.connections_per_address": 3,
        "wire.max_frame_size": 4096,
      },
    });
    const limits = limitsFrom(values);
    expect(limits).toMatchObject({
      maxInFlight: 10,
      maxUnsentBytes: 4096,
      maxQueuedBytes: 8192,
      frameTimeoutMs: 2000,
      helloTimeoutMs: 500,
      maxConnectionsPerAddress: 3,
      maxFrameBytes: 4096,
    });
    expect(limits.partialFrames.limit).toBe(8192);
    // Each runtime its own budget.
    expect(limitsFrom(values).partialFrames).not.toBe(limits.partialFrames);
  });
});
