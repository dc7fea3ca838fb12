// The labc command: its global options, help and version, the commands it is given (cli/commands/),
// and run(), which carries out the one process.argv names. Two entries use it: cli/main.ts
// (dist/cli.js, every command) and cli/network-commands.ts (dist/cli.cjs, which bin/labc.js
// starts call, map, publish and subscribe from).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { cac, type CAC } from "cac";
import { PACKAGE_ROOT } from "../lib/paths.js";
import { STDIN_ARG } from "./args.js";

/** The labc command with `commands` registered, in their order (`labc --help` lists them so). */
export function labcCommand(commands: readonly ((cli: CAC) => void)[]): CAC {
  const packageJson = JSON.parse(readFileSync(join(PACKAGE_ROOT, "package.json"), "utf8")) as { version: string };
  const cli = cac("labc");
  cli
    .option("--port <port>", "Root port of this host's router (config router.port, default 55555)")
    .option("--set <key=value>", "Set a config key for this command (repeatable), e.g. --set call.timeout=5; never a secret (others see arguments in ps): LABC_SECRET or the secret file");
  for (const register of commands) register(cli);

  // A reader that stops early (`labc subscribe 'lab.#' | head -3`) closes the pipe: that ends the
  // command quietly, as it ends any program in a pipeline, rather than with a stack trace. Any
  // other failure to write (a full disk) is one line and exit code 1.
  process.stdout.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") process.exit(0);
    process.stderr.write(`labc: cannot write the output: ${error.message}\n`);
    process.exit(1);
  });

  cli.help();
  cli.version(packageJson.version);
  return cli;
}

/** Carries out the command process.argv names; the exit code is left in process.exitCode. */
export async function run(cli: CAC): Promise<void> {
  try {
    // cac drops a lone `-` (and the word after it): it stands for stdin here, so it is renamed.
    cli.parse(
      process.argv.map((arg) => (arg === "-" ? STDIN_ARG : arg)),
      { run: false },
    );
    if (cli.options.help || cli.options.version) {
      // cac printed it
    } else if (cli.matchedCommand) {
      await cli.runMatchedCommand();
    } else if (cli.args.length > 0) {
      process.stderr.write(`labc: unknown command "${cli.args[0]}"; see labc --help\n`);
      process.exitCode = 2;
    } else {
      // No command, and an option cac does not know (`labc --bogus`): a typo, said as cac says
      // it after a command (below), not a request for help.
      const typo = unknownOption(cli);
      if (typo !== undefined) throw new Error(`Unknown option \`--${typo}\``);
      cli.outputHelp();
    }
  } catch (error) {
    // cac's own complaints: a missing argument, an option without its value...
    process.stderr.write(`labc: ${(error as Error).message}; see labc --help\n`);
    process.exitCode = 2;
  }
}

/** An option given without a command that is none of the global ones (--port, --set, --help, --version). */
function unknownOption(cli: CAC): string | undefined {
  return Object.keys(cli.options).find((key) => key !== "--" && !cli.globalCommand.options.some((option) => option.names.includes(key)));
}
