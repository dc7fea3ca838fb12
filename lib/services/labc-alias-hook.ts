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
