import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { runDocument, shellMachine } from "../doc-blocks.js";
import { packLabc } from "../packed.js";
import { Lan, lanUnavailable } from "./lan.js";

/**
 * docs/tutorial.md, run as written on two machines (network namespaces named computer1 and
 * computer2, discovering each other as on a LAN), each starting from an empty folder
 * (test/doc-blocks.ts; `npm install labc` installs this checkout's packed tarball).
 */

const why = lanUnavailable();
let lan: Lan;
let packDir: string;
let tarball: string;

beforeAll(() => {
  if (why) return;
  packDir = mkdtempSync(join(tmpdir(), "labc-tutorial-pack-"));
  tarball = packLabc(packDir).tarball;
  // As a user's defaults: the router lingers 60 s (the test ends every process it started).
  lan = Lan.create(2, { LABC_ROUTER_LINGER: "60" }, ["computer1", "computer2"]);
}, 60_000);
afterAll(() => {
  lan?.cleanup();
  if (packDir) rmSync(packDir, { recursive: true, force: true });
});

test.skipIf(why)("docs/tutorial.md runs as written on two machines", async () => {
  // Every process of a namespace ends with it (Lan.cleanup).
  const machines = new Map(lan.hosts.map((host) => [host.name, shellMachine(["ip", "netns", "exec", host.ns], host.env, host.dir, () => {})]));
  const served = await runDocument("docs/tutorial.md", machines, tarball);
  // What the tutorial says the server printed.
  expect(served).toHaveLength(1);
  expect(served[0]!.output()).toContain("news: coffee is ready\n");
  expect(served[0]!.output()).toContain("news: from computer2\n");
}, 240_000);
