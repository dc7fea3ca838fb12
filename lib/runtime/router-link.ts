// A process's lifeline to its host's router, with the pool replica; starts the router if none runs.
import { closeSync, mkdirSync, openSync } from "node:fs";
import { join } from "node:path";
import { nowMs } from "../clock.js";
import { keyOf, localSocketsOf, stateDir, type Config } from "../config.js";
import { ClosedError, ConnectionLostError, NotTrustedError, RouterUnavailableError } from "../errors.js";
import { helloFrom, type Identity } from "../identity.js";
import { debug } from "../log.js";
import { Connection } from "../net/connection.js";
import { connectTcp } from "../net/connect-tcp.js";
import type { TcpTransport } from "../net/tcp-transport.js";
import { committed } from "../net/transport.js";
import { FunctionPool } from "../pool/function-pool.js";
import type { BackplaneStatus } from "../wire/router-answers.js";
import type { HostInfo } from "../wire/router-answers.js";
import type { HostMetrics } from "../wire/router-answers.js";
import type { Offer, Server } from "../server.js";
import { ROUTER_NODE_OPTIONS, ROUTER_PATH } from "../paths.js";
import type { Limits } from "../wire/limits.js";
import type { ItemStream, StreamSource } from "../net/item-stream.js";
import { Kind, type HelloBody, type Message, type PoolBody, type ReqBody, type WelcomeBody } from "../wire/message.js";
import { METRICS_FN, NETWORK_METRICS_FN, processMetrics, type Metrics } from "../metrics.js";

export interface RouterLinkOptions {
  config: Config;
  limits: Limits;
  identity: Identity;
  /** The server of this process, once it serves. */
  server: () => Server | undefined;
  /** A server left the pool: its connections can be dropped and their calls failed. */
  onDeath: (serverId: string) => void;
  metrics: Metrics | undefined;
}

/** The router closed the connection before it welcomed us and sent its pool. */
class LostWhileJoining extends Error {
  constructor(override readonly cause: Error) {
    super(cause.message);
  }
}

/** How long a process waits for a router to answer, counting the time to start one. */
const REACH_ROUTER_MS = 5000;

/** A pause that keeps the process alive: a one-shot caller waiting for its router must not exit. */
const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

/** Starts the host's router (cli/router-process.ts) in the background, detached: it outlives
 * this process. child_process is loaded here, not at start: most processes find a router running. */
async function spawnRouter(config: Config): Promise<void> {
  const { spawn } = await import("node:child_process");
  const dir = stateDir();
  mkdirSync(dir, { recursive: true });
  const log = openSync(join(dir, `router-${config["router.port"]}.log`), "a");
  const child = spawn(
    process.execPath,
    [...ROUTER_NODE_OPTIONS, ROUTER_PATH, "--port", String(config["router.port"]), "--linger", String(config["router.linger"])],
    // The secret goes by environment, never by argument (others see arguments in `ps`), so
    // that a secret given by flag or labc.toml reaches the router too.
    { detached: true, stdio: ["ignore", log, log], env: { ...process.env, LABC_NETWORK_SECRET: config["network.secret"] } },
  );
  child.unref();
  closeSync(log);
  debug("started router pid %d on port %d", child.pid, config["router.port"]);
}

/** Connects to the host's router, starting one when nobody listens on the root port. */
async function reachRouter(config: Config): Promise<TcpTransport> {
  const address = config["router.address"];
  const port = config["router.port"];
  const key = keyOf(config);
  const local = localSocketsOf(config);
  // From the first refusal, not from the call: a script busy for seconds before its loop turns
  // would otherwise read that refusal past the deadline and never start a router.
  let deadline = 0;
  let started = false;
  for (;;) {
    try {
      return await connectTcp(address, port, 1000, key, local);
    } catch (error) {
      // Another secret than the router's: starting a router would not help.
      if (error instanceof NotTrustedError) throw error;
      const code = (error as NodeJS.ErrnoException).code;
      deadline ||= nowMs() + REACH_ROUTER_MS;
      if (code !== "ECONNREFUSED" || nowMs() > deadline) throw new RouterUnavailableError(`${address}:${port}`, error);
      if (!started) {
        // Every server of the host may notice a lost router at once; a random pause lets the
        // first one's router take the port, and the others' start finds it taken and exits.
        await sleep(Math.random() * 100);
        started = true;
        try {
          return await connectTcp(address, port, 1000, key, local);
        } catch {
          await spawnRouter(config);
        }
      }
      await sleep(50);
    }
  }
}

/**
 * This process's lifeline to its host's router: registers the process's server and what it
 * offers, and keeps a replica of the host's pool current from the router's notices. When the
 * router dies, a serving process starts a new one and registers again.
 */
export class RouterLink {
  readonly pool = new FunctionPool();
  welcome: WelcomeBody | undefined;
  /** When discovery of the router is expected to have found every running host (local time). */
  private settledAt = 0;
  private connection: Connection | null = null;
  private connecting: Promise<void> | null = null;
  private registered = false;
  private closed = false;
  private gotPool: (() => void) | null = null;

  constructor(private readonly options: RouterLinkOptions) {}

  get connected(): boolean {
    return this.connection !== null;
  }

  /** Resolves once the router knows this process and the pool replica is current. */
  ready(): Promise<void> {
    if (this.connection) return Promise.resolve();
    return (this.connecting ??= this.connect().finally(() => (this.connecting = null)));
  }

  /** Milliseconds until a router just started has had its chance to find the other hosts. */
  get discoveringMs(): number {
    // Read on every publication: once the moment has passed, no clock is read again.
    if (this.settledAt === 0) return 0;
    const left = this.settledAt - Date.now();
    if (left <= 0) this.settledAt = 0;
    return Math.max(0, left);
  }

  /**
   * Resolves once a router started a moment ago has had its chance to find every running host,
   * and what it heard of them is applied here.
   */
  async discovered(): Promise<void> {
    await this.ready();
    if (this.discoveringMs === 0) return;
    await sleep(this.discoveringMs);
    await this.sync();
  }

  /** Waits until every notice the router sent before now has been applied. */
  async sync(): Promise<void> {
    await this.ready();
    await this.connection?.request(Kind.ping, {}, "sync", this.timeoutMs());
  }

  /** Registers this process's server (once it listens) and everything it offers. */
  async register(): Promise<void> {
    await this.ready();
    const connection = this.connection;
    if (!connection || this.registered) return;
    this.registered = true;
    await connection.request(Kind.hello, this.hello(), "hello", this.timeoutMs());
    await this.announce(this.options.server()!.offer());
  }

  announce(offer: Offer): Promise<void> {
    if (!this.registered || !this.connection || (!offer.functions.length && !offer.topics.length)) {
      return Promise.resolve();
    }
    return this.connection.request(Kind.announce, offer, "announce", this.timeoutMs());
  }

  /** Sends a request to a server by way of the routers (when it cannot be reached directly). */
  forward(target: string, fn: string, args: unknown[], timeoutMs: number, signal?: AbortSignal, trace?: string): Promise<any> {
    // A call's frame, written as calls are; an unending timeout travels as it is (`call` leaves
    // it out, and the router would then apply its own).
    const request = () =>
      timeoutMs > 0 && Number.isFinite(timeoutMs)
        ? this.connection!.call(fn, args, timeoutMs, signal, trace, 0, target)
        : this.connection!.request(Kind.req, { fn, args, target, timeoutMs, trace }, fn, timeoutMs, signal);
    // Connected (the usual case): no promise hop before the request leaves.
    return this.connection ? request() : this.ready().then(request);
  }

  /** Calls a server's function as a stream by way of the routers. */
  async openStream(target: string, fn: string, args: unknown[], timeoutMs: number, signal: AbortSignal | undefined, stream: ItemStream<any>, trace?: string): Promise<StreamSource> {
    await this.ready();
    return this.connection!.openStream(fn, args, { target, trace }, timeoutMs, signal, stream);
  }

  /** Sends a publication to a server by way of the routers (for its queue `groups` only, when `groupsOnly`). */
  forwardPublication(target: string, topic: string, args: unknown[], groups: readonly string[], groupsOnly = false): Promise<void> {
    const body = groups.length ? { topic, args, target, groups, ...(groupsOnly ? { groupsOnly } : {}) } : { topic, args, target };
    return this.ready().then(() => this.sendLeaving(Kind.pub, body));
  }

  /** Sends a publication to every other site, through the backplane of `gateway`'s router (docs/backplane.md). */
  publishToSites(gateway: string, topic: string, args: unknown[], except?: string): Promise<void> {
    return this.ready().then(() => this.sendLeaving(Kind.pub, except === undefined ? { topic, args, gateway } : { topic, args, gateway, except }));
  }

  /** Sends to the router; settles once the frame leaves even if this process exits next. */
  private sendLeaving(kind: Kind, body: object): Promise<void> | undefined {
    const connection = this.connection!;
    connection.send(kind, body);
    return committed(connection.transport);
  }

  /** Asks the router for its table of hosts. */
  async hosts(): Promise<HostInfo[]> {
    // A router started a moment ago has not heard from every host yet.
    await this.discovered();
    return this.connection!.request(Kind.req, { fn: "labc.hosts", args: [] }, "labc.hosts", this.timeoutMs());
  }

  /** This host's router's link to the backplane (null: it is no gateway). */
  async backplane(): Promise<BackplaneStatus | null> {
    await this.ready();
    return this.connection!.request(Kind.req, { fn: "labc.backplane", args: [] }, "labc.backplane", this.timeoutMs());
  }

  /** What every process of this host did, gathered by its router now (`labc metrics`). */
  async metrics(): Promise<HostMetrics> {
    await this.ready();
    return this.connection!.request(Kind.req, { fn: METRICS_FN, args: [] }, METRICS_FN, this.timeoutMs());
  }

  /** The same of every host linked to this one, this host's first (`labc metrics --all`). */
  async networkMetrics(): Promise<HostMetrics[]> {
    await this.discovered();
    return this.connection!.request(Kind.req, { fn: NETWORK_METRICS_FN, args: [] }, NETWORK_METRICS_FN, this.timeoutMs());
  }

  /** `sync`: resolve only once every process and host has applied it (before a stop). */
  withdraw(removed: { functions: string[]; topics: string[]; sync?: boolean }): Promise<void> {
    if (!this.registered || !this.connection) return Promise.resolve();
    return this.connection.request(Kind.withdraw, removed, "withdraw", this.timeoutMs());
  }

  /** Resolves once every request the routers passed to this process's server was answered. */
  served(): Promise<void> {
    return this.connection?.served() ?? Promise.resolve();
  }

  /** Ends the lifeline, after what was written to it left. */
  close(): Promise<void> {
    this.closed = true;
    const closed = this.connection?.close();
    this.connection = null;
    return closed ?? Promise.resolve();
  }

  private timeoutMs(): number {
    return this.options.config["call.timeout"] * 1000;
  }

  private hello(): HelloBody {
    const server = this.options.server();
    return helloFrom(this.options.identity, server ? "server" : "client", { port: server?.port, watch: true, nats: server?.answersOnNats || undefined });
  }

  private async connect(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.join();
      } catch (error) {
        if (!(error instanceof LostWhileJoining)) throw error;
        // A router that lingered out just as we arrived closed on us: trying again starts the
        // next one (it has let go of the port by now).
        if (attempt === 2 || this.closed) throw error.cause;
        debug("the router closed while we joined it; trying again");
        await sleep(50);
      }
    }
  }

  /** Connects to the router, says hello and waits for the pool (LostWhileJoining if the router closes meanwhile). */
  private async join(): Promise<void> {
    const { config, limits } = this.options;
    const transport = await reachRouter(config);
    const connection = new Connection(transport, {
      label: `router at ${config["router.address"]}:${config["router.port"]}`,
      limits,
      refWhilePending: true,
      metrics: this.options.metrics,
      onMessage: this.handle,
      onClose: (closed) => this.lost(closed),
    });
    const gotPool = new Promise<void>((resolve) => (this.gotPool = resolve));
    connection.holdUntil(gotPool);
    try {
      this.welcome = await connection.request(Kind.hello, this.hello(), "hello", this.timeoutMs());
    } catch (error) {
      throw error instanceof ConnectionLostError ? new LostWhileJoining(error) : error;
    }
    this.settledAt = Date.now() + (this.welcome?.discoveringMs ?? 0);
    await gotPool;
    if (connection.closed) throw new LostWhileJoining(new RouterUnavailableError(`${config["router.address"]}:${config["router.port"]}`));
    if (this.closed) {
      connection.close();
      throw new ClosedError("this labc runtime");
    }
    this.connection = connection;
    const server = this.options.server();
    this.registered = server !== undefined;
    if (server) await this.announce(server.offer());
  }

  private readonly handle = (message: Message, connection: Connection): void => {
    switch (message.kind) {
      case Kind.pool:
        this.pool.replaceWith((message.body as PoolBody).servers);
        this.gotPool?.();
        this.gotPool = null;
        return;
      case Kind.announce:
        return this.pool.applyAnnounce(message.body);
      case Kind.withdraw:
        return this.pool.applyWithdraw(message.body);
      case Kind.death:
        this.pool.removeServer(message.body.server);
        return this.options.onDeath(message.body.server);
      case Kind.suspect:
        this.pool.setSuspect(message.body.server, message.body.suspect);
        return;
      case Kind.ping:
        // Answered after every notice before it was applied (a stopping server waits for that).
        return connection.send(Kind.pong, {}, message.id);
      case Kind.req:
        // The router gathering its host's metrics: a process that only calls answers too.
        if ((message.body as ReqBody).fn === METRICS_FN) return connection.reply(message.id, processMetrics.snapshot(this.options.identity.id));
        return this.options.server()?.handle(message, connection);
      default:
        this.options.server()?.handle(message, connection);
    }
  };

  private lost(connection: Connection): void {
    // A connect() still waiting for the pool on this connection gives up (and is retried).
    this.gotPool?.();
    this.gotPool = null;
    if (this.connection !== connection) return;
    this.connection = null;
    this.registered = false;
    if (this.closed) return;
    debug("lost the router; reconnecting");
    // The replica is kept: calls go straight to servers and keep working meanwhile.
    if (this.options.server()) void this.reconnect();
  }

  private async reconnect(): Promise<void> {
    for (let attempt = 0; !this.closed && !this.connection; attempt++) {
      try {
        await this.ready();
      } catch (error) {
        debug("router still unreachable: %s", (error as Error).message);
        // Unreferenced: retrying must not keep a process alive that has nothing else to do.
        await new Promise((done) => setTimeout(done, Math.min(1000, 100 * 2 ** attempt)).unref());
      }
    }
  }
}
