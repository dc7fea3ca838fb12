import { afterEach, beforeEach, expect, test, vi } from "vitest";

/**
 * The refusal and trip lines of lib/net/trips.ts, and the logger under them: a flood from many
 * addresses stays a bounded number of lines with a summary, and nothing a peer sends reaches the
 * log as it is. Each test loads the modules afresh (their budget is per process).
 */

let written: string[];

beforeEach(() => {
  vi.useFakeTimers();
  vi.resetModules();
  written = [];
  vi.spyOn(process.stderr, "write").mockImplementation((chunk: any) => {
    written.push(String(chunk));
    return true;
  });
});
afterEach(() => {
  vi.restoreAllMocks();
  vi.useRealTimers();
});

const trips = () => import("../../lib/net/trips.js");
const log = () => import("../../lib/log.js");
/** What was written, as the lines a reader of the log sees. */
const lines = () => written.join("").split("\n").filter(Boolean);

test("refusals from 5000 addresses in a second write at most 20 lines, then one summary of what was counted, not logged", async () => {
  const { refused, tripCounts } = await trips();
  for (let i = 0; i < 5000; i++) {
    refused(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:4000`, "it speaks labc without TLS: it has no network secret");
    if (i % 1000 === 0) vi.advanceTimersByTime(200);
  }
  expect(tripCounts().refused).toBe(5000);
  const during = lines();
  expect(during.length).toBeLessThanOrEqual(20);
  expect(during.every((line) => /^labc\[\d+\]: refused 10\.\d+\.\d+\.\d+: it speaks labc without TLS/.test(line))).toBe(true);
  vi.advanceTimersByTime(10_000);
  const summary = lines().slice(during.length);
  expect(summary).toHaveLength(1);
  expect(summary[0]).toMatch(new RegExp(`${5000 - during.length} refusal\\(s\\) from ${5000 - during.length} address\\(es\\) \\(10\\.0\\.\\d+\\.\\d+, .*\\) in the last \\d+ s were counted, not logged`));
});

test("the budget refills slowly: a flood that lasts writes about 20 lines a minute, and a summary every 10 s at most", async () => {
  const { refused, tripped, tripCounts } = await trips();
  let n = 0;
  // Five minutes of 100 new addresses a second, refusals and trips mixed.
  for (let second = 0; second < 300; second++) {
    for (let i = 0; i < 100; i++, n++) {
      const peer = `10.1.${(n >> 8) & 255}.${n & 255}:${1000 + i}`;
      if (i % 2) refused(peer, "TLS handshake failed");
      else tripped("bad_message", peer, "frame too long");
    }
    vi.advanceTimersByTime(1000);
  }
  expect(tripCounts().refused + tripCounts().bad_message).toBe(30_000);
  const all = lines();
  const summaries = all.filter((line) => /were counted, not logged/.test(line));
  expect(all.length - summaries.length).toBeLessThanOrEqual(20 + 5 * 20 + 1);
  expect(summaries.length).toBeLessThanOrEqual(300 / 10 + 1);
  expect(summaries.length).toBeGreaterThan(0);
  expect(summaries[0]).toMatch(/\d+ refusal\(s\) and \d+ tripped limit\(s\) from \d+ address\(es\)/);
});

test("one address is said once a minute, as before; no summary for a single noisy peer", async () => {
  const { refused } = await trips();
  for (let i = 0; i < 50; i++) refused("10.0.0.7:5000", "TLS handshake failed");
  vi.advanceTimersByTime(30_000);
  expect(lines()).toEqual([expect.stringMatching(/refused 10\.0\.0\.7: TLS handshake failed \(further refusals of 10\.0\.0\.7 are counted, not logged, for a minute\)$/)]);
  vi.advanceTimersByTime(31_000);
  refused("10.0.0.7:5000", "TLS handshake failed");
  expect(lines()).toHaveLength(2);
});

test("a refusal quoting a forged host id (line breaks, ESC, bidi override, 60 kB) is one escaped, capped line", async () => {
  const { refused } = await trips();
  const hostId = `evil\nlabc[1]: refused 10.0.0.1: forged\r\x1b[2J\x1b]0;owned\x07\u202egnp.exe\u2028${"A".repeat(60_000)}\x9b31m\x7fEND`;
  refused("10.0.0.9:55555", `an announcement of host ${hostId} not signed with this network's key (key id 0123456789abcdef)`);
  expect(lines()).toHaveLength(1);
  const [line] = lines() as [string];
  expect(written.join("")).toBe(`${line}\n`);
  expect(line.length).toBeLessThan(2000);
  expect(line).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e]/);
  expect(line).toContain("evil\\nlabc[1]: refused 10.0.0.1: forged\\r\\x1b[2J\\x1b]0;owned\\x07\\u202egnp.exe\\u2028AAA");
  expect(line).toMatch(/characters cut\]…A+\\x9b31m\\x7fEND not signed with this network's key \(key id 0123456789abcdef\) \(further refusals/);
});

test("warn escapes every line it writes; an error's stack frames stay on lines of their own, indented", async () => {
  const { warn } = await log();
  warn("router: bad message from server evil\nlabc[1]: forged\x1b[31m (pid 1)");
  const error = new Error("subscriber says\nlabc[1]: forged too\n    at forged (evil.js:1:1)");
  warn(`subscriber Lab.broken failed on "lab.x"`, error);
  const all = lines();
  expect(all[0]).toBe(`labc[${process.pid}]: router: bad message from server evil\\nlabc[1]: forged\\x1b[31m (pid 1)`);
  expect(all[1]).toBe(`labc[${process.pid}]: subscriber Lab.broken failed on "lab.x": Error: subscriber says\\nlabc[1]: forged too\\n    at forged (evil.js:1:1)`);
  const frames = all.slice(2);
  expect(frames.length).toBeGreaterThan(0);
  expect(frames.every((frame) => frame.startsWith("    at "))).toBe(true);
  expect(frames.join("\n")).not.toContain("forged (evil.js");
  expect(frames[0]).toContain("trips.test.ts");
});

test("a table of the CLI shows what other hosts named themselves escaped: a host name cannot drive the terminal", async () => {
  const { table } = await import("../../cli/format.js");
  const text = table(["HOST", "STATE"], [["lab\x1b[2J\x1b]0;owned\x07\nfake-host  alive", "alive"]]);
  expect(text.split("\n")).toHaveLength(2);
  expect(text).toContain("lab\\x1b[2J\\x1b]0;owned\\x07\\nfake-host  alive  alive");
});
