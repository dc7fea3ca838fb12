// The host's router: the root port, this host's servers and watchers, linger.
import { Backplane } from "../backplane/nats-backplane.js";
import type { BackplaneSettings } from "../config.js";
import type { Discovery } from "../discovery/discovery.js";
import { BadArgumentsError, NotPermittedError } from "../errors.js";
import { addressOf } from "../trust/own-address.js";
import { debug, warn } from "../log.js";
import { processMetrics } from "../metrics.js";
import { Connection } from "../net/connection.js";
import type { Listener, Transport } from "../net/transport.js";
import { refused, tripped } from "../net/trips.js";
import { entryOf, FunctionPool, reachedThrough } from "../pool/function-pool.js";
import { encodeMessage } from "../wire/codec.js";
import type { Limits } from "../wire/limits.js";
import { exported, Kind, PROTOCOL_VERSION, type AnnounceBody, type HelloBody, type Message, type ServerEntry, type WithdrawBody } from "../wire/message.js";
import { Forwarding } from "./forwarding.js";
import { HostInfoAnswers } from "./host-info.js";
import { Peers } from "./host-links.js";
import { Lifeline } from "./lifeline.js";

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

/** How long a stopping server's withdraw waits for a process or host to confirm it. */
const SYNC_MS = 1000;

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
  /** The router's own functions: `labc.hosts`, `labc.metrics`... */
  readonly info: HostInfoAnswers;
  private readonly forwarding: Forwarding;
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
      deliverLocal: (message, from) => this.forwarding.forward(message, from),
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
        deliver: (message, from) => this.forwarding.forward(message, from),
        deliverPublication: (message) => this.forwarding.deliverPublication(message),
      });
    }
    const { host, hostId, instance, port, forwardTimeoutMs } = options;
    const { pool, peers, backplane } = this;
    this.info = new HostInfoAnswers({
      host,
      hostId,
      instance,
      port,
      pool,
      peers,
      backplane,
      processes: () => [...new Set([...this.lifelineOf.values(), ...this.watchers])],
      exportedServers: () => this.exportedServers(),
    });
    const lifelineOf = (serverId: string) => this.lifelineOf.get(serverId);
    this.forwarding = new Forwarding({ host, hostId, forwardTimeoutMs, pool, peers, backplane, lifelineOf, info: this.info });
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
          return this.forwarding.forward(message, connection);
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
      const address = addressOf(connection.transport.remote);
      // Ids of this host's servers belong to this host: one another host claimed first is taken back.
      const taken = this.pool.removeServer(body.id);
      if (taken && reachedThrough(taken) !== this.options.hostId) this.notify(Kind.death, { server: taken.id });
      const server = this.pool.addServer({
        id: body.id,
        host: this.options.host,
        hostId: this.options.hostId,
        address,
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

  /** This LAN's servers as other sites may see them, and its hosts (for the backplane). */
  private site(): { servers: ServerEntry[]; hosts: { hostId: string; name: string }[] } {
    const servers: ServerEntry[] = [];
    for (const server of this.pool.servers.values()) {
      if (server.gateway !== undefined) continue;
      const entry = entryOf(server);
      entry.functions = entry.functions.filter(exported);
      if (entry.functions.length || entry.topics.length) servers.push(entry);
    }
    const hosts = this.info.lanHosts().filter((host) => host.state === "self" || host.state === "alive" || host.state === "suspect");
    return { servers, hosts: hosts.map(({ hostId, name }) => ({ hostId, name })) };
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
