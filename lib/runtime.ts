import { backplaneSettings, type Config } from "./config.js";
import { DirectCalls } from "./backplane/direct-calls.js";
import { decoratedMethods, routeName, type RegisterOptions, type SubscribeOptions } from "./decorators.js";
import {
  BadArgumentsError,
  CancelledError,
  ConnectionLostError,
  NoSuchFunctionError,
  NoSuchHostError,
  StateMismatchError,
} from "./errors.js";
import { helloFrom, hostId, newId, type Identity } from "./identity.js";
import { debug, warn } from "./log.js";
import { namespace, type Namespace } from "./namespace.js";
import { Connection } from "./net/connection.js";
import { connectTcp } from "./net/tcp-transport.js";
import type { GroupMember, Perspective, PoolServer, Resolution } from "./pool/function-pool.js";
import { checkTopic, subscriptionKey } from "./pool/topic-trie.js";
import type { HostInfo } from "./peers.js";
import type { ServiceInfo } from "./services/supervisor.js";
import { RouterLink } from "./router-link.js";
import { offered, Server } from "./server.js";
import { encodePublication, FLAG_FAR } from "./wire/codec.js";
import { isStream } from "./wire/values.js";
import { signatureOf } from "./signature.js";
import { processMetrics, type Metrics } from "./metrics.js";
import { JobMap, type MapOptions } from "./job-map.js";
import { remote, type Remote, type ServiceRef } from "./remote.js";
import { ItemStream, type StreamSource } from "./net/item-stream.js";
import { StreamPump } from "./net/stream-pump.js";
import { limitsFrom, type Limits } from "./net/limits.js";
import { keyOf, type NetworkKey } from "./trust/network-key.js";
import { Kind, REQPUB, SCOPES, VISIBILITIES, type FunctionEntry, type Message, type Param, type Scope } from "./wire/message.js";
import { CallContext } from "./context.js";
import { hooks } from "./hooks.js";

export interface CallOptions {
  /** Milliseconds before the call fails with TimeoutError; default `call.timeout` of the config. */
  timeoutMs?: number;
  /** How far to search: this process's server, this host, or the network (default). */
  scope?: Scope;
  /**
   * Resolve from this host's perspective (its name or host id): its functions come first, and
   * its private functions become callable.
   */
  host?: string;
  /** With `host`: only the server listening on this port of that host. */
  port?: number;
  /** Only a server running this state id (the exact code) may answer. */
  state?: string;
  /** "bottom-up" (default): the most local server, random among equals; "random": any. */
  order?: Resolution;
  /** Aborting it rejects the call with CancelledError and cancels it on the server. */
  signal?: AbortSignal;
}

export interface StreamOptions extends CallOptions {
  /** Items the producer may send ahead of the reader (default 64): what a slow reader holds at most. */
  window?: number;
}

const DEFAULT_WINDOW = 64;

/** Calls from one host's perspective; see `Runtime.getHost`. */
export interface HostHandle {
  readonly name: string;
  call<T = unknown>(name: string, ...args: unknown[]): Promise<T>;
  callWith<T = unknown>(name: string, args: unknown[], options?: Omit<CallOptions, "host" | "port">): Promise<T>;
  /** The typed handle of a service, from that host's perspective (see `Runtime.use`). */
  use<T>(service: ServiceRef<T>): Remote<T>;
  callAll(name: string, ...args: unknown[]): Promise<CallAllResult[]>;
  /** Reads a stream a function returns, from that host's perspective (see `Runtime.streamWith`). */
  stream<T = unknown>(name: string, ...args: unknown[]): ItemStream<T>;
  /** Publishes to the subscribers on that host only (with a port: on that server only). */
  publish(topic: string, ...args: unknown[]): Promise<number>;
  readonly network: Namespace;
  /** The services installed on that host, with their state. */
  services(): Promise<ServiceInfo[]>;
  /** Starts an installed service there (by name, snake_case or unique prefix); resolves once it serves. */
  startService(name: string): Promise<ServiceInfo>;
  stopService(name: string): Promise<ServiceInfo>;
}

/** One answer of `callAll`. */
export interface CallAllResult {
  host: string;
  server: string;
  pid: number;
  port: number;
  value?: unknown;
  error?: Error;
}

/** How long to try a server's own port before going through the routers. */
const DIAL_TIMEOUT_MS = 1000;
/** How long calls to a server of another site go through the gateways after NATS did not reach it. */
const OFF_NATS_MS = 30_000;

/** A server's port could not be opened: nothing was sent to it. */
class Unreachable extends Error {
  constructor(override readonly cause: unknown) {
    super("unreachable");
  }
}

/** Undoes a subscription. */
export type Unsubscribe = () => Promise<void>;

function describe(server: PoolServer): string {
  return `server ${server.id} on ${server.host} (pid ${server.pid}, ${server.address}:${server.port})`;
}

/** A request's body; the timeout travels so that the function knows its deadline. */
/** The options of a call that gives none: one object for all of them. */
const NO_OPTIONS: CallOptions = Object.freeze({});
const NO_CHOICE = new Map<PoolServer, string[]>();
const NO_GROUPS: string[] = [];

function entryFor(name: string, options: RegisterOptions, params: Param[] | undefined): FunctionEntry {
  const scope = options.scope ?? "network";
  const visibility = options.visibility ?? "public";
  if (!SCOPES.includes(scope)) throw new BadArgumentsError(`"${name}": scope must be one of ${SCOPES.join(", ")}`);
  if (!VISIBILITIES.includes(visibility)) {
    throw new BadArgumentsError(`"${name}": visibility must be one of ${VISIBILITIES.join(", ")}`);
  }
  if (options.idempotent !== undefined && typeof options.idempotent !== "boolean") {
    throw new BadArgumentsError(`"${name}": idempotent must be true or false`);
  }
  const entry: FunctionEntry = { name, scope, visibility };
  if (options.idempotent) entry.idempotent = true;
  if (params) entry.params = params;
  return entry;
}

/**
 * Everything labc does inside one process: its server (started on the first register, serve
 * or subscribe), its lifeline to the host's router with the pool replica, and the persistent
 * connections it calls other servers over. The module-level API uses one per process; tests
 * make several.
 */
export class Runtime {
  readonly identity: Identity;
  readonly limits: Limits;
  /** Where this runtime's calls, publications and connections count (`metrics.enabled`). */
  readonly metrics: Metrics | undefined;
  /** The network's key; undefined in an open network. */
  readonly key: NetworkKey | undefined;
  readonly link: RouterLink;
  /** On a gateway's host: calls to and from other sites on NATS, past the gateways. */
  private readonly acrossSites: DirectCalls;
  private server: Server | undefined;
  private starting: Promise<Server> | null = null;
  /** Open connections to servers, by server id. */
  private readonly direct = new Map<string, Connection>();
  private readonly dialing = new Map<string, Promise<Connection>>();
  private ownPerspective: Perspective | undefined;
  /** Servers whose own port cannot be reached from here: called through the routers. */
  private readonly routed = new Set<string>();
  /** Servers of other sites that NATS did not reach lately, and until when they are left alone. */
  private readonly offNats = new Map<string, number>();
  /** Connections to servers that said they leave: nothing new is sent on them. */
  private readonly leaving = new WeakSet<Connection>();
  /** `call.scope` and `call.timeout` of the config, read once: every call needs them. */
  private readonly defaultScope: Scope;
  private readonly defaultTimeoutMs: number;
  /** Publications still finding their subscribers: `close()` waits for them. */
  private readonly publishing = new Set<Promise<number>>();
  /** Publications each queue group has had from here: its members take turns. */
  private readonly groupTurns = new Map<string, number>();
  private ownHost: HostHandle | undefined;

  constructor(readonly config: Config, options: { state?: string } = {}) {
    this.identity = {
      id: newId(),
      host: config["host.name"],
      hostId: config["host.id"] || hostId(config["host.name"]),
      state: options.state,
      realm: config["network.realm"],
    };
    this.limits = limitsFrom(config);
    this.metrics = config["metrics.enabled"] ? processMetrics : undefined;
    this.key = keyOf(config);
    this.defaultScope = config["call.scope"];
    this.defaultTimeoutMs = config["call.timeout"] * 1000;
    this.acrossSites = new DirectCalls(backplaneSettings(config, this.key !== undefined), `labc ${this.identity.host} pid ${process.pid}`);
    this.link = new RouterLink({
      config,
      limits: this.limits,
      metrics: this.metrics,
      identity: this.identity,
      server: () => this.server,
      onDeath: (serverId) => {
        // Calls waiting on it fail now, even when its host went silent rather than closed.
        this.direct.get(serverId)?.close();
        this.routed.delete(serverId);
        this.offNats.delete(serverId);
      },
    });
  }

  /** Functions as properties: `runtime.network.echo.add(1, 2)`; `network.callAll("ping")`. */
  readonly network: Namespace & { callAll: (name: string, ...args: unknown[]) => Promise<CallAllResult[]> } = namespace(
    (name, args) => this.callWith(name, args),
    { callAll: (name: string, ...args: unknown[]) => this.callAll(name, args) },
  );

  /**
   * Calls made from another host's perspective (`getHost("computer1").call("f")`), or on one of
   * its servers only (`getHost("computer1", 4000)`).
   */
  getHost(host: string, port?: number): HostHandle {
    const fixed = { host, port };
    return {
      name: host,
      call: (name, ...args) => this.callWith(name, args, fixed),
      callWith: (name, args, options = {}) => this.callWith(name, args, { ...options, ...fixed }),
      use: (service) => remote(service, (name, args) => this.callWith(name, args, fixed)),
      callAll: (name, ...args) => this.callAll(name, args, fixed),
      stream: (name, ...args) => this.streamWith(name, args, fixed),
      publish: (topic, ...args) => this.publishTo(topic, args, fixed),
      network: namespace((name, args) => this.callWith(name, args, fixed)),
      // ServiceControl of that host answers (bottom-up from its perspective).
      services: () => this.callWith("service_control.listServices", [], fixed),
      startService: (name) => this.callWith("service_control.startService", [name], { ...fixed, timeoutMs: 60_000 }),
      stopService: (name) => this.callWith("service_control.stopService", [name], { ...fixed, timeoutMs: 60_000 }),
    };
  }

  /**
   * Serves a service in this process by its name, as `labc serve NAME` finds it (`./services`
   * of the current folder, then the installed ones), with its settings of `[services.<Class>]`;
   * resolves with its instances once they serve.
   */
  async load(name: string): Promise<object[]> {
    const { findService, loadService } = await import("./services/loader.js");
    const { loadConfig } = await import("./config.js");
    const { services } = loadConfig();
    const { instances } = await loadService(findService(name), (className) => services[className]?.options);
    await this.serve(...instances);
    return instances;
  }

  /** This host, as `getHost(its name)` gives it: `localhost.network.core.info()`. */
  get localhost(): HostHandle {
    return (this.ownHost ??= this.getHost(this.identity.host));
  }

  /** The port this process serves on, once it serves. */
  get port(): number | undefined {
    return this.server?.port;
  }

  /** Exposes every @register and @subscribe method of each instance. */
  async serve(...instances: object[]): Promise<void> {
    const server = await this.serving();
    const functions: FunctionEntry[] = [];
    const topics: string[] = [];
    for (const instance of instances) {
      const className = instance.constructor.name;
      const methods = decoratedMethods(instance);
      if (methods.length === 0) throw new BadArgumentsError(`${className} has no @register or @subscribe method`);
      const route = routeName(className);
      for (const { key, method, register, subscribe, watch } of methods) {
        if (watch && !register) {
          throw new BadArgumentsError(`${className}.${key}: @watch publishes what calls return, so it needs @register too`);
        }
        if (register) {
          const name = register.name ?? key;
          const fn = watch ? this.watching(method, watch, `${className}.${key}`) : method;
          const params = signatureOf(method, key, Object.getPrototypeOf(instance));
          for (const full of [name, `${route}.${name}`]) {
            const entry = entryFor(full, register, params);
            if (server.addFunction(entry, fn, instance, full === name)) functions.push(entry);
            else warn(`"${name}" is already served by this process; ${route}.${name} reaches ${className}.${key}`);
          }
        }
        for (const { pattern = key, group } of subscribe ?? []) {
          if (server.addHandler(pattern, method, instance, `${className}.${key}`, false, group).first) topics.push(subscriptionKey(pattern, group));
        }
      }
    }
    await this.link.announce({ functions: functions.filter(offered), topics });
  }

  /** Exposes a plain function under `options.name` or its own name. */
  async register(fn: Function, options: RegisterOptions = {}): Promise<void> {
    const name = options.name ?? fn.name;
    if (!name) throw new BadArgumentsError("register: an anonymous function needs options.name");
    const entry = entryFor(name, options, signatureOf(fn, name));
    const server = await this.serving();
    server.addFunction(entry, fn, undefined);
    if (offered(entry)) await this.link.announce({ functions: [entry], topics: [] });
  }

  /** Removes a function; callers elsewhere stop seeing it at once. */
  async unregister(name: string): Promise<boolean> {
    const entry = this.server?.removeFunction(name);
    if (entry && offered(entry)) await this.link.withdraw({ functions: [name], topics: [] });
    return entry !== undefined;
  }

  /** `method`, publishing what each call returns on `topics` once it succeeded (`@watch`). */
  private watching(method: Function, topics: string[], label: string): Function {
    for (const topic of topics) checkTopic(topic);
    const announce = (value: unknown) => {
      for (const topic of topics) {
        this.publish(topic, value).catch((error) => warn(`@watch of ${label} did not publish on ${topic}: ${(error as Error).message}`));
      }
    };
    return function (this: unknown, ...args: unknown[]): unknown {
      const result = method.apply(this, args);
      if (!(result instanceof Promise)) {
        announce(result);
        return result;
      }
      return result.then((value) => {
        announce(value);
        return value;
      });
    };
  }

  /**
   * Calls `fn(...args)` for every publication on a topic matching `pattern` (default: fn's
   * name), or `fn(topic, ...args)` with `withTopic`; in a queue `group`, for its share of them.
   */
  async subscribe(fn: Function, pattern: string = fn.name, options: SubscribeOptions & { withTopic?: boolean } = {}): Promise<Unsubscribe> {
    if (!pattern) throw new BadArgumentsError("subscribe: an anonymous function needs a topic pattern");
    const key = subscriptionKey(pattern, options.group);
    const server = await this.serving();
    const handle = server.addHandler(pattern, fn, undefined, fn.name || pattern, options.withTopic, options.group);
    if (handle.first) await this.link.announce({ functions: [], topics: [key] });
    return async () => {
      if (handle.remove()) await this.link.withdraw({ functions: [], topics: [key] });
    };
  }

  call<T = unknown>(name: string, ...args: unknown[]): Promise<T> {
    return this.callWith<T>(name, args);
  }

  /**
   * The typed handle of a service: `const echo = labc.use(Echo)` (or `use<Echo>("echo")`), then
   * `await echo.add(1, 2)` is a call of `echo.add`, checked by the compiler against the class.
   */
  use<T>(service: ServiceRef<T>): Remote<T> {
    return remote(service, (name, args) => this.callWith(name, args));
  }

  callWith<T = unknown>(name: string, args: unknown[], options: CallOptions = NO_OPTIONS): Promise<T> {
    if (hooks.active) return hooks.call(name, args, options.timeoutMs ?? this.defaultTimeoutMs, (args, trace) => this.sendCall<T>(name, args, options, trace));
    return this.sendCall<T>(name, args, options);
  }

  private sendCall<T>(name: string, args: unknown[], options: CallOptions, trace?: string): Promise<T> {
    const scope = options.scope ?? this.defaultScope;
    const timeoutMs = options.timeoutMs ?? this.defaultTimeoutMs;
    if (options.host === undefined && options.state === undefined && options.order !== "random") {
      if (this.server?.functions.has(name)) return this.invokeHere(name, args, timeoutMs, options.signal, trace) as Promise<T>;
      if (scope === "server") return Promise.reject(new NoSuchFunctionError(name, scope, "not in this process"));
      if (this.link.connected) {
        // Hot path: pool replica and connection ready, nothing to await before sending.
        const target = this.link.pool.resolve(name, scope, this.perspective());
        const connection = target && this.direct.get(target.id);
        if (connection) return connection.call(name, args, timeoutMs, options.signal, trace);
      }
    }
    return this.callFar(name, scope, options, (target) => this.send(target, name, args, timeoutMs, options.signal, trace)) as Promise<T>;
  }

  stream<T = unknown>(name: string, ...args: unknown[]): ItemStream<T> {
    return this.streamWith<T>(name, args);
  }

  /**
   * Calls a function that returns a stream (an `async function*`, any AsyncIterable) and reads
   * its items as they come: `for await (const line of labc.stream("tail", "log.txt"))`. At most
   * `options.window` items (64) are on their way or unread at once, so a slow reader slows the
   * producer; `break` ends the producer. A function that returns a value gives that one item.
   * `timeoutMs` bounds the wait for the first item; after it, only `signal` ends the stream.
   */
  streamWith<T = unknown>(name: string, args: unknown[], options: StreamOptions = NO_OPTIONS): ItemStream<T> {
    const window = options.window ?? DEFAULT_WINDOW;
    if (!Number.isInteger(window) || window < 1 || window > 2 ** 31) throw new BadArgumentsError(`stream window must be a whole number from 1, not ${window}`);
    const scope = options.scope ?? this.defaultScope;
    const timeoutMs = options.timeoutMs ?? this.defaultTimeoutMs;
    const open = (args: unknown[], stream: ItemStream<T>, trace?: string): Promise<StreamSource> => {
      if (options.host === undefined && options.state === undefined && options.order !== "random" && this.server?.functions.has(name)) {
        return this.streamHere(name, args, options.signal, stream, trace);
      }
      if (scope === "server") return Promise.reject(new NoSuchFunctionError(name, scope, "not in this process"));
      return this.callFar(name, scope, options, (target) => this.sendStream(target, name, args, timeoutMs, options.signal, stream, trace));
    };
    return new ItemStream<T>((stream) => {
      if (!hooks.active) return open(args, stream);
      // For hooks, a stream's call is done once the server began it: `after` has no value to see.
      let source: StreamSource;
      const opened = hooks.call(name, args, timeoutMs, (args, trace) => open(args, stream, trace).then((began) => void (source = began)));
      return opened.then(() => source);
    }, window);
  }

  /** Opens a stream from one server: in-process, over its own port, or through the routers. */
  private async sendStream(
    target: PoolServer,
    name: string,
    args: unknown[],
    timeoutMs: number,
    signal: AbortSignal | undefined,
    stream: ItemStream<any>,
    trace: string | undefined,
  ): Promise<StreamSource> {
    if (target.id === this.identity.id) return this.streamHere(name, args, signal, stream, trace);
    const connection = await this.reach(target);
    if (!connection) return this.link.openStream(target.id, name, args, timeoutMs, signal, stream, trace);
    if (this.leaving.has(connection)) throw new Unreachable(new ConnectionLostError(describe(target), name));
    return connection.openStream(name, args, trace === undefined ? {} : { trace }, timeoutMs, signal, stream);
  }

  /** A stream of a function of this very process: its items are handed over as they are. */
  private async streamHere(name: string, args: unknown[], signal: AbortSignal | undefined, stream: ItemStream<any>, trace: string | undefined): Promise<StreamSource> {
    if (signal?.aborted) throw new CancelledError(name, signal.reason);
    const call = new CallContext(name, undefined, undefined, false, trace);
    let value: unknown;
    try {
      value = await this.server!.invoke(name, args, false, call);
    } catch (error) {
      call.finish();
      throw error;
    }
    if (!isStream(value)) {
      call.finish();
      stream.end({ v: value });
      return { grant() {}, cancel() {} };
    }
    const pump = new StreamPump(value, {
      item: (item) => stream.push(item),
      end: () => stream.end({ v: undefined, done: true }),
      fail: (error) => stream.fail(error),
      congested: false,
      drain: () => Promise.resolve(),
      closed: false,
    }, call, stream.window);
    const cancel = () => pump.cancel(new CancelledError(name, signal!.reason));
    signal?.addEventListener("abort", cancel, { once: true });
    void pump.run().finally(() => signal?.removeEventListener("abort", cancel));
    return { grant: (n) => pump.credit(n), cancel: () => pump.cancel() };
  }

  /**
   * Calls `name` once for each item (the item is its one argument), spread over every server
   * offering it: the server with the fewest calls in flight gets the next item (at most
   * `perServer`, 2, at once), so a slow one gets fewer. Await it for the results in input order;
   * `for await` it for each outcome as it completes. An item whose server is lost goes to another
   * when the function is registered `idempotent: true`, else it fails with LABC_ITEM_LOST; the
   * others go on, and a MapError accounts for every item.
   */
  map<T = unknown>(name: string, items: Iterable<unknown>, options: MapOptions & Pick<CallOptions, "scope" | "host"> = {}): JobMap<T> {
    const scope = options.scope ?? this.defaultScope;
    const unsent = new WeakSet<object>();
    const servers = () => {
      const all = this.link.pool.candidates(name, scope, this.perspective(options.host));
      const well = all.filter((server) => !server.suspect);
      return well.length ? well : all;
    };
    const ready = (async () => {
      await this.link.sync();
      // On a fresh host, the servers elsewhere may not be known yet: give discovery its moment.
      if (servers().length === 0 && this.link.discoveringMs > 0) {
        await new Promise((done) => setTimeout(done, this.link.discoveringMs));
        await this.link.sync();
      }
    })();
    return new JobMap<T>(name, [...items], options, {
      servers,
      missing: () => new NoSuchFunctionError(name, scope, "no server offers it"),
      call: (server, item, timeoutMs, signal) =>
        this.sendHooked(server, name, [item], timeoutMs ?? this.defaultTimeoutMs, signal).catch((error) => {
          if (!(error instanceof Unreachable)) throw error;
          const lost = new ConnectionLostError(describe(server), name, error.cause);
          unsent.add(lost);
          throw lost;
        }),
      idempotent: (server) => server.functions.get(name)?.idempotent === true,
      // A server that was gone, or no longer has the function, did not run it (a NoSuchFunctionError
      // naming another function came from inside it: it ran).
      sent: (error) => !unsent.has(error as object) && !(error instanceof NoSuchFunctionError && error.functionName === name),
    }, ready);
  }

  /** Calls every server that offers `name` (from the perspective chosen), each answer or error. */
  async callAll(name: string, args: unknown[], options: CallOptions = {}): Promise<CallAllResult[]> {
    const scope = options.scope ?? this.defaultScope;
    const timeoutMs = options.timeoutMs ?? this.defaultTimeoutMs;
    await this.link.sync();
    const from = this.perspective(options.host);
    const targets = this.link.pool
      .candidates(name, scope, from)
      .filter((server) => options.port === undefined || server.port === options.port);
    return Promise.all(
      targets.map(async (target): Promise<CallAllResult> => {
        const result: CallAllResult = { host: target.host, server: target.id, pid: target.pid, port: target.port };
        try {
          result.value = await this.sendHooked(target, name, args, timeoutMs, options.signal);
        } catch (error) {
          result.error = error as Error;
        }
        return result;
      }),
    );
  }

  /** Delivers to every matching subscriber; resolves with how many servers got it. */
  publish(topic: string, ...args: unknown[]): Promise<number> {
    if (hooks.active) return hooks.publish(topic, args, (args) => this.publishNow(topic, args));
    return this.publishNow(topic, args);
  }

  private publishNow(topic: string, args: unknown[]): Promise<number> {
    this.metrics?.published(topic);
    try {
      const here = this.server && this.server.deliver(topic, args) > 0 ? 1 : 0;
      if (this.link.connected && this.link.discoveringMs === 0) {
        // Hot path: every subscriber's connection is open, so the frame goes out now, unawaited.
        // subscribersOf checks the topic (the trie refuses wildcards in it).
        const targets = this.subscribersOf(topic);
        const members = this.link.pool.groupMembers(topic);
        if (members.length) return this.tracked(this.deliver(topic, args, targets, here, this.chooseMembers(members)));
        if (targets.length === 0) return Promise.resolve(here);
        if (targets.every((target) => this.direct.has(target.id))) {
          const frame = encodePublication(topic, args, this.limits);
          let slow: Promise<void>[] | undefined;
          let reached = here;
          for (const target of targets) {
            const connection = this.direct.get(target.id)!;
            if (!connection.publish(frame)) continue;
            reached++;
            if (connection.congested) (slow ??= []).push(connection.drain());
          }
          // A subscriber that reads slower than we publish: an awaiting publisher waits for it.
          return slow ? Promise.all(slow).then(() => reached) : Promise.resolve(reached);
        }
      }
      checkTopic(topic);
      return this.tracked(this.publishFar(topic, args, here));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Delivers to the subscribers of `topic` on one host only (its name or host id), or on one
   * server of it (`port`): `getHost("computer1").publish(...)`. Resolves with how many servers
   * got it; a host nobody knows is a NoSuchHostError.
   */
  publishTo(topic: string, args: unknown[], where: { host: string; port?: number | undefined }): Promise<number> {
    const targeted = async (args: unknown[]) => {
      checkTopic(topic);
      await this.link.sync();
      const { hostId } = this.perspective(where.host);
      const isTarget = (server: { hostId: string; port: number }) =>
        server.hostId === hostId && (where.port === undefined || server.port === where.port);
      const server = this.server;
      const here = server && isTarget({ hostId: this.identity.hostId, port: server.port }) && server.deliver(topic, args) > 0 ? 1 : 0;
      const members = this.link.pool.groupMembers(topic).filter((member) => isTarget(member.server));
      // One host is named: its servers on another site get it one by one, not on the site subject.
      return this.deliver(topic, args, this.subscribersOf(topic).filter(isTarget), here, this.chooseMembers(members), { oneByOne: true });
    };
    return this.tracked(hooks.active ? hooks.publish(topic, args, targeted) : targeted(args));
  }

  /**
   * A publication that one subscriber answers: the nearest subscriber of `topic` (this
   * process, this host, then the network, random among equals) runs as a called function and
   * its result is returned; every other matching subscriber gets it as a publication.
   */
  async reqpub(topic: string, ...args: unknown[]): Promise<any> {
    checkTopic(topic);
    await this.link.discovered();
    const here = this.server?.subscribes(topic) === true;
    const others = this.subscribersOf(topic);
    const answering = here ? undefined : nearest(others, this.identity.hostId);
    if (!here && !answering) throw new NoSuchFunctionError(`${REQPUB} ${topic}`, this.defaultScope, `no subscriber of "${topic}"`);
    const ask = (args: unknown[], trace?: string) =>
      here ? this.invokeHere(REQPUB, args, this.defaultTimeoutMs, undefined, trace) : this.send(answering!, REQPUB, args, this.defaultTimeoutMs, undefined, trace);
    const answer = hooks.active ? hooks.call(REQPUB, [topic, ...args], this.defaultTimeoutMs, ask) : ask([topic, ...args]);
    // The answering server ran its subscriber already: its queue groups are left to the others.
    const answerer = answering?.id ?? this.identity.id;
    const members = this.link.pool.groupMembers(topic).filter((member) => member.server.id !== answerer);
    const except = answering?.gateway === undefined ? undefined : answering.id;
    void this.tracked(this.deliver(topic, args, others.filter((server) => server !== answering), 0, this.chooseMembers(members), { except }));
    return answer;
  }

  /** A publication still on its way, which `close()` waits for. */
  private tracked(publication: Promise<number>): Promise<number> {
    this.publishing.add(publication);
    const done = () => this.publishing.delete(publication);
    publication.then(done, done);
    return publication;
  }

  /** The names of the hosts this process knows of, with their ids. */
  async hosts(): Promise<HostInfo[]> {
    return this.link.hosts();
  }

  private subscribersOf(topic: string): readonly PoolServer[] {
    const all = this.link.pool.subscribers(topic);
    return all.some((server) => server.id === this.identity.id) ? all.filter((server) => server.id !== this.identity.id) : all;
  }

  private async publishFar(topic: string, args: unknown[], here: number): Promise<number> {
    // On a fresh host, subscribers elsewhere are not known yet.
    await this.link.discovered();
    return this.deliver(topic, args, this.subscribersOf(topic), here, this.chooseMembers(this.link.pool.groupMembers(topic)));
  }

  /**
   * For each queue group among `members`, the member that gets this publication: each group's
   * members take turns (per publisher, from a random one), those whose router has not heard from
   * them lately only when no other is left, members on other sites only when the group has none
   * on this LAN. Returns the groups chosen per server.
   */
  private chooseMembers(members: readonly GroupMember[]): Map<PoolServer, string[]> {
    if (members.length === 0) return NO_CHOICE;
    const chosen = new Map<PoolServer, string[]>();
    // A server with several subscriptions in a group (two patterns) takes one turn, as one member.
    const byGroup = new Map<string, Set<PoolServer>>();
    for (const { server, group } of members) {
      const servers = byGroup.get(group);
      if (servers) servers.add(server);
      else byGroup.set(group, new Set([server]));
    }
    for (const [group, set] of byGroup) {
      const all = [...set];
      const lan = all.filter((server) => server.gateway === undefined);
      const servers = lan.length ? lan : all;
      const well = servers.filter((server) => !server.suspect);
      const from = well.length ? well : servers;
      // A random first turn: publishers that publish once each (`labc publish`) spread too.
      const turn = this.groupTurns.get(group) ?? Math.floor(Math.random() * 0x10000);
      this.groupTurns.set(group, turn + 1);
      const server = from[turn % from.length]!;
      const groups = chosen.get(server);
      if (groups) groups.push(group);
      else chosen.set(server, [group]);
    }
    return chosen;
  }

  /**
   * Sends a publication to `targets` (their subscribers outside queue groups) and to the servers
   * `chosen` for queue groups (one subscriber of each group there); resolves with `reached` plus
   * how many servers got it. Subscribers on other sites get one publication per gateway, which
   * the backplane carries to every site (`except` one server there), unless `oneByOne`.
   */
  private async deliver(
    topic: string,
    args: unknown[],
    targets: readonly PoolServer[],
    reached: number,
    chosen: Map<PoolServer, string[]> = NO_CHOICE,
    { oneByOne = false, except }: { oneByOne?: boolean; except?: string | undefined } = {},
  ): Promise<number> {
    let all = targets;
    if (chosen.size) {
      for (const [server, groups] of chosen) {
        // This process was chosen for some of its groups: they run here, now.
        if (server.id === this.identity.id && this.server && this.server.deliverGroups(topic, args, groups) > 0 && reached === 0) reached = 1;
      }
      all = [...new Set([...targets, ...chosen.keys()])].filter((server) => server.id !== this.identity.id);
    }
    if (all.length === 0) return reached;
    // How many subscribers outside groups each gateway's publication to the other sites reaches.
    const bySite = new Map<string, number>();
    if (!oneByOne) {
      for (const target of targets) if (target.gateway !== undefined) bySite.set(target.gateway, (bySite.get(target.gateway) ?? 0) + 1);
    }
    let plain: Buffer | Buffer[] | undefined;
    const sent = all.map(async (target) => {
      const groups = chosen.get(target) ?? NO_GROUPS;
      const onSite = !oneByOne && target.gateway !== undefined;
      // Its subscribers outside groups get the site publication; here only its groups are left.
      if (onSite && groups.length === 0) return;
      try {
        const connection = await this.reach(target);
        if (connection && this.leaving.has(connection)) return;
        if (connection) {
          if (!connection.publish(groups.length ? encodePublication(topic, args, this.limits, groups) : (plain ??= encodePublication(topic, args, this.limits)))) return;
        } else await this.link.forwardPublication(target.id, topic, args, groups, onSite);
        if (!(onSite && targets.includes(target))) reached++;
      } catch (error) {
        debug("publication on %s not delivered to %s: %s", topic, describe(target), (error as Error).message);
      }
    });
    const toSites = [...bySite].map(async ([gateway, count]) => {
      try {
        await this.link.publishToSites(gateway, topic, args, except);
        reached += count;
      } catch (error) {
        debug("publication on %s not passed to the other sites: %s", topic, (error as Error).message);
      }
    });
    await Promise.all([...sent, ...toSites]);
    return reached;
  }

  /**
   * Stops without losing anything: what this process serves leaves every pool first, every
   * caller is told and the calls already received are answered (up to `server.drain_timeout`),
   * and the promise resolves once everything already sent or published is handed to the system,
   * so that a script may exit right after it.
   */
  async close(): Promise<void> {
    const server = this.server;
    const graceMs = this.config["server.drain_timeout"] * 1000;
    if (server) {
      const { functions, topics } = server.offer();
      if (functions.length || topics.length) {
        await this.link.withdraw({ functions: functions.map((entry) => entry.name), topics, sync: true }).catch((error) => {
          debug("withdrawing before the stop failed: %s", (error as Error).message);
        });
      }
      await server.drain(graceMs, this.link);
    }
    await Promise.allSettled(this.publishing);
    const direct = [...this.direct.values()];
    this.direct.clear();
    await Promise.all([this.link.close(), ...direct.map((connection) => connection.close(graceMs)), server?.close(graceMs)]);
    await this.acrossSites.close();
    this.server = undefined;
    this.starting = null;
  }

  /** From this process, or from the host named (by name or id). */
  private perspective(host?: string): Perspective {
    // The hot path's perspective is made once: it never changes.
    this.ownPerspective ??= {
      hostId: this.identity.hostId,
      serverId: this.identity.id,
      callerHostId: this.identity.hostId,
      callerServerId: this.identity.id,
      realm: this.identity.realm,
    };
    if (host === undefined) return this.ownPerspective;
    const named = { ...this.ownPerspective, serverId: undefined, named: true };
    if (host === this.identity.host || host === this.identity.hostId) return named;
    const names = new Map<string, string>();
    for (const server of this.link.pool.servers.values()) names.set(server.host, server.hostId);
    const hostId = names.get(host) ?? ([...names.values()].includes(host) ? host : undefined);
    if (hostId === undefined) throw new NoSuchHostError(host, [...names.keys()].sort());
    return { ...named, hostId };
  }

  private serving(): Promise<Server> {
    this.starting ??= (async () => {
      const server = new Server({
        id: this.identity.id,
        address: this.config["server.address"],
        limits: this.limits,
        sendStacks: this.config["errors.send_stack"],
        key: this.key,
        metrics: this.metrics,
      });
      await server.listen();
      await this.acrossSites.answer(server);
      this.server = server;
      try {
        await this.link.register();
      } catch (error) {
        this.server = undefined;
        this.starting = null;
        await server.close();
        throw error;
      }
      return server;
    })();
    return this.starting;
  }

  /** A function of this very process: called in it, with a context as a remote call has. */
  private async invokeHere(name: string, args: unknown[], timeoutMs: number, signal?: AbortSignal, trace?: string): Promise<unknown> {
    const call = new CallContext(name, timeoutMs > 0 && Number.isFinite(timeoutMs) ? Date.now() + timeoutMs : undefined, undefined, false, trace);
    if (signal?.aborted) throw new CancelledError(name, signal.reason);
    const cancel = () => call.cancel(new CancelledError(name, signal!.reason));
    signal?.addEventListener("abort", cancel, { once: true });
    try {
      return await this.server!.invoke(name, args, false, call);
    } finally {
      call.finish();
      signal?.removeEventListener("abort", cancel);
    }
  }

  /**
   * Calls `name` of the server `target` as a caller on another host would: its frame carries
   * FLAG_FAR, so that the server refuses what other hosts may not call and its function sees
   * `fromOtherHost` (in this very process, the same through the context). For the router's HTTP
   * endpoint, which acts for requests from other computers (cli/status-board.ts).
   */
  async callAsOtherHost<T = unknown>(target: PoolServer, name: string, args: unknown[], timeoutMs = this.defaultTimeoutMs): Promise<T> {
    if (target.id === this.identity.id && this.server) {
      const call = new CallContext(name, Date.now() + timeoutMs, undefined, true);
      try {
        return (await this.server.invoke(name, args, true, call)) as T;
      } finally {
        call.finish();
      }
    }
    let connection: Connection | null;
    try {
      connection = await this.reach(target);
    } catch (error) {
      throw error instanceof Unreachable ? new ConnectionLostError(describe(target), name, error.cause) : error;
    }
    // Through the routers only to another host, whose router marks it as from another host too.
    if (!connection) return this.link.forward(target.id, name, args, timeoutMs) as Promise<T>;
    return connection.call(name, args, timeoutMs, undefined, undefined, FLAG_FAR);
  }

  /**
   * Finds the server that answers `name` (waiting for the pool and discovery where needed) and
   * sends to it with `send`; when nothing could be sent to it (it died after the pool listed
   * it), tries another once.
   */
  private async callFar<T>(name: string, scope: Scope, options: CallOptions, send: (target: PoolServer) => Promise<T>): Promise<T> {
    await this.link.ready();
    const choose = () => {
      let from: Perspective;
      try {
        from = this.perspective(options.host);
      } catch (error) {
        if (this.link.discoveringMs > 0) return undefined; // the host may not be found yet
        throw error;
      }
      const only = (s: PoolServer) =>
        (options.port === undefined || (s.hostId === from.hostId && s.port === options.port)) &&
        (options.state === undefined || s.state === options.state);
      return this.link.pool.resolve(name, scope, from, options.order, only);
    };
    let target = choose();
    if (!target) {
      // The pool may lag a registration that happened just before this call: catch up once.
      await this.link.sync();
      target = choose();
    }
    // A router that has just started (for this very call, say) may not have found the other
    // hosts yet: the first call on a fresh host waits for that, later ones never do.
    while (!target && this.link.discoveringMs > 0) {
      await new Promise((done) => setTimeout(done, Math.min(100, this.link.discoveringMs)));
      await this.link.sync();
      target = choose();
    }
    if (!target && options.state !== undefined) {
      const running = this.link.pool
        .candidates(name, scope, this.perspective(options.host))
        .map((s) => `${s.state ?? "no state id"} on ${s.host} (pid ${s.pid})`);
      if (running.length) throw new StateMismatchError(name, options.state, running);
    }
    if (!target) {
      const servers = [...this.link.pool.servers.values()];
      const hosts = new Set(servers.map((server) => server.hostId)).size;
      const where = `searched ${servers.length} server(s) on ${hosts} host(s)${options.host === undefined ? "" : ` from ${options.host}`}`;
      throw new NoSuchFunctionError(name, scope, where);
    }
    try {
      return await send(target);
    } catch (error) {
      if (!(error instanceof Unreachable)) throw error;
      // Nothing was sent: if the server died after the pool listed it, another may answer.
      await this.link.sync();
      const other = choose();
      if (!other || other.id === target.id) throw new ConnectionLostError(describe(target), name, error.cause);
      return send(other);
    }
  }

  /** Sends one request to one server: in-process, over its own port, or through the routers. */
  private async send(target: PoolServer, name: string, args: unknown[], timeoutMs: number, signal?: AbortSignal, trace?: string): Promise<unknown> {
    if (target.id === this.identity.id) return this.invokeHere(name, args, timeoutMs, signal, trace);
    const connection = await this.reach(target);
    if (!connection) return this.link.forward(target.id, name, args, timeoutMs, signal, trace);
    // It said it leaves while we waited for the connection: nothing may be sent to it now.
    if (this.leaving.has(connection)) throw new Unreachable(new ConnectionLostError(describe(target), name));
    return connection.call(name, args, timeoutMs, signal, trace);
  }

  /** `send` for a call of its own (an item of a map, a server of callAll): the hooks see it. */
  private sendHooked(target: PoolServer, name: string, args: unknown[], timeoutMs: number, signal?: AbortSignal): Promise<unknown> {
    if (!hooks.active) return this.send(target, name, args, timeoutMs, signal);
    return hooks.call(name, args, timeoutMs, (args, trace) => this.send(target, name, args, timeoutMs, signal, trace));
  }

  /**
   * The connection to a server's own port, or null when only the routers can reach it (its
   * host is elsewhere and its port is firewalled or bound to loopback). Throws Unreachable when
   * a server of this host cannot be reached: it is gone.
   */
  private async reach(target: PoolServer): Promise<Connection | null> {
    if (target.gateway !== undefined) return this.reachOnNats(target);
    if (this.routed.has(target.id)) return null;
    try {
      return await this.dial(target);
    } catch (error) {
      if (target.hostId === this.identity.hostId) throw new Unreachable(error);
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
    if (!target.nats || !this.acrossSites.linkable || (this.offNats.get(target.id) ?? 0) > performance.now()) return null;
    try {
      return await this.dial(target);
    } catch (error) {
      debug("%s not on NATS from here (%s): through the gateways for %d s", describe(target), (error as Error).message, OFF_NATS_MS / 1000);
      this.offNats.set(target.id, performance.now() + OFF_NATS_MS);
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
    this.link.pool.removeServer(target.id);
    this.leaving.add(connection);
    if (this.direct.get(target.id) === connection) this.direct.delete(target.id);
    if (message.id !== 0) connection.reply(message.id, null);
  }

  /** The persistent connection to a server, opened on first use: to its port, or on NATS to a server of another site. */
  private dial(target: PoolServer): Promise<Connection> {
    const open = this.direct.get(target.id);
    if (open) return Promise.resolve(open);
    let pending = this.dialing.get(target.id);
    if (!pending) {
      const onNats = target.gateway !== undefined;
      const opening = onNats
        ? this.acrossSites.pipe(target.id).then((pipe) => pipe ?? Promise.reject(new Error("this process has no NATS link")))
        : connectTcp(target.address, target.port, DIAL_TIMEOUT_MS, this.key);
      pending = opening
        .then(async (transport) => {
          const connection: Connection = new Connection(transport, {
            label: onNats ? `${describe(target)} on NATS` : describe(target),
            limits: this.limits,
            metrics: this.metrics,
            refWhilePending: true,
            onMessage: (message) => this.fromServer(target, connection, message),
            onClose: () => this.direct.get(target.id) === connection && this.direct.delete(target.id),
          });
          connection.send(Kind.hello, helloFrom(this.identity, "client"));
          // NATS takes frames that nobody subscribes to: a ping proves that the server takes them.
          if (onNats) {
            await connection.request(Kind.ping, {}, "ping", DIAL_TIMEOUT_MS).catch((error) => {
              void connection.close();
              throw error;
            });
          }
          this.direct.set(target.id, connection);
          return connection;
        })
        .finally(() => this.dialing.delete(target.id));
      this.dialing.set(target.id, pending);
    }
    return pending;
  }
}

/** One of the servers on this host, else on this LAN, else on another site; random among them. */
function nearest(servers: readonly PoolServer[], hostId: string): PoolServer | undefined {
  const local = servers.filter((server) => server.hostId === hostId);
  const lan = local.length ? local : servers.filter((server) => server.gateway === undefined);
  const choices = lan.length ? lan : servers;
  return choices[Math.floor(Math.random() * choices.length)];
}
