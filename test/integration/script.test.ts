import { spawn } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { PACKAGE_ROOT } from "../../lib/paths.js";
import { FIXTURES, TestHost, eventually } from "../helpers.js";

let host: TestHost;
beforeAll(async () => {
  host = await TestHost.start();
});
afterAll(() => host.cleanup());

/** Runs a TypeScript script with tsx, as a user would, on the test's host. */
function script(file: string) {
  const child = spawn(process.execPath, ["--import", "tsx", join(FIXTURES, file)], {
    env: host.env,
    cwd: PACKAGE_ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk) => (stdout += chunk));
  child.stderr.on("data", (chunk) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  return { child, exited, out: () => stdout, err: () => stderr };
}

test("a script serves with labc.serve, labc.register and labc.subscribe; another calls it and exits by itself", async () => {
  const server = script("serve-script.ts");
  try {
    await eventually(() => server.out().includes("script serving"), 15000, `the script serving (${server.err()})`);
    const caller = script("call-script.ts");
    const code = await Promise.race([
      caller.exited,
      new Promise((resolve) => setTimeout(() => resolve("still running"), 15000)),
    ]);
    expect(caller.err()).toBe("");
    expect(code).toBe(0);
    expect(caller.out()).toBe("from a script\n5\n42\n1\n");
    const labc = host.runtime();
    expect(await labc.call("concat", "a", "b")).toBe("ab");
    expect(await labc.call("heard")).toEqual(["published by a script"]);
  } finally {
    server.child.kill("SIGKILL");
  }
});
