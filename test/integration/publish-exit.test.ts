import { hostname } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { PACKAGE_ROOT } from "../../lib/paths.js";
import { TestHost, eventually, type Served } from "../helpers.js";

/**
 * A publication whose promise resolved has left the process: a script that awaits publish()
 * and exits at once delivers it, plain or to one host, small or larger than a socket takes in
 * one write (the frame then leaves over several turns of the event loop).
 */

const TALLY = join(PACKAGE_ROOT, "test", "fixtures", "tally.ts");
let host: TestHost;
let tally: Served;
let script: string;

beforeAll(async () => {
  host = await TestHost.start();
  tally = await host.serve([TALLY]);
  script = join(PACKAGE_ROOT, "test", "fixtures", "publish-and-exit.mjs");
}, 30_000);
afterAll(async () => {
  await host?.cleanup();
});

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
