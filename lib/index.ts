/**
 * labc: call functions and publish topics across processes and hosts.
 *
 * ```ts
 * import { register, subscribe } from "labc";
 * import * as labc from "labc";
 * class Echo { @register() echo(msg: string) { return msg; } }
 * await labc.serve(new Echo());
 * await labc.call("echo", "hi");
 * ```
 */
import { checkOptions, describe } from "./check-options.js";
import { loadConfig, type ConfigKey } from "./config.js";
import { BadArgumentsError } from "./errors.js";
import {
  decorate,
  isDecoratorCall,
  markRegister,
  markSubscribe,
  markWatch,
  methodDecorator,
  REGISTER_OPTIONS,
  SUBSCRIBE_OPTIONS,
  type InstanceMethodContext,
  type InstancePrototype,
  type MethodDecorator,
  type RegisterOptions,
  type SubscribeOptions,
} from "./decorators.js";
import { checkGroup } from "./pool/topic-trie.js";
import { hooks, type Hook } from "./hooks.js";
import { namespace, type Namespace } from "./namespace.js";
import type { HostInfo } from "./wire/router-answers.js";
import type { ServiceInfo } from "./services/supervisor.js";
import { Runtime, type CallAllResult, type CallOptions, type HostHandle, type StreamOptions, type Unsubscribe } from "./runtime/runtime.js";
import type { ItemStream } from "./net/item-stream.js";
import type { JobMap, MapOptions, MapResult } from "./runtime/job-map.js";
import type { Remote, ServiceRef } from "./runtime/remote.js";

let current: Runtime | undefined;

/** The process's runtime, made from the effective config on first use. */
export function runtime(): Runtime {
  return (current ??= new Runtime(loadConfig().values));
}

/**
 * Sets configuration for this process (highest precedence, like CLI flags), before first use:
 * `configure({ "router.port": 6000 })`.
 */
export function configure(flags: Partial<Record<ConfigKey, unknown>>, options: { state?: string } = {}): Runtime {
  if (current) throw new Error("labc.configure() must come before the first register, serve, call or publish");
  return (current = new Runtime(loadConfig({ flags }).values, options));
}

type Method = (...args: any[]) => any;

/** Options of the function forms, which a decorator's context can never pass for. */
type NotAContext = { readonly kind?: never };

/**
 * As a decorator, `@register`, `@register()` or `@register({ name, scope, visibility })`
 * exposes an instance method when its instance is served (the compiler refuses it elsewhere). As
 * a function, `register(fn, options)` exposes `fn` now.
 */
export function register(options?: RegisterOptions): MethodDecorator;
export function register<This, F extends Method>(method: F, context: InstanceMethodContext<This, F>): void;
export function register<This extends object, F extends Method>(prototype: InstancePrototype<This>, key: string | symbol, descriptor: TypedPropertyDescriptor<F>): void;
export function register(fn: Function, options?: RegisterOptions & NotAContext): Promise<void>;
export function register(first?: unknown, second?: unknown, third?: unknown): unknown {
  if (isDecoratorCall(first, second, third)) {
    return decorate("@register", (method) => markRegister(method, {}), [first, second, third]);
  }
  if (typeof first === "function") return runtime().register(first, second as RegisterOptions | undefined);
  checkOptions("@register", first, REGISTER_OPTIONS);
  const options = (first ?? {}) as RegisterOptions;
  return methodDecorator("@register", (method) => markRegister(method, options));
}

/**
 * As a decorator, `@subscribe("lab.temp.*")` (or `@subscribe` for the method's own name)
 * receives publications when its instance is served. As a function, `subscribe(fn, pattern)`
 * subscribes `fn` now and resolves with what undoes it. With `{ group: "workers" }` it joins a
 * queue group: each publication goes to one subscriber of the group, across hosts (the group's
 * subscribers take turns); subscribers outside the group still get every publication.
 */
export function subscribe(pattern?: string, options?: SubscribeOptions): MethodDecorator;
export function subscribe<This, F extends Method>(method: F, context: InstanceMethodContext<This, F>): void;
export function subscribe<This extends object, F extends Method>(prototype: InstancePrototype<This>, key: string | symbol, descriptor: TypedPropertyDescriptor<F>): void;
export function subscribe(fn: Function, pattern?: string, options?: SubscribeOptions & NotAContext): Promise<Unsubscribe>;
export function subscribe(first?: unknown, second?: unknown, third?: unknown): unknown {
  if (isDecoratorCall(first, second, third)) {
    return decorate("@subscribe", (method) => markSubscribe(method, undefined), [first, second, third]);
  }
  if (typeof first === "function") return runtime().subscribe(first, second as string | undefined, third as SubscribeOptions | undefined);
  if (first !== undefined && typeof first !== "string") {
    const what = describe(first);
    const hint = what === "an object" ? `; options come second: @subscribe("lab.temp.*", { group: "workers" })` : "";
    throw new BadArgumentsError(`@subscribe: its first argument is a topic pattern, not ${what}${hint}`);
  }
  checkOptions(first === undefined ? "@subscribe" : `@subscribe("${first}")`, second, SUBSCRIBE_OPTIONS);
  const group = (second as SubscribeOptions | undefined)?.group;
  if (group !== undefined) checkGroup(group);
  const pattern = first as string | undefined;
  return methodDecorator("@subscribe", (method) => markSubscribe(method, pattern, second as SubscribeOptions | undefined));
}

/**
 * `@watch("lab.lights.level")` on a registered method publishes what it returns (once a promise
 * settles) on that topic after each call that succeeds, so that others can follow a state
 * without asking for it.
 */
/** What bare `@watch` gives the compiler: not a decorator, since it needs a topic. */
export interface WatchNeedsATopic {
  readonly fix: '@watch("lab.lights.level")';
}

export function watch(topic: string): MethodDecorator;
// Bare `@watch` has no topic to publish on: this overload's return type names the mistake in the compiler's error.
export function watch(method: Method, ...context: unknown[]): WatchNeedsATopic;
export function watch(topic: unknown): unknown {
  if (typeof topic !== "string" || topic === "") throw new TypeError("@watch needs a topic: @watch(\"lab.lights.level\")");
  return methodDecorator("@watch", (method) => markWatch(method, topic));
}

/**
 * Serves a service by name inside this process: `await load("LightControl")` finds it in
 * `./services` of the current folder, else among the installed ones; resolves with its instances.
 */
export function load(name: string): Promise<object[]> {
  return runtime().load(name);
}

/** Exposes every decorated method of each instance. The process then serves until closed. */
export function serve(...instances: object[]): Promise<void> {
  return runtime().serve(...instances);
}

export function unregister(name: string): Promise<boolean> {
  return runtime().unregister(name);
}

/**
 * Inside a registered function: its call's context, with the `signal` that fires when the
 * caller cancels or its deadline passes, the `deadline`, and the `caller` (host, pid). Read it
 * before the function's first `await`:
 *
 * ```ts
 * @register() async scan(rows: number) {
 *   const { signal } = labc.context();
 *   for (let row = 0; row < rows && !signal.aborted; row++) await this.scanRow(row);
 * }
 * ```
 */
export { context } from "./context.js";

/**
 * Runs `hook` around every call and publication of this process, on the calling and the serving
 * side: `before` (may refuse by throwing, may replace `event.args`), `after` and `failed`, with
 * the function or topic, the arguments, the caller, the deadline and a trace id that travels
 * with the call across hosts. Returns what removes it. See docs/observability.md.
 */
export function addHook(hook: Hook): () => void {
  return hooks.add(hook);
}

export { slowCalls } from "./slow-calls.js";

/** Calls a function wherever it runs: `await call("add", 1, 2)`. */
export function call<T = unknown>(name: string, ...args: unknown[]): Promise<T> {
  return runtime().callWith<T>(name, args);
}

/**
 * The typed handle of a service: `const echo = use(Echo)` (the class, imported for its type and
 * name) or `use<Echo>("echo")` (its route name), then `await echo.add(1, 2)` is checked by the
 * compiler against the class and calls `echo.add` wherever it runs.
 */
export function use<T>(service: ServiceRef<T>): Remote<T> {
  return runtime().use(service);
}

/**
 * `call` with options: `await callWith("add", [1, 2], { timeoutMs: 500, scope: "host" })`;
 * `{ signal }` takes an AbortSignal that cancels the call, here and on the server.
 */
export function callWith<T = unknown>(name: string, args: unknown[], options?: CallOptions): Promise<T> {
  return runtime().callWith<T>(name, args, options);
}

/**
 * Reads the stream a function returns (an `async function*`, any AsyncIterable), item by item as
 * they come: `for await (const line of stream("tail", "log.txt")) ...`. A slow reader slows the
 * producer (at most 64 items are ahead of it); `break` ends the producer.
 */
export function stream<T = unknown>(name: string, ...args: unknown[]): ItemStream<T> {
  return runtime().streamWith<T>(name, args);
}

/** `stream` with options: `streamWith("tail", ["log.txt"], { window: 16, signal })`. */
export function streamWith<T = unknown>(name: string, args: unknown[], options?: StreamOptions): ItemStream<T> {
  return runtime().streamWith<T>(name, args, options);
}

/**
 * Calls a function once per item, spread over every server offering it (the least busy first):
 * `const sizes = await map("resize", photos, { perServer: 4 })` gives the results in input order;
 * `for await (const done of map(...))` gives each item's outcome as it completes.
 */
export function map<T = unknown>(name: string, items: Iterable<unknown>, options?: MapOptions & Pick<CallOptions, "scope" | "host">): JobMap<T> {
  return runtime().map<T>(name, items, options);
}

/**
 * Publishes to every matching subscriber; resolves with how many servers it reached, once the
 * publication leaves even if this process exits next (`await publish(...); process.exit(0)`
 * delivers it: what is still queued then is handed to the system by an exit hook). Awaiting
 * each publication costs no system call of its own (with the network secret it waits for the
 * send), and not awaiting is as fast: the frames of one tick leave together. A subscriber that
 * reads slower than we publish slows the awaiting publisher down.
 */
export function publish(topic: string, ...args: unknown[]): Promise<number> {
  return runtime().publish(topic, ...args);
}

/** Ends serving and closes every connection of this process. */
export async function close(): Promise<void> {
  await current?.close();
  current = undefined;
}

/**
 * Every function of the network as a property: `await network.echo.add(1, 2)`, and
 * `await network.callAll("ping")` for the answer of every server that offers it.
 */
export const network = namespace((name, args) => runtime().callWith(name, args), {
  callAll: (name: string, ...args: unknown[]): Promise<CallAllResult[]> => runtime().callAll(name, args),
});

/** This host: `await localhost.network.core.info()`, as `getHost(os.hostname())` would give it. */
export const localhost: HostHandle = new Proxy({} as HostHandle, {
  get: (_, key) => Reflect.get(runtime().localhost, key),
});

/**
 * Publishes on `topic` and returns what one subscriber answers (the nearest); every other
 * matching subscriber gets it as a publication: `await reqpub("lab.camera.snap", { exposure })`.
 */
export function reqpub<T = unknown>(topic: string, ...args: unknown[]): Promise<T> {
  return runtime().reqpub(topic, ...args);
}

/** Calls from another host's perspective: `await getHost("computer1").call("f")`. */
export function getHost(host: string, port?: number): HostHandle {
  return runtime().getHost(host, port);
}

/** Every host this one knows: name, addresses, state, servers, functions. */
export function hosts(): Promise<HostInfo[]> {
  return runtime().hosts();
}

export { Runtime };
export {
  BadArgumentsError,
  BadMessageError,
  CancelledError,
  StreamRequiredError,
  ItemLostError,
  MapError,
  ClosedError,
  ConfigError,
  ConnectionLostError,
  FrameTooLargeError,
  LabcError,
  LimitError,
  MalformedFrameError,
  NoCallContextError,
  NoSuchFunctionError,
  NoSuchHostError,
  NoSuchServiceError,
  NotPermittedError,
  NotTrustedError,
  RemoteError,
  StateMismatchError,
  RouterUnavailableError,
  ServiceLoadError,
  TimeoutError,
} from "./errors.js";
export type { CallAllResult, CallOptions, HostHandle, HostInfo, InstanceMethodContext, InstancePrototype, ItemStream, JobMap, MapOptions, MapResult, MethodDecorator, Namespace, Remote, ServiceRef, RegisterOptions, ServiceInfo, StreamOptions, SubscribeOptions, Unsubscribe };
export type { Config, ConfigKey } from "./config.js";
export type { CallContext, Caller } from "./context.js";
export type { Hook, HookEvent } from "./hooks.js";
export type { Scope, Visibility } from "./wire/message.js";
