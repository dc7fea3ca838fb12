import type { ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { delimiter, join } from "node:path";
import { afterAll, beforeAll, test } from "vitest";
import { runDocument, shellMachine } from "../doc-blocks.js";
import { installPacked, packLabc } from "../packed.js";
import { TestHost, eventually } from "../helpers.js";

/**
 * The README's first blocks, run as written in a fresh project with labc installed from the
 * packed tarball and its `labc` command on the PATH (as after `npm install -g`), on this host
 * with discovery off (test/doc-blocks.ts).
 */

let host: TestHost;
let tarball: string;
const served: ChildProcess[] = [];

beforeAll(async () => {
  host = await TestHost.start();
  tarball = packLabc(host.dir).tarball;
}, 60_000);
afterAll(async () => {
  for (const child of served) child.kill("SIGKILL");
  await host.cleanup();
});

test("the README's first example runs as written", async () => {
  const project = join(host.dir, "project");
  mkdirSync(project);
  writeFileSync(join(project, "package.json"), '{ "name": "readme", "version": "1.0.0", "type": "module" }\n');
  installPacked(tarball, project);
  const env = { ...host.env, PATH: `${join(project, "node_modules", ".bin")}${delimiter}${process.env.PATH}` };
  const here = shellMachine([], env, project, (child) => served.push(child));
  const [server] = await runDocument("README.md", new Map([["here", here]]), tarball);
  // What the README says the server prints.
  await eventually(() => server!.output().includes("\nhi\n"), 5000, "the server printed hi");
}, 120_000);
