// `labc install`, `uninstall`, `services`, `start-service`, `stop-service`, `logs`: the installed services of a host.
import { join } from "node:path";
import type { CAC } from "cac";
import { LabcError } from "../../lib/errors.js";
import { configure, type ServiceInfo } from "../../lib/index.js";
import { action, flagsOf, textOption, type GlobalOptions } from "../args.js";
import { table, writeOut } from "../format.js";

/** `labc services`, `start-service`, `stop-service` and `logs` talk to a host's ServiceControl. */
function hostOf(labc: ReturnType<typeof configure>, host: unknown): ReturnType<ReturnType<typeof configure>["getHost"]> {
  return labc.getHost(textOption("host", host) ?? labc.identity.host);
}

/** The services as a table, each crashed one's last error after it. */
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

export function registerServices(cli: CAC): void {
  cli
    .command("install <path>", "Install a service (a file, or a folder with its package.json) into the services folder")
    .option("-e, --editable", "Link it instead of copying: edits take effect at its next start")
    .example("labc install services/light-control.ts")
    .action(
      action(async (path: string, options: GlobalOptions & { editable?: boolean }) => {
        const { install } = await import("../../lib/services/install.js");
        const { servicesDir } = await import("../../lib/services/manifest.js");
        const installed = await install(path, { link: options.editable === true });
        const how = installed.linked ? "linked" : "copied";
        process.stdout.write(`labc: installed ${installed.name} (${how} to ${join(servicesDir(), installed.entry)})\n`);
      }),
    );

  cli
    .command("uninstall <name>", "Stop (on this host) and remove an installed service")
    .action(
      action(async (name: string, options: GlobalOptions) => {
        const { uninstall } = await import("../../lib/services/install.js");
        const { readManifest, resolveService, servicesDir } = await import("../../lib/services/manifest.js");
        const found = resolveService(name, Object.keys(readManifest(servicesDir())));
        const labc = configure(flagsOf(options));
        await labc.getHost(labc.identity.host).stopService(found);
        await labc.close();
        process.stdout.write(`labc: uninstalled ${uninstall(found)}\n`);
      }),
    );

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
}
