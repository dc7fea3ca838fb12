#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { cac } from "cac";
import { CONFIG_KEYS, envName, loadConfig, type ConfigKey } from "../lib/config.js";
import { LabcError, NoSuchFunctionError } from "../lib/errors.js";
import { PACKAGE_ROOT } from "../lib/paths.js";
import { close, configure } from "../lib/index.js";
import { SCOPES, type Scope } from "../lib/wire/message.js";
import { parseArg, table, toJson, toText, writeOut } from "./format.js";
import { stopOnSignal } from "./stop-on-signal.js";

const packageJson = JSON.parse(readFileSync(join(PACKAGE_ROOT, "package.json"), "utf8")) as { version: string };

interface GlobalOptions {
  port?: number | string;
  set?: string | string[];
  /** Arguments after `--`, taken as they are (so `-1` is a number, not an option). */
  "--"?: string[];
}

/** Positional arguments, then those after `--`, each parsed as JSON when it is JSON. */
function argumentsOf(args: string[], options: GlobalOptions): unknown[] {
  return [...args, ...(options["--"] ?? [])].map(parseArg);
}

/** Global flags as config keys (they win over files and environment). */
function flagsOf(options: GlobalOptions): Partial<Record<ConfigKey, unknown>> {
  const flags: Partial<Record<string, unknown>> = {};
  for (const pair of [options.set ?? []].flat()) {
    const at = pair.indexOf("=");
    if (at < 1) throw new UsageError(`--set takes key=value, got "${pair}"`);
    flags[pair.slice(0, at)] = pair.slice(at + 1);
  }
  if (options.port !== undefined) flags["router.port"] = String(options.port);
  return flags;
}

class UsageError extends Error {}

/** Runs a command; any failure becomes one line on stderr and a non-zero exit code. */
function action<A extends unknown[]>(run: (...args: A) => Promise<void>) {
  return async (...args: A) => {
    try {
      await run(...args);
    } catch (error) {
      const code = error instanceof LabcError ? ` [${error.code}]` : "";
      process.stderr.write(`labc: ${(error as Error).message}${code}\n`);
      process.exitCode = error instanceof UsageError ? 2 : 1;
      await close();
    }
  };
}

function scopeOf(value: unknown): Scope | undefined {
  if (value === undefined) return undefined;
  if (!SCOPES.includes(value as Scope)) throw new UsageError(`--scope must be one of ${SCOPES.join(", ")}`);
  return value as Scope;
}

const cli = cac("labc");

cli
  .option("--port <port>", "Root port of this host's router (config router.port, default 55555)")
  .option("--set <key=value>", "Set any config key for this command (repeatable), e.g. --set call.timeout=5");

cli
  .command("serve [...paths]", "Serve the services in these files (TypeScript or JavaScript) until Ctrl-C")
  .example("labc serve services/echo.ts")
  .action(
    action(async (paths: string[], options: GlobalOptions) => {
      if (paths.length === 0) throw new UsageError("serve needs at least one service file, e.g. labc serve services/echo.ts");
      const { loadService, stateOf } = await import("../lib/services/loader.js");
      const loaded = [];
      for (const path of paths) loaded.push(await loadService(path));
      const labc = configure(flagsOf(options), { state: stateOf(loaded.map((service) => service.file)) });
      await labc.serve(...loaded.flatMap((service) => service.instances));
      const names = loaded.flatMap((service) => service.instances.map((instance) => instance.constructor.name));
      process.stdout.write(
        `labc: serving ${names.join(", ")} on ${labc.config["server.address"]}:${labc.port}` +
          ` (router on port ${labc.config["router.port"]}, pid ${labc.link.welcome?.pid}); Ctrl-C stops\n`,
      );
      stopOnSignal(() => labc.close());
    }),
  );

cli
  .command("call <name> [...args]", "Call a function and print its result (args are JSON when they parse as JSON)")
  .option("--timeout <seconds>", "Give up after this many seconds (config call.timeout)")
  .option("--scope <scope>", `Where to look: ${SCOPES.join(", ")} (config call.scope)`)
  .option("--host <name>", "Resolve from this host's perspective (its functions first, its private ones too)")
  .option("--all", "Call every server that offers the function; print each answer")
  .option("--json", "Print the result as JSON (binary data as {\"$binary\": base64})")
  .example('labc call echo "Hello World!"')
  .example("labc call add 1 2")
  .example("labc call add -- -1 2      (after --, -1 is an argument, not an option)")
  .example("labc call --host computer1 temperature")
  .action(
    action(
      async (
        name: string,
        args: string[],
        options: GlobalOptions & { timeout?: string; scope?: string; host?: string; all?: boolean; json?: boolean },
      ) => {
        const flags = flagsOf(options);
        if (options.timeout !== undefined) flags["call.timeout"] = String(options.timeout);
        const labc = configure(flags);
        const callOptions = { scope: scopeOf(options.scope), host: options.host === undefined ? undefined : String(options.host) };
        if (options.all) {
          const results = await labc.callAll(name, argumentsOf(args, options), callOptions);
          if (results.length === 0) throw new NoSuchFunctionError(name, callOptions.scope ?? labc.config["call.scope"]);
          const answers = results.map(({ host, server, pid, port, value, error }) => ({
            host,
            server,
            pid,
            port,
            ...(error ? { error: error.message } : { value }),
          }));
          const line = (a: (typeof answers)[number]) =>
            `${a.host} pid ${a.pid}: ${"error" in a ? `error: ${a.error}` : typeof a.value === "string" ? a.value : toJson(a.value)}`;
          await writeOut(options.json ? answers : answers.map(line).join("\n"), options.json === true);
          if (results.some((result) => result.error)) process.exitCode = 1;
        } else {
          const result = await labc.callWith(name, argumentsOf(args, options), callOptions);
          await writeOut(result, options.json === true);
        }
        await labc.close();
      },
    ),
  );

cli
  .command("publish <topic> [...args]", "Publish to every subscriber of a topic on this host")
  .example("labc publish lab.print hi")
  .action(
    action(async (topic: string, args: string[], options: GlobalOptions) => {
      const labc = configure(flagsOf(options));
      const reached = await labc.publish(topic, ...argumentsOf(args, options));
      process.stderr.write(`labc: published on ${topic} to ${reached} server(s)\n`);
      await labc.close();
    }),
  );

cli
  .command("subscribe <pattern>", "Print every publication matching a pattern (* one word, # the rest) until Ctrl-C")
  .option("--json", "One JSON object per line: {\"topic\", \"args\"}")
  .example("labc subscribe 'lab.temp.*'")
  .action(
    action(async (pattern: string, options: GlobalOptions & { json?: boolean }) => {
      const labc = configure(flagsOf(options));
      await labc.subscribe(
        (topic: string, ...args: unknown[]) => {
          const line = options.json
            ? toJson({ topic, args })
            : [topic, ...args.map((arg) => (arg instanceof Uint8Array ? `<${arg.byteLength} bytes>` : toText(arg)))].join(" ");
          process.stdout.write(`${line}\n`);
        },
        pattern,
        { withTopic: true },
      );
      process.stderr.write(`labc: subscribed to ${pattern}; Ctrl-C stops\n`);
      stopOnSignal(() => labc.close());
    }),
  );

cli
  .command("ls", "List the functions and subscriptions known to this host")
  .option("--json", "Print the pool as JSON")
  .action(
    action(async (options: GlobalOptions & { json?: boolean }) => {
      const labc = configure(flagsOf(options));
      await labc.link.ready();
      // Private functions of other hosts are not listed: they answer only callers naming their host.
      const servers = labc.link.pool
        .snapshot()
        .filter((server) => server.id !== labc.identity.id)
        .map((server) => ({
          ...server,
          functions: server.functions.filter((f) => f.visibility !== "private" || server.hostId === labc.identity.hostId),
        }));
      if (options.json) {
        await writeOut(servers, true);
      } else {
        const where = (s: (typeof servers)[number]) => [s.host, String(s.pid), `${s.address}:${s.port}`];
        const functions = servers
          .flatMap((s) => s.functions.map((f) => [f.name, f.scope, f.visibility, ...where(s)]))
          .sort((a, b) => a[0]!.localeCompare(b[0]!));
        const topics = servers
          .flatMap((s) => s.topics.map((t) => [t, ...where(s)]))
          .sort((a, b) => a[0]!.localeCompare(b[0]!));
        process.stdout.write(`${table(["FUNCTION", "SCOPE", "VISIBILITY", "HOST", "PID", "ADDRESS"], functions)}\n\n`);
        process.stdout.write(`${table(["SUBSCRIPTION", "HOST", "PID", "ADDRESS"], topics)}\n`);
      }
      await labc.close();
    }),
  );

cli
  .command("hosts", "List every host this one knows, with its state and what it offers")
  .option("--json", "Print the hosts as JSON")
  .action(
    action(async (options: GlobalOptions & { json?: boolean }) => {
      const labc = configure(flagsOf(options));
      const hosts = await labc.hosts();
      if (options.json) {
        await writeOut(hosts, true);
      } else {
        const rows = hosts.map((h) => [
          h.name,
          h.hostId,
          h.state,
          h.addresses.join(",") || "-",
          String(h.port),
          String(h.servers),
          String(h.functions),
          h.lastHeardMs === null ? "-" : `${(h.lastHeardMs / 1000).toFixed(1)}s ago`,
        ]);
        const header = ["HOST", "ID", "STATE", "ADDRESSES", "PORT", "SERVERS", "FUNCTIONS", "LAST HEARD"];
        process.stdout.write(`${table(header, rows)}\n`);
      }
      await labc.close();
    }),
  );

cli
  .command("config", "Show the effective configuration and where each value came from")
  .action(
    action(async (options: GlobalOptions) => {
      const { values, sources } = loadConfig({ flags: flagsOf(options) });
      const rows = CONFIG_KEYS.map((key) => [key, JSON.stringify(values[key]), sources[key], envName(key)]);
      process.stdout.write(`${table(["KEY", "VALUE", "SOURCE", "ENV"], rows)}\n`);
    }),
  );

cli
  .command("demo", "Serve the echo service in one process, call and publish to it from another, then exit")
  .action(
    action(async () => {
      const { runDemo } = await import("./demo.js");
      await runDemo();
    }),
  );

cli
  .command("router", "Run this host's router in the foreground (it normally starts by itself)")
  .option("--linger <seconds>", "Exit this long after the last server left; 0 stays (config router.linger)")
  .action(
    action(async (options: GlobalOptions & { linger?: string }) => {
      const { runRouter } = await import("./router-command.js");
      const flags = flagsOf(options);
      if (options.linger !== undefined) flags["router.linger"] = String(options.linger);
      await runRouter(loadConfig({ flags }).values);
    }),
  );

cli.help();
cli.version(packageJson.version);

try {
  cli.parse(process.argv, { run: false });
  if (cli.options.help || cli.options.version) {
    // cac printed it
  } else if (cli.matchedCommand) {
    await cli.runMatchedCommand();
  } else if (cli.args.length > 0) {
    process.stderr.write(`labc: unknown command "${cli.args[0]}"; see labc --help\n`);
    process.exitCode = 2;
  } else {
    cli.outputHelp();
  }
} catch (error) {
  // cac's own complaints: a missing argument, an option without its value...
  process.stderr.write(`labc: ${(error as Error).message}; see labc --help\n`);
  process.exitCode = 2;
}
