// Runtime: everything labc does in one process, as a front door that checks and delegates.
import { backplaneSettings, configDir, keyOf, limitsFrom, localSocketsOf, type Config } from "../config.js";
import { watchRotation } from "../trust/rotation.js";
import { DirectCalls } from "../backplane/direct-calls.js";
import { checkOptions, describe, refusedOptions, type OptionNames } from "../check-options.js";
import { BadArgumentsError } from "../errors.js";
import { REGISTER_OPTIONS, SUBSCRIBE_OPTIONS, type RegisterOptions, type SubscribeOptions } from "../decorators.js";
import { hostId, newId, type Identity } from "../identity.js";
import { namespace, type Namespace } from "../namespace.js";
import type { ItemStream } from "../net/item-stream.js";
import type { Limits } from "../wire/limits.js";
import type { HostInfo } from "../wire/router-answers.js";
import type { PoolServer } from "../pool/function-pool.js";
import type { ServiceInfo } from "../services/supervisor.js";
import { processMetrics, type Metrics } from "../metrics.js";
import type { NetworkKey } from "../trust/network-key.js";
import { RuntimeAdmin } from "./admin.js";
import { CALL_OPTIONS, Calls, NO_OPTIONS, STREAM_OPTIONS, type CallOptions, type StreamOptions } from "./calls.js";
import { FanOut, type CallAllResult } from "./fan-out.js";
import { MAP_OPTIONS, type JobMap, type MapOptions } from "./job-map.js";
import { Offers, type Unsubscribe } from "./offers.js";
import { Publications } from "./publications.js";
import { remote, type Remote, type ServiceRef } from "./remote.js";
import { RouterLink } from "./router-link.js";
import { ServerLinks } from "./server-links.js";

export type { CallAllResult, CallOptions, StreamOptions, Unsubscribe };

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

const MAP_WITH_SCOPE = { ...MAP_OPTIONS, scope: true, host: true } as const satisfies OptionNames<MapOptions & Pick<CallOptions, "scope" | "host">>;
// A host's handle fixes host and port itself (HostHandle.callWith's Omit).
const { host: _host, port: _port, ...HOST_CALL_OPTIONS } = CALL_OPTIONS;
const FUNCTION_SUBSCRIBE_OPTIONS = { ...SUBSCRIBE_OPTIONS, withTopic: true } as const satisfies OptionNames<SubscribeOptions & { withTopic?: boolean }>;

/**
 * Everything labc does inside one process, as one object: the front door, which checks and
 * delegates. Its parts: the lifeline to the host's router with the pool replica (RouterLink),
 * what this process offers (Offers: its server), how each other server is reached (ServerLinks),
 * calls and streams (Calls), publications (Publications), map and callAll (FanOut). The
 * module-level API uses one per process; tests make several.
 */
export class Runtime {
  readonly identity: Identity;
  readonly limits: Limits;
  /** Where this runtime's calls, publications and connections count (`metrics.enabled`). */
  readonly metrics: Metrics | undefined;
  /** The network's key; undefined in an open network. */
  readonly key: NetworkKey | undefined;
  readonly link: RouterLink;
  /** What the labc command and the benchmarks need of the router link (not the public API). */
  readonly admin: RuntimeAdmin;
  /** On a gateway's host: calls to and from other sites on NATS, past the gateways. */
  private readonly acrossSites: DirectCalls;
  private readonly offers: Offers;
  private readonly links: ServerLinks;
  private readonly calls: Calls;
  private readonly publications: Publications;
  private readonly fanOut: FanOut;
  private ownHost: HostHandle | undefined;
  private readonly stopWatching: (() => void) | undefined;

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
    // A rotation of the secret that this host's router learns reaches this process too.
    this.stopWatching = this.key ? watchRotation(this.key, configDir()) : undefined;
    const { identity, limits, metrics, key } = this;
    // `call.scope` and `call.timeout` of the config, read once: every call needs them.
    const defaultScope = config["call.scope"];
    const defaultTimeoutMs = config["call.timeout"] * 1000;
    this.acrossSites = new DirectCalls(backplaneSettings(config, key !== undefined), `labc ${identity.host} pid ${process.pid}`);
    const server = () => this.offers.server;
    this.link = new RouterLink({ config, limits, metrics, identity, server, onDeath: (serverId) => this.links.forget(serverId) });
    const link = this.link;
    this.admin = new RuntimeAdmin(link);
    this.offers = new Offers({ config, identity, limits, metrics, key, link, acrossSites: this.acrossSites, publish: (topic, value) => this.publish(topic, value) });
    this.links = new ServerLinks({ identity, limits, metrics, key, local: localSocketsOf(config), link, acrossSites: this.acrossSites });
    const links = this.links;
    this.calls = new Calls({ identity, link, links, server, defaultScope, defaultTimeoutMs });
    const calls = this.calls;
    this.publications = new Publications({ identity, limits, metrics, link, links, calls, server, defaultScope, defaultTimeoutMs });
    this.fanOut = new FanOut({ link, calls, defaultScope, defaultTimeoutMs });
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
      callWith: (name, args, options = {}) => refusedOptions(`callWith("${name}") on ${host}`, options, HOST_CALL_OPTIONS) ?? this.callWith(name, args, { ...options, ...fixed }),
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
    const { findService, loadService } = await import("../services/loader.js");
    const { loadConfig } = await import("../config.js");
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
    return this.offers.server?.port;
  }

  /** Exposes every @register and @subscribe method of each instance. */
  serve(...instances: object[]): Promise<void> {
    return this.offers.serve(...instances);
  }

  /** Exposes a plain function under `options.name` or its own name. */
  register(fn: Function, options: RegisterOptions = {}): Promise<void> {
    return refusedOptions(`register("${typeof options?.name === "string" ? options.name : fn?.name}")`, options, REGISTER_OPTIONS) ?? this.offers.register(fn, options);
  }

  /** Removes a function; callers elsewhere stop seeing it at once. */
  unregister(name: string): Promise<boolean> {
    return this.offers.unregister(name);
  }

  /**
   * Calls `fn(...args)` for every publication on a topic matching `pattern` (default: fn's
   * name), or `fn(topic, ...args)` with `withTopic`; in a queue `group`, for its share of them.
   */
  subscribe(fn: Function, pattern: string = fn.name, options: SubscribeOptions & { withTopic?: boolean } = {}): Promise<Unsubscribe> {
    if (typeof pattern !== "string") {
      return Promise.reject(new BadArgumentsError(`subscribe(${fn?.name || "fn"}, pattern): the pattern is a topic pattern, not ${describe(pattern)}; options come third: subscribe(fn, "lab.temp.*", { group: "workers" })`));
    }
    return refusedOptions(`subscribe("${pattern}")`, options, FUNCTION_SUBSCRIBE_OPTIONS) ?? this.offers.subscribe(fn, pattern, options);
  }

  call<T = unknown>(name: string, ...args: unknown[]): Promise<T> {
    return this.calls.callWith<T>(name, args);
  }

  /**
   * The typed handle of a service: `const echo = labc.use(Echo)` (or `use<Echo>("echo")`), then
   * `await echo.add(1, 2)` is a call of `echo.add`, checked by the compiler against the class.
   */
  use<T>(service: ServiceRef<T>): Remote<T> {
    return remote(service, (name, args) => this.callWith(name, args));
  }

  callWith<T = unknown>(name: string, args: unknown[], options: CallOptions = NO_OPTIONS): Promise<T> {
    return refusedOptions(`callWith("${name}")`, options, CALL_OPTIONS) ?? this.calls.callWith<T>(name, args, options);
  }

  stream<T = unknown>(name: string, ...args: unknown[]): ItemStream<T> {
    return this.calls.streamWith<T>(name, args);
  }

  /**
   * Calls a function that returns a stream (an `async function*`, any AsyncIterable) and reads
   * its items as they come: `for await (const line of labc.stream("tail", "log.txt"))`. At most
   * `options.window` items (64) are on their way or unread at once, so a slow reader slows the
   * producer; `break` ends the producer. A function that returns a value gives that one item.
   * `timeoutMs` bounds the wait for the first item; after it, only `signal` ends the stream.
   */
  streamWith<T = unknown>(name: string, args: unknown[], options: StreamOptions = NO_OPTIONS): ItemStream<T> {
    checkOptions(`streamWith("${name}")`, options, STREAM_OPTIONS);
    return this.calls.streamWith<T>(name, args, options);
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
    checkOptions(`map("${name}")`, options, MAP_WITH_SCOPE);
    return this.fanOut.map<T>(name, items, options);
  }

  /** Calls every server that offers `name` (from the perspective chosen), each answer or error. */
  callAll(name: string, args: unknown[], options: CallOptions = {}): Promise<CallAllResult[]> {
    return refusedOptions(`callAll("${name}")`, options, CALL_OPTIONS) ?? this.fanOut.callAll(name, args, options);
  }

  /** Delivers to every matching subscriber; resolves with how many servers got it. */
  publish(topic: string, ...args: unknown[]): Promise<number> {
    return this.publications.publish(topic, args);
  }

  /**
   * Delivers to the subscribers of `topic` on one host only (its name or host id), or on one
   * server of it (`port`): `getHost("computer1").publish(...)`. Resolves with how many servers
   * got it; a host nobody knows is a NoSuchHostError.
   */
  publishTo(topic: string, args: unknown[], where: { host: string; port?: number | undefined }): Promise<number> {
    return this.publications.publishTo(topic, args, where);
  }

  /**
   * A publication that one subscriber answers: the nearest subscriber of `topic` (this
   * process, this host, then the network, random among equals) runs as a called function and
   * its result is returned; every other matching subscriber gets it as a publication.
   */
  reqpub(topic: string, ...args: unknown[]): Promise<any> {
    return this.publications.reqpub(topic, args);
  }

  /** See `Calls.callAsOtherHost` (the HTTP endpoint's requests from other computers). */
  callAsOtherHost<T = unknown>(target: PoolServer, name: string, args: unknown[], timeoutMs?: number): Promise<T> {
    return this.calls.callAsOtherHost<T>(target, name, args, timeoutMs);
  }

  /** The names of the hosts this process knows of, with their ids. */
  hosts(): Promise<HostInfo[]> {
    return this.link.hosts();
  }

  /**
   * Stops without losing anything: what this process serves leaves every pool first, every
   * caller is told and the calls already received are answered (up to `server.drain_timeout`),
   * and the promise resolves once everything already sent or published is handed to the system,
   * so that a script may exit right after it.
   */
  async close(): Promise<void> {
    this.stopWatching?.();
    const graceMs = this.config["server.drain_timeout"] * 1000;
    await this.offers.withdrawAll(graceMs);
    await this.publications.settled();
    await Promise.all([this.link.close(), this.links.close(graceMs), this.offers.close(graceMs)]);
    await this.acrossSites.close();
    this.offers.reset();
  }
}
