import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { PACKAGE_ROOT } from "../../lib/paths.js";
import { Lan, lanUnavailable, within, type LanHost } from "./lan.js";

/**
 * A publication whose promise resolved has left the process, across hosts too: a script on one
 * namespace host awaits publish() (plain, or to one host) and exits at once; the subscriber on
 * the other host gets it. Its server there may be reached directly or through the routers.
 */

const why = lanUnavailable();
let lan: Lan;
let h1: LanHost;
let h2: LanHost;
let script: string;

describe.skipIf(why)("await publish() then exit, across two namespace hosts", () => {
  beforeAll(async () => {
    lan = Lan.create(2);
    [h1, h2] = lan.hosts as [LanHost, LanHost];
    await h2.serve([join(PACKAGE_ROOT, "test", "fixtures", "tally.ts")]);
    await h1.serve([h1.service("Keeper", { keep: "return 1;" })]);
    await within(15_000, "host1 sees tally on host2", async () => (await h1.cli(["call", "tally"])).code === 0);
    script = join(PACKAGE_ROOT, "test", "fixtures", "publish-and-exit.mjs");
  }, 60_000);
  afterAll(() => lan?.cleanup());

  test.each([
    ["plain", 1, 10],
    ["plain", 2, 4 * 1024 * 1024],
    ["host", 3, 10],
    ["host", 4, 4 * 1024 * 1024],
  ])("%s publication %i (%i bytes) arrives on the other host", async (how, seq, bytes) => {
    const result = await h1.node([script, how === "plain" ? "plain" : "host2", String(seq), String(bytes)]);
    expect(result).toMatchObject({ code: 0, stderr: "" });
    await within(5000, `publication ${seq} on host2`, async () => (JSON.parse((await h2.cli(["call", "tally", "--json"])).stdout || "[]") as number[]).includes(seq));
  }, 30_000);
});
