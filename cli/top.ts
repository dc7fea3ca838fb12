import type { HostInfo } from "../lib/wire/router-answers.js";
import type { HostMetrics } from "../lib/wire/router-answers.js";
import type { Runtime } from "../lib/runtime/runtime.js";
import type { ServiceInfo } from "../lib/services/supervisor.js";
import { table } from "./format.js";

/** What `labc top` shows: the network's hosts, their busiest functions, this host's services. */
export interface TopView {
  at: string;
  host: string;
  hosts: HostInfo[];
  /** Served functions of every host's processes, busiest first; a rate over the last interval. */
  functions: { host: string; fn: string; perSecond: number; calls: number; errors: number; inFlight: number; p99Us: number; pids: number[] }[];
  services: Pick<ServiceInfo, "name" | "state" | "pid" | "uptime">[];
}

interface Sample {
  at: number;
  hosts: HostMetrics[];
}

interface Total {
  host: string;
  fn: string;
  calls: number;
  errors: number;
  inFlight: number;
  p99Us: number;
  pids: number[];
}

/** Served calls per host and function, summed over the host's processes. */
function servedTotals(hosts: HostMetrics[]): Map<string, Total> {
  const totals = new Map<string, Total>();
  for (const { host, processes } of hosts) for (const p of processes) {
    for (const f of p.served) {
      const key = `${host}\0${f.fn}`;
      const total = totals.get(key) ?? { host, fn: f.fn, calls: 0, errors: 0, inFlight: 0, p99Us: 0, pids: [] };
      total.calls += f.calls;
      total.errors += f.errors;
      total.inFlight += f.inFlight;
      // The slowest process's p99 stands for the function: the others' tails are below it.
      total.p99Us = Math.max(total.p99Us, f.p99Us);
      total.pids.push(p.pid);
      totals.set(key, total);
    }
  }
  return totals;
}

/** Takes what the view needs now; rates come from the difference with `before`. */
export async function sample(labc: Runtime): Promise<Sample> {
  return { at: performance.now(), hosts: await labc.admin.networkMetrics() };
}

export async function view(labc: Runtime, before: Sample, now: Sample): Promise<TopView> {
  const [hosts, services] = await Promise.all([labc.hosts(), labc.localhost.services().catch(() => [])]);
  const seconds = Math.max((now.at - before.at) / 1000, 0.001);
  const earlier = servedTotals(before.hosts);
  const functions = [...servedTotals(now.hosts)]
    .map(([key, total]) => ({ ...total, perSecond: Math.max(0, total.calls - (earlier.get(key)?.calls ?? 0)) / seconds }))
    .sort((a, b) => b.perSecond - a.perSecond || b.calls - a.calls || a.fn.localeCompare(b.fn));
  return {
    at: new Date().toISOString(),
    host: now.hosts[0]!.host,
    hosts,
    functions,
    services: services.map(({ name, state, pid, uptime }) => ({ name, state, ...(pid === undefined ? {} : { pid }), ...(uptime === undefined ? {} : { uptime }) })),
  };
}

const rate = (n: number) => (n >= 100 ? n.toFixed(0) : n.toFixed(1));
const micros = (us: number) => (us >= 1000 ? `${(us / 1000).toFixed(1)} ms` : `${us} µs`);

/** The view as text, `rows` functions at most. */
export function topText(top: TopView, rows: number): string {
  const hosts = top.hosts.map((h) => [h.name, h.state, String(h.servers), String(h.functions), h.lastHeardMs === null ? "-" : `${(h.lastHeardMs / 1000).toFixed(1)}s ago`]);
  const functions = top.functions
    .slice(0, rows)
    .map((f) => [f.fn, f.host, rate(f.perSecond), String(f.calls), String(f.errors), String(f.inFlight), micros(f.p99Us), f.pids.join(",")]);
  const services = top.services.map((s) => [s.name, s.state, s.pid === undefined ? "-" : String(s.pid), s.uptime === undefined ? "-" : `${s.uptime}s`]);
  return [
    `labc top: ${top.host}, ${top.at}`,
    "",
    table(["HOST", "STATE", "SERVERS", "FUNCTIONS", "LAST HEARD"], hosts),
    "",
    table(["FUNCTION", "HOST", "CALLS/S", "CALLS", "ERRORS", "IN FLIGHT", "P99", "PIDS"], functions),
    ...(top.functions.length > rows ? [`(and ${top.functions.length - rows} more)`] : []),
    "",
    table([`SERVICES ON ${top.host}`, "STATE", "PID", "UPTIME"], services),
  ].join("\n");
}
