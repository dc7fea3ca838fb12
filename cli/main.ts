#!/usr/bin/env node
// The CLI's ES module entry (dist/cli.js), with every command: what bin/labc.js imports for all
// but the network commands, and what the demo's server and the services a router starts run
// (lib/paths.ts CLI_PATH).
import { registerCalls } from "./commands/calls.js";
import { registerInvite } from "./commands/invite.js";
import { registerListing } from "./commands/listing.js";
import { registerRouter } from "./commands/router.js";
import { registerServe } from "./commands/serve.js";
import { registerServices } from "./commands/services.js";
import { registerSetup } from "./commands/setup.js";
import { labcCommand, run } from "./program.js";

await run(labcCommand([registerServe, registerCalls, registerListing, registerServices, registerSetup, registerInvite, registerRouter]));
