/** Functions as properties: `ns.echo.add(1, 2)` calls "echo.add" with (1, 2). */
export type Namespace = ((...args: unknown[]) => Promise<any>) & { readonly [name: string]: Namespace };

export function namespace(call: (name: string, args: unknown[]) => Promise<any>, path: readonly string[] = []): Namespace {
  return new Proxy(function () {} as unknown as Namespace, {
    get(_target, property) {
      // Not "then": awaiting a namespace must not call a function named "then".
      if (typeof property !== "string" || property === "then") return undefined;
      return namespace(call, [...path, property]);
    },
    apply(_target, _this, args: unknown[]) {
      return call(path.join("."), args);
    },
  });
}
