import type { DirectCalls } from "../backplane/direct-calls.js";
import { localSocketsOf, type Config } from "../config.js";
import { decoratedMethods, routeName, type RegisterOptions, type SubscribeOptions } from "../decorators.js";
import { BadArgumentsError } from "../errors.js";
import type { Identity } from "../identity.js";
import { debug, warn } from "../log.js";
import type { Metrics } from "../metrics.js";
import type { Limits } from "../wire/limits.js";
import { checkTopic, subscriptionKey } from "../pool/topic-trie.js";
import { Server } from "../server.js";
import { offered } from "../wire/message.js";
import { signatureOf } from "../signature.js";
import type { NetworkKey } from "../trust/network-key.js";
import { SCOPES, VISIBILITIES, type FunctionEntry, type Param } from "../wire/message.js";
import type { RouterLink } from "./router-link.js";

/** Undoes a subscription. */
export type Unsubscribe = () => Promise<void>;

export interface OffersParts {
  config: Config;
  identity: Identity;
  limits: Limits;
  metrics: Metrics | undefined;
  key: NetworkKey | undefined;
  link: RouterLink;
  acrossSites: DirectCalls;
  /** Publishes what a `@watch` method returned. */
  publish: (topic: string, value: unknown) => Promise<number>;
}

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
 * What this process offers: its server (started on the first register, serve or subscribe), the
 * functions and subscriptions on it, each announced to the host's router; and their withdrawal
 * and drain when the process stops.
 */
export class Offers {
  /** The server of this process, once it serves. */
  server: Server | undefined;
  private starting: Promise<Server> | null = null;

  constructor(private readonly parts: OffersParts) {}

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
    await this.parts.link.announce({ functions: functions.filter(offered), topics });
  }

  /** Exposes a plain function under `options.name` or its own name. */
  async register(fn: Function, options: RegisterOptions = {}): Promise<void> {
    const name = options.name ?? fn.name;
    if (!name) throw new BadArgumentsError("register: an anonymous function needs options.name");
    const entry = entryFor(name, options, signatureOf(fn, name));
    const server = await this.serving();
    server.addFunction(entry, fn, undefined);
    if (offered(entry)) await this.parts.link.announce({ functions: [entry], topics: [] });
  }

  /** Removes a function; callers elsewhere stop seeing it at once. */
  async unregister(name: string): Promise<boolean> {
    const entry = this.server?.removeFunction(name);
    if (entry && offered(entry)) await this.parts.link.withdraw({ functions: [name], topics: [] });
    return entry !== undefined;
  }

  /** See `Runtime.subscribe`. */
  async subscribe(fn: Function, pattern: string = fn.name, options: SubscribeOptions & { withTopic?: boolean } = {}): Promise<Unsubscribe> {
    if (!pattern) throw new BadArgumentsError("subscribe: an anonymous function needs a topic pattern");
    const key = subscriptionKey(pattern, options.group);
    const server = await this.serving();
    const handle = server.addHandler(pattern, fn, undefined, fn.name || pattern, options.withTopic, options.group);
    if (handle.first) await this.parts.link.announce({ functions: [], topics: [key] });
    return async () => {
      if (handle.remove()) await this.parts.link.withdraw({ functions: [], topics: [key] });
    };
  }

  /**
   * What this process serves leaves every pool first, every caller is told and the calls already
   * received are answered (up to `graceMs`).
   */
  async withdrawAll(graceMs: number): Promise<void> {
    const server = this.server;
    if (!server) return;
    const { functions, topics } = server.offer();
    if (functions.length || topics.length) {
      await this.parts.link.withdraw({ functions: functions.map((entry) => entry.name), topics, sync: true }).catch((error) => {
        debug("withdrawing before the stop failed: %s", (error as Error).message);
      });
    }
    await server.drain(graceMs, this.parts.link);
  }

  /** Closes the server: answers still owed are sent for up to `graceMs`. */
  async close(graceMs: number): Promise<void> {
    await this.server?.close(graceMs);
  }

  /** After `close`: a later offer starts a new server. */
  reset(): void {
    this.server = undefined;
    this.starting = null;
  }

  /** `method`, publishing what each call returns on `topics` once it succeeded (`@watch`). */
  private watching(method: Function, topics: string[], label: string): Function {
    for (const topic of topics) checkTopic(topic);
    const announce = (value: unknown) => {
      for (const topic of topics) {
        this.parts.publish(topic, value).catch((error) => warn(`@watch of ${label} did not publish on ${topic}: ${(error as Error).message}`));
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

  /** The server of this process, started and registered with the router on first need. */
  private serving(): Promise<Server> {
    this.starting ??= (async () => {
      const { config, identity, limits, key, metrics, link, acrossSites } = this.parts;
      const server = new Server({
        id: identity.id,
        address: config["server.address"],
        limits,
        sendStacks: config["errors.send_stack"],
        key,
        local: localSocketsOf(config),
        metrics,
      });
      await server.listen();
      await acrossSites.answer(server);
      this.server = server;
      try {
        await link.register();
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
}
