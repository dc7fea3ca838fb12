import { connect } from "node:net";
import type { Config } from "../lib/config.js";
import type { Runtime } from "../lib/runtime/runtime.js";
import type { ServiceInfo } from "../lib/services/supervisor.js";
import type { HostFacts } from "../services/core.js";
import { installedUnit, type UnitPlan } from "./router-unit.js";

/** What `labc status` says of this host's router. */
export interface HostStatus {
  running: boolean;
  port: number;
  /** The unit file `labc enable` wrote for this port, if there is one. */
  installedUnit?: { name: string; path: string; system: boolean };
  router?: Pick<HostFacts, "host" | "hostId" | "version" | "pid" | "startedAt" | "uptimeS" | "lingerS" | "unit">;
  servers?: number;
  functions?: string[];
  subscriptions?: string[];
  services?: Pick<ServiceInfo, "name" | "state" | "pid">[];
}

/** Whether something answers on the root port, without starting a router (as any labc call would). */
function listening(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: address, port, timeout: 1000 });
    const done = (answer: boolean) => {
      socket.destroy();
      resolve(answer);
    };
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
    socket.once("timeout", () => done(false));
  });
}

function unitOf(plan: UnitPlan | undefined): HostStatus["installedUnit"] {
  return plan && { name: plan.name, path: plan.path, system: plan.system };
}

/** Asks the router only if one runs; `open` makes the runtime that talks to it. */
export async function hostStatus(config: Config, open: () => Runtime): Promise<HostStatus> {
  const port = config["router.port"];
  const status: HostStatus = { running: false, port, installedUnit: unitOf(installedUnit(port)) };
  if (!(await listening(config["router.address"], port))) return status;
  const labc = open();
  try {
    const facts = await labc.localhost.network.core.info<HostFacts>();
    const { host, hostId, version, pid, startedAt, uptimeS, lingerS, unit } = facts;
    await labc.admin.ready();
    const here = labc.admin.pool.snapshot().filter((server) => server.hostId === facts.hostId && server.id !== labc.identity.id);
    const services = await labc.localhost.services().catch(() => []);
    return {
      ...status,
      running: true,
      router: { host, hostId, version, pid, startedAt, uptimeS, lingerS, ...(unit ? { unit } : {}) },
      servers: here.length,
      functions: [...new Set(here.flatMap((server) => server.functions.map((f) => f.name)))].sort(),
      subscriptions: [...new Set(here.flatMap((server) => server.topics))].sort(),
      services: services.map(({ name, state, pid }) => ({ name, state, ...(pid === undefined ? {} : { pid }) })),
    };
  } finally {
    await labc.close();
  }
}

function duration(seconds: number): string {
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  return hours < 48 ? `${hours} h ${minutes % 60} min` : `${Math.floor(hours / 24)} days`;
}

const listed = (names: string[], max = 8) =>
  names.length === 0 ? "none" : names.length <= max ? names.join(", ") : `${names.slice(0, max).join(", ")} and ${names.length - max} more`;

/** The status as lines for a person. */
export function statusText(status: HostStatus): string {
  const lines: string[] = [];
  const unitFile = status.installedUnit;
  const enabled = unitFile
    ? `${unitFile.system ? "system" : "user"} unit ${unitFile.name} installed (${unitFile.path})`
    : "no unit installed (labc enable keeps the router up from boot)";
  if (!status.running || !status.router) {
    lines.push(`router: not running on port ${status.port}`);
    lines.push(`  ${enabled}`);
    lines.push("  the first labc command on this host starts one on demand");
    return lines.join("\n");
  }
  const router = status.router;
  lines.push(`router: running on port ${status.port}, pid ${router.pid}, since ${router.startedAt} (${duration(router.uptimeS)})`);
  lines.push(
    router.unit
      ? `  under the systemd ${router.unit.manager} unit ${router.unit.name}: stays up, restarted if it fails`
      : `  started on demand: ${router.lingerS === 0 ? "stays up until stopped" : `leaves ${router.lingerS} s after the last labc process on this host`}`,
  );
  lines.push(`  ${enabled}`);
  lines.push(`host: ${router.host} (${router.hostId}), labc ${router.version}`);
  lines.push(`serves: ${status.servers} server(s) here; functions: ${listed(status.functions ?? [])}`);
  lines.push(`subscriptions: ${listed(status.subscriptions ?? [])}`);
  const services = (status.services ?? []).map((s) => `${s.name} (${s.state}${s.pid ? `, pid ${s.pid}` : ""})`);
  lines.push(`services: ${listed(services)}`);
  return lines.join("\n");
}
