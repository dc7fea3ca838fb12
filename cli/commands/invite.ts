// `labc invite` and `labc join`: a new host joins the network with a short one-time code.
import type { CAC } from "cac";
import { action, flagsOf, textOption, type GlobalOptions } from "../args.js";

export function registerInvite(cli: CAC): void {
  cli
    .command("invite", "Let one new host join this network: prints a one-time code (10 minutes, one use) and waits for `labc join <code>` there; the network secret then travels encrypted under the code (docs/security.md#invites)")
    .option("--valid <duration>", "How long the code stays open: 90s, 10m, 1h (default 10m)")
    .option("--revoke", "End this host's open invite")
    .example("labc invite                 # on a member: prints e.g. `labc join 7-tiger-wheat` and waits")
    .example("labc invite --revoke        # ends it (so does Ctrl-C)")
    .action(
      action(async (options: GlobalOptions & { valid?: unknown; revoke?: boolean }) => {
        const { revokeInvite, runInvite } = await import("../invite-command.js");
        if (options.revoke) {
          process.stderr.write(await revokeInvite(flagsOf(options)));
          return;
        }
        process.exitCode = await runInvite({ valid: textOption("valid", options.valid), flags: flagsOf(options) });
      }),
    );

  cli
    .command("join [code]", "Join the network of the host that ran `labc invite`, with its code (asked for when not given): finds it on the LAN (or --host), receives the network secret and stores it (mode 0600)")
    .option("--host <address>", "The inviting host's address (address or address:port), where the LAN cannot be asked")
    .option("--force", "Replace the network secret this host holds already")
    .example("labc join 7-tiger-wheat")
    .example("labc join 7-tiger-wheat --host 192.168.1.20")
    .example("labc join                   # asks for the code: other users of this computer do not see it in ps")
    .action(
      action(async (code: unknown, options: GlobalOptions & { host?: unknown; force?: boolean }) => {
        const { readCode, runJoin } = await import("../join-command.js");
        const typed = code === undefined ? await readCode() : String(code);
        process.stdout.write(await runJoin(typed, { host: textOption("host", options.host), force: options.force, flags: flagsOf(options) }));
      }),
    );
}
