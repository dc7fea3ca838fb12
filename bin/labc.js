#!/usr/bin/env node
// The `labc` command. It runs the compiled CLI: `npm install` builds it (the "prepare" script).
import { existsSync } from "node:fs";

const main = new URL("../dist/cli.js", import.meta.url);
if (!existsSync(main)) {
  process.stderr.write("labc: dist/ is missing; run `npm install` (or `npm run build`) in the labc folder\n");
  process.exit(1);
}
await import(main.href);
