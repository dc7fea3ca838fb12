#!/usr/bin/env node
// The CLI's ES module entry (dist/cli.js): what bin/labc.js imports for most commands, and what
// the demo's server and the services a router starts run (lib/paths.ts CLI_PATH).
import { run } from "./program.js";

await run();
