#!/usr/bin/env node
import { existsSync, readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { cac } from "cac";
import { CONFIG_KEYS, envName, loadConfig, SECRET_KEYS, type ConfigKey } from "../lib/config.js";
import { CancelledError, LabcError, MapError, NoSuchFunctionError } from "../lib/errors.js";
import { PACKAGE_ROOT } from "../lib/paths.js";
import { formatSignature } from "../lib/signature.js";
import { networkKey } from "../lib/trust/network-key.js";
import { OPEN_NETWORK } from "../lib/trust/secret.js";
import { close, configure, type Runtime, type ServiceInfo } from "../lib/index.js";
import { SCOPES, type Scope } from "../lib/wire/message.js";
import { argumentFrom, parseArg, table, toJson, toLine, toText, writeItem, writeOut } from "./format.js";
import { Progress } from "./progress.js";
import { ArgumentProblem, declaredParams, typedArguments, type CommandArg } from "./typed-args.js";
import { stopOnSignal } from "./stop-on-signal.js";

const packageJson = JSON.parse(readFileSync(join(PACKAGE_ROOT, "package.json"), "utf8")) as { version: string };

interface GlobalOptions {
  port?: number | string;
  set?: string | string[];
  /** Arguments after `--`, taken as they are (so `-1` is a number, not an option). */
  "--"?: string[];
}

/**
 * Positional arguments, then those after `--`, as typed; `-` is what stdin holds and `@path`
 * what that file holds (text, read as JSON when it is JSON, or bytes when it is not UTF-8 text);
 * `@@...` is the text `@...`. The function's declared types convert the typed ones
 * (cli/typed-args.ts).
 */
async function argumentsOf(args: string[], options: GlobalOptions): Promise<CommandArg[]> {
  const all = [...args, ...(options["--"] ?? [])];
  if (all.filter((arg) => arg === STDIN_ARG).length > 1) throw new UsageError("only one argument can come from stdin (-)");
  return Promise.all(
    all.map(async (arg): Promise<CommandArg> => {
      if (arg === STDIN_ARG) return { value: argumentFrom(await readStdin()) };
      if (arg.startsWith("@@")) return { text: arg.slice(1) };
      if (arg.length > 1 && arg.startsWith("@")) {
        const path = arg.slice(1);
        try {
          return { value: argumentFrom(await readFile(path)) };
        } catch (error) {
          throw new UsageError(`cannot read the argument file ${path}: ${(error as Error).message} (write @@ for a text starting with @)`);
        }
      }
      return { text: arg };
    }),
  );
}

/** The arguments for calling `name`, converted by the parameters its servers declare (when they agree). */
async function callArguments(labc: Runtime, name: string, args: string[], options: GlobalOptions): Promise<unknown[]> {
  const read = await argumentsOf(args, options);
  await labc.link.ready();
  const entries = labc.link.pool.snapshot().flatMap((server) => server.functions.filter((f) => f.name === name));
  try {
    return typedArguments(read, declaredParams(entries));
  } catch (error) {
    throw error instanceof ArgumentProblem ? new UsageError(error.message) : error;
  }
}

/** A file of items for `labc map`, read whole. */
async function readItems(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    throw new UsageError(`cannot read the items file ${path}: ${(error as Error).message}`);
  }
}

/** Items: a JSON array, or else one item per non-empty line (each read as a typed argument is). */
function itemsOf(bytes: Buffer, where: string): unknown[] {
  const text = bytes.toString("utf8");
  try {
    const parsed: unknown = JSON.parse(text);
    if (Array.isArray(parsed)) return parsed;
  } catch {
    // not JSON: lines
  }
  const lines = text.split(/\r?\n/).filter((line) => line.trim() !== "");
  if (lines.length === 0) throw new UsageError(`${where} holds no items (a JSON array, or one item per line)`);
  return lines.map(parseArg);
}

/** A whole number option of 1 or more, or undefined when not given. */
function countOption(name: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${name} must be a whole number from 1, not ${value}`);
  return n;
}

/** What `-` on the command line becomes before cac reads it. */
const STDIN_ARG = "\u0000stdin";

async function readStdin(): Promise<Buffer> {
  if (process.stdin.isTTY) process.stderr.write("labc: reading an argument from stdin; Ctrl-D ends it\n");
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
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
function flagsOf(options: GlobalOptions): Partial<Record<ConfigKey, unknown>> {
  const flags: Partial<Record<string, unknown>> = {};
  for (const pair of [options.set ?? []].flat()) {
    const at = String(pair).indexOf("=");
    // Not repeated when it may hold a secret: `--set labc1_...` (key forgotten).
    if (at < 1) throw new UsageError(`--set takes key=value${/^[\w.-]{1,40}$/.test(String(pair)) ? `, got "${pair}"` : ""}`);
    const key = String(pair).slice(0, at).trim();
    if ((SECRET_KEYS as readonly string[]).includes(key)) throw new UsageError(secretFlagRefused(key as ConfigKey));
    flags[key] = String(pair).slice(at + 1);
  }
  if (options.port !== undefined) flags["router.port"] = String(options.port);
  return flags;
}

class UsageError extends Error {}

/**
 * The text given for an option that holds a name or id. cac turns anything that looks like a
 * number into one (`--state 000123` would become 123), so the text is read back from argv.
 */
function textOption(name: string, parsed: unknown): string | undefined {
  if (parsed === undefined) return undefined;
  const argv = process.argv;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === `--${name}` && i + 1 < argv.length) return argv[i + 1];
    if (argv[i]!.startsWith(`--${name}=`)) return argv[i]!.slice(name.length + 3);
  }
  return String(parsed);
}

/** Runs a command; any failure becomes one line on stderr and a non-zero exit code. */
function action<A extends unknown[]>(run: (...args: A) => Promise<void>) {
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

function scopeOf(value: unknown): Scope | undefined {
  if (value === undefined) return undefined;
  if (!SCOPES.includes(value as Scope)) throw new UsageError(`--scope must be one of ${SCOPES.join(", ")}`);
  return value as Scope;
}

const cli = cac("labc");

cli
  .option("--port <port>", "Root port of this host's router (config router.port, default 55555)")
  .option("--set <key=value>", "Set a config key for this command (repeatable), e.g. --set call.timeout=5; never a secret (others see arguments in ps): LABC_SECRET or the secret file");

cli
  .command(
    "serve [...services]",
    "Serve services until Ctrl-C: files or folders (TypeScript or JavaScript), or names of services in ./services, then of installed ones",
  )
  .option("--as <name>", "Name this process `labc service <name>` (as ServiceControl does)")
  .example("labc serve services/echo.ts")
  .example("labc serve echo                 (./services/echo.ts, else the installed Echo)")
  .action(
    action(async (wanted: string[], options: GlobalOptions & { as?: string }) => {
      if (wanted.length === 0) throw new UsageError("serve needs at least one service, e.g. labc serve services/echo.ts");
      if (options.as !== undefined) process.title = `labc service ${textOption("as", options.as)}`;
      const { findService, loadService } = await import("../lib/services/loader.js");
      const paths = wanted.map((name) => findService(name));
      const { combinedStateId } = await import("../lib/services/state-id.js");
      const { services } = loadConfig({ flags: flagsOf(options) });
      // Git is asked while the services load; a path that fails to load is reported by the loader.
      const state = combinedStateId(paths);
      state.catch(() => {});
      const loaded = [];
      for (const path of paths) loaded.push(await loadService(path, (name) => services[name]?.options));
      const labc = configure(flagsOf(options), { state: await state });
      await labc.serve(...loaded.flatMap((service) => service.instances));
      const names = loaded.flatMap((service) => service.instances.map((instance) => instance.constructor.name));
      // Before the line that says it serves: whoever waits for that line may stop it at once.
      stopOnSignal(() => labc.close());
      process.stdout.write(
        `labc: serving ${names.join(", ")} on ${labc.config["server.address"]}:${labc.port}` +
          ` (router on port ${labc.config["router.port"]}, pid ${labc.link.welcome?.pid}, state ${labc.identity.state});` +
          " Ctrl-C stops\n",
      );
      if (!labc.key) process.stdout.write(`${OPEN_NETWORK}\n`);
    }),
  );

cli
  .command("call <name> [...args]", "Call a function and print its result, or each item of the stream it returns as it comes (args are JSON when they parse as JSON; - reads one from stdin, @path from a file)")
  .option("--timeout <seconds>", "Give up after this many seconds; for a stream, waiting for its first item (config call.timeout)")
  .option("--scope <scope>", `Where to look: ${SCOPES.join(", ")} (config call.scope)`)
  .option("--host <name>", "Resolve from this host's perspective (its functions first, its private ones too)")
  .option("--all", "Call every server that offers the function; print each answer")
  .option("--state <id>", "Only a server running this state id (see labc services) may answer")
  .option("--json", "Print the result as JSON (binary data as {\"$binary\": base64})")
  .example('labc call echo "Hello World!"')
  .example("labc call add 1 2")
  .example("labc call add -- -1 2      (after --, -1 is an argument, not an option)")
  .example("labc call --host computer1 temperature")
  .example("cat notes.txt | labc call echo -")
  .example("labc call resize @photo.jpg 640      (a file that is not UTF-8 text goes as bytes)")
  .action(
    action(
      async (
        name: string,
        args: string[],
        options: GlobalOptions & { timeout?: string; scope?: string; host?: string; all?: boolean; json?: boolean; state?: string },
      ) => {
        const flags = flagsOf(options);
        if (options.timeout !== undefined) flags["call.timeout"] = String(options.timeout);
        const labc = configure(flags);
        // Ctrl-C cancels the call on the server too, then exits once the cancel has left.
        const interrupt = new AbortController();
        process.once("SIGINT", () => interrupt.abort(new Error("interrupted (Ctrl-C)")));
        const callOptions = {
          scope: scopeOf(options.scope),
          host: textOption("host", options.host),
          state: textOption("state", options.state),
          signal: interrupt.signal,
        };
        if (options.all) {
          const results = await labc.callAll(name, await callArguments(labc, name, args, options), callOptions);
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
          // Read as a stream: a function that returns one prints it, one that streams prints each
          // item as it comes, at the pace the terminal or the pipe takes them.
          const stream = labc.streamWith(name, await callArguments(labc, name, args, options), callOptions);
          for await (const item of stream) {
            await (stream.streamed ? writeItem(item, options.json === true) : writeOut(item, options.json === true));
          }
        }
        await labc.close();
      },
    ),
  );

cli
  .command("map <name> <items>", "Call a function once per item, spread over every server offering it; items: a file (or - for stdin) holding a JSON array, or one item per line")
  .option("--per-server <n>", "Calls in flight at once on one server (default 2)")
  .option("--concurrency <n>", "Calls in flight at once in all (default: --per-server for every server)")
  .option("--timeout <seconds>", "Give up on an item after this many seconds (config call.timeout)")
  .option("--scope <scope>", `Where to look: ${SCOPES.join(", ")} (config call.scope)`)
  .option("--json", "Print the results as one JSON array, in the items' order (a failed item as {\"$error\": ...})")
  .example("labc map resize photos.json --per-server 4")
  .example("ls *.jpg | labc map thumbnail -")
  .action(
    action(
      async (
        name: string,
        source: string,
        options: GlobalOptions & { perServer?: unknown; concurrency?: unknown; timeout?: string; scope?: string; json?: boolean },
      ) => {
        const flags = flagsOf(options);
        if (options.timeout !== undefined) flags["call.timeout"] = String(options.timeout);
        const labc = configure(flags);
        // Options first: a mistyped option is told before the items are read.
        const perServer = countOption("per-server", options.perServer);
        const concurrency = countOption("concurrency", options.concurrency);
        const scope = scopeOf(options.scope);
        const items = itemsOf(source === STDIN_ARG ? await readStdin() : await readItems(source), source === STDIN_ARG ? "stdin" : source);
        const interrupt = new AbortController();
        process.once("SIGINT", () => interrupt.abort(new Error("interrupted (Ctrl-C)")));
        const job = labc.map(name, items, { perServer, concurrency, scope, signal: interrupt.signal });
        const progress = new Progress(name, items.length);
        progress.update(0, 0);
        for await (const _ of job) progress.update(job.done, job.failed);
        const results: MapError["results"] = await job.then(
          (values) => values.map((value, index) => ({ index, ok: true, value })),
          (error: unknown) => {
            if (!(error instanceof MapError)) throw error;
            return error.results;
          },
        );
        const shown = results.map((result) => (result.ok ? result.value : result.error));
        await writeOut(options.json ? shown : shown.map((value) => (value instanceof Error ? `error: ${value.message}` : toLine(value))).join("\n"), options.json === true);
        if (job.failed) {
          process.stderr.write(`labc: ${job.failed} of ${items.length} item(s) of ${name} failed\n`);
          process.exitCode = 1;
        }
        await labc.close();
      },
    ),
  );

cli
  .command("publish <topic> [...args]", "Publish to every subscriber of a topic, on every host (args as for call)")
  .option("--host <name>", "Only to the subscribers on this host")
  .example("labc publish lab.print hi")
  .example("labc publish lab.config @settings.json")
  .example("labc publish --host computer1 lab.lights.off")
  .action(
    action(async (topic: string, args: string[], options: GlobalOptions & { host?: string }) => {
      const labc = configure(flagsOf(options));
      const values = typedArguments(await argumentsOf(args, options), undefined);
      const host = textOption("host", options.host);
      const reached = host === undefined ? await labc.publish(topic, ...values) : await labc.getHost(host).publish(topic, ...values);
      process.stderr.write(`labc: published on ${topic} to ${reached} server(s)${host === undefined ? "" : ` on ${host}`}\n`);
      await labc.close();
    }),
  );

cli
  .command("subscribe <pattern>", "Print every publication matching a pattern (* one word, # the rest) until Ctrl-C")
  .option("--json", "One JSON object per line: {\"topic\", \"args\"}")
  .option("--group <name>", "Join a queue group: each publication goes to one subscriber of the group")
  .example("labc subscribe 'lab.temp.*'")
  .example("labc subscribe jobs.resize --group workers")
  .action(
    action(async (pattern: string, options: GlobalOptions & { json?: boolean; group?: unknown }) => {
      const labc = configure(flagsOf(options));
      const group = textOption("group", options.group);
      const piped = !process.stdout.isTTY;
      await labc.subscribe(
        (topic: string, ...args: unknown[]) => {
          // Piped, a message is one line, so that a program reading lines gets messages.
          const shown = piped ? toLine : (arg: unknown) => (arg instanceof Uint8Array ? `<${arg.byteLength} bytes>` : toText(arg));
          const line = options.json ? toJson({ topic, args }) : [topic, ...args.map(shown)].join(" ");
          process.stdout.write(`${line}\n`);
        },
        pattern,
        { withTopic: true, group },
      );
      stopOnSignal(() => labc.close());
      process.stderr.write(`labc: subscribed to ${pattern}${group === undefined ? "" : ` in group ${group}`}; Ctrl-C stops\n`);
    }),
  );

cli
  .command("ls", "List the functions and subscriptions known to this host")
  .option("--long", "Show each function with its parameters: add(a: number, b: number)")
  .option("--json", "Print the pool as JSON (with each function's params)")
  .action(
    action(async (options: GlobalOptions & { json?: boolean; long?: boolean }) => {
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
        // A suspect server has not answered its router's heartbeats lately (stopped, or busy). One
        // of another site is reached through a gateway of this LAN, never at its own address.
        const gatewayName = (id: string) => servers.find((s) => s.hostId === id)?.host ?? id;
        const address = (s: (typeof servers)[number]) => (s.gateway === undefined ? `${s.address}:${s.port}` : `other site, via ${gatewayName(s.gateway)}${s.nats ? " or NATS" : ""}`);
        const where = (s: (typeof servers)[number]) => [s.host, String(s.pid), address(s), s.suspect ? "suspect" : "ok"];
        const functions = servers
          .flatMap((s) => s.functions.map((f) => [options.long ? formatSignature(f) : f.name, f.scope, f.visibility, ...where(s)]))
          .sort((a, b) => a[0]!.localeCompare(b[0]!));
        const topics = servers
          .flatMap((s) => s.topics.map((t) => [t, ...where(s)]))
          .sort((a, b) => a[0]!.localeCompare(b[0]!));
        process.stdout.write(`${table(["FUNCTION", "SCOPE", "VISIBILITY", "HOST", "PID", "ADDRESS", "STATE"], functions)}\n\n`);
        process.stdout.write(`${table(["SUBSCRIPTION", "HOST", "PID", "ADDRESS", "STATE"], topics)}\n`);
      }
      await labc.close();
    }),
  );

cli
  .command("metrics", "What each process of this host did since it started: calls per function (served and called: count, errors by code, in flight, p50/p90/p99), publications and deliveries per topic, connections")
  .option("--all", "Every host linked to this one, this one first")
  .option("--json", "Print every process's metrics as JSON")
  .action(
    action(async (options: GlobalOptions & { json?: boolean; all?: boolean }) => {
      const { metricsText } = await import("./metrics-view.js");
      const labc = configure(flagsOf(options));
      const metrics = options.all ? await labc.link.networkMetrics() : await labc.link.metrics();
      const text = () => [metrics].flat().map((host) => metricsText(host, process.pid)).join("\n\n");
      await writeOut(options.json ? metrics : text(), options.json === true);
      await labc.close();
    }),
  );

cli
  .command("top", "A live view: the network's hosts, their busiest functions (calls/s, errors, p99) and this host's services; on a terminal it refreshes until Ctrl-C, piped it prints once")
  .option("--interval <seconds>", "Seconds between refreshes, and over which rates are taken (default 1)")
  .option("--rows <n>", "Functions shown at most (default: what fits the terminal, 15 when piped)")
  .option("--json", "Print one view as JSON")
  .action(
    action(async (options: GlobalOptions & { interval?: unknown; rows?: unknown; json?: boolean }) => {
      const { sample, topText, view } = await import("./top.js");
      const seconds = options.interval === undefined ? 1 : Number(options.interval);
      if (!(seconds >= 0.1 && seconds <= 3600)) throw new UsageError(`--interval must be a number of seconds from 0.1 to 3600, not ${options.interval}`);
      const live = process.stdout.isTTY && !options.json;
      const rows = countOption("rows", options.rows) ?? (live ? Math.max(5, (process.stdout.rows ?? 40) - 16) : 15);
      const labc = configure(flagsOf(options));
      let before = await sample(labc);
      const pause = () => new Promise((done) => setTimeout(done, seconds * 1000));
      if (!live) {
        await pause();
        const top = await view(labc, before, await sample(labc));
        await writeOut(options.json ? top : topText(top, rows), options.json === true);
        return labc.close();
      }
      stopOnSignal(() => labc.close());
      for (;;) {
        await pause();
        const now = await sample(labc);
        const top = await view(labc, before, now);
        // Home, then clear: the view is redrawn in place.
        process.stdout.write(`\x1b[H\x1b[2J${topText(top, rows)}\n`);
        before = now;
      }
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
          h.gateway === undefined ? h.addresses.join(",") || "-" : `other site${h.site ? ` (${h.site}'s)` : ""}, via ${h.gateway}`,
          h.gateway === undefined ? String(h.port) : "-",
          String(h.servers),
          String(h.functions),
          h.lastHeardMs === null ? "-" : `${(h.lastHeardMs / 1000).toFixed(1)}s ago`,
        ]);
        const header = ["HOST", "ID", "STATE", "ADDRESSES", "PORT", "SERVERS", "FUNCTIONS", "LAST HEARD"];
        process.stdout.write(`${table(header, rows)}\n`);
        // A gateway says how its backplane is, so that a missing site has its reason at hand.
        // (A router of an older labc does not know the question: nothing to say then.)
        const backplane = await labc.link.backplane().catch(() => null);
        if (backplane?.linked) {
          const sites = `${backplane.sites} other site${backplane.sites === 1 ? "" : "s"}`;
          process.stdout.write(`\nbackplane: linked to NATS at ${backplane.server} (realm ${backplane.realm}), ${sites}\n`);
        } else if (backplane) {
          process.stdout.write(`\nbackplane: not linked: ${backplane.problem}; other sites are out of reach\n`);
        }
      }
      await labc.close();
    }),
  );

cli
  .command("install <path>", "Install a service (a file, or a folder with its package.json) into the services folder")
  .option("-e, --editable", "Link it instead of copying: edits take effect at its next start")
  .example("labc install services/light-control.ts")
  .action(
    action(async (path: string, options: GlobalOptions & { editable?: boolean }) => {
      const { install } = await import("../lib/services/install.js");
      const { servicesDir } = await import("../lib/services/manifest.js");
      const installed = await install(path, { link: options.editable === true });
      const how = installed.linked ? "linked" : "copied";
      process.stdout.write(`labc: installed ${installed.name} (${how} to ${join(servicesDir(), installed.entry)})\n`);
    }),
  );

cli
  .command("uninstall <name>", "Stop (on this host) and remove an installed service")
  .action(
    action(async (name: string, options: GlobalOptions) => {
      const { uninstall } = await import("../lib/services/install.js");
      const { readManifest, resolveService, servicesDir } = await import("../lib/services/manifest.js");
      const found = resolveService(name, Object.keys(readManifest(servicesDir())));
      const labc = configure(flagsOf(options));
      await labc.getHost(labc.identity.host).stopService(found);
      await labc.close();
      process.stdout.write(`labc: uninstalled ${uninstall(found)}\n`);
    }),
  );

/** `labc services`, `start-service`, `stop-service` and `logs` talk to a host's ServiceControl. */
function hostOf(labc: ReturnType<typeof configure>, host: unknown): ReturnType<ReturnType<typeof configure>["getHost"]> {
  return labc.getHost(textOption("host", host) ?? labc.identity.host);
}

function servicesTable(rows: (ServiceInfo & { host?: string })[], withHost: boolean): string {
  const header = [...(withHost ? ["HOST"] : []), "SERVICE", "STATE", "PID", "UPTIME", "STATE ID", "SOURCE"];
  const cells = rows.map((s) => [
    ...(withHost ? [s.host ?? ""] : []),
    s.name,
    s.state + (s.restarts ? ` (${s.restarts} restarts)` : ""),
    s.pid === undefined ? "-" : String(s.pid),
    s.uptime === undefined ? "-" : `${s.uptime}s`,
    s.stateId ?? "-",
    `${s.source}${s.linked ? " (linked)" : ""}`,
  ]);
  const crashes = rows
    .filter((s) => s.state === "crashed" && s.lastError)
    .map((s) => `\n${s.name} crashed: ${s.lastError}`);
  return table(header, cells) + crashes.join("");
}

cli
  .command("services", "List the services installed on a host, with their state")
  .option("--host <name>", "The host to ask (default: this one)")
  .option("--all", "Ask every host")
  .option("--json", "Print the list as JSON")
  .action(
    action(async (options: GlobalOptions & { host?: string; all?: boolean; json?: boolean }) => {
      const labc = configure(flagsOf(options));
      let rows: (ServiceInfo & { host?: string })[];
      if (options.all) {
        const answers = await labc.callAll("service_control.listServices", []);
        rows = answers.flatMap((a) => ((a.value as ServiceInfo[] | undefined) ?? []).map((s) => ({ ...s, host: a.host })));
        for (const { host, error } of answers) {
          if (error) process.stderr.write(`labc: ${host}: ${error.message}${error instanceof LabcError ? ` [${error.code}]` : ""}\n`);
        }
      } else {
        rows = await hostOf(labc, options.host).services();
      }
      await writeOut(options.json ? rows : servicesTable(rows, options.all === true), options.json === true);
      await labc.close();
    }),
  );

for (const [command, verb] of [
  ["start-service", "Start"],
  ["stop-service", "Stop"],
] as const) {
  cli
    .command(`${command} <name>`, `${verb} an installed service (by name, snake_case or unique prefix) on a host`)
    .option("--host <name>", "The host it is installed on (default: this one)")
    .example(`labc ${command} LightControl --host computer1`)
    .action(
      action(async (name: string, options: GlobalOptions & { host?: string }) => {
        const labc = configure(flagsOf(options));
        const host = hostOf(labc, options.host);
        const info = command === "start-service" ? await host.startService(name) : await host.stopService(name);
        process.stdout.write(`${servicesTable([info], false)}\n`);
        await labc.close();
      }),
    );
}

cli
  .command("logs <name>", "Print the log of a service (stdout and stderr of its process)")
  .option("--host <name>", "The host it runs on (default: this one)")
  .option("-f, --follow", "Keep printing what is written, until Ctrl-C")
  .action(
    action(async (name: string, options: GlobalOptions & { host?: string; follow?: boolean }) => {
      const labc = configure(flagsOf(options));
      const host = hostOf(labc, options.host);
      let offset = -16384;
      for (;;) {
        const chunk: { text: string; offset: number } = await host.call("service_control.serviceLogs", name, offset);
        process.stdout.write(chunk.text);
        offset = chunk.offset;
        if (!options.follow) break;
        await new Promise((done) => setTimeout(done, 500));
      }
      await labc.close();
    }),
  );

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
            : JSON.stringify(values[key]);
      const rows = CONFIG_KEYS.map((key) => [key, shown(key), sources[key], envName(key)]);
      process.stdout.write(`${table(["KEY", "VALUE", "SOURCE", "ENV"], rows)}\n`);
    }),
  );

cli
  // `[argument]` only to refuse one: a secret never goes in an argument (`ps` shows it to every user).
  .command("secret <action> [argument]", "The network secret: `new` makes and stores one, `show` prints it, `set` stores one made elsewhere (read from stdin, never an argument), `http-token` prints the token that opens the status page (with a secret, on this computer too)")
  .option("--force", "Replace the secret stored already (new, set)")
  .option("--from-file <file>", "set: read the secret from this file instead of stdin")
  .example("labc secret new")
  .example("labc secret show | ssh computer2 labc secret set   # carry it to another host")
  .example("labc secret set                  # asks for it (not shown as you paste it)")
  .example("labc secret set < secret.txt     # or --from-file secret.txt")
  .example("labc secret http-token           # and the status page's addresses, with the token")
  .action(
    action(async (what: string, argument: unknown, options: GlobalOptions & { force?: boolean; fromFile?: unknown }) => {
      const { runSecret, SecretUsageError } = await import("./secret-command.js");
      const { readSecretInput, SecretInputError } = await import("./secret-input.js");
      try {
        if (options.fromFile !== undefined && what !== "set") throw new SecretUsageError("--from-file goes with labc secret set only");
        const fromFile = textOption("from-file", options.fromFile);
        const read = () => readSecretInput({ fromFile });
        const given = argument === undefined ? undefined : String(argument);
        process.stdout.write(await runSecret(what, given, { force: options.force, flags: flagsOf(options), read }));
      } catch (error) {
        throw error instanceof SecretUsageError || error instanceof SecretInputError ? new UsageError(error.message) : error;
      }
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

/** The unit `labc enable` and `labc disable` handle, for the port the flags give. */
async function routerUnit(options: GlobalOptions & { system?: boolean }) {
  const { unitPlan } = await import("./router-unit.js");
  return unitPlan({ system: options.system === true, port: loadConfig({ flags: flagsOf(options) }).values["router.port"] });
}

cli
  .command("enable", "Keep this host's router running from boot, under a systemd unit (a user unit; --system for a system one)")
  .option("--system", "A system unit in /etc/systemd/system, run as you (needs root)")
  .option("--dry-run", "Print the unit and the commands; change nothing")
  .example("labc enable")
  .example("sudo labc enable --system")
  .action(
    action(async (options: GlobalOptions & { system?: boolean; dryRun?: boolean }) => {
      const { commandLine, runCommands, systemdRuns, writeUnit } = await import("./router-unit.js");
      const plan = await routerUnit(options);
      const steps = [`write ${plan.path}`, ...plan.enable.map(commandLine)];
      if (options.dryRun || !systemdRuns()) {
        process.stdout.write(`# ${plan.path}\n${plan.text}\n# then:\n${steps.slice(1).join("\n")}\n`);
        for (const note of plan.notes) process.stdout.write(`# ${note}\n`);
        if (!options.dryRun) {
          throw new Error("systemd does not run on this machine: nothing was installed; have your service manager run the ExecStart line above at boot");
        }
        return;
      }
      writeUnit(plan);
      const failed = runCommands(plan.enable);
      if (failed) throw new Error(`${failed} (the unit is in ${plan.path}; labc disable removes it)`);
      process.stdout.write(`labc: ${plan.name} enabled and started (${plan.path}); labc status shows it\n`);
      for (const note of plan.notes) process.stdout.write(`labc: ${note}\n`);
    }),
  );

cli
  .command("disable", "Stop and remove the unit labc enable installed (the router then runs on demand again)")
  .option("--system", "The system unit (needs root)")
  .option("--dry-run", "Print the commands; change nothing")
  .action(
    action(async (options: GlobalOptions & { system?: boolean; dryRun?: boolean }) => {
      const { commandLine, removeUnit, runCommands, systemdRuns } = await import("./router-unit.js");
      const plan = await routerUnit(options);
      if (options.dryRun) {
        process.stdout.write(`${[commandLine(plan.disable[0]!), `rm ${plan.path}`, commandLine(plan.disable[1]!)].join("\n")}\n`);
        return;
      }
      if (!existsSync(plan.path)) throw new UsageError(`no unit to remove: ${plan.path} does not exist${options.system ? "" : " (a system one? labc disable --system)"}`);
      const failed = systemdRuns() ? runCommands(plan.disable.slice(0, 1)) : undefined;
      if (failed) throw new Error(failed);
      removeUnit(plan);
      if (systemdRuns()) runCommands(plan.disable.slice(1));
      process.stdout.write(`labc: ${plan.name} stopped and removed; the router now starts on demand again\n`);
    }),
  );

cli
  .command("status", "Whether this host's router runs, since when, under which unit, and what it serves (exit code 3 when it does not run)")
  .option("--json", "Print the status as JSON")
  .action(
    action(async (options: GlobalOptions & { json?: boolean }) => {
      const { hostStatus, statusText } = await import("./host-status.js");
      const flags = flagsOf(options);
      const status = await hostStatus(loadConfig({ flags }).values, () => configure(flags));
      await writeOut(options.json ? status : statusText(status), options.json === true);
      if (!status.running) process.exitCode = 3;
    }),
  );

cli
  .command("router", "Run this host's router in the foreground (it normally starts by itself)")
  .option("--linger <seconds>", "Exit this long after the last process linked to it left; 0 stays (config router.linger)")
  .action(
    action(async (options: GlobalOptions & { linger?: string }) => {
      const { runRouter } = await import("./router-command.js");
      const flags = flagsOf(options);
      if (options.linger !== undefined) flags["router.linger"] = String(options.linger);
      await runRouter(loadConfig({ flags }).values);
    }),
  );

// A reader that stops early (`labc subscribe 'lab.#' | head -3`) closes the pipe: that ends the
// command quietly, as it ends any program in a pipeline, rather than with a stack trace.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code !== "EPIPE") throw error;
  process.exit(0);
});

cli.help();
cli.version(packageJson.version);

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
    cli.outputHelp();
  }
} catch (error) {
  // cac's own complaints: a missing argument, an option without its value...
  process.stderr.write(`labc: ${(error as Error).message}; see labc --help\n`);
  process.exitCode = 2;
}
