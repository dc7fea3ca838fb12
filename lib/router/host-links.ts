// The router's links to other hosts' routers (Peers): dial, accept, heartbeats, deaths.
import { BadArgumentsError, NotPermittedError, NotTrustedError } from "../errors.js";
import { addressOf } from "../trust/own-address.js";
import { helloFrom } from "../identity.js";
import { Lifeline } from "./lifeline.js";
import type { HostState } from "../wire/router-answers.js";
import { HostIds } from "./host-ids.js";
import { LinkNotices } from "./link-notices.js";
import { processMetrics } from "../metrics.js";
import { debug } from "../log.js";
import { Connection } from "../net/connection.js";
import { refused } from "../net/trips.js";
import type { Transport } from "../net/transport.js";
import type { FunctionPool } from "../pool/function-pool.js";
import type { Sighting } from "../discovery/discovery.js";
import type { Limits } from "../wire/limits.js";
import { Kind, PROTOCOL_VERSION, type DeathBody, type HelloBody, type Message, type ServerEntry, type WelcomeBody } from "../wire/message.js";

export interface PeersOptions {
  self: { hostId: string; name: string; port: number; instance: string };
  /** How long after start discovery needs to find the hosts already running (0: no discovery). */
  settleMs: number;
  /** Whether the router's own functions (ServiceControl) are registered yet. */
  ready: () => boolean;
  limits: Limits;
  /** The router's pool: this host's servers and, kept here, every other host's. */
  pool: FunctionPool;
  heartbeat: { intervalMs: number; suspectAfter: number; deadAfter: number };
  /** Opens a connection to another host's router. */
  dial: (address: string, port: number) => Promise<Transport>;
  /** Tells this host's processes about a change to the pool. */
  notify: (kind: Kind, body: object) => void;
  /** This host's servers, as other hosts may see them. */
  exported: () => ServerEntry[];
  /** A request or publication for one of this host's servers, come from another host. */
  deliverLocal: (message: Message, from: Connection) => void;
  /** A host was linked: worth remembering for the next start. */
  remember: (hostId: string, name: string, addresses: string[], port: number) => void;
}

/** One line of `labc hosts`. */
export interface Peer {
  hostId: string;
  name: string;
  port: number;
  /** Addresses known for it, the one that answered last first. */
  addresses: string[];
  link: Connection | null;
  /** Address the link runs over: what this host's processes use to reach its servers. */
  address: string | undefined;
  instance: string | undefined;
  initiatedByUs: boolean;
  lifeline: Lifeline | null;
  state: HostState;
  dialing: boolean;
  redial: NodeJS.Timeout | null;
  failures: number;
}

/** Give up redialing a host that stayed unreachable this many times; discovery finds it again. */
const MAX_REDIALS = 600;
const DIAL_TIMEOUT_MS = 1000;
/** What a router still starting tells callers to wait at most, for its own functions. */
const STARTING_MS = 1000;

/**
 * The router's side of the network: one lifeline to every other host's router, over which the
 * two exchange what their servers offer, heartbeats, and requests that cannot go straight to
 * a server. One link per pair of hosts; when both dial at once, the link dialed by the smaller
 * host id stays.
 */
export class Peers {
  private readonly peers = new Map<string, Peer>();
  private readonly byLink = new Map<object, Peer>();
  private readonly dialingAddresses = new Set<string>();
  /** Links dialed but not yet attached: what arrives on them before the welcome is read waits here. */
  private readonly early = new Map<Connection, Message[]>();
  private closed = false;
  private readonly startedAt = Date.now();
  private readonly ids: HostIds;

  /** What the linked routers say of servers, bound to each one's host. */
  private readonly notices: LinkNotices;

  constructor(private readonly options: PeersOptions) {
    this.ids = new HostIds(options.self, options.heartbeat.intervalMs);
    this.notices = new LinkNotices({ self: options.self.hostId, pool: options.pool, notify: options.notify, isLanHost: (hostId) => this.isLanHost(hostId) });
  }

  /** The link to a host, when it is up. */
  linkTo(hostId: string): Connection | undefined {
    const link = this.peers.get(hostId)?.link;
    return link && !link.closed ? link : undefined;
  }

  /** Every link that is up. */
  links(): Connection[] {
    const up: Connection[] = [];
    for (const peer of this.peers.values()) if (peer.link && !peer.link.closed) up.push(peer.link);
    return up;
  }

  isLink(connection: object): boolean {
    return this.byLink.has(connection);
  }

  /** A discovery method saw a host: link to it unless linked already. */
  sighted(sighting: Sighting): void {
    if (this.closed) return;
    if (sighting.hostId === this.options.self.hostId) {
      // Our own announcement, heard back; or another machine that took our id.
      if (this.ids.fromAnotherMachine(sighting.addresses)) this.ids.clash(sighting.name, sighting.addresses[0]!, `its ${sighting.via} announcement`);
      return;
    }
    const peer = sighting.hostId ? this.peers.get(sighting.hostId) : undefined;
    if (peer) {
      peer.addresses = [...new Set([...(peer.link ? [] : sighting.addresses), ...peer.addresses, ...sighting.addresses])];
      if (sighting.name) peer.name = sighting.name;
      if (peer.link) return;
      peer.failures = 0;
    }
    void this.dial(sighting.addresses, sighting.port, sighting.hostId);
  }

  /** A router on another host dialed us and said hello. */
  accept(connection: Connection, hello: HelloBody): WelcomeBody {
    const address = addressOf(connection.transport.remote);
    if (!hello.hostId) throw new BadArgumentsError("a router's hello names its host id");
    if (hello.hostId === this.options.self.hostId) {
      // A static peer or known address that turns out to be this very host, or a clone of it.
      if (hello.id !== this.options.self.instance) throw this.ids.clash(hello.host, address, "its router dialed this one");
      throw new BadArgumentsError("a router does not link to itself");
    }
    const who = { hostId: hello.hostId, name: hello.host, port: hello.port ?? 0, instance: hello.id };
    const impostor = this.ids.impostor(this.peers.get(who.hostId), who, address);
    if (impostor) {
      refused(address, impostor);
      throw new NotPermittedError(`${address} is not the router of ${hello.hostId}: that host's router is linked to ${this.options.self.name} and answering`);
    }
    this.attach(connection, who, false, address);
    return this.welcome();
  }

  welcome(): WelcomeBody {
    const { self } = this.options;
    return {
      v: PROTOCOL_VERSION,
      pid: process.pid,
      host: self.name,
      hostId: self.hostId,
      port: self.port,
      instance: self.instance,
      // Until its own functions are registered, a new router asks callers to look again shortly.
      discoveringMs: Math.max(this.options.ready() ? 0 : STARTING_MS, this.startedAt + this.options.settleMs - Date.now()),
    };
  }

  /** A change to this host's servers, for every linked host. */
  broadcast(kind: Kind, body: object): void {
    for (const peer of this.peers.values()) {
      if (peer.link && !peer.link.closed) peer.link.send(kind, body);
    }
  }

  /** The hosts this router knows of (linked, dialed, dead), as `labc hosts` lists them. */
  known(): Iterable<Readonly<Peer>> {
    return this.peers.values();
  }

  close(): void {
    this.closed = true;
    for (const peer of this.peers.values()) {
      if (peer.redial) clearTimeout(peer.redial);
      peer.lifeline?.stop();
      peer.link?.close();
    }
  }

  /** Messages from another host's router. */
  readonly handle = (message: Message, connection: Connection): void => {
    const peer = this.byLink.get(connection);
    if (!peer) return void this.early.get(connection)?.push(message);
    if (peer.link !== connection) return;
    if (this.notices.apply(peer, message)) return;
    switch (message.kind) {
      case Kind.death:
        return this.death(peer, message.body);
      case Kind.ping:
        return connection.send(Kind.pong, {}, message.id);
      case Kind.req:
      case Kind.pub:
        return this.options.deliverLocal(message, connection);
      default:
        if (message.id && message.kind !== Kind.pong && message.kind !== Kind.hello) {
          connection.replyError(message.id, new BadArgumentsError("a router link does not take this message"));
        }
    }
  };

  private async dial(addresses: string[], port: number, hostId: string | undefined): Promise<void> {
    const peer = hostId ? this.peers.get(hostId) : undefined;
    if (peer?.dialing) return;
    if (peer) peer.dialing = true;
    try {
      for (const address of addresses) {
        if (hostId && this.linkTo(hostId)) return;
        const key = `${address}:${port}`;
        if (this.dialingAddresses.has(key)) continue;
        this.dialingAddresses.add(key);
        try {
          const transport = await this.options.dial(address, port);
          if (this.closed) return transport.close();
          const connection = this.linkConnection(transport);
          const welcome: WelcomeBody = await connection.request(
            Kind.hello,
            helloFrom({ id: this.options.self.instance, host: this.options.self.name, hostId: this.options.self.hostId }, "router", {
              port: this.options.self.port,
            }),
            "hello",
            DIAL_TIMEOUT_MS * 3,
          );
          const who = { hostId: welcome.hostId, name: welcome.host, port: welcome.port, instance: welcome.instance };
          const impostor = this.ids.impostor(this.peers.get(who.hostId), who, address);
          if (impostor) {
            refused(address, impostor);
            connection.close();
            continue;
          }
          this.attach(connection, who, true, address);
          return;
        } catch (error) {
          // Something there that cannot prove the secret (a static peer that is not a member, or a
          // stranger answering in its place) is said, once a minute: the link never comes up.
          if (error instanceof NotTrustedError) refused(address, `router link: ${error.message}`);
          else debug("router link to %s failed: %s", key, (error as Error).message);
        } finally {
          this.dialingAddresses.delete(key);
        }
      }
      if (peer && !peer.link) this.scheduleRedial(peer);
    } finally {
      if (peer) peer.dialing = false;
    }
  }

  private linkConnection(transport: Transport): Connection {
    const connection: Connection = new Connection(transport, {
      label: `router at ${transport.remote}`,
      limits: this.options.limits,
      metrics: processMetrics,
      onMessage: this.handle,
      onReceive: () => this.received(connection),
      onClose: (closed) => this.closedLink(closed),
    });
    this.early.set(connection, []);
    return connection;
  }

  /** Anything arriving on a link proves its host alive. */
  received(connection: Connection): void {
    this.byLink.get(connection)?.lifeline?.heard();
  }

  private attach(
    connection: Connection,
    who: { hostId: string; name: string; port: number; instance: string },
    initiatedByUs: boolean,
    address: string,
  ): void {
    const { self } = this.options;
    let peer = this.peers.get(who.hostId);
    if (!peer) {
      const { hostId, name, port } = who;
      peer = { hostId, name, port, addresses: [], link: null, address: undefined, instance: undefined, initiatedByUs, lifeline: null, state: "connecting", dialing: false, redial: null, failures: 0 };
      this.peers.set(who.hostId, peer);
    }
    if (peer.link && !peer.link.closed) {
      if (peer.instance === who.instance) {
        // Both routers dialed each other: keep the link dialed by the smaller host id.
        const winnerIsUs = self.hostId < who.hostId;
        if (peer.initiatedByUs === winnerIsUs || initiatedByUs !== winnerIsUs) {
          this.early.delete(connection);
          this.byLink.set(connection, peer);
          connection.close();
          return;
        }
      }
      // A duplicate that loses, or a link to a router that has since restarted: retire it.
      this.retire(peer);
    }
    if (peer.redial) clearTimeout(peer.redial);
    peer.redial = null;
    peer.failures = 0;
    peer.name = who.name;
    peer.port = who.port;
    peer.instance = who.instance;
    peer.initiatedByUs = initiatedByUs;
    peer.link = connection;
    peer.address = address;
    peer.addresses = [address, ...peer.addresses.filter((a) => a !== address)];
    peer.state = "alive";
    // A host of this LAN is nobody else's to list: what another site said of it goes.
    for (const server of [...this.options.pool.servers.values()]) {
      if (server.gateway === undefined || server.hostId !== who.hostId) continue;
      this.options.pool.removeServer(server.id);
      this.options.notify(Kind.death, { server: server.id });
    }
    connection.label = `router of ${who.name} (${address}:${who.port})`;
    this.byLink.set(connection, peer);
    const linkedPeer = peer;
    peer.lifeline = new Lifeline({
      intervalMs: this.options.heartbeat.intervalMs,
      suspectAfter: this.options.heartbeat.suspectAfter,
      deadAfter: this.options.heartbeat.deadAfter,
      ping: () => connection.send(Kind.ping, {}),
      onStatus: (status) => {
        if (status === "dead") this.dead(linkedPeer, "missed heartbeats");
        else linkedPeer.state = status;
      },
    });
    peer.lifeline.start();
    connection.send(Kind.pool, { servers: this.options.exported() });
    this.options.remember(peer.hostId, peer.name, peer.addresses, peer.port);
    const early = this.early.get(connection) ?? [];
    this.early.delete(connection);
    for (const message of early) this.handle(message, connection);
    debug("linked with %s (%s) at %s", who.name, who.hostId, address);
  }

  /** Drops a link without declaring its host dead (a newer link replaces it). */
  private retire(peer: Peer): void {
    const old = peer.link;
    peer.lifeline?.stop();
    peer.lifeline = null;
    peer.link = null;
    old?.close();
  }

  closedLink(connection: Connection): void {
    this.early.delete(connection);
    const peer = this.byLink.get(connection);
    this.byLink.delete(connection);
    if (peer && peer.link === connection) this.dead(peer, "link closed");
  }

  /** A host is gone: its servers leave the pool, this host's processes and the others hear it. */
  private dead(peer: Peer, why: string): void {
    const link = peer.link;
    peer.lifeline?.stop();
    peer.lifeline = null;
    peer.link = null;
    peer.state = "dead";
    link?.close();
    for (const server of this.options.pool.removeHost(peer.hostId)) {
      this.options.notify(Kind.death, { server: server.id });
    }
    this.broadcast(Kind.death, { host: peer.hostId });
    debug("host %s (%s) is dead: %s", peer.name, peer.hostId, why);
    if (!this.closed) this.scheduleRedial(peer);
  }

  private death(from: Peer, body: DeathBody): void {
    if (body.server) return this.notices.serverDied(from, body.server);
    // Another host lost its link to a host: believe it if this host has not heard from it lately.
    const named = body.host ? this.peers.get(body.host) : undefined;
    const line = named?.lifeline;
    if (named && line && Date.now() - line.lastHeard > this.options.heartbeat.intervalMs * 1.5) {
      this.dead(named, `reported dead by ${from.name}`);
    }
  }

  /**
   * Whether a host is of this LAN: this one, or one linked to this router (a host that died may
   * since be on another site: a laptop carried there). A host that links is taken back from any
   * site that listed it (see attach).
   */
  isLanHost(hostId: string): boolean {
    if (hostId === this.options.self.hostId) return true;
    const peer = this.peers.get(hostId);
    return peer !== undefined && peer.state !== "dead";
  }

  private scheduleRedial(peer: Peer): void {
    if (peer.redial || peer.failures >= MAX_REDIALS || peer.addresses.length === 0) return;
    peer.failures++;
    peer.redial = setTimeout(() => {
      peer.redial = null;
      if (!peer.link && !this.closed) void this.dial(peer.addresses, peer.port, peer.hostId);
    }, this.options.heartbeat.intervalMs * (1.5 + Math.random())).unref();
  }
}
