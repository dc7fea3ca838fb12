import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { delimiter, join } from "node:path";
import { afterAll, beforeAll, test } from "vitest";
import { runDocument, type DocMachine } from "../doc-blocks.js";
import { installPacked, packLabc } from "../packed.js";
import { TestHost, eventually } from "../helpers.js";

/**
 * The README's first blocks, run as written in a fresh project with labc installed from the
 * packed tarball and its `labc` command on the PATH (as after `npm install -g`), on this host
 * with discovery off (test/doc-blocks.ts).
 */

let host: TestHost;
let tarball: string;
const served: ReturnType<typeof spawn>[] = [];

beforeAll(async () => {
  host = await TestHost.start();
  tarball = packLabc(host.dir).tarball;
}, 60_000);
afterAll(async () => {
  for (const child of served) child.kill("SIGKILL");
  await host.cleanup();
});

/** A shell on this host, in the test host's environment. */
function machine(project: string): DocMachine {
  const env = { ...host.env, PATH: `${join(project, "node_modules", ".bin")}${delimiter}${process.env.PATH}` };
  return {
    cwd: project,
    shell: (command, cwd) =>
      new Promise((resolve) => {
        const child = spawn("sh", ["-c", `${command}\nstatus=$?\necho "$PWD" >&3\nexit $status`], { cwd, env, stdio: ["ignore", "pipe", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        let ended = "";
        child.stdout!.on("data", (chunk) => (stdout += chunk));
        child.stderr!.on("data", (chunk) => (stderr += chunk));
        child.stdio[3]!.on("data", (chunk) => (ended += chunk));
        child.once("close", (code) => resolve({ code, stdout, stderr, cwd: ended.trim() || cwd }));
      }),
    background: (command, cwd) =>
      new Promise((resolve, reject) => {
        const child = spawn("sh", ["-c", `exec ${command}`], { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
        served.push(child);
        let output = "";
        child.stdout!.on("data", (chunk) => (output += chunk));
        child.stderr!.on("data", (chunk) => (output += chunk));
        child.stdout!.once("data", () => resolve({ output: () => output }));
        child.once("exit", (code) => reject(new Error(`${command} exited (${code}): ${output}`)));
      }),
  };
}

test("the README's first example runs as written", async () => {
  const project = join(host.dir, "project");
  mkdirSync(project);
  writeFileSync(join(project, "package.json"), '{ "name": "readme", "version": "1.0.0", "type": "module" }\n');
  installPacked(tarball, project);
  const [server] = await runDocument("README.md", new Map([["here", machine(project)]]), tarball);
  // What the README says the server prints.
  await eventually(() => server!.output().includes("\nhi\n"), 5000, "the server printed hi");
}, 120_000);
