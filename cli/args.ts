// Reading the command line the same way in every command: global options, option readers, stdin,
// and the wrapper that turns a failure into one line and an exit code.
import { readFile } from "node:fs";
import { envName, SECRET_KEYS, type ConfigKey } from "../lib/config.js";
import { CancelledError, LabcError } from "../lib/errors.js";
import { close } from "../lib/index.js";
import { argumentFrom } from "./format.js";
import type { CommandArg } from "./typed-args.js";

/** The options every command takes (cli/main.ts declares them). */
export interface GlobalOptions {
  port?: number | string;
  set?: string | string[];
  /** Arguments after `--`, taken as they are (so `-1` is a number, not an option). */
  "--"?: string[];
}

/** A mistake on the command line: exit code 2, as for cac's own complaints. */
export class UsageError extends Error {}

/** What `-` on the command line becomes before cac reads it. */
export const STDIN_ARG = "\u0000stdin";

export async function readStdin(): Promise<Buffer> {
  if (process.stdin.isTTY) process.stderr.write("labc: reading an argument from stdin; Ctrl-D ends it\n");
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/**
 * A file, read whole. By node:fs's callback: importing node:fs/promises loads streams and
 * readline too, about 2 ms of every `labc call`'s start (issue 31), for a file it rarely reads.
 */
export function readWhole(path: string): Promise<Buffer> {
  return new Promise((resolve, reject) => readFile(path, (error, bytes) => (error ? reject(error) : resolve(bytes))));
}

/**
 * Positional arguments, then those after `--`, as typed; `-` is what stdin holds and `@path`
 * what that file holds (text, read as JSON when it is JSON, or bytes when it is not UTF-8 text);
 * `@@...` is the text `@...`. The function's declared types convert the typed ones
 * (cli/typed-args.ts).
 */
export async function argumentsOf(args: string[], options: GlobalOptions): Promise<CommandArg[]> {
  const all = [...args, ...(options["--"] ?? [])];
  if (all.filter((arg) => arg === STDIN_ARG).length > 1) throw new UsageError("only one argument can come from stdin (-)");
  return Promise.all(
    all.map(async (arg): Promise<CommandArg> => {
      if (arg === STDIN_ARG) return { value: argumentFrom(await readStdin()) };
      if (arg.startsWith("@@")) return { text: arg.slice(1) };
      if (arg.length > 1 && arg.startsWith("@")) {
        const path = arg.slice(1);
        try {
          return { value: argumentFrom(await readWhole(path)) };
        } catch (error) {
          throw new UsageError(`cannot read the argument file ${path}: ${(error as Error).message} (write @@ for a text starting with @)`);
        }
      }
      return { text: arg };
    }),
  );
}

/** A whole number option of 1 or more, or undefined when not given. */
export function countOption(name: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${name} must be a whole number from 1, not ${value}`);
  return n;
}

/**
 * The text given for an option that holds a name or id. cac turns anything that looks like a
 * number into one (`--state 000123` would become 123), so the text is read back from argv.
 */
export function textOption(name: string, parsed: unknown): string | undefined {
  if (parsed === undefined) return undefined;
  const argv = process.argv;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === `--${name}` && i + 1 < argv.length) return argv[i + 1];
    if (argv[i]!.startsWith(`--${name}=`)) return argv[i]!.slice(name.length + 3);
  }
  return String(parsed);
}

/**
 * Why `--set` of a secret is refused: every user of the computer reads a command's arguments
 * (`ps`, /proc/PID/cmdline) for as long as it runs, a server or router for days. Never repeats
 * the value.
 */
function secretFlagRefused(key: ConfigKey): string {
  const instead =
    key === "network.secret"
      ? "LABC_SECRET in the environment, the secret file (`labc secret set`, which reads it from stdin), or [network] secret in a config file readable by you only"
      : `${envName(key)} in the environment, or [backplane] ${key.slice("backplane.".length)} in a config file readable by you only`;
  return `--set ${key} is refused: every user of this computer sees a command's arguments (ps), and a secret never goes in one; give it by ${instead} (docs/configuration.md)`;
}

/** Global flags as config keys (they win over files and environment). */
export function flagsOf(options: GlobalOptions): Partial<Record<ConfigKey, unknown>> {
  const flags: Partial<Record<string, unknown>> = {};
  for (const pair of [options.set ?? []].flat()) {
    const at = String(pair).indexOf("=");
    // Not repeated when it may hold a secret: `--set labc1_...` (key forgotten).
    if (at < 1) throw new UsageError(`--set takes key=value${/^[\w.-]{1,40}$/.test(String(pair)) ? `, got "${pair}"` : ""}`);
    const key = String(pair).slice(0, at).trim();
    if ((SECRET_KEYS as readonly string[]).includes(key)) throw new UsageError(secretFlagRefused(key as ConfigKey));
    const value = String(pair).slice(at + 1);
    // A NATS address may carry a login (nats://user:pass@host): not in an argument either.
    if (key === "backplane.nats" && /\/\/[^/@\s]*@/.test(value)) {
      throw new UsageError(
        "--set backplane.nats with a login in the address is refused: every user of this computer sees a command's arguments (ps); " +
          "give the address without it, and the login by LABC_BACKPLANE_USER / LABC_BACKPLANE_PASS (or LABC_BACKPLANE_TOKEN) in the environment, or [backplane] in a config file readable by you only",
      );
    }
    flags[key] = value;
  }
  if (options.port !== undefined) flags["router.port"] = String(options.port);
  return flags;
}

/** Runs a command; any failure becomes one line on stderr and a non-zero exit code. */
export function action<A extends unknown[]>(run: (...args: A) => Promise<void>) {
  return async (...args: A) => {
    try {
      await run(...args);
    } catch (error) {
      const code = error instanceof LabcError ? ` [${error.code}]` : "";
      process.stderr.write(`labc: ${(error as Error).message}${code}\n`);
      process.exitCode = error instanceof UsageError ? 2 : error instanceof CancelledError ? 130 : 1;
      await close();
    }
  };
}
