import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

// This file runs as lib/paths.ts (tests), as dist/lib/paths.js (the benchmarks), or inside
// the bundles the build makes (dist/chunks/): the package is found from wherever that is.
const fromSource = import.meta.url.endsWith(".ts");

function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json")) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

/** The folder holding labc's package.json. */
export const PACKAGE_ROOT = packageRoot();

// The build bundles three entries, which share their modules through chunks, so that a process
// holds one instance of each however it was reached (docs/architecture.md).

/** The CLI (cli/main.ts and cli/commands/), which the demo's server and the services a router starts run. */
export const CLI_PATH = join(PACKAGE_ROOT, "dist", "cli.js");

/** A background router's entry (cli/router-process.ts). */
export const ROUTER_PATH = join(PACKAGE_ROOT, "dist", "router.js");

/**
 * Node's options for a router's process, started in the background or by a unit: a relay's
 * garbage dies young, and a 1 MB young generation kept a router relaying 100 calls in flight at
 * 60 MB instead of 67-90 MB. Without it V8 grows the young generation to 16 MB under load, and
 * then kept the relay's objects long enough to move them to the old one: a collection of the
 * whole heap every 150 ms, and 1.16-1.27x the router's CPU per relayed call (docs/performance.md).
 */
export const ROUTER_NODE_OPTIONS = ["--max-semi-space-size=1"];

/** The entry of this copy of labc, which `import "labc"` in a service is bound to. */
export const LABC_URL = pathToFileURL(join(PACKAGE_ROOT, fromSource ? "lib/index.ts" : "dist/labc.js")).href;
