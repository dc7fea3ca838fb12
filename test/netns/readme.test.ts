import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { runDocument, shellMachine } from "../doc-blocks.js";
import { installPacked, packLabc } from "../packed.js";
import { Lan, lanUnavailable, within } from "./lan.js";

/**
 * The README's blocks for two computers, run as written on two network-namespace machines named
 * computer1 and computer2, each with labc installed in its folder and its `labc` command on the
 * PATH (test/doc-blocks.ts). The README's first example runs in test/integration/readme.test.ts.
 */

const why = lanUnavailable();
let lan: Lan;
let packDir: string;

beforeAll(async () => {
  if (why) return;
  packDir = mkdtempSync(join(tmpdir(), "labc-readme-pack-"));
  const { tarball } = packLabc(packDir);
  lan = Lan.create(2, {}, ["computer1", "computer2"]);
  for (const host of lan.hosts) {
    installPacked(tarball, host.dir);
    host.env.PATH = `${join(host.dir, "node_modules", ".bin")}${delimiter}${process.env.PATH}`;
  }
  // Both routers up and linked before the README's first command, as on computers that run.
  for (const host of lan.hosts) await host.cli(["hosts"]);
  await within(10_000, "the two computers linked", async () => (await lan.hosts[1]!.hosts()).length === 2);
}, 60_000);
afterAll(() => {
  lan?.cleanup();
  if (packDir) rmSync(packDir, { recursive: true, force: true });
});

test.skipIf(why)("the README's commands for several computers run as written", async () => {
  // Every process of a namespace ends with it (Lan.cleanup).
  const machines = new Map(lan.hosts.map((host) => [host.name, shellMachine(["ip", "netns", "exec", host.ns], host.env, host.dir, () => {})]));
  const [subscriber] = await runDocument("README.md", machines, "");
  // What the README says `labc subscribe` prints: the change the call after it made.
  expect(subscriber!.output()).toMatch(/lights\.changed\.ceiling.*"level":75/);
}, 180_000);
