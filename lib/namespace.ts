/** Functions as properties: `ns.echo.add(1, 2)` calls "echo.add" with (1, 2). */
export type Namespace = (<T = unknown>(...args: unknown[]) => Promise<T>) & { readonly [name: string]: Namespace };

/**
 * `extras` are properties of the root that are not function names (`network.callAll`).
 */
export function namespace<Extras extends object = {}>(
  call: (name: string, args: unknown[]) => Promise<any>,
  extras?: Extras,
  path: readonly string[] = [],
): Namespace & Extras {
  return new Proxy(function () {} as unknown as Namespace & Extras, {
    get(_target, property) {
      // Not "then": awaiting a namespace must not call a function named "then".
      if (typeof property !== "string" || property === "then") return undefined;
      if (extras && path.length === 0 && Object.hasOwn(extras, property)) return (extras as any)[property];
      return namespace(call, undefined, [...path, property]);
    },
    apply(_target, _this, args: unknown[]) {
      return call(path.join("."), args);
    },
  });
}
