// Calls and streams of a process: resolved from a perspective, run here or sent on a Route.
import { CallContext } from "../context.js";
import type { OptionNames } from "../check-options.js";
import { BadArgumentsError, CancelledError, ConnectionLostError, NoSuchFunctionError, NoSuchHostError, StateMismatchError } from "../errors.js";
import { hooks } from "../hooks.js";
import type { Identity } from "../identity.js";
import { ItemStream, type StreamSource } from "../net/item-stream.js";
import { StreamPump } from "../stream-pump.js";
import type { Perspective, PoolServer, Resolution } from "../pool/function-pool.js";
import type { Server } from "../server.js";
import { FLAG_FAR } from "../wire/codec.js";
import { isStream } from "../wire/values.js";
import type { Scope } from "../wire/message.js";
import type { RouterLink } from "./router-link.js";
import { describe, Unreachable, type Route, type ServerLinks } from "./server-links.js";

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

export const CALL_OPTIONS = { timeoutMs: true, scope: true, host: true, port: true, state: true, order: true, signal: true } as const satisfies OptionNames<CallOptions>;
export const STREAM_OPTIONS = { ...CALL_OPTIONS, window: true } as const satisfies OptionNames<StreamOptions>;

const DEFAULT_WINDOW = 64;

/** The options of a call that gives none: one object for all of them. */
export const NO_OPTIONS: CallOptions = Object.freeze({});

export interface CallsParts {
  identity: Identity;
  link: RouterLink;
  links: ServerLinks;
  /** The server of this process, once it serves. */
  server: () => Server | undefined;
  /** `call.scope` and `call.timeout` of the config, read once: every call needs them. */
  defaultScope: Scope;
  defaultTimeoutMs: number;
}

/**
 * Calls and streams of this process: resolved in the pool replica from a perspective (this
 * process, or a host named), then run here when this very process serves the function, else sent
 * on the route ServerLinks gives for the server chosen.
 */
export class Calls {
  private ownPerspective: Perspective | undefined;

  constructor(private readonly parts: CallsParts) {}

  callWith<T = unknown>(name: string, args: unknown[], options: CallOptions = NO_OPTIONS): Promise<T> {
    if (hooks.active) return hooks.call(name, args, options.timeoutMs ?? this.parts.defaultTimeoutMs, (args, trace) => this.sendCall<T>(name, args, options, trace));
    return this.sendCall<T>(name, args, options);
  }

  private sendCall<T>(name: string, args: unknown[], options: CallOptions, trace?: string): Promise<T> {
    const { link, links, defaultScope, defaultTimeoutMs } = this.parts;
    const scope = options.scope ?? defaultScope;
    const timeoutMs = options.timeoutMs ?? defaultTimeoutMs;
    if (options.host === undefined && options.state === undefined && options.order !== "random") {
      if (this.parts.server()?.functions.has(name)) return this.invokeHere(name, args, timeoutMs, options.signal, trace) as Promise<T>;
      if (scope === "server") return Promise.reject(new NoSuchFunctionError(name, scope, "not in this process"));
      if (link.connected) {
        // Hot path: pool replica and connection ready, nothing to await before sending.
        const target = link.pool.resolve(name, scope, this.perspective());
        const connection = target && links.connection(target.id);
        if (connection) return connection.call(name, args, timeoutMs, options.signal, trace);
      }
    }
    return this.callFar(name, scope, options, (target) => this.send(target, name, args, timeoutMs, options.signal, trace)) as Promise<T>;
  }

  /** See `Runtime.streamWith`. */
  streamWith<T = unknown>(name: string, args: unknown[], options: StreamOptions = NO_OPTIONS): ItemStream<T> {
    const window = options.window ?? DEFAULT_WINDOW;
    if (!Number.isInteger(window) || window < 1 || window > 2 ** 31) throw new BadArgumentsError(`stream window must be a whole number from 1, not ${window}`);
    const scope = options.scope ?? this.parts.defaultScope;
    const timeoutMs = options.timeoutMs ?? this.parts.defaultTimeoutMs;
    const open = (args: unknown[], stream: ItemStream<T>, trace?: string): Promise<StreamSource> => {
      if (options.host === undefined && options.state === undefined && options.order !== "random" && this.parts.server()?.functions.has(name)) {
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

  /** Sends one request to one server: in-process, or on the route to it. */
  async send(target: PoolServer, name: string, args: unknown[], timeoutMs: number, signal?: AbortSignal, trace?: string): Promise<unknown> {
    if (target.id === this.parts.identity.id) return this.invokeHere(name, args, timeoutMs, signal, trace);
    return (await this.parts.links.route(target)).call(name, args, timeoutMs, signal, trace);
  }

  /** `send` for a call of its own (an item of a map, a server of callAll): the hooks see it. */
  sendHooked(target: PoolServer, name: string, args: unknown[], timeoutMs: number, signal?: AbortSignal): Promise<unknown> {
    if (!hooks.active) return this.send(target, name, args, timeoutMs, signal);
    return hooks.call(name, args, timeoutMs, (args, trace) => this.send(target, name, args, timeoutMs, signal, trace));
  }

  /**
   * Calls `name` of the server `target` as a caller on another host would: its frame carries
   * FLAG_FAR, so that the server refuses what other hosts may not call and its function sees
   * `fromOtherHost` (in this very process, the same through the context). For the router's HTTP
   * endpoint, which acts for requests from other computers (cli/from-afar.ts).
   */
  async callAsOtherHost<T = unknown>(target: PoolServer, name: string, args: unknown[], timeoutMs = this.parts.defaultTimeoutMs): Promise<T> {
    const server = this.parts.server();
    if (target.id === this.parts.identity.id && server) {
      const call = new CallContext(name, Date.now() + timeoutMs, undefined, true);
      try {
        return (await server.invoke(name, args, true, call)) as T;
      } finally {
        call.finish();
      }
    }
    let route: Route;
    try {
      route = await this.parts.links.route(target);
    } catch (error) {
      throw error instanceof Unreachable ? new ConnectionLostError(describe(target), name, error.cause) : error;
    }
    // Through the routers only to another host, whose router marks it as from another host too.
    return route.call(name, args, timeoutMs, undefined, undefined, FLAG_FAR) as Promise<T>;
  }

  /** A function of this very process: called in it, with a context as a remote call has. */
  async invokeHere(name: string, args: unknown[], timeoutMs: number, signal?: AbortSignal, trace?: string): Promise<unknown> {
    const call = new CallContext(name, timeoutMs > 0 && Number.isFinite(timeoutMs) ? Date.now() + timeoutMs : undefined, undefined, false, trace);
    if (signal?.aborted) throw new CancelledError(name, signal.reason);
    const cancel = () => call.cancel(new CancelledError(name, signal!.reason));
    signal?.addEventListener("abort", cancel, { once: true });
    try {
      return await this.parts.server()!.invoke(name, args, false, call);
    } finally {
      call.finish();
      signal?.removeEventListener("abort", cancel);
    }
  }

  /** From this process, or from the host named (by name or id). */
  perspective(host?: string): Perspective {
    const { identity, link } = this.parts;
    // The hot path's perspective is made once: it never changes.
    this.ownPerspective ??= {
      hostId: identity.hostId,
      serverId: identity.id,
      callerHostId: identity.hostId,
      callerServerId: identity.id,
      realm: identity.realm,
    };
    if (host === undefined) return this.ownPerspective;
    const named = { ...this.ownPerspective, serverId: undefined, named: true };
    if (host === identity.host || host === identity.hostId) return named;
    const names = new Map<string, string>();
    for (const server of link.pool.servers.values()) names.set(server.host, server.hostId);
    const hostId = names.get(host) ?? ([...names.values()].includes(host) ? host : undefined);
    if (hostId === undefined) throw new NoSuchHostError(host, [...names.keys()].sort());
    return { ...named, hostId };
  }

  /** Opens a stream from one server: in-process, or on the route to it. */
  private async sendStream(
    target: PoolServer,
    name: string,
    args: unknown[],
    timeoutMs: number,
    signal: AbortSignal | undefined,
    stream: ItemStream<any>,
    trace: string | undefined,
  ): Promise<StreamSource> {
    if (target.id === this.parts.identity.id) return this.streamHere(name, args, signal, stream, trace);
    return (await this.parts.links.route(target)).openStream(name, args, timeoutMs, signal, stream, trace);
  }

  /** A stream of a function of this very process: its items are handed over as they are. */
  private async streamHere(name: string, args: unknown[], signal: AbortSignal | undefined, stream: ItemStream<any>, trace: string | undefined): Promise<StreamSource> {
    if (signal?.aborted) throw new CancelledError(name, signal.reason);
    const call = new CallContext(name, undefined, undefined, false, trace);
    let value: unknown;
    try {
      value = await this.parts.server()!.invoke(name, args, false, call);
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
   * Finds the server that answers `name` (waiting for the pool and discovery where needed) and
   * sends to it with `send`; when nothing could be sent to it (it died after the pool listed
   * it), tries another once.
   */
  private async callFar<T>(name: string, scope: Scope, options: CallOptions, send: (target: PoolServer) => Promise<T>): Promise<T> {
    const { link } = this.parts;
    await link.ready();
    const choose = () => {
      let from: Perspective;
      try {
        from = this.perspective(options.host);
      } catch (error) {
        if (link.discoveringMs > 0) return undefined; // the host may not be found yet
        throw error;
      }
      const only = (s: PoolServer) =>
        (options.port === undefined || (s.hostId === from.hostId && s.port === options.port)) &&
        (options.state === undefined || s.state === options.state);
      return link.pool.resolve(name, scope, from, options.order, only);
    };
    let target = choose();
    if (!target) {
      // The pool may lag a registration that happened just before this call: catch up once.
      await link.sync();
      target = choose();
    }
    // A router that has just started (for this very call, say) may not have found the other
    // hosts yet: the first call on a fresh host waits for that, later ones never do.
    while (!target && link.discoveringMs > 0) {
      await new Promise((done) => setTimeout(done, Math.min(100, link.discoveringMs)));
      await link.sync();
      target = choose();
    }
    if (!target && options.state !== undefined) {
      const running = link.pool
        .candidates(name, scope, this.perspective(options.host))
        .map((s) => `${s.state ?? "no state id"} on ${s.host} (pid ${s.pid})`);
      if (running.length) throw new StateMismatchError(name, options.state, running);
    }
    if (!target) {
      const servers = [...link.pool.servers.values()];
      const hosts = new Set(servers.map((server) => server.hostId)).size;
      const where = `searched ${servers.length} server(s) on ${hosts} host(s)${options.host === undefined ? "" : ` from ${options.host}`}`;
      throw new NoSuchFunctionError(name, scope, where);
    }
    try {
      return await send(target);
    } catch (error) {
      if (!(error instanceof Unreachable)) throw error;
      // Nothing was sent: if the server died after the pool listed it, another may answer.
      await link.sync();
      const other = choose();
      if (!other || other.id === target.id) throw new ConnectionLostError(describe(target), name, error.cause);
      return send(other);
    }
  }
}
