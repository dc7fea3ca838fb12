import { NotPermittedError } from "../errors.js";
import type { Backplane } from "../backplane/nats-backplane.js";
import type { Origin } from "../backplane/site-origin.js";
import { METRICS_FN, NETWORK_METRICS_FN, processMetrics, type ProcessMetrics } from "../metrics.js";
import type { Connection } from "../net/connection.js";
import { tripCounts } from "../net/trips.js";
import type { FunctionPool } from "../pool/function-pool.js";
import { exported, Kind, type Message, type ReqBody, type ServerEntry } from "../wire/message.js";
import type { HostInfo, HostMetrics } from "../wire/router-answers.js";
import type { Peers } from "./host-links.js";

const METRICS_FNS = new Set([METRICS_FN, NETWORK_METRICS_FN]);

/** How long the router waits for a process's metrics: one that is busy longer is left out. */
const METRICS_MS = 2000;

/**
 * Functions the router itself answers (it runs no user code). `far`: the caller is on another
 * host (a router link, a connection from another address, another site), which sees only what
 * other hosts may see of this one.
 */
const BUILT_INS: Record<string, (info: HostInfoAnswers, far: boolean) => unknown> = Object.assign(Object.create(null), {
  "labc.hosts": (info: HostInfoAnswers, far: boolean) => info.hosts(far),
  // Which NATS server, and why not: for this host's own callers (the URLs may name a login).
  "labc.backplane": (info: HostInfoAnswers, far: boolean) => (far ? null : (info.parts.backplane?.status() ?? null)),
  "labc.stats": () => ({ pid: process.pid, rssBytes: process.memoryUsage.rss(), trips: tripCounts() }),
  [METRICS_FN]: (info: HostInfoAnswers, far: boolean) => info.metrics(far),
  [NETWORK_METRICS_FN]: (info: HostInfoAnswers) => info.networkMetrics(),
});

export interface HostInfoParts {
  host: string;
  hostId: string;
  /** This run of the router. */
  instance: string;
  /** The root port, as other hosts dial it. */
  port: number;
  pool: FunctionPool;
  peers: Peers;
  backplane: Backplane | undefined;
  /** The connections of this host's processes to the router (lifelines, watchers): whom to ask for metrics. */
  processes: () => Connection[];
  /** This host's servers as other hosts may see them. */
  exportedServers: () => ServerEntry[];
}

/**
 * The router's own functions (`labc.hosts`, `labc.metrics`, `labc.stats`, `labc.backplane`):
 * what it tells of this host, its processes and the network, and to whom.
 */
export class HostInfoAnswers {
  constructor(readonly parts: HostInfoParts) {}

  /** Answers a request for one of the router's own functions; false when it is for another. */
  answer(message: Message, from: Connection | Origin, far: boolean): boolean {
    const fn = (message.body as ReqBody).fn;
    const builtIn = BUILT_INS[fn];
    if (!builtIn) return false;
    // What this host's processes did is for its own callers, and for the routers linked to it
    // (members of the network: they see its pool already); the network's, for its own callers.
    const allowed = from.fromOwnHost || (fn === METRICS_FN && this.parts.peers.isLink(from));
    if (METRICS_FNS.has(fn) && !allowed) {
      from.replyError(message.id, new NotPermittedError(`${fn} answers callers on ${this.parts.host} and linked routers only`));
      return true;
    }
    const answer = builtIn(this, far);
    if (!(answer instanceof Promise)) from.reply(message.id, answer);
    else {
      answer.then(
        (value) => from.reply(message.id, value),
        (error) => from.replyError(message.id, error),
      );
    }
    return true;
  }

  /**
   * What every process of this host did (`labc metrics`): asked of each over its connection to
   * this router, now, and this process's own (its ServiceControl runs here).
   */
  async metrics(far = false): Promise<HostMetrics> {
    const asked = this.parts.processes().map((connection) =>
      connection.request(Kind.req, { fn: METRICS_FN, args: [] }, METRICS_FN, METRICS_MS).catch(() => undefined),
    );
    const answers = (await Promise.all(asked)) as (ProcessMetrics | undefined)[];
    const own = processMetrics.snapshot(`router ${this.parts.instance}`);
    const processes = [own, ...answers.filter((answer): answer is ProcessMetrics => answer !== undefined && answer.pid !== own.pid)];
    return { host: this.parts.host, hostId: this.parts.hostId, processes: far ? this.farView(processes) : processes };
  }

  /**
   * This host's processes' metrics as another host may see them (its router asking, for
   * `labc metrics --all` or `labc top` there): functions only under names other hosts are told
   * of (served: what this host exports; called: that too, and what other hosts export unless a
   * server of this host has a function of that name that other hosts may not see), and
   * connections without who is at their other end. A local, host-, server-scoped or secret
   * function is, to another host, a name that does not exist (LABC_NO_SUCH_FUNCTION): its
   * metrics must not tell it either.
   */
  private farView(processes: ProcessMetrics[]): ProcessMetrics[] {
    const exportedHere = new Set<string>();
    const hiddenHere = new Set<string>();
    const exportedAnywhere = new Set<string>();
    for (const server of this.parts.pool.servers.values()) {
      const here = server.hostId === this.parts.hostId && server.gateway === undefined;
      for (const [name, entry] of server.functions) {
        if (exported(entry)) {
          exportedAnywhere.add(name);
          if (here) exportedHere.add(name);
        } else if (here) hiddenHere.add(name);
      }
    }
    const served = (fn: string) => exportedHere.has(fn);
    const called = (fn: string) => exportedHere.has(fn) || (exportedAnywhere.has(fn) && !hiddenHere.has(fn));
    return processes.map((p) => ({
      ...p,
      served: p.served.filter((f) => served(f.fn)),
      called: p.called.filter((f) => called(f.fn)),
      connections: p.connections.map((c) => ({ ...c, peer: "" })),
    }));
  }

  /** Every linked host's metrics beside this host's (`labc metrics --all`, `labc top`): a host that does not answer is left out. */
  async networkMetrics(): Promise<HostMetrics[]> {
    const asked = this.parts.peers.links().map((link) =>
      link.request(Kind.req, { fn: METRICS_FN, args: [] }, METRICS_FN, METRICS_MS + 1000).catch(() => undefined),
    );
    const [own, ...others] = await Promise.all([this.metrics(), ...asked]);
    return [own as HostMetrics, ...(others as (HostMetrics | undefined)[]).filter((host): host is HostMetrics => host !== undefined)];
  }

  /** This host and the hosts of this LAN its router knows of. */
  lanHosts(): HostInfo[] {
    const { host, hostId, pool, peers } = this.parts;
    const self = { hostId, name: host, port: this.parts.port };
    const own: HostInfo = {
      hostId: self.hostId,
      name: self.name,
      addresses: [],
      port: self.port,
      state: "self",
      lastHeardMs: null,
      ...pool.countOn(self.hostId),
    };
    const others = [...peers.known()].map((peer) => ({
      hostId: peer.hostId,
      name: peer.name,
      addresses: peer.address ? [peer.address, ...peer.addresses.filter((a) => a !== peer.address)] : peer.addresses,
      port: peer.port,
      state: peer.state,
      lastHeardMs: peer.lifeline ? Date.now() - peer.lifeline.lastHeard : null,
      ...pool.countOn(peer.hostId),
    }));
    return [own, ...others];
  }

  /**
   * `labc hosts`: this host, the hosts of this LAN, and those of other sites. For a caller on
   * another host (`far`), this host counts only the functions other hosts are told of.
   */
  hosts(far = false): HostInfo[] {
    const hosts = this.lanHosts();
    if (far) {
      const offered = this.parts.exportedServers().filter((server) => server.hostId === this.parts.hostId);
      const self = hosts.findIndex((host) => host.state === "self");
      if (self >= 0) hosts[self] = { ...hosts[self]!, functions: offered.reduce((sum, server) => sum + server.functions.length, 0) };
    }
    const known = new Set(hosts.map((host) => host.hostId));
    const remote = (hostId: string, name: string, where: Pick<HostInfo, "site" | "gateway">, suspect: boolean, lastHeardMs: number | null): HostInfo => ({
      hostId,
      name,
      addresses: [],
      port: 0,
      state: suspect ? "suspect" : "alive",
      lastHeardMs,
      ...this.parts.pool.countOn(hostId),
      ...where,
    });
    if (this.parts.backplane) {
      for (const host of this.parts.backplane.hosts()) {
        if (!known.has(host.hostId)) hosts.push(remote(host.hostId, host.name, { site: host.site, gateway: this.parts.host }, host.suspect, host.lastHeardMs));
        known.add(host.hostId);
      }
      return hosts;
    }
    // A router of this LAN without the backplane knows other sites' hosts by their servers.
    for (const server of this.parts.pool.servers.values()) {
      if (server.gateway === undefined || known.has(server.hostId)) continue;
      known.add(server.hostId);
      const gateway = hosts.find((host) => host.hostId === server.gateway);
      hosts.push(remote(server.hostId, server.host, { gateway: gateway?.name ?? server.gateway }, server.suspect, null));
    }
    return hosts;
  }
}
