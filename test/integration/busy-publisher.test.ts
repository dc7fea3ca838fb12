import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { PACKAGE_ROOT } from "../../lib/paths.js";
import { TestHost, eventually, type Served } from "../helpers.js";

/**
 * A script that publishes without awaiting and keeps its event loop busy past a dial's timeout
 * (1 s) before the loop first turns: its link to the router is answered while it cannot read,
 * and every publication still arrives, without the secret and with it (the local proof); and
 * one busy for longer than a router may take to start, on a host whose router is not running,
 * still starts one.
 */

const TALLY = join(PACKAGE_ROOT, "test", "fixtures", "tally.ts");
const SCRIPT = join(PACKAGE_ROOT, "test", "fixtures", "publish-busy.mjs");
let plain: TestHost;
let secured: TestHost;
const tallies = new Map<TestHost, Served>();

beforeAll(async () => {
  plain = await TestHost.start();
  secured = await TestHost.start();
  expect((await secured.cli(["secret", "new"])).code).toBe(0);
  for (const host of [plain, secured]) tallies.set(host, await host.serve([TALLY]));
}, 30_000);
afterAll(async () => {
  await plain?.cleanup();
  await secured?.cleanup();
});

test.each([
  ["without", () => plain],
  ["with", () => secured],
])("a publisher busy for 1.5 s after its first publish (%s the secret): all 2 000 arrive", async (_, hostOf) => {
  const host = hostOf();
  const result = await host.node([SCRIPT, "1", "2000", "1500"]);
  expect(result).toMatchObject({ code: 0, stderr: "", stdout: "reached 1\n" });
  let seen: number[] = [];
  await eventually(
    async () => {
      seen = JSON.parse((await host.cli(["call", "tally", "--json"])).stdout || "[]") as number[];
      return seen.length === 2000;
    },
    10_000,
    `2 000 publications at the subscriber (it has ${seen.length}; its stderr: ${tallies.get(host)!.stderr()})`,
  );
  expect(seen).toEqual(Array.from({ length: 2000 }, (_, i) => i + 1));
}, 30_000);

test("a publisher busy for 5.5 s after its first publish, on a host whose router is not running: it starts one", async () => {
  const host = await TestHost.start();
  try {
    const result = await host.node([SCRIPT, "1", "10", "5500"]);
    expect(result).toMatchObject({ code: 0, stderr: "", stdout: "reached 0\n" });
  } finally {
    await host.cleanup();
  }
}, 30_000);
