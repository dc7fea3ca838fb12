/**
 * The entry of a background router, the one a labc process starts when its host has none
 * (lib/router-link.ts). The build bundles it into one file, dist/cli/router.bundle.js: loaded as
 * some fifty modules, a router spent its first second resolving their paths, hot enough for V8
 * to bring in its optimizing compiler, which stayed resident (about 4 MB of RSS). `labc router`
 * runs the same `runRouter` in the foreground, through the CLI.
 */
import { parseArgs } from "node:util";
import { loadConfig } from "../lib/config.js";
import { LabcError } from "../lib/errors.js";
import { runRouter } from "./router-command.js";

try {
  const { values } = parseArgs({ options: { port: { type: "string" }, linger: { type: "string" } } });
  const flags: Record<string, string> = {};
  if (values.port !== undefined) flags["router.port"] = values.port;
  if (values.linger !== undefined) flags["router.linger"] = values.linger;
  await runRouter(loadConfig({ flags }).values);
} catch (error) {
  const code = error instanceof LabcError ? ` [${error.code}]` : "";
  process.stderr.write(`labc router: ${(error as Error).message}${code}\n`);
  process.exit(1);
}
