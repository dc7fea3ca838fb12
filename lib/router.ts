import { BadArgumentsError } from "./errors.js";
import { debug, warn } from "./log.js";
import { Connection } from "./net/connection.js";
import type { Listener, Transport } from "./net/transport.js";
import { entryOf, FunctionPool } from "./pool/function-pool.js";
import { encodeMessage } from "./wire/codec.js";
import type { Limits } from "./wire/limits.js";
import {
  Kind,
  PROTOCOL_VERSION,
  type AnnounceBody,
  type HelloBody,
  type Message,
  type WelcomeBody,
  type WithdrawBody,
} from "./wire/message.js";

export interface RouterOptions {
  host: string;
  hostId: string;
  limits: Limits;
  /** Seconds to stay up after the last server left; 0 stays forever. */
  lingerSeconds: number;
  /** Opens the root port; the router itself never touches sockets. */
  listen: (onTransport: (transport: Transport) => void) => Promise<Listener>;
  /** Called when the router ended itself after lingering. */
  onIdle: () => void;
}

/**
 * The host's router: owns the root port, knows every server of the host through its lifeline,
 * keeps the authoritative pool, and tells every watcher each change. It runs no user code, so
 * it answers even while a service is busy.
 */
export class Router {
  readonly pool = new FunctionPool();
  private readonly serverOf = new Map<Connection, string>();
  /** The lifeline each server id registered on last: an older one closing must not remove it. */
  private readonly lifelineOf = new Map<string, Connection>();
  private readonly watchers = new Set<Connection>();
  private listener: Listener | null = null;
  private lingerTimer: NodeJS.Timeout | null = null;

  constructor(private readonly options: RouterOptions) {}

  get port(): number {
    return this.listener?.port ?? 0;
  }

  async start(): Promise<void> {
    this.listener = await this.options.listen((transport) => {
      new Connection(transport, {
        label: `peer at ${transport.remote}`,
        limits: this.options.limits,
        onMessage: this.handle,
        onClose: (connection) => this.dropped(connection),
      });
    });
    this.lingerIfIdle();
  }

  async close(): Promise<void> {
    if (this.lingerTimer) clearTimeout(this.lingerTimer);
    await this.listener?.close();
  }

  private readonly handle = (message: Message, connection: Connection): void => {
    try {
      switch (message.kind) {
        case Kind.hello:
          return this.hello(message.body, message.id, connection);
        case Kind.announce:
          return this.announce(message.body, message.id, connection);
        case Kind.withdraw:
          return this.withdraw(message.body, message.id, connection);
        case Kind.ping:
          return connection.send(Kind.pong, {}, message.id);
        default:
          if (message.id) connection.replyError(message.id, new BadArgumentsError(`a router does not take this message`));
      }
    } catch (error) {
      warn(`router: bad message from ${connection.label}: ${(error as Error).message}`);
      if (message.id) connection.replyError(message.id, error);
    }
  };

  private hello(body: HelloBody, id: number, connection: Connection): void {
    if (body.v !== PROTOCOL_VERSION) {
      connection.replyError(id, new BadArgumentsError(`protocol version ${body.v} is not ${PROTOCOL_VERSION}`));
      return connection.close();
    }
    connection.label = `${body.role} ${body.id} (pid ${body.pid})`;
    if (body.role === "server" && !this.serverOf.has(connection)) {
      if (!Number.isInteger(body.port) || !body.port) throw new BadArgumentsError("a server's hello needs its port");
      const address = connection.transport.remote.replace(/:\d+$/, "");
      this.pool.removeServer(body.id);
      const server = this.pool.addServer({
        id: body.id,
        host: body.host,
        hostId: body.hostId,
        address: address.startsWith("::ffff:") ? address.slice(7) : address,
        port: body.port!,
        pid: body.pid,
        state: body.state,
      });
      this.serverOf.set(connection, server.id);
      this.lifelineOf.set(server.id, connection);
      this.notify(Kind.announce, { server: entryOf(server) });
      this.lingerIfIdle();
      debug("router: server %s joined on port %d", body.id, body.port);
    }
    const welcome: WelcomeBody = { v: PROTOCOL_VERSION, pid: process.pid, host: this.options.host, hostId: this.options.hostId };
    if (id) connection.reply(id, welcome);
    if (body.watch && !this.watchers.has(connection)) {
      this.watchers.add(connection);
      connection.send(Kind.pool, { servers: this.pool.snapshot() });
    }
  }

  private announce(body: AnnounceBody, id: number, connection: Connection): void {
    const server = this.pool.servers.get(this.serverOf.get(connection) ?? "");
    if (!server) throw new BadArgumentsError("announce before a server hello");
    this.pool.announce(server, body.functions, body.topics);
    this.notify(Kind.announce, {
      server: { ...entryOf(server), functions: body.functions ?? [], topics: body.topics ?? [] },
    });
    if (id) connection.reply(id, null);
  }

  private withdraw(body: WithdrawBody, id: number, connection: Connection): void {
    const server = this.pool.servers.get(this.serverOf.get(connection) ?? "");
    if (!server) throw new BadArgumentsError("withdraw before a server hello");
    this.pool.withdraw(server, body.functions, body.topics);
    this.notify(Kind.withdraw, { server: server.id, functions: body.functions ?? [], topics: body.topics ?? [] });
    if (id) connection.reply(id, null);
  }

  private dropped(connection: Connection): void {
    this.watchers.delete(connection);
    const id = this.serverOf.get(connection);
    if (id === undefined) return;
    this.serverOf.delete(connection);
    if (this.lifelineOf.get(id) !== connection) return;
    this.lifelineOf.delete(id);
    this.pool.removeServer(id);
    this.notify(Kind.death, { server: id });
    debug("router: server %s left", id);
    this.lingerIfIdle();
  }

  private notify(kind: Kind, body: object): void {
    if (this.watchers.size === 0) return;
    const frame = encodeMessage(kind, 0, body, this.options.limits);
    for (const watcher of this.watchers) watcher.sendEncoded(frame);
  }

  private lingerIfIdle(): void {
    if (this.lingerTimer) clearTimeout(this.lingerTimer);
    this.lingerTimer = null;
    if (this.serverOf.size > 0 || this.options.lingerSeconds === 0) return;
    this.lingerTimer = setTimeout(() => {
      debug("router: no server for %d s, leaving", this.options.lingerSeconds);
      this.options.onIdle();
    }, this.options.lingerSeconds * 1000);
  }
}
