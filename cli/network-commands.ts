// The entry of dist/cli.cjs (cli/build-start.mjs): the labc command with only the commands that
// talk to the network and load no service (call, map, publish, subscribe: cli/commands/calls.ts),
// which bin/labc.js starts from V8's cached code. Half the code of the whole CLI: less to read.
import { registerCalls } from "./commands/calls.js";
import { labcCommand, run as runCommand } from "./program.js";

export function run(): Promise<void> {
  return runCommand(labcCommand([registerCalls]));
}
