import { BadArgumentsError, NoSuchFunctionError, NoSuchHostError, NotPermittedError } from "../lib/errors.js";
import type { PoolServer } from "../lib/pool/function-pool.js";
import type { Runtime } from "../lib/runtime/runtime.js";
import { exported } from "../lib/wire/message.js";
import type { ServiceInfo } from "../lib/services/supervisor.js";
import type { FunctionEntry } from "../lib/wire/message.js";
import type { FunctionView, StatusView } from "./status-view.js";

/**
 * What the status page does for a request from another computer (docs/observability.md#the-http-endpoint).
 * It holds the HTTP token, not the secret: the token travels in the clear and sits in a
 * browser's address bar, so it is worth less than the secret, and the router acts for it as a
 * caller on another host would be served, never as its own process. It calls what other hosts
 * may call (no `local` or host-scoped function), marked as from another host so that each server
 * applies the same; it uses this host's ServiceControl under the rules for other hosts, and no
 * other host's (there, the same token opens that host's own page).
 */

/** The caller's host for what another computer asks: no host of the network has this id. */
const FAR_CALLER = "(another computer, through the HTTP endpoint)";

/** The view as a caller on another host may use it: the functions it may call, this host's services. */
export function viewFromAfar(runtime: Runtime, view: StatusView): StatusView {
  const self = runtime.identity;
  const callable = (f: FunctionView) => exported({ name: f.name, scope: f.scope, visibility: f.visibility } as FunctionEntry);
  return {
    ...view,
    servers: view.servers.map((server) => ({ ...server, functions: server.functions.filter(callable) })),
    services: view.services.map((services) =>
      services.hostId === self.hostId ? services : { host: services.host, hostId: services.hostId, error: ownPageOnly(self.host, services.host) },
    ),
  };
}

/** A call as the pool resolves it for a caller on no host of the network, from `host`'s perspective if named. */
export async function callFromAfar(runtime: Runtime, fn: string, args: unknown[], host: string | undefined): Promise<unknown> {
  const self = runtime.identity;
  const pool = runtime.admin.pool;
  let hostId = self.hostId;
  if (host !== undefined && host !== self.host && host !== self.hostId) {
    const names = new Map([...pool.servers.values()].map((server) => [server.host, server.hostId]));
    hostId = names.get(host) ?? ([...names.values()].includes(host) ? host : "");
    if (hostId === "") throw new NoSuchHostError(host, [...names.keys()].sort());
  }
  const target = pool.resolve(fn, "network", { hostId, named: host !== undefined, callerHostId: FAR_CALLER, realm: self.realm });
  // The same answer as for a name nobody serves: a `local` function is not to be probed.
  if (!target) throw new NoSuchFunctionError(fn, "network", "no server offers it to callers on other hosts");
  if (target.hostId !== self.hostId && isServiceControl(target)) {
    throw new NotPermittedError(`${fn} is ServiceControl of ${target.host}: ${ownPageOnly(self.host, target.host)}`);
  }
  return runtime.callAsOtherHost(target, fn, args);
}

/** start, stop or restart of a service of this host, asked as another host asks ServiceControl. */
export async function serviceFromAfar(runtime: Runtime, host: string, name: string, action: string): Promise<ServiceInfo> {
  const self = runtime.identity;
  if (host !== self.host && host !== self.hostId) throw new NotPermittedError(`the services of ${host}: ${ownPageOnly(self.host, host)}`);
  if (action !== "start" && action !== "stop" && action !== "restart") throw new BadArgumentsError(`action must be start, stop or restart, not "${action}"`);
  // ServiceControl is served by the router's own process, the runtime the page acts with.
  const control = runtime.admin.pool.servers.get(self.id);
  if (!control) throw new NoSuchFunctionError("service_control.startService", "host", `ServiceControl of ${self.host} is not registered yet`);
  const act = (fn: string) => runtime.callAsOtherHost<ServiceInfo>(control, `service_control.${fn}`, [name], 60_000);
  if (action === "start") return act("startService");
  if (action === "stop") return act("stopService");
  return act("stopService").then(() => act("startService"));
}

/** A router's own server (ServiceControl, core.*): what the token never reaches on another host. */
function isServiceControl(server: PoolServer): boolean {
  for (const name of server.functions.keys()) if (name.startsWith("service_control.")) return true;
  return false;
}

/** Why another host's services are out of reach of a request from another computer. */
function ownPageOnly(self: string, other: string): string {
  return (
    `the HTTP token opens ${self}'s status page, which acts on ${self}'s services only. ` +
    `Use ${other}'s own status page (the same token), or \`labc start-service --host ${other}\` on a host with the network secret`
  );
}
