import { createRequire } from "node:module";
import type {} from "reflect-metadata";
import type { OptionNames } from "./check-options.js";
import type { Scope, Visibility } from "./wire/message.js";

// Loaded with require, not import: importing a CommonJS package from ES modules starts Node's
// CommonJS export lexer, a WebAssembly module that costs every labc process about 6 MB.
let reflectLoaded = false;

/** Loads reflect-metadata (idempotent): what the functions below and decorated classes use. */
export function loadReflectMetadata(): void {
  if (reflectLoaded) return;
  createRequire(import.meta.url)("reflect-metadata");
  reflectLoaded = true;
}

// At load, so that `__metadata` in a class compiled with emitDecoratorMetadata finds it; unless
// the `labc` command asked for it on first use (bin/labc.js): `labc call` decorates nothing and is
// spared its 64 KB, and the command loads services through lib/services/loader.ts, which loads it.
if (!(globalThis as Record<symbol, unknown>)[Symbol.for("labc.reflectMetadataOnDemand")]) loadReflectMetadata();

export interface RegisterOptions {
  /** Name callers use; defaults to the method's (or function's) own name. */
  name?: string;
  /** Where the function can be seen from: its server, its host, or the network (default). */
  scope?: Scope;
  visibility?: Visibility;
  /**
   * Running it twice for the same arguments does no harm: `labc.map()` then sends an item whose
   * server was lost mid-call to another server, instead of failing it.
   */
  idempotent?: boolean;
}

export const REGISTER_OPTIONS = { name: true, scope: true, visibility: true, idempotent: true } as const satisfies OptionNames<RegisterOptions>;

// Registered symbols: metadata written by one copy of labc is read by another.
const REGISTER = Symbol.for("labc:register");
const SUBSCRIBE = Symbol.for("labc:subscribe");
const WATCH = Symbol.for("labc:watch");

/** What a TC39 decorator receives as its second argument (only the parts read here). */
interface DecoratorContext {
  kind: string;
  name: string | symbol;
  static?: boolean;
}

function isDecoratorContext(value: unknown): value is DecoratorContext {
  return typeof value === "object" && value !== null && typeof (value as DecoratorContext).kind === "string";
}

type Method = (...args: any[]) => any;

/** The context TypeScript's standard decorators pass for an instance method (never a static one). */
export interface InstanceMethodContext<This, F extends Method> extends ClassMethodDecoratorContext<This, F> {
  readonly static: false;
}

/**
 * What `experimentalDecorators` pass first: an instance method's prototype. A static method's is
 * its class, a function, which gets this type instead and so names the mistake in the error.
 */
export type InstancePrototype<This> = This extends Function ? "labc decorators go on instance methods, not static ones" : This;

/**
 * A labc method decorator, typed for both of TypeScript's decorator modes so that the compiler
 * refuses it on a field, an accessor or a static method (each would otherwise fail only at run
 * time, or be silently skipped).
 */
export interface MethodDecorator {
  <This, F extends Method>(method: F, context: InstanceMethodContext<This, F>): void;
  <This extends object, F extends Method>(prototype: InstancePrototype<This>, key: string | symbol, descriptor: TypedPropertyDescriptor<F>): void;
}

/**
 * Whether `register`/`subscribe` were called as a bare decorator rather than as functions: a
 * TC39 context, a property descriptor (an experimental decorator on a method, static or not), or
 * a prototype and a key (on a field).
 */
export function isDecoratorCall(first: unknown, second: unknown, third: unknown): boolean {
  if (isDecoratorContext(second)) return true;
  if (typeof third === "object" && third !== null && "configurable" in third) return true;
  return typeof first === "object" && first !== null && (typeof second === "string" || typeof second === "symbol");
}

/** What a decorator was put on, for its error: `static method "reset"`, `field "count"`. */
function decoratedPlace(args: unknown[]): string | undefined {
  const [first, second, third] = args;
  if (isDecoratorContext(second)) {
    const what = `${second.static ? "static " : ""}${second.kind === "method" ? "method" : second.kind}`;
    return second.kind === "method" && !second.static ? undefined : `${what} "${String(second.name)}"`;
  }
  const descriptor = third as PropertyDescriptor | undefined;
  const name = `"${String(second)}"`;
  if (typeof first === "function") return `static member ${name}`;
  if (descriptor === undefined || typeof descriptor !== "object") return `field ${name}`;
  if (typeof descriptor.value !== "function") return `accessor ${name}`;
  return undefined;
}

/**
 * Returns a decorator that works both as a TypeScript `experimentalDecorators` method decorator
 * `(prototype, key, descriptor)` and as a TC39 one `(method, context)`: services are compiled by
 * whatever tsconfig tsx finds, which we do not control. Metadata goes on the method itself.
 */
export function methodDecorator(decorator: string, mark: (method: Function) => void): MethodDecorator {
  return (...args: unknown[]): void => decorate(decorator, mark, args);
}

/** Applies a decorator given the arguments either mode passes: marks the method, or says what is wrong. */
export function decorate(decorator: string, mark: (method: Function) => void, args: unknown[]): void {
  const wrong = decoratedPlace(args);
  // A static method would be skipped when its class is served: refused here so that nothing is lost silently.
  if (wrong !== undefined) throw new TypeError(`${decorator} goes on instance methods, not on the ${wrong}`);
  mark((isDecoratorContext(args[1]) ? args[0] : (args[2] as PropertyDescriptor).value) as Function);
}

export function markRegister(method: Function, options: RegisterOptions): void {
  loadReflectMetadata();
  Reflect.defineMetadata(REGISTER, options, method);
}

/** The name `@register` gave a method (its `name` option), if it gave one. */
export function registeredName(method: unknown): string | undefined {
  if (typeof method !== "function") return undefined;
  loadReflectMetadata();
  return (Reflect.getOwnMetadata(REGISTER, method) as RegisterOptions | undefined)?.name;
}

export interface SubscribeOptions {
  /** A queue group: each publication goes to one subscriber of the group, across hosts. */
  group?: string;
}

export const SUBSCRIBE_OPTIONS = { group: true } as const satisfies OptionNames<SubscribeOptions>;

/** One `@subscribe` of a method: its pattern (`undefined` for the method's own name) and group. */
export interface Subscription {
  pattern: string | undefined;
  group: string | undefined;
}

export function markSubscribe(method: Function, pattern: string | undefined, options: SubscribeOptions = {}): void {
  loadReflectMetadata();
  const subscriptions: Subscription[] = Reflect.getOwnMetadata(SUBSCRIBE, method) ?? [];
  Reflect.defineMetadata(SUBSCRIBE, [...subscriptions, { pattern, group: options.group }], method);
}

export function markWatch(method: Function, topic: string): void {
  loadReflectMetadata();
  const topics: string[] = Reflect.getOwnMetadata(WATCH, method) ?? [];
  Reflect.defineMetadata(WATCH, [...topics, topic], method);
}

export interface DecoratedMethod {
  key: string;
  method: Function;
  register?: RegisterOptions;
  subscribe?: Subscription[];
  /** Topics its results are published on (`@watch`). */
  watch?: string[];
}

/** Every decorated method of an instance, walking its prototype chain (subclass first). */
export function decoratedMethods(instance: object): DecoratedMethod[] {
  loadReflectMetadata();
  const found = new Map<string, DecoratedMethod>();
  for (let proto = Object.getPrototypeOf(instance); proto && proto !== Object.prototype; proto = Object.getPrototypeOf(proto)) {
    for (const key of Object.getOwnPropertyNames(proto)) {
      if (key === "constructor" || found.has(key)) continue;
      const method = Object.getOwnPropertyDescriptor(proto, key)?.value;
      if (typeof method !== "function") continue;
      const register: RegisterOptions | undefined = Reflect.getOwnMetadata(REGISTER, method);
      const subscribe: Subscription[] | undefined = Reflect.getOwnMetadata(SUBSCRIBE, method);
      const watch: string[] | undefined = Reflect.getOwnMetadata(WATCH, method);
      if (register || subscribe || watch) found.set(key, { key, method, register, subscribe, watch });
    }
  }
  return [...found.values()];
}

/** The name a service class is reached under: `LightControl` → `light_control`. */
export function routeName(className: string): string {
  return className
    .replace(/([A-Z]+)([A-Z][a-z])/g, "$1_$2")
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
    .toLowerCase();
}
