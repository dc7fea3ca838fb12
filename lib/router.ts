import { BadArgumentsError, LimitError, NoSuchFunctionError, NotPermittedError } from "./errors.js";
import { Backplane, type BackplaneSettings, type Origin } from "./backplane/nats-backplane.js";
import type { Discovery } from "./discovery/discovery.js";
import { debug, warn } from "./log.js";
import { Connection } from "./net/connection.js";
import { refused, tripCounts, tripped } from "./net/trips.js";
import type { Listener, Transport } from "./net/transport.js";
import { Lifeline } from "./lifeline.js";
import { METRICS_FN, NETWORK_METRICS_FN, processMetrics, type ProcessMetrics } from "./metrics.js";
import { Peers, type HostInfo } from "./peers.js";
import { entryOf, FunctionPool, reachedThrough, type PoolServer } from "./pool/function-pool.js";
import { exported } from "./server.js";
import { encodeMessage, FLAG_FAR, FLAG_OTHER_SITE } from "./wire/codec.js";
import type { Limits } from "./net/limits.js";
import {
  Kind,
  PROTOCOL_VERSION,
  REQPUB,
  type AnnounceBody,
  type HelloBody,
  type Message,
  type PubBody,
  type ReqBody,
  type ServerEntry,
  type WithdrawBody,
} from "./wire/message.js";

export interface RouterOptions {
  host: string;
  hostId: string;
  /** The root port, as other hosts should dial it. */
  port: number;
  /** This run of the router; a restarted router has another. */
  instance: string;
  limits: Limits;
  /** Seconds to stay up after the last server left; 0 stays forever. */
  lingerSeconds: number;
  /** How long a forwarded request may take when its caller did not say. */
  forwardTimeoutMs: number;
  heartbeat: { intervalMs: number; suspectAfter: number; deadAfter: number };
  /** Opens the root port; the router itself never touches sockets. */
  listen: (onTransport: (transport: Transport) => void) => Promise<Listener>;
  /** Opens a connection to another host's router. */
  dial: (address: string, port: number) => Promise<Transport>;
  discoveries: Discovery[];
  /** How long after start discovery needs to find the hosts already running. */
  settleMs: number;
  remember: (hostId: string, name: string, addresses: string[], port: number) => void;
  /** Whether the router may leave now that no server is left (nothing else needs it). */
  canLeave: () => boolean;
  /** Called when the router ended itself after lingering. */
  onIdle: () => void;
  /** `[backplane]`: this router is its site's gateway to the other sites on NATS (docs/backplane.md). */
  backplane?: BackplaneSettings | undefined;
}

/** Whether a request came over the backplane from another site. */
function isSite(from: Connection | Origin): boolean {
  return !(from instanceof Connection);
}

/** The trip a publication the backplane would not take counts as: a limit (max_payload), or a bad message. */
function limitOf(error: unknown): string {
  return error instanceof LimitError ? error.limit : "bad_message";
}

/** How long a stopping server's withdraw waits for a process or host to confirm it. */
const SYNC_MS = 1000;

const METRICS_FNS = new Set([METRICS_FN, NETWORK_METRICS_FN]);

/** How long the router waits for a process's metrics: one that is busy longer is left out. */
const METRICS_MS = 2000;

/** What `labc metrics` shows of a host. */
export interface HostMetrics {
  host: string;
  hostId: string;
  processes: ProcessMetrics[];
}

/**
 * Functions the router itself answers (it runs no user code). `far`: the caller is on another
 * host (a router link, a connection from another address, another site), which sees only what
 * other hosts may see of this one.
 */
const BUILT_INS: Record<string, (router: Router, far: boolean) => unknown> = Object.assign(Object.create(null), {
  "labc.hosts": (router: Router, far: boolean) => router.hosts(far),
  // Which NATS server, and why not: for this host's own callers (the URLs may name a login).
  "labc.backplane": (router: Router, far: boolean) => (far ? null : (router.backplane?.status() ?? null)),
  "labc.stats": () => ({ pid: process.pid, rssBytes: process.memoryUsage.rss(), trips: tripCounts() }),
  [METRICS_FN]: (router: Router, far: boolean) => router.metrics(far),
  [NETWORK_METRICS_FN]: (router: Router) => router.networkMetrics(),
});

/**
 * The host's router: owns the root port, knows every server of the host through its lifeline,
 * keeps the pool (this host's servers and, through its links to the other routers, everyone
 * else's), tells every watcher each change, and forwards requests that cannot go straight to
 * their server. It runs no user code, so it answers even while a service is busy.
 */
export class Router {
  readonly pool = new FunctionPool();
  readonly peers: Peers;
  /** Set when this router is its site's gateway to the backplane. */
  readonly backplane: Backplane | undefined;
  private readonly serverOf = new Map<Connection, string>();
  /** The lifeline each server id registered on last: an older one closing must not remove it. */
  private readonly lifelineOf = new Map<string, Connection>();
  private readonly watchers = new Set<Connection>();
  /** Heartbeats on each server's lifeline: a server that stops answering is suspect. */
  private readonly heartbeats = new Map<Connection, Lifeline>();
  private listener: Listener | null = null;
  private lingerTimer: NodeJS.Timeout | null = null;
  private ready = false;

  constructor(private readonly options: RouterOptions) {
    this.peers = new Peers({
      self: { hostId: options.hostId, name: options.host, port: options.port, instance: options.instance },
      settleMs: options.discoveries.length ? options.settleMs : 0,
      ready: () => this.ready,
      limits: options.limits,
      pool: this.pool,
      heartbeat: options.heartbeat,
      dial: options.dial,
      notify: (kind, body) => this.notify(kind, body),
      exported: () => this.exportedServers(),
      deliverLocal: (message, from) => this.forward(message, from),
      remember: options.remember,
    });
    if (options.backplane) {
      this.backplane = new Backplane({
        settings: options.backplane,
        self: { hostId: options.hostId, name: options.host, instance: options.instance },
        limits: options.limits,
        pool: this.pool,
        lanHost: (hostId) => this.peers.isLanHost(hostId),
        site: () => this.site(),
        tell: (kind, body) => {
          this.notify(kind, body);
          this.peers.broadcast(kind, body);
        },
        deliver: (message, from) => this.forward(message, from),
        deliverPublication: (message) => this.deliverPublication(message),
      });
    }
  }

  get port(): number {
    return this.listener?.port ?? 0;
  }

  async start(): Promise<void> {
    this.listener = await this.options.listen((transport) => {
      const connection: Connection = new Connection(transport, {
        label: `peer at ${transport.remote}`,
        limits: this.options.limits,
        metrics: processMetrics,
        accepted: true,
        onMessage: this.handle,
        onReceive: () => {
          this.peers.received(connection);
          this.heartbeats.get(connection)?.heard();
        },
        onClose: (closed) => this.dropped(closed),
      });
    });
    for (const discovery of this.options.discoveries) discovery.start((sighting) => this.peers.sighted(sighting));
    this.backplane?.start().catch((error) => warn(`backplane: not started: ${(error as Error).message}`));
    this.lingerIfIdle();
  }

  /** The router's own functions are registered: callers need not wait for them any more. */
  markReady(): void {
    this.ready = true;
  }

  async close(): Promise<void> {
    if (this.lingerTimer) clearTimeout(this.lingerTimer);
    for (const discovery of this.options.discoveries) discovery.stop();
    this.peers.close();
    await this.backplane?.close();
    for (const lifeline of this.heartbeats.values()) lifeline.stop();
    await this.listener?.close();
  }

  private readonly handle = (message: Message, connection: Connection): void => {
    if (this.peers.isLink(connection)) return this.peers.handle(message, connection);
    try {
      switch (message.kind) {
        case Kind.hello:
          return this.hello(message.body, message.id, connection);
        case Kind.announce:
          return this.announce(message.body, message.id, connection);
        case Kind.withdraw:
          return this.withdraw(message.body, message.id, connection);
        case Kind.req:
        case Kind.pub:
          return this.forward(message, connection);
        case Kind.ping:
          return connection.send(Kind.pong, {}, message.id);
        default:
          if (message.id) connection.replyError(message.id, new BadArgumentsError(`a router does not take this message`));
      }
    } catch (error) {
      // A refusal (NotPermittedError) was said where it was decided; the peer is told and let go.
      const refusal = error instanceof NotPermittedError;
      // A peer may send bad messages by the thousand: counted, and logged within the log's budget.
      if (!refusal) tripped("bad_message", connection.transport.remote, `router: bad message from ${connection.label}: ${(error as Error).message}`);
      if (message.id) connection.replyError(message.id, error);
      if (refusal) connection.close();
    }
  };

  private hello(body: HelloBody, id: number, connection: Connection): void {
    if (body.v !== PROTOCOL_VERSION) {
      connection.replyError(id, new BadArgumentsError(`protocol version ${body.v} is not ${PROTOCOL_VERSION}`));
      return void connection.close();
    }
    if (body.role === "router") {
      const welcome = this.peers.accept(connection, body);
      if (id) connection.reply(id, welcome);
      return;
    }
    if (body.role === "server" && !connection.fromOwnHost) {
      // Only a process of this host can be one of its servers: anyone else could otherwise
      // answer this host's calls (and see their arguments) by announcing their names.
      refused(connection.transport.remote, `it said hello as a server of this host (${body.id}) from another host`);
      connection.replyError(id, new NotPermittedError(`a server registers with the router of its own host; ${connection.transport.remote} is not on ${this.options.host}`));
      return void connection.close();
    }
    connection.label = `${body.role} ${body.id} (pid ${body.pid})`;
    if (body.role === "server" && !this.serverOf.has(connection)) {
      if (!Number.isInteger(body.port) || !body.port) throw new BadArgumentsError("a server's hello needs its port");
      const address = connection.transport.remote.replace(/:\d+$/, "");
      // Ids of this host's servers belong to this host: one another host claimed first is taken back.
      const taken = this.pool.removeServer(body.id);
      if (taken && reachedThrough(taken) !== this.options.hostId) this.notify(Kind.death, { server: taken.id });
      const server = this.pool.addServer({
        id: body.id,
        host: this.options.host,
        hostId: this.options.hostId,
        address: address.startsWith("::ffff:") ? address.slice(7) : address,
        port: body.port!,
        pid: body.pid,
        state: body.state,
        realm: body.realm,
        nats: body.nats,
      });
      this.serverOf.set(connection, server.id);
      this.lifelineOf.set(server.id, connection);
      this.watchHeartbeat(connection, server.id);
      this.notify(Kind.announce, { server: entryOf(server) });
      this.peers.broadcast(Kind.announce, { server: { ...entryOf(server), functions: [] } });
      this.lingerIfIdle();
      debug("router: server %s joined on port %d", body.id, body.port);
    }
    if (id) connection.reply(id, this.peers.welcome());
    // Watching is for the processes of this host: the pool it is sent holds their local names.
    if (body.watch && connection.fromOwnHost && !this.watchers.has(connection)) {
      this.watchers.add(connection);
      connection.send(Kind.pool, { servers: this.pool.snapshot() });
      this.lingerIfIdle();
    }
  }

  private announce(body: AnnounceBody, id: number, connection: Connection): void {
    const server = this.pool.servers.get(this.serverOf.get(connection) ?? "");
    if (!server) throw new BadArgumentsError("announce before a server hello");
    this.pool.announce(server, body.functions, body.topics);
    const added = { ...entryOf(server), functions: body.functions ?? [], topics: body.topics ?? [] };
    this.notify(Kind.announce, { server: added });
    this.peers.broadcast(Kind.announce, { server: { ...added, functions: added.functions.filter(exported) } });
    if (id) connection.reply(id, null);
  }

  private withdraw(body: WithdrawBody, id: number, connection: Connection): void {
    const server = this.pool.servers.get(this.serverOf.get(connection) ?? "");
    if (!server) throw new BadArgumentsError("withdraw before a server hello");
    // Other hosts hear of what they were told of: a local function's name stays on this host.
    const offered = (body.functions ?? []).filter((name) => {
      const entry = server.functions.get(name);
      return entry !== undefined && exported(entry);
    });
    this.pool.withdraw(server, body.functions, body.topics);
    const notice = { server: server.id, functions: body.functions ?? [], topics: body.topics ?? [] };
    this.notify(Kind.withdraw, notice);
    this.peers.broadcast(Kind.withdraw, { ...notice, functions: offered });
    if (!id) return;
    if (!body.sync) return connection.reply(id, null);
    // A server about to stop waits until every process of this host, and every other host's
    // router, has applied the notice (a ping answered after it proves so): no caller chooses
    // it afterwards, so none is still connecting to it when it closes its port.
    const links = [...this.watchers].filter((watcher) => watcher !== connection).concat(this.peers.links());
    const applied = links.map((link) => link.request(Kind.ping, {}, "withdraw", SYNC_MS).catch(() => {}));
    void Promise.all(applied).then(() => connection.reply(id, null));
  }

  /**
   * A request or publication for one server, from a process that cannot reach it directly, or
   * from another host's router: passed on over the server's lifeline or its host's link, and
   * the answer passed back as it came.
   */
  /**
   * What every process of this host did (`labc metrics`): asked of each over its connection to
   * this router, now, and this process's own (its ServiceControl runs here).
   */
  async metrics(far = false): Promise<HostMetrics> {
    const asked = [...new Set([...this.lifelineOf.values(), ...this.watchers])].map((connection) =>
      connection.request(Kind.req, { fn: METRICS_FN, args: [] }, METRICS_FN, METRICS_MS).catch(() => undefined),
    );
    const answers = (await Promise.all(asked)) as (ProcessMetrics | undefined)[];
    const own = processMetrics.snapshot(`router ${this.options.instance}`);
    const processes = [own, ...answers.filter((answer): answer is ProcessMetrics => answer !== undefined && answer.pid !== own.pid)];
    return { host: this.options.host, hostId: this.options.hostId, processes: far ? this.farView(processes) : processes };
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
    for (const server of this.pool.servers.values()) {
      const here = server.hostId === this.options.hostId && server.gateway === undefined;
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
    const asked = this.peers.links().map((link) =>
      link.request(Kind.req, { fn: METRICS_FN, args: [] }, METRICS_FN, METRICS_MS + 1000).catch(() => undefined),
    );
    const [own, ...others] = await Promise.all([this.metrics(), ...asked]);
    return [own as HostMetrics, ...(others as (HostMetrics | undefined)[]).filter((host): host is HostMetrics => host !== undefined)];
  }

  private forward(message: Message, from: Connection | Origin): void {
    const body = message.body as ReqBody & PubBody;
    if (message.kind === Kind.req && body.target === undefined && BUILT_INS[body.fn]) {
      // What this host's processes did is for its own callers, and for the routers linked to it
      // (members of the network: they see its pool already); the network's, for its own callers.
      const allowed = from.fromOwnHost || (body.fn === METRICS_FN && this.peers.isLink(from));
      if (METRICS_FNS.has(body.fn) && !allowed) {
        return from.replyError(message.id, new NotPermittedError(`${body.fn} answers callers on ${this.options.host} and linked routers only`));
      }
      const far = isSite(from) || this.peers.isLink(from) || !from.fromOwnHost;
      const answer = BUILT_INS[body.fn]!(this, far);
      if (!(answer instanceof Promise)) return from.reply(message.id, answer);
      return void answer.then(
        (value) => from.reply(message.id, value),
        (error) => from.replyError(message.id, error),
      );
    }
    if (message.kind === Kind.pub && body.gateway !== undefined) return this.toSites(message, body.gateway, from);
    // From another site: whoever may publish on NATS, no member. The server is told, whichever
    // host of this LAN it is on (the routers between keep the bit), as ServiceControl must know.
    if (message.kind === Kind.req && isSite(from)) message.frame![1]! |= FLAG_FAR | FLAG_OTHER_SITE;
    const target = body.target === undefined ? undefined : this.pool.servers.get(body.target);
    if (message.kind === Kind.req && target?.hostId === this.options.hostId && (this.peers.isLink(from) || !from.fromOwnHost)) {
      // A caller on another host: its server is told (FLAG_FAR), and what other hosts may
      // not call is refused here, as if it did not exist.
      const entry = target.functions.get(String(body.fn));
      // A reqpub goes to a subscriber: subscriptions are seen by every host.
      if (body.fn !== REQPUB && (!entry || !exported(entry))) {
        return from.replyError(message.id, new NoSuchFunctionError(String(body.fn), "network", `not on ${this.options.host}`));
      }
      message.frame![1]! |= FLAG_FAR;
    }
    if (target?.gateway === this.options.hostId) return this.acrossSites(message, target, from);
    // What comes from another host's router goes only to this host's servers: never a loop.
    const via = target
      ? target.hostId === this.options.hostId
        ? this.lifelineOf.get(target.id)
        : !this.peers.isLink(from)
          ? this.peers.linkTo(reachedThrough(target))
          : undefined
      : undefined;
    if (message.kind === Kind.pub) {
      via?.forward(message);
      return;
    }
    if (!via) {
      const where = target ? `server ${target.id} on ${target.host} is not reachable` : `no server ${body.target}`;
      return from.replyError(message.id, new NoSuchFunctionError(String(body.fn), "network", where));
    }
    const timeoutMs = this.timeoutOf(body);
    // A stream's items pass back as they come, and the reader's credit goes on to the server.
    const onItem = body.credit === undefined ? undefined : (item: Buffer) => from.passItem(message.id, item);
    const relayed = via.relay(message, String(body.fn), timeoutMs, onItem);
    // The caller's cancel goes on to the server, under the id the request has there.
    from.track(message.id, { cancel: () => via.cancel(relayed.id), credit: (n) => via.grant(relayed.id, n) });
    relayed.answer.then(
      (answer) => from.replyWith(message.id, answer),
      (error) => from.replyError(message.id, error),
    );
  }

  private timeoutOf(body: ReqBody): number {
    return Number(body.timeoutMs) > 0 ? Number(body.timeoutMs) : this.options.forwardTimeoutMs;
  }

  /**
   * A request or publication for a server of another site, of which this router is the
   * gateway: over the backplane. Only this host's processes and this LAN's routers send it here;
   * what came from another site never goes on to a third.
   */
  private acrossSites(message: Message, target: PoolServer, from: Connection | Origin): void {
    const body = message.body as ReqBody;
    const where = `server ${target.id} on ${target.host} (another site)`;
    if (message.kind === Kind.pub) {
      if (isSite(from)) return;
      try {
        return this.backplane?.sendPublication(message, target);
      } catch (error) {
        // A peer chose the topic, and may send it by the thousand: counted, logged within the log's budget.
        return tripped(limitOf(error), (from as Connection).transport.remote, `a publication on ${message.body.topic} not passed to ${where}: ${(error as Error).message}`);
      }
    }
    if (!this.backplane || isSite(from)) return from.replyError(message.id, new NoSuchFunctionError(String(body.fn), "network", `${where} is not reachable from here`));
    // A stream's items pass back as they come; the reader's credit stays here (see siteOrigin).
    const onItem = body.credit === undefined ? undefined : (item: Buffer) => from.passItem(message.id, item);
    this.backplane.relay(message, target, this.timeoutOf(body), onItem).then(
      (answer) => from.replyWith(message.id, answer),
      (error) => from.replyError(message.id, error),
    );
  }

  /** A publication for every other site: published on the backplane by the gateway named. */
  private toSites(message: Message, gateway: string, from: Connection | Origin): void {
    if (isSite(from)) return;
    if (gateway !== this.options.hostId) {
      if (!this.peers.isLink(from)) this.peers.linkTo(gateway)?.forward(message);
      return;
    }
    try {
      this.backplane?.publishToSites(message);
    } catch (error) {
      tripped(limitOf(error), (from as Connection).transport.remote, `a publication on ${message.body.topic} not passed to the other sites: ${(error as Error).message}`);
    }
  }

  /** A publication from another site: to every subscriber of this site outside groups (one `except`). */
  private deliverPublication(message: Message): void {
    const { topic, args, except } = message.body as PubBody;
    for (const server of this.pool.subscribers(topic)) {
      if (server.gateway !== undefined || server.id === except) continue;
      if (server.hostId === this.options.hostId) this.lifelineOf.get(server.id)?.forward(message);
      else this.peers.linkTo(server.hostId)?.send(Kind.pub, { topic, args, target: server.id });
    }
  }

  /** This LAN's servers as other sites may see them, and its hosts (for the backplane). */
  private site(): { servers: ServerEntry[]; hosts: { hostId: string; name: string }[] } {
    const servers: ServerEntry[] = [];
    for (const server of this.pool.servers.values()) {
      if (server.gateway !== undefined) continue;
      const entry = entryOf(server);
      entry.functions = entry.functions.filter(exported);
      if (entry.functions.length || entry.topics.length) servers.push(entry);
    }
    const hosts = this.peers.hosts().filter((host) => host.state === "self" || host.state === "alive" || host.state === "suspect");
    return { servers, hosts: hosts.map(({ hostId, name }) => ({ hostId, name })) };
  }

  /**
   * `labc hosts`: this host, the hosts of this LAN, and those of other sites. For a caller on
   * another host (`far`), this host counts only the functions other hosts are told of.
   */
  hosts(far = false): HostInfo[] {
    const hosts = this.peers.hosts();
    if (far) {
      const offered = this.exportedServers().filter((server) => server.hostId === this.options.hostId);
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
      ...this.pool.countOn(hostId),
      ...where,
    });
    if (this.backplane) {
      for (const host of this.backplane.hosts()) {
        if (!known.has(host.hostId)) hosts.push(remote(host.hostId, host.name, { site: host.site, gateway: this.options.host }, host.suspect, host.lastHeardMs));
        known.add(host.hostId);
      }
      return hosts;
    }
    // A router of this LAN without the backplane knows other sites' hosts by their servers.
    for (const server of this.pool.servers.values()) {
      if (server.gateway === undefined || known.has(server.hostId)) continue;
      known.add(server.hostId);
      const gateway = hosts.find((host) => host.hostId === server.gateway);
      hosts.push(remote(server.hostId, server.host, { gateway: gateway?.name ?? server.gateway }, server.suspect, null));
    }
    return hosts;
  }

  /**
   * Pings a server of this host every heartbeat. One that stops answering (stopped, or its event
   * loop blocked) is suspect, for every host, until it answers again: its death is told by its
   * lifeline closing, never by silence.
   */
  private watchHeartbeat(connection: Connection, serverId: string): void {
    const { intervalMs, suspectAfter } = this.options.heartbeat;
    const lifeline = new Lifeline({
      intervalMs,
      suspectAfter,
      deadAfter: Infinity,
      ping: () => connection.send(Kind.ping, {}),
      onStatus: (status) => {
        const suspect = status === "suspect";
        if (!this.pool.setSuspect(serverId, suspect)) return;
        debug("router: server %s is %s", serverId, suspect ? "suspect (no answer to heartbeats)" : "answering again");
        this.notify(Kind.suspect, { server: serverId, suspect });
        const server = this.pool.servers.get(serverId);
        if (server?.functions.size && [...server.functions.values()].some(exported)) {
          this.peers.broadcast(Kind.suspect, { server: serverId, suspect });
        }
      },
    });
    this.heartbeats.get(connection)?.stop();
    this.heartbeats.set(connection, lifeline);
    lifeline.start();
  }

  private dropped(connection: Connection): void {
    this.heartbeats.get(connection)?.stop();
    this.heartbeats.delete(connection);
    if (this.peers.isLink(connection)) return this.peers.closedLink(connection);
    const watched = this.watchers.delete(connection);
    const id = this.serverOf.get(connection);
    if (id === undefined) {
      if (watched) this.lingerIfIdle();
      return;
    }
    this.serverOf.delete(connection);
    if (this.lifelineOf.get(id) !== connection) return;
    this.lifelineOf.delete(id);
    this.pool.removeServer(id);
    this.notify(Kind.death, { server: id });
    this.peers.broadcast(Kind.death, { server: id });
    debug("router: server %s left", id);
    this.lingerIfIdle();
  }

  /** This host's servers as other hosts may see them, and other sites' when this router is their gateway. */
  private exportedServers(): ServerEntry[] {
    return this.pool
      .snapshot()
      .filter((server) => reachedThrough(server) === this.options.hostId)
      .map((server) => ({ ...server, functions: server.functions.filter(exported) }));
  }

  private notify(kind: Kind, body: object): void {
    this.backplane?.changed();
    if (this.watchers.size === 0) return;
    const frame = encodeMessage(kind, 0, body, this.options.limits);
    for (const watcher of this.watchers) watcher.sendEncoded(frame);
  }

  private lingerIfIdle(): void {
    if (this.lingerTimer) clearTimeout(this.lingerTimer);
    this.lingerTimer = null;
    // The router's own ServiceControl does not keep it up; a process linked to it does, server
    // or not: a caller in the middle of its calls must not lose its router.
    const linked = [...this.watchers].some((watcher) => watcher.peer?.pid !== process.pid);
    if (linked || this.options.lingerSeconds === 0) return;
    this.lingerTimer = setTimeout(() => {
      if (!this.options.canLeave()) return this.lingerIfIdle();
      debug("router: no process linked for %d s, leaving", this.options.lingerSeconds);
      // The port is let go at once: a process arriving now starts the next router instead of
      // saying hello to this one as it closes.
      this.listener?.refuse();
      this.options.onIdle();
    }, this.options.lingerSeconds * 1000);
  }
}
