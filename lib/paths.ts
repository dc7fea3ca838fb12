import { join } from "node:path";
import { fileURLToPath } from "node:url";

// This file runs as lib/paths.ts (tests, tsx) or dist/lib/paths.js (everything else).
const fromSource = import.meta.url.endsWith(".ts");

/** The folder holding labc's package.json. */
export const PACKAGE_ROOT = fileURLToPath(new URL(fromSource ? ".." : "../..", import.meta.url));

/** The compiled CLI, which background routers and the demo's server run. */
export const CLI_PATH = join(PACKAGE_ROOT, "dist", "cli", "main.js");

/** The entry of this copy of labc, which `import "labc"` in a service is bound to. */
export const LABC_URL = new URL(fromSource ? "./index.ts" : "./index.js", import.meta.url).href;
