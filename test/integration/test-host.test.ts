import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { expect, test } from "vitest";
import { PACKAGE_ROOT } from "../../lib/paths.js";
import { eventually, FIXTURES, running } from "../helpers.js";

test("a test process that exits before its cleanup still ends what its TestHost started: the server, the router, the folder", async () => {
  const run = spawnSync(process.execPath, ["--import", "tsx", join(FIXTURES, "host-left.ts")], { cwd: PACKAGE_ROOT, encoding: "utf8", timeout: 30000 });
  expect(run.status, run.stderr).toBe(0);
  const left = JSON.parse(run.stdout.trim().split("\n").pop()!) as { served: number; router: number; dir: string };
  expect(left.router).toBeGreaterThan(0);
  // SIGKILL at the fixture's exit: gone at once, or a zombie reaped a moment later.
  await eventually(() => !running(left.served) && !running(left.router), 5000, "server and router ended");
  expect(existsSync(left.dir)).toBe(false);
});
