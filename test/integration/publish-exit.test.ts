import { hostname } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { PACKAGE_ROOT } from "../../lib/paths.js";
import { TestHost, eventually, type Served } from "../helpers.js";

/**
 * A publication whose promise resolved leaves even if the process exits next: a script that
 * awaits publish() and exits at once delivers it, plain or to one host, small (still queued at
 * the exit: the transport's exit hook hands it over) or larger than a socket takes in one write
 * (the frame then leaves over several turns of the event loop), alone or the last of many
 * awaited one by one, with or without the network secret (TLS).
 */

const TALLY = join(PACKAGE_ROOT, "test", "fixtures", "tally.ts");
let host: TestHost;
let secured: TestHost;
let tally: Served;
let script: string;

beforeAll(async () => {
  host = await TestHost.start();
  secured = await TestHost.start();
  expect((await secured.cli(["secret", "new"])).code).toBe(0);
  [tally] = await Promise.all([host.serve([TALLY]), secured.serve([TALLY])]);
  script = join(PACKAGE_ROOT, "test", "fixtures", "publish-and-exit.mjs");
}, 30_000);
afterAll(async () => {
  await host?.cleanup();
  await secured?.cleanup();
});

async function seenAt(on: TestHost): Promise<number[]> {
  return JSON.parse((await on.cli(["call", "tally", "--json"])).stdout || "[]") as number[];
}

test.each([
  ["plain", 1, 10],
  ["plain", 2, 8 * 1024 * 1024],
  ["to one host", 3, 10],
  ["to one host", 4, 8 * 1024 * 1024],
])("await publish() (%s, %i: %i bytes) then process.exit(0): it arrives", async (how, seq, bytes) => {
  const result = await host.node([script, how === "plain" ? "plain" : hostname(), String(seq), String(bytes)]);
  expect(result).toMatchObject({ code: 0, stderr: "" });
  let seen: number[] = [];
  await eventually(
    async () => {
      seen = JSON.parse((await host.cli(["call", "tally", "--json"])).stdout || "[]") as number[];
      return seen.includes(seq);
    },
    5000,
    `publication ${seq} at the subscriber (it has ${JSON.stringify(seen)}; tally stderr: ${tally.stderr()})`,
  );
}, 30_000);

test.each([
  ["without", "plain"],
  ["without", "to one host"],
  ["with", "plain"],
  ["with", "to one host"],
])("%s the secret, 20 000 publications (%s) each awaited, then process.exit(0): all arrive, in order", async (secret, how) => {
  const on = secret === "with" ? secured : host;
  const first = (how === "plain" ? 1000 : 100_000) + (secret === "with" ? 50_000 : 0);
  const count = 20_000;
  // 20 000 frames of about 40 bytes: more than one tick may promise at once (the rest wait for
  // their write), and the last ones still queued when the script exits.
  const result = await on.node([script, how === "plain" ? "plain" : hostname(), String(first), "8", String(count)]);
  expect(result).toMatchObject({ code: 0, stderr: "" });
  let seen: number[] = [];
  await eventually(
    async () => {
      seen = (await seenAt(on)).filter((seq) => seq >= first && seq < first + count);
      return seen.length >= count;
    },
    10_000,
    `${count} publications at the subscriber`,
  );
  expect(seen).toEqual(Array.from({ length: count }, (_, n) => first + n));
}, 60_000);
