// `labc ls`, `metrics`, `top` and `hosts`: what the network offers, and how busy it is.
import type { CAC } from "cac";
import { configure } from "../../lib/index.js";
import { formatSignature } from "../../lib/signature.js";
import { action, countOption, flagsOf, UsageError, type GlobalOptions } from "../args.js";
import { table, writeOut } from "../format.js";
import { stopOnSignal } from "../stop-on-signal.js";

export function registerListing(cli: CAC): void {
  cli
    .command("ls", "List the functions and subscriptions known to this host")
    .option("--long", "Show each function with its parameters: add(a: number, b: number)")
    .option("--json", "Print the pool as JSON (with each function's params)")
    .action(
      action(async (options: GlobalOptions & { json?: boolean; long?: boolean }) => {
        const labc = configure(flagsOf(options));
        await labc.admin.ready();
        // Private functions of other hosts are not listed: they answer only callers naming their host.
        const servers = labc.admin.pool
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
        const { metricsText } = await import("../metrics-view.js");
        const labc = configure(flagsOf(options));
        const metrics = options.all ? await labc.admin.networkMetrics() : await labc.admin.metrics();
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
        const { sample, topText, view } = await import("../top.js");
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
          const backplane = await labc.admin.backplane().catch(() => null);
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
}
