// `labc serve`: services run in this process until Ctrl-C.
import type { CAC } from "cac";
import { join } from "node:path";
import { loadConfig, stateDir } from "../../lib/config.js";
import { configure } from "../../lib/index.js";
import { OPEN_NETWORK } from "../../lib/trust/secret.js";
import { action, flagsOf, textOption, UsageError, type GlobalOptions } from "../args.js";
import { outliveThePipes } from "../outlive-pipes.js";
import { stopOnSignal } from "../stop-on-signal.js";

export function registerServe(cli: CAC): void {
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
        const python = wanted.find((name) => name.endsWith(".py"));
        if (python !== undefined) {
          throw new UsageError(`${python} is a Python service: python3 -m labc serve ${python} runs it here, labc install ${python} for ServiceControl (docs/services.md)`);
        }
        if (options.as !== undefined) {
          const name = textOption("as", options.as);
          process.title = `labc service ${name}`;
          // Started by a router: its pipes to that router must not end it once the router is gone.
          outliveThePipes(join(stateDir(), "logs", `${name}.log`));
        }
        const { findService, loadService } = await import("../../lib/services/loader.js");
        const paths = wanted.map((name) => findService(name));
        const { combinedStateId } = await import("../../lib/services/state-id.js");
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
            ` (router on port ${labc.config["router.port"]}, pid ${labc.admin.routerPid}, state ${labc.identity.state});` +
            " Ctrl-C stops\n",
        );
        if (!labc.key) process.stdout.write(`${OPEN_NETWORK}\n`);
      }),
    );
}
