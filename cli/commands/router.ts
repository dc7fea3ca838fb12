// `labc enable`, `disable`, `status`, `router`: this host's router, kept up from boot, asked after, run in the foreground.
import { existsSync } from "node:fs";
import type { CAC } from "cac";
import { loadConfig } from "../../lib/config.js";
import { configure } from "../../lib/index.js";
import { action, flagsOf, UsageError, type GlobalOptions } from "../args.js";
import { writeOut } from "../format.js";

/** The unit `labc enable` and `labc disable` handle, for the port the flags give. */
async function routerUnit(options: GlobalOptions & { system?: boolean }) {
  const { unitPlan } = await import("../router-unit.js");
  return unitPlan({ system: options.system === true, port: loadConfig({ flags: flagsOf(options) }).values["router.port"] });
}

export function registerRouter(cli: CAC): void {
  cli
    .command("enable", "Keep this host's router running from boot, under a systemd unit (a user unit; --system for a system one)")
    .option("--system", "A system unit in /etc/systemd/system, run as you (needs root)")
    .option("--dry-run", "Print the unit and the commands; change nothing")
    .example("labc enable")
    .example("sudo labc enable --system")
    .action(
      action(async (options: GlobalOptions & { system?: boolean; dryRun?: boolean }) => {
        const { commandLine, runCommands, systemdRuns, writeUnit } = await import("../router-unit.js");
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
        const { commandLine, removeUnit, runCommands, systemdRuns } = await import("../router-unit.js");
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
        const { hostStatus, statusText } = await import("../host-status.js");
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
        const { runRouter } = await import("../router-command.js");
        const flags = flagsOf(options);
        if (options.linger !== undefined) flags["router.linger"] = String(options.linger);
        await runRouter(loadConfig({ flags }).values);
      }),
    );
}
