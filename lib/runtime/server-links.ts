import type { DirectCalls } from "../backplane/direct-calls.js";
import { nowMs } from "../clock.js";
import { ConnectionLostError } from "../errors.js";
import { helloFrom, type Identity } from "../identity.js";
import { debug } from "../log.js";
import type { Metrics } from "../metrics.js";
import { Connection } from "../net/connection.js";
import type { ItemStream, StreamSource } from "../net/item-stream.js";
import type { Limits } from "../wire/limits.js";
import { connectTcp } from "../net/connect-tcp.js";
import type { PoolServer } from "../pool/function-pool.js";
import type { LocalSockets } from "../net/local-sockets.js";
import type { NetworkKey } from "../trust/network-key.js";
import { Kind, type Message } from "../wire/message.js";
import { committed } from "../net/transport.js";
import type { RouterLink } from "./router-link.js";

/** How long to try a server's own port before going through the routers. */
const DIAL_TIMEOUT_MS = 1000;
/** How long calls to a server of another site go through the gateways after NATS did not reach it. */
const OFF_NATS_MS = 30_000;

/** A server's port could not be opened: nothing was sent to it. */
export class Unreachable extends Error {
  constructor(override readonly cause: unknown) {
    super("unreachable");
  }
}

export function describe(server: PoolServer): string {
  return `server ${server.id} on ${server.host} (pid ${server.pid}, ${server.address}:${server.port})`;
}

/**
 * How this process reaches one server, whichever way that is (its own port, NATS, or through the
 * routers): callers send on it without asking how.
 */
export interface Route {
  /** `flags` go in the frame's header (FLAG_FAR); through the routers, they set it themselves. */
  call(name: string, args: unknown[], timeoutMs: number, signal: AbortSignal | undefined, trace: string | undefined, flags?: number): Promise<unknown>;
  openStream(name: string, args: unknown[], timeoutMs: number, signal: AbortSignal | undefined, stream: ItemStream<any>, trace: string | undefined): Promise<StreamSource>;
  /**
   * Sends a publication for the subscribers of `groups` there (none: its subscribers outside
   * groups, with `frame`, encoded once for every server that takes it so); `sitesOnly`: the
   * routers pass only the groups' share on (the site publication carries the rest). Resolves
   * with false when it was not sent (the server leaves).
   */
  publish(topic: string, args: unknown[], groups: readonly string[], sitesOnly: boolean, frame: () => Buffer | Buffer[]): Promise<boolean>;
}

/** Over a connection of our own to the server (its port, or its subject on NATS). */
class DirectRoute implements Route {
  constructor(
    private readonly connection: Connection,
    private readonly target: PoolServer,
    private readonly leaving: WeakSet<Connection>,
  ) {}

  call(name: string, args: unknown[], timeoutMs: number, signal: AbortSignal | undefined, trace: string | undefined, flags = 0): Promise<unknown> {
    // It said it leaves while we waited for the connection: nothing may be sent to it now.
    if (this.leaving.has(this.connection)) return Promise.reject(new Unreachable(new ConnectionLostError(describe(this.target), name)));
    return this.connection.call(name, args, timeoutMs, signal, trace, flags);
  }

  async openStream(name: string, args: unknown[], timeoutMs: number, signal: AbortSignal | undefined, stream: ItemStream<any>, trace: string | undefined): Promise<StreamSource> {
    if (this.leaving.has(this.connection)) throw new Unreachable(new ConnectionLostError(describe(this.target), name));
    return this.connection.openStream(name, args, trace === undefined ? {} : { trace }, timeoutMs, signal, stream);
  }

  async publish(_topic: string, _args: unknown[], _groups: readonly string[], _sitesOnly: boolean, frame: () => Buffer | Buffer[]): Promise<boolean> {
    if (this.leaving.has(this.connection) || !this.connection.publish(frame())) return false;
    // As publish's hot path (Publications.sendOpen): a subscriber that reads slower than we
    // publish slows an awaiting publisher, and resolved means it leaves even if we exit next.
    if (this.connection.congested) await this.connection.drain();
    await committed(this.connection.transport);
    return true;
  }
}

/** Through this host's router, which passes frames on (to the server's host, or its site's gateway). */
class RoutedRoute implements Route {
  constructor(
    private readonly link: RouterLink,
    private readonly target: string,
  ) {}

  call(name: string, args: unknown[], timeoutMs: number, signal: AbortSignal | undefined, trace: string | undefined): Promise<unknown> {
    return this.link.forward(this.target, name, args, timeoutMs, signal, trace);
  }

  openStream(name: string, args: unknown[], timeoutMs: number, signal: AbortSignal | undefined, stream: ItemStream<any>, trace: string | undefined): Promise<StreamSource> {
    return this.link.openStream(this.target, name, args, timeoutMs, signal, stream, trace);
  }

  async publish(topic: string, args: unknown[], groups: readonly string[], sitesOnly: boolean): Promise<boolean> {
    await this.link.forwardPublication(this.target, topic, args, groups, sitesOnly);
    return true;
  }
}

export interface ServerLinksParts {
  identity: Identity;
  limits: Limits;
  metrics: Metrics | undefined;
  key: NetworkKey | undefined;
  /** This host's Unix sockets: a server of this host is reached over its socket when it has one. */
  local?: LocalSockets;
  link: RouterLink;
  /** On a gateway's host: calls to and from other sites on NATS, past the gateways. */
  acrossSites: DirectCalls;
}

/**
 * This process's links to the servers it calls, one per server, made on first use (undici's
 * `Agent` maps an origin to a dispatcher the same way). The one place that decides how a server
 * is reached: its own port, NATS for a server of another site, or through the routers when its
 * port cannot be reached from here.
 */
export class ServerLinks {
  /** Open connections to servers, by server id. */
  private readonly open = new Map<string, Connection>();
  private readonly routes = new WeakMap<Connection, DirectRoute>();
  private readonly dialing = new Map<string, Promise<Connection>>();
  /** Servers whose own port cannot be reached from here: called through the routers. */
  private readonly routed = new Set<string>();
  /** Servers of other sites that NATS did not reach lately, and until when they are left alone. */
  private readonly offNats = new Map<string, number>();
  /** Connections to servers that said they leave: nothing new is sent on them. */
  private readonly leaving = new WeakSet<Connection>();

  constructor(private readonly parts: ServerLinksParts) {}

  /** The open connection to a server, if there is one: the hot paths' one look-up, nothing awaited. */
  connection(serverId: string): Connection | undefined {
    return this.open.get(serverId);
  }

  /**
   * How to reach a server: its own connection (opened now if need be), or through the routers
   * when only they can reach it (its host is elsewhere and its port is firewalled or bound to
   * loopback). Throws Unreachable when a server of this host cannot be reached: it is gone.
   */
  async route(target: PoolServer): Promise<Route> {
    const connection = await this.reach(target);
    if (!connection) return new RoutedRoute(this.parts.link, target.id);
    let route = this.routes.get(connection);
    if (!route) this.routes.set(connection, (route = new DirectRoute(connection, target, this.leaving)));
    return route;
  }

  /** A server left the pool: calls waiting on it fail now, even when its host went silent rather than closed. */
  forget(serverId: string): void {
    this.open.get(serverId)?.close();
    this.routed.delete(serverId);
    this.offNats.delete(serverId);
  }

  /** Closes every link, answers still awaited for up to `graceMs`. */
  async close(graceMs: number): Promise<void> {
    const open = [...this.open.values()];
    this.open.clear();
    await Promise.all(open.map((connection) => connection.close(graceMs)));
  }

  private async reach(target: PoolServer): Promise<Connection | null> {
    if (target.gateway !== undefined) return this.reachOnNats(target);
    if (this.routed.has(target.id)) return null;
    try {
      return await this.dial(target);
    } catch (error) {
      if (target.hostId === this.parts.identity.hostId) throw new Unreachable(error);
      debug("%s unreachable directly (%s): through the routers", describe(target), (error as Error).message);
      this.routed.add(target.id);
      return null;
    }
  }

  /**
   * A server of another site: on NATS when both this process and it are on gateways' hosts,
   * else (null) through this LAN's gateway, which is also where its calls go for a while after
   * NATS did not take them.
   */
  private async reachOnNats(target: PoolServer): Promise<Connection | null> {
    if (!target.nats || !this.parts.acrossSites.linkable || (this.offNats.get(target.id) ?? 0) > nowMs()) return null;
    try {
      return await this.dial(target);
    } catch (error) {
      debug("%s not on NATS from here (%s): through the gateways for %d s", describe(target), (error as Error).message, OFF_NATS_MS / 1000);
      this.offNats.set(target.id, nowMs() + OFF_NATS_MS);
      return null;
    }
  }

  /**
   * A server we call tells us it stops (`death` with an id): it is out of our replica and
   * gets nothing new from us; we answer, and it then knows that no request of ours is still
   * on its way to it. What we sent before is answered as usual.
   */
  private fromServer(target: PoolServer, connection: Connection, message: Message): void {
    if (message.kind !== Kind.death || message.body.server !== target.id) return;
    debug("%s leaves", describe(target));
    this.parts.link.pool.removeServer(target.id);
    this.leaving.add(connection);
    if (this.open.get(target.id) === connection) this.open.delete(target.id);
    if (message.id !== 0) connection.reply(message.id, null);
  }

  /** The persistent connection to a server, opened on first use: to its port, or on NATS to a server of another site. */
  private dial(target: PoolServer): Promise<Connection> {
    const open = this.open.get(target.id);
    if (open) return Promise.resolve(open);
    let pending = this.dialing.get(target.id);
    if (!pending) {
      const { identity, limits, metrics, key, local, acrossSites } = this.parts;
      const onNats = target.gateway !== undefined;
      const opening = onNats
        ? acrossSites.pipe(target.id).then((pipe) => pipe ?? Promise.reject(new Error("this process has no NATS link")))
        : connectTcp(target.address, target.port, DIAL_TIMEOUT_MS, key, local);
      pending = opening
        .then(async (transport) => {
          const connection: Connection = new Connection(transport, {
            label: onNats ? `${describe(target)} on NATS` : describe(target),
            limits,
            metrics,
            refWhilePending: true,
            onMessage: (message) => this.fromServer(target, connection, message),
            onClose: () => this.open.get(target.id) === connection && this.open.delete(target.id),
          });
          connection.send(Kind.hello, helloFrom(identity, "client"));
          // NATS takes frames that nobody subscribes to: a ping proves that the server takes them.
          if (onNats) {
            await connection.request(Kind.ping, {}, "ping", DIAL_TIMEOUT_MS).catch((error) => {
              void connection.close();
              throw error;
            });
          }
          this.open.set(target.id, connection);
          return connection;
        })
        .finally(() => this.dialing.delete(target.id));
      this.dialing.set(target.id, pending);
    }
    return pending;
  }
}
