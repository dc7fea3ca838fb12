import { createRequire } from "node:module";
import type {} from "reflect-metadata";
import type { Scope, Visibility } from "./wire/message.js";

// Loaded with require, not import: importing a CommonJS package from ES modules starts Node's
// CommonJS export lexer, a WebAssembly module that costs every labc process about 6 MB.
createRequire(import.meta.url)("reflect-metadata");

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

// Registered symbols: metadata written by one copy of labc is read by another.
const REGISTER = Symbol.for("labc:register");
const SUBSCRIBE = Symbol.for("labc:subscribe");
const WATCH = Symbol.for("labc:watch");

/** What a TC39 decorator receives as its second argument (only the parts read here). */
interface DecoratorContext {
  kind: string;
  name: string | symbol;
}

export function isDecoratorContext(value: unknown): value is DecoratorContext {
  return typeof value === "object" && value !== null && typeof (value as DecoratorContext).kind === "string";
}

/**
 * Returns a decorator that works both as a TypeScript `experimentalDecorators` method decorator
 * `(prototype, key, descriptor)` and as a TC39 one `(method, context)`: services are compiled by
 * whatever tsconfig tsx finds, which we do not control. Metadata goes on the method itself.
 */
export function methodDecorator(mark: (method: Function) => void) {
  return (...args: unknown[]): void => {
    const method = isDecoratorContext(args[1]) ? args[0] : (args[2] as PropertyDescriptor | undefined)?.value;
    if (typeof method !== "function") throw new TypeError("labc decorators apply to methods only");
    mark(method);
  };
}

export function markRegister(method: Function, options: RegisterOptions): void {
  Reflect.defineMetadata(REGISTER, options, method);
}

/** The name `@register` gave a method (its `name` option), if it gave one. */
export function registeredName(method: unknown): string | undefined {
  if (typeof method !== "function") return undefined;
  return (Reflect.getOwnMetadata(REGISTER, method) as RegisterOptions | undefined)?.name;
}

export interface SubscribeOptions {
  /** A queue group: each publication goes to one subscriber of the group, across hosts. */
  group?: string;
}

/** One `@subscribe` of a method: its pattern (`undefined` for the method's own name) and group. */
export interface Subscription {
  pattern: string | undefined;
  group: string | undefined;
}

export function markSubscribe(method: Function, pattern: string | undefined, options: SubscribeOptions = {}): void {
  const subscriptions: Subscription[] = Reflect.getOwnMetadata(SUBSCRIBE, method) ?? [];
  Reflect.defineMetadata(SUBSCRIBE, [...subscriptions, { pattern, group: options.group }], method);
}

export function markWatch(method: Function, topic: string): void {
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
