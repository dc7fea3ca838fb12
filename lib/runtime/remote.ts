import { registeredName, routeName } from "../decorators.js";

/**
 * What a service class looks like from another process: each method, called with the same
 * arguments, resolves with what it returns (awaited). Fields and non-methods are left out.
 */
export type Remote<T> = {
  readonly [K in keyof T as T[K] extends (...args: any[]) => any ? K : never]: T[K] extends (...args: infer A) => infer R
    ? (...args: A) => Promise<Awaited<R>>
    : never;
};

/** A service class, or the name its functions are reached under (`light_control`). */
export type ServiceRef<T> = string | (abstract new (...args: any[]) => T);

/**
 * The typed handle of a service: `handle.add(1, 2)` calls `echo.add` (the class's route name and
 * the function's) through `call`. Given the class, a method registered under another name
 * (`@register({ name: "add" }) sum()`) is called by that name; given a route name, by its own.
 */
export function remote<T>(service: ServiceRef<T>, call: (name: string, args: unknown[]) => Promise<unknown>): Remote<T> {
  const route = typeof service === "string" ? service : routeName(service.name);
  const prototype = typeof service === "string" ? undefined : (service.prototype as Record<string, unknown>);
  return new Proxy({} as Remote<T>, {
    get(_target, key) {
      // Not a thenable: `await handle` gives the handle.
      if (typeof key !== "string" || key === "then") return undefined;
      const name = registeredName(prototype?.[key]) ?? key;
      return (...args: unknown[]) => call(`${route}.${name}`, args);
    },
  });
}
