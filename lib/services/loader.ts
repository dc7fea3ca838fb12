import { createHash } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { register as registerHooks } from "node:module";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { register as registerTsx } from "tsx/esm/api";
import { decoratedMethods } from "../decorators.js";
import { ServiceLoadError } from "../errors.js";

export interface LoadedService {
  file: string;
  instances: object[];
}

let hooked = false;

/** TypeScript through tsx, and `import "labc"` bound to this copy of labc, once per process. */
function installHooks(): void {
  if (hooked) return;
  hooked = true;
  registerTsx();
  const labcUrl = new URL(import.meta.url.endsWith(".ts") ? "../index.ts" : "../index.js", import.meta.url).href;
  const hook = new URL(import.meta.url.endsWith(".ts") ? "./labc-alias-hook.ts" : "./labc-alias-hook.js", import.meta.url);
  registerHooks(hook, { data: { labcUrl } });
}

function isServiceClass(value: unknown): value is new () => object {
  return typeof value === "function" && value.prototype !== undefined && decoratedMethods(Object.create(value.prototype)).length > 0;
}

/**
 * Loads a service file (TypeScript or JavaScript) and makes one instance of each exported
 * class that has @register or @subscribe methods.
 */
export async function loadService(path: string): Promise<LoadedService> {
  const file = resolve(path);
  if (!existsSync(file) || !statSync(file).isFile()) throw new ServiceLoadError(file, "no such file");
  installHooks();
  let module: Record<string, unknown>;
  try {
    module = await import(pathToFileURL(file).href);
  } catch (error) {
    throw new ServiceLoadError(file, `does not load: ${(error as Error).message}`, error);
  }
  const classes = Object.values(module).filter(isServiceClass);
  if (classes.length === 0) throw new ServiceLoadError(file, "exports no class with @register or @subscribe methods");
  const instances = classes.map((Class) => {
    try {
      return new Class();
    } catch (error) {
      throw new ServiceLoadError(file, `${Class.name} could not be constructed: ${(error as Error).message}`, error);
    }
  });
  return { file, instances };
}

/** A content hash of the files served: names exactly the code that runs. */
export function stateOf(files: string[]): string {
  const hash = createHash("sha256");
  for (const file of files) hash.update(readFileSync(file)).update("\0");
  return hash.digest("hex").slice(0, 12);
}
