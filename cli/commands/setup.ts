// `labc config`, `secret` and `demo`: what this host is set up with, and a first try of it.
import type { CAC } from "cac";
import { CONFIG_KEYS, envName, loadConfig, type ConfigKey } from "../../lib/config.js";
import { networkKey } from "../../lib/trust/network-key.js";
import { action, flagsOf, textOption, UsageError, type GlobalOptions } from "../args.js";
import { table } from "../format.js";

export function registerSetup(cli: CAC): void {
  cli
    .command("config", "Show the effective configuration and where each value came from")
    .action(
      action(async (options: GlobalOptions) => {
        const { values, sources } = loadConfig({ flags: flagsOf(options) });
        // The secret itself is never shown here (`labc secret show` does): its key id tells it.
        // NATS's password and token neither: only that they are set.
        const shown = (key: ConfigKey) =>
          key === "network.secret" && values[key]
            ? `(set: key id ${networkKey(values[key]).id})`
            : (key === "backplane.pass" || key === "backplane.token") && values[key]
              ? "(set)"
              : key === "backplane.nats"
                ? JSON.stringify(values[key].map((url) => url.replace(/\/\/[^/@\s]*@/, "//(login)@")))
                : JSON.stringify(values[key]);
        const rows = CONFIG_KEYS.map((key) => [key, shown(key), sources[key], envName(key)]);
        process.stdout.write(`${table(["KEY", "VALUE", "SOURCE", "ENV"], rows)}\n`);
      }),
    );

  cli
    // `[argument]` only to refuse one: a secret never goes in an argument (`ps` shows it to every user).
    .command("secret <action> [argument]", "The network secret: `new` makes and stores one, `show` prints it, `set` stores one made elsewhere (read from stdin, never an argument), `http-token` prints the token that opens the status page (with a secret, on this computer too), `rotate` moves the whole network to a new secret without a gap, `status` shows which hosts use which")
    .option("--force", "Replace the secret stored already (new, set)")
    .option("--from-file <file>", "set: read the secret from this file instead of stdin")
    .option("--window <duration>", "rotate: how long old and new secret both count (default 10m)")
    .example("labc secret new")
    .example("labc secret show | ssh computer2 labc secret set   # carry it to another host")
    .example("labc secret set                  # asks for it (not shown as you paste it)")
    .example("labc secret set < secret.txt     # or --from-file secret.txt")
    .example("labc secret http-token           # and the status page's addresses, with the token")
    .example("labc secret rotate --window 10m  # every host moves to a new secret within 10 minutes")
    .example("labc secret status               # which hosts use which secret")
    .action(
      action(async (what: string, argument: unknown, options: GlobalOptions & { force?: boolean; fromFile?: unknown; window?: unknown }) => {
        const { runSecret, SecretUsageError } = await import("../secret-command.js");
        const { readSecretInput, SecretInputError } = await import("../secret-input.js");
        try {
          if (options.fromFile !== undefined && what !== "set") throw new SecretUsageError("--from-file goes with labc secret set only");
          const fromFile = textOption("from-file", options.fromFile);
          const read = () => readSecretInput({ fromFile });
          const given = argument === undefined ? undefined : String(argument);
          const window = textOption("window", options.window);
          process.stdout.write(await runSecret(what, given, { force: options.force, window, flags: flagsOf(options), read }));
        } catch (error) {
          throw error instanceof SecretUsageError || error instanceof SecretInputError ? new UsageError(error.message) : error;
        }
      }),
    );

  cli
    .command("demo", "Serve the echo service in one process, call and publish to it from another, then exit")
    .action(
      action(async () => {
        const { runDemo } = await import("../demo.js");
        await runDemo();
      }),
    );
}
