// A labc server: holds a process's functions and subscriptions, and dispatches what arrives.
import { setImmediate as turn } from "node:timers/promises";
import { BadArgumentsError, NoSuchFunctionError, StreamRequiredError } from "./errors.js";
import { warn } from "./log.js";
import { Connection } from "./net/connection.js";
import { listenTcp } from "./net/listen-tcp.js";
import { tripped } from "./net/trips.js";
import type { Listener, Transport } from "./net/transport.js";
import { checkPattern, subscriptionKey, TopicTrie } from "./pool/topic-trie.js";
import type { Limits } from "./wire/limits.js";
import type { LocalSockets } from "./net/local-sockets.js";
import type { NetworkKey } from "./trust/network-key.js";
import { exported, Kind, offered, REQPUB, type FunctionEntry, type Message, type PubBody, type ReqBody } from "./wire/message.js";
import { CallContext, runWith } from "./context.js";
import { hooks } from "./hooks.js";
import { isFar, isFromOtherSite } from "./wire/codec.js";
import { isStream } from "./wire/values.js";
import { StreamPump } from "./stream-pump.js";
import { arity, countProblem } from "./signature.js";
import type { CallStats, Metrics } from "./metrics.js";

export interface LocalFunction {
  fn: Function;
  thisArg: unknown;
  entry: FunctionEntry;
  /** How many arguments a call may pass (from `entry.params`; any number when they are not known). */
  fewest: number;
  most: number;
}

interface Handler {
  fn: Function;
  thisArg: unknown;
  label: string;
  /** Receives the topic first: `fn(topic, ...args)`. */
  withTopic: boolean;
  /** Its queue group: it runs only for publications sent to this server for that group. */
  group: string | undefined;
}

const NO_GROUPS: readonly string[] = [];

/** What a server offers beyond itself: what its router is told. */
export interface Offer {
  functions: FunctionEntry[];
  topics: string[];
}

export interface ServerOptions {
  id: string;
  address: string;
  limits: Limits;
  sendStacks: boolean;
  /** The network's key: callers must hold the secret. */
  key: NetworkKey | undefined;
  /** This host's Unix sockets, on which callers of this user reach the port too. */
  local?: LocalSockets;
  /** Where the calls it serves and the publications it delivers count (off when absent). */
  metrics: Metrics | undefined;
}

/** A subscription's handle: `first` when its pattern is new to the server (to announce). */
export interface HandlerHandle {
  first: boolean;
  /** Removes the handler; true when its pattern has no handler left (to withdraw). */
  remove(): boolean;
}

/**
 * A labc server: holds this process's functions and subscriptions, listens on its own port,
 * and dispatches the requests and publications that arrive on any of its connections
 * (including its lifeline to the router).
 */
export class Server {
  port = 0;
  readonly functions = new Map<string, LocalFunction>();
  private readonly handlers = new TopicTrie<Handler>();
  private readonly groupHandlers = new TopicTrie<Handler>();
  /** Handlers by subscription key (pattern, and group if any): what is announced. */
  private readonly patterns = new Map<string, number>();
  /** How many group publications each group has had here: its handlers take turns. */
  private readonly turns = new Map<string, number>();
  private readonly connections = new Set<Connection>();
  private listener: Listener | null = null;
  /** Callers that came on NATS (answerOnNats): other sites'. */
  private readonly natsCallers = new WeakSet<Connection>();
  /** Ends taking callers from NATS, while this server does. */
  private stopNats: (() => void) | undefined;
  /** Set while stopping: every caller is told, and what telling it awaits. */
  private leaving: { ms: number; told: Promise<void>[] } | null = null;

  constructor(private readonly options: ServerOptions) {}

  get id(): string {
    return this.options.id;
  }

  async listen(): Promise<void> {
    const { limits } = this.options;
    this.listener = await listenTcp(this.options.address, 0, (transport) => this.accept(transport, `caller at ${transport.remote}`), {
      maxPerAddress: limits.maxConnectionsPerAddress,
      key: this.options.key,
      local: this.options.local,
      handshakeTimeoutMs: limits.helloTimeoutMs,
    });
    this.port = this.listener.port;
  }

  get limits(): Limits {
    return this.options.limits;
  }

  /**
   * Also takes callers from NATS (a server on a gateway's host, docs/backplane.md#direct-calls,
   * where DirectCalls hands each caller's pipe to `accept`); `stop` ends that. Its callers are
   * far: they are on other sites.
   */
  answerOnNats(stop: () => void): void {
    this.stopNats = () => {
      this.stopNats = undefined;
      stop();
    };
  }

  /** Whether it takes calls on NATS now: said in its hello to the router (`nats`). */
  get answersOnNats(): boolean {
    return this.stopNats !== undefined;
  }

  /** Serves a caller's connection (a socket this server accepted, or a pipe on NATS: `otherSite`). */
  accept(transport: Transport, label: string, otherSite = false): Connection {
    const connection = new Connection(transport, {
      label,
      limits: this.options.limits,
      metrics: this.options.metrics,
      sendStacks: this.options.sendStacks,
      accepted: true,
      onMessage: this.handle,
      onClose: (closed) => this.connections.delete(closed),
    });
    this.connections.add(connection);
    if (otherSite) this.natsCallers.add(connection);
    this.tell(connection);
    return connection;
  }

  /** Adds a function; throws if the name is taken, unless `skipTaken` (then returns false). */
  addFunction(entry: FunctionEntry, fn: Function, thisArg: unknown, skipTaken = false): boolean {
    if (this.functions.has(entry.name)) {
      if (skipTaken) return false;
      throw new BadArgumentsError(`function "${entry.name}" is already registered in this server`);
    }
    const [fewest, most] = entry.params ? arity(entry.params) : [0, Infinity];
    this.functions.set(entry.name, { fn, thisArg, entry, fewest, most });
    return true;
  }

  removeFunction(name: string): FunctionEntry | undefined {
    const local = this.functions.get(name);
    this.functions.delete(name);
    return local?.entry;
  }

  addHandler(pattern: string, fn: Function, thisArg: unknown, label: string, withTopic = false, group?: string): HandlerHandle {
    checkPattern(pattern);
    const key = subscriptionKey(pattern, group);
    const handler: Handler = { fn, thisArg, label, withTopic, group };
    const trie = group === undefined ? this.handlers : this.groupHandlers;
    trie.add(pattern, handler);
    const count = this.patterns.get(key) ?? 0;
    this.patterns.set(key, count + 1);
    return {
      first: count === 0,
      remove: () => {
        if (!trie.remove(pattern, handler)) return false;
        const left = this.patterns.get(key)! - 1;
        if (left > 0) this.patterns.set(key, left);
        else this.patterns.delete(key);
        return left === 0;
      },
    };
  }

  /** Everything this server offers to other servers, for (re-)announcing to the router. */
  offer(): Offer {
    const functions = [...this.functions.values()].map((local) => local.entry).filter(offered);
    return { functions, topics: [...this.patterns.keys()] };
  }

  /**
   * Runs a function of this server, with `call` as what `labc.context()` returns in it. May
   * return a value or a promise, or throw.
   */
  invoke(name: string, args: unknown[], remote: boolean, call: CallContext): unknown {
    if (hooks.active) return hooks.serve(call, args, (args) => this.invokeFunction(name, args, remote, call));
    return this.invokeFunction(name, args, remote, call);
  }

  private invokeFunction(name: string, args: unknown[], remote: boolean, call: CallContext): unknown {
    if (name === REQPUB) return this.answerPublication(args, call);
    const local = this.functions.get(name);
    // What a caller may not see is refused as if it did not exist: nothing leaks.
    if (!local || (remote && !offered(local.entry)) || (call.fromOtherHost && !exported(local.entry))) {
      throw new NoSuchFunctionError(name, "server", `not on server ${this.id}`);
    }
    if (args.length < local.fewest || args.length > local.most) throw new BadArgumentsError(countProblem(local.entry, args.length)!);
    return runWith(call, local.fn, local.thisArg, args);
  }

  /**
   * A publication one subscriber answers (`reqpub`, args `[topic, ...args]`): the first local
   * subscriber of the topic runs as the called function, and its result is the answer; the
   * others get it as a publication.
   */
  private answerPublication(args: unknown[], call: CallContext): unknown {
    const [topic, ...rest] = args;
    if (typeof topic !== "string") throw new BadArgumentsError(`${REQPUB}: the first argument is the topic, not ${typeof topic}`);
    const [answering, ...others] = this.handlers.matches(topic);
    if (!answering) throw new NoSuchFunctionError(`${REQPUB} ${topic}`, "server", `no subscriber of "${topic}" on server ${this.id}`);
    for (const handler of others) this.run(handler, topic, rest);
    return runWith(call, answering.fn, answering.thisArg, answering.withTopic ? [topic, ...rest] : rest);
  }

  /** Whether a publication on `topic` has a subscriber here. */
  subscribes(topic: string): boolean {
    return this.handlers.matches(topic).length > 0;
  }

  /**
   * Runs every local subscriber of `topic` outside queue groups, and one of each group in
   * `groups` (the publisher chose this server for them); one that throws does not stop the others.
   */
  deliver(topic: string, args: unknown[], groups: readonly string[] = NO_GROUPS): number {
    const matched = this.handlers.matches(topic);
    for (const handler of matched) this.run(handler, topic, args);
    const delivered = matched.length + (groups.length ? this.deliverGroups(topic, args, groups) : 0);
    this.options.metrics?.delivered(topic, delivered);
    return delivered;
  }

  /** Runs one local subscriber of `topic` in each of `groups`, the group's subscribers taking turns. */
  deliverGroups(topic: string, args: unknown[], groups: readonly string[]): number {
    const members = this.groupHandlers.matches(topic);
    let ran = 0;
    for (const group of groups) {
      const mine = members.filter((handler) => handler.group === group);
      if (mine.length === 0) continue;
      const turn = this.turns.get(group) ?? 0;
      this.turns.set(group, turn + 1);
      this.run(mine[turn % mine.length]!, topic, args);
      ran++;
    }
    return ran;
  }

  private run(handler: Handler, topic: string, args: unknown[]): void {
    try {
      const result = hooks.active ? hooks.deliver(handler.label, topic, args, (args) => this.runHandler(handler, topic, args)) : this.runHandler(handler, topic, args);
      if (result instanceof Promise) result.catch((error) => this.subscriberFailed(handler, topic, error));
    } catch (error) {
      this.subscriberFailed(handler, topic, error);
    }
  }

  private runHandler(handler: Handler, topic: string, args: unknown[]): unknown {
    return handler.withTopic ? handler.fn.call(handler.thisArg, topic, ...args) : handler.fn.apply(handler.thisArg, args);
  }

  /** Serves requests and publications arriving on a connection this server did not accept. */
  readonly handle = (message: Message, connection: Connection): void => {
    switch (message.kind) {
      case Kind.req:
        return this.answer(message, connection);
      case Kind.pub: {
        const { topic, args, groups, groupsOnly } = message.body as PubBody;
        try {
          if (groupsOnly) this.deliverGroups(topic, args, groups ?? []);
          else this.deliver(topic, args, groups);
        } catch (error) {
          // A peer may send these by the thousand (a topic that is no topic): counted, and logged within the log's budget.
          tripped("bad_message", connection.transport.remote, `a publication from ${connection.label} refused: ${(error as Error).message}`);
        }
        return;
      }
      case Kind.ping:
        return connection.send(Kind.pong, {}, message.id);
    }
  };

  private answer(message: Message, connection: Connection): void {
    const { id } = message;
    const { fn, args, timeoutMs, credit } = message.body as ReqBody;
    const otherSite = this.natsCallers.has(connection) || isFromOtherSite(message);
    const far = otherSite || !connection.fromOwnHost || isFar(message);
    const trace = hooks.active ? (message.body as ReqBody).trace : undefined;
    const call = new CallContext(fn, timeoutMs === undefined ? undefined : Date.now() + timeoutMs, connection.peer, far, trace, otherSite);
    if (id !== 0) connection.track(id, call);
    const stats = this.options.metrics?.servedStats(fn);
    const startedAt = stats ? stats.begin() : 0;
    let result: unknown;
    try {
      result = this.invoke(fn, args, true, call);
    } catch (error) {
      return this.fail(id, error, connection, call, stats, startedAt);
    }
    if (result instanceof Promise) {
      result.then(
        (value) => this.respond(id, value, connection, call, credit, stats, startedAt),
        (error) => this.fail(id, error, connection, call, stats, startedAt),
      );
    } else this.respond(id, result, connection, call, credit, stats, startedAt);
  }

  private fail(id: number, error: unknown, connection: Connection, call: CallContext, stats: CallStats | undefined, startedAt: number): void {
    call.finish();
    stats?.end(startedAt, error);
    connection.replyError(id, error);
  }

  /**
   * Answers with what a function returned: a value, or the items of a stream it returned (a
   * stream counts in the metrics as its call, until its first answer).
   */
  private respond(
    id: number,
    value: unknown,
    connection: Connection,
    call: CallContext,
    credit: number | undefined,
    stats: CallStats | undefined,
    startedAt: number,
  ): void {
    if (!isStream(value)) {
      call.finish();
      stats?.end(startedAt);
      return connection.reply(id, value);
    }
    if (credit === undefined || id === 0) return this.fail(id, new StreamRequiredError(call.functionName), connection, call, stats, startedAt);
    stats?.end(startedAt);
    const pump = new StreamPump(value, connection.outlet(id), call, credit);
    connection.track(id, pump);
    void pump.run();
  }


  private subscriberFailed(handler: Handler, topic: string, error: unknown): void {
    warn(`subscriber ${handler.label} failed on "${topic}"`, error);
  }

  /**
   * The first part of a graceful stop, once the router has withdrawn everything this server
   * offered: every caller, including those connecting meanwhile, is told that this server leaves
   * (it answers once it sends nothing more here); then no new connection is accepted, and the
   * requests already received are answered. Past `ms`, `close` cancels the calls still running.
   * `lifeline` carries the requests that came through the routers.
   */
  async drain(ms: number, lifeline?: { served(): Promise<void> }): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((done) => (timer = setTimeout(done, ms)));
    this.leaving = { ms, told: [] };
    for (const connection of this.connections) this.tell(connection);
    // Connections still arrive from callers that chose this server just before it left: they
    // are accepted and told too. Closing the port now would reset those waiting to be accepted,
    // with their first requests in them.
    for (let seen = -1; seen !== this.leaving.told.length; ) {
      seen = this.leaving.told.length;
      await Promise.race([Promise.all(this.leaving.told), deadline]);
      // One turn of the event loop: connections waiting to be accepted are, and told.
      await turn();
    }
    this.listener?.refuse();
    this.stopNats?.();
    const callers = [...this.connections];
    const served = callers.map((connection) => connection.served());
    if (lifeline) served.push(lifeline.served());
    await Promise.race([Promise.all(served), deadline]);
    clearTimeout(timer);
    for (const connection of callers) {
      if (connection.servingCount > 0) warn(`stopping with ${connection.servingCount} call(s) of ${connection.label} unfinished after ${ms} ms`);
    }
  }

  /** Tells a caller this server leaves; it answers once it sends nothing more here. */
  private tell(connection: Connection): void {
    if (!this.leaving || connection.closed) return;
    this.leaving.told.push(connection.request(Kind.death, { server: this.id }, "leaving", this.leaving.ms).catch(() => {}));
  }

  /** Closes every connection (after what was written to it left, up to `graceMs`) and the port. */
  async close(graceMs?: number): Promise<void> {
    await Promise.all([...this.connections].map((connection) => connection.close(graceMs)));
    this.stopNats?.();
    await this.listener?.close();
    this.listener = null;
  }
}
