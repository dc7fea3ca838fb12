// `labc call`, `map`, `publish` and `subscribe`: functions and topics used from the command line.
import type { CAC } from "cac";
import { MapError, NoSuchFunctionError } from "../../lib/errors.js";
import { configure, type Runtime } from "../../lib/index.js";
import { SCOPES, type Scope } from "../../lib/wire/message.js";
import { action, argumentsOf, countOption, flagsOf, readStdin, readWhole, STDIN_ARG, textOption, UsageError, type GlobalOptions } from "../args.js";
import { parseArg, toJson, toLine, toText, writeItem, writeOut } from "../format.js";
import { Progress } from "../progress.js";
import { stopOnSignal } from "../stop-on-signal.js";
import { ArgumentProblem, declaredParams, typedArguments } from "../typed-args.js";

/** The arguments for calling `name`, converted by the parameters its servers declare (when they agree). */
async function callArguments(labc: Runtime, name: string, args: string[], options: GlobalOptions): Promise<unknown[]> {
  const read = await argumentsOf(args, options);
  await labc.admin.ready();
  const entries = labc.admin.pool.snapshot().flatMap((server) => server.functions.filter((f) => f.name === name));
  try {
    return typedArguments(read, declaredParams(entries));
  } catch (error) {
    throw error instanceof ArgumentProblem ? new UsageError(error.message) : error;
  }
}

/** A file of items for `labc map`, read whole. */
async function readItems(path: string): Promise<Buffer> {
  try {
    return await readWhole(path);
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

/** The --scope option: one of SCOPES, or undefined when not given (the config's call.scope then). */
function scopeOf(value: unknown): Scope | undefined {
  if (value === undefined) return undefined;
  if (!SCOPES.includes(value as Scope)) throw new UsageError(`--scope must be one of ${SCOPES.join(", ")}`);
  return value as Scope;
}

export function registerCalls(cli: CAC): void {
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
}
