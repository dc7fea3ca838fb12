// A module resolution hook (runs on Node's loader thread): `import "labc"` inside a service
// resolves to the labc that loads it, wherever the service lives, so both share one copy.
let labcUrl = "";

export function initialize(data: { labcUrl: string }): void {
  labcUrl = data.labcUrl;
}

export function resolve(
  specifier: string,
  context: unknown,
  next: (specifier: string, context: unknown) => unknown,
): unknown {
  if (specifier === "labc") return { url: labcUrl, shortCircuit: true };
  return next(specifier, context);
}

// A service file outside any package ("type": "module" nowhere above it) would be taken for
// CommonJS, and then cannot import labc, which is ESM. Services are ESM: say so.
export function load(
  url: string,
  context: { format?: string },
  next: (url: string, context: unknown) => unknown,
): unknown {
  if (/\.tsx?$/.test(url) && !url.includes("/node_modules/") && context.format !== "module") {
    return next(url, { ...context, format: "module" });
  }
  return next(url, context);
}
