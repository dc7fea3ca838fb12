/**
 * The entry of a background router, the one a labc process starts when its host has none
 * (lib/runtime/router-link.ts); the build makes it dist/router.js. It takes only --port and --linger:
 * a router loads no more than it needs, as it runs on every host all the time. `labc router`
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
