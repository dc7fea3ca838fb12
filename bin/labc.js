#!/usr/bin/env node
// The `labc` command. It runs the compiled CLI: `npm install` builds it (the "prepare" script).
import { existsSync } from "node:fs";

const main = new URL("../dist/cli.js", import.meta.url);
if (!existsSync(main)) {
  process.stderr.write("labc: dist/ is missing; run `npm install` (or `npm run build`) in the labc folder\n");
  process.exit(1);
}
// reflect-metadata is loaded when a command first needs it, not at start (lib/decorators.ts).
globalThis[Symbol.for("labc.reflectMetadataOnDemand")] = true;
await import(main.href);
