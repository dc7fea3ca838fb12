import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

// This file runs as lib/paths.ts (tests, tsx), as dist/lib/paths.js, or inside the router's
// bundle (dist/cli/router.bundle.js): the package is found from wherever that is.
const fromSource = import.meta.url.endsWith(".ts");

function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json")) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

/** The folder holding labc's package.json. */
export const PACKAGE_ROOT = packageRoot();

/** The compiled CLI, which the demo's server and the services a router starts run. */
export const CLI_PATH = join(PACKAGE_ROOT, "dist", "cli", "main.js");

/** A background router's entry: cli/router-process.ts, bundled by the build. */
export const ROUTER_PATH = join(PACKAGE_ROOT, "dist", "cli", "router.bundle.js");

/** The entry of this copy of labc, which `import "labc"` in a service is bound to. */
export const LABC_URL = pathToFileURL(join(PACKAGE_ROOT, fromSource ? "lib/index.ts" : "dist/lib/index.js")).href;
