import { spawn } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { expect, test } from "vitest";
import { PACKAGE_ROOT } from "../../lib/paths.js";
import { eventually, FIXTURES, running } from "../helpers.js";

interface Left {
  served: number;
  router: number;
  dir: string;
}

/**
 * Runs the fixture, which serves echo on a TestHost of its own and ends without its cleanup: by
 * exiting, or by `signal` once it serves. Whatever the test finds, what the fixture started is
 * ended here after it.
 */
async function leftBehind(signal: NodeJS.Signals | undefined, check: (left: Left) => Promise<void>): Promise<void> {
  const child = spawn(process.execPath, ["--import", "tsx", join(FIXTURES, "host-left.ts"), ...(signal ? ["wait"] : [])], {
    cwd: PACKAGE_ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (chunk) => (stderr += chunk));
  const exited = new Promise<number | null>((done) => child.once("exit", (code) => done(code)));
  let left: Left | undefined;
  try {
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout! }).once("line", resolve);
      exited.then(() => reject(new Error(`the fixture ended before serving: ${stderr}`)));
    });
    left = JSON.parse(line) as Left;
    expect(left.router).toBeGreaterThan(0);
    if (signal) child.kill(signal);
    await exited;
    await check(left);
  } finally {
    child.kill("SIGKILL");
    for (const pid of left ? [left.served, left.router] : []) if (running(pid)) process.kill(pid, "SIGKILL");
    if (left) rmSync(left.dir, { recursive: true, force: true });
  }
}

/** The server, the router and the folder are gone (`running` counts a zombie as ended; the wait is for the kills to land). */
async function allEnded({ served, router, dir }: Left): Promise<void> {
  await eventually(() => !running(served) && !running(router), 5000, "server and router ended");
  expect(existsSync(dir)).toBe(false);
}

test("a test process that exits before its cleanup still ends what its TestHost started: the server, the router, the folder", async () => {
  await leftBehind(undefined, allEnded);
});

// SIGINT and SIGHUP take the same way (test/test-exit.ts); one fixture run less in a busy suite.
test("a test process ended by SIGTERM (vitest stopping a worker) ends what its TestHost started", async () => {
  await leftBehind("SIGTERM", allEnded);
});
