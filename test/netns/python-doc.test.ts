import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { PACKAGE_ROOT } from "../../lib/paths.js";
import { docBlocks, runDocument, shellMachine } from "../doc-blocks.js";
import { installPacked, packLabc } from "../packed.js";
import { Lan, lanUnavailable } from "./lan.js";

/**
 * docs/python.md's walk-through, run as written on two machines (network namespaces named
 * computer1 and computer2): a Python instrument server and a Python monitor on computer1, a
 * Python script, a Node script and `labc call` on computer2, then all of them at once.
 * What the page says to install stands in as: `npm install -g labc` -> this checkout's packed
 * tarball installed in the machine's folder with its `labc` on the PATH (the Python package
 * starts the router with it); `pip install ./clients/python` -> PYTHONPATH to this checkout's
 * clients/python. `npm install labc` in a script's folder installs the tarball (test/doc-blocks.ts).
 */

const why = lanUnavailable() ?? pythonUnavailable();
const DOC = "docs/python.md";
let lan: Lan;
let packDir: string;
let tarball: string;

function pythonUnavailable(): string | undefined {
  const probe = spawnSync("python3", ["-c", "import sys; assert sys.version_info >= (3, 9)"]);
  return probe.status === 0 ? undefined : "docs/python.md needs python3 (3.9 or newer)";
}

beforeAll(() => {
  if (why) return;
  packDir = mkdtempSync(join(tmpdir(), "labc-pydoc-pack-"));
  tarball = packLabc(packDir).tarball;
  // As a user's defaults: the router lingers 60 s (the test ends every process it started).
  lan = Lan.create(2, { LABC_ROUTER_LINGER: "60" }, ["computer1", "computer2"]);
  for (const host of lan.hosts) {
    const global = join(host.dir, ".global");
    installPacked(tarball, global);
    host.env.PATH = `${join(global, "node_modules", ".bin")}${delimiter}${process.env.PATH}`;
    host.env.PYTHONPATH = join(PACKAGE_ROOT, "clients", "python");
    // Nothing written into the checkout's clients/python by the run.
    host.env.PYTHONDONTWRITEBYTECODE = "1";
    delete host.env.LABC_COMMAND;
  }
}, 60_000);
afterAll(() => {
  lan?.cleanup();
  if (packDir) rmSync(packDir, { recursive: true, force: true });
});

test.skipIf(why)("the page's files are the examples in examples/python, as they are", () => {
  const files = docBlocks(readFileSync(join(PACKAGE_ROOT, DOC), "utf8")).filter((block) => block.kind === "file");
  expect(files.map((block) => block.file).sort()).toEqual(["instrument_server.py", "monitor.py", "use_it.mjs", "use_it.py"]);
  for (const block of files) {
    expect(block.text, `${DOC}:${block.line} differs from examples/python/${block.file}`).toBe(
      readFileSync(join(PACKAGE_ROOT, "examples", "python", block.file!), "utf8"),
    );
  }
});

test.skipIf(why)("docs/python.md's walk-through runs as written on two machines", async () => {
  // Every process of a namespace ends with it (Lan.cleanup).
  const machines = new Map(lan.hosts.map((host) => [host.name, shellMachine(["ip", "netns", "exec", host.ns], host.env, host.dir, () => {})]));
  const [server, monitor, ...others] = await runDocument(DOC, machines, tarball);
  expect(others).toHaveLength(0);
  expect(server!.output()).toContain("PSU-1: serving power_supply on computer1; Ctrl-C stops\n");
  // The monitor on computer1 heard the changes made from computer2 (Python's 3.3 V, Node's 5 V)
  // and kept reading between the commands.
  expect(monitor!.output()).toMatch(/^output set to 3\.3 V$/m);
  expect(monitor!.output()).toMatch(/^output set to 5 V$/m);
  expect(monitor!.output()).toMatch(/^\d\d:\d\d:\d\d +\d+\.\d{3} V +\d+\.\d mA$/m);
  // Nothing went wrong in the background: no traceback, no error line.
  expect(server!.output()).not.toMatch(/Traceback|Error/);
  expect(monitor!.output()).not.toMatch(/Traceback|Error/);
}, 300_000);
