// Finds and loads a service (a file or folder of decorated classes) by path or name.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { decoratedMethods, loadReflectMetadata } from "../decorators.js";
import { NoSuchServiceError, ServiceLoadError } from "../errors.js";
import { compiled } from "./compile.js";
import { matchService, readManifest, servicesDir } from "./manifest.js";

export interface LoadedService {
  file: string;
  instances: object[];
}

type ServiceClass = new (options?: Record<string, unknown>) => object;

function isServiceClass(value: unknown): value is ServiceClass {
  return typeof value === "function" && value.prototype !== undefined && decoratedMethods(Object.create(value.prototype)).length > 0;
}

/** The file a service runs: itself, or for a folder its package.json `main`, else index.ts or index.js. */
export function serviceEntry(path: string): string {
  const full = resolve(path);
  if (!existsSync(full)) throw new ServiceLoadError(full, "no such file or folder");
  if (!statSync(full).isDirectory()) return full;
  let main: string | undefined;
  try {
    main = JSON.parse(readFileSync(join(full, "package.json"), "utf8")).main;
  } catch {
    // no package.json, or none with a main: look for an index
  }
  for (const candidate of [main, "index.ts", "index.js", "index.mjs"]) {
    if (candidate && existsSync(join(full, candidate))) return join(full, candidate);
  }
  throw new ServiceLoadError(full, "a service folder needs a package.json \"main\", an index.ts or an index.js");
}

/** Imports a service and returns its service classes (exported, with decorated methods). */
export async function serviceClasses(path: string): Promise<{ file: string; classes: ServiceClass[] }> {
  const file = serviceEntry(path);
  const runnable = await compiled(file);
  // Errors point into the service's own files, not into the compiled module.
  process.setSourceMapsEnabled(true);
  // Before the service's classes are decorated (the labc command loads it on demand).
  loadReflectMetadata();
  let module: Record<string, unknown>;
  try {
    module = await import(pathToFileURL(runnable).href);
  } catch (error) {
    throw new ServiceLoadError(file, `does not load: ${(error as Error).message}`, error);
  }
  const classes = Object.values(module).filter(isServiceClass);
  if (classes.length === 0) throw new ServiceLoadError(file, "exports no class with @register or @subscribe methods");
  return { file, classes };
}

/**
 * Loads a service (a TypeScript or JavaScript file, or a folder) and makes one instance of
 * each exported service class, passing each its options (from `[services.<ClassName>]`).
 */
export async function loadService(
  path: string,
  optionsFor: (className: string) => Record<string, unknown> | undefined = () => undefined,
): Promise<LoadedService> {
  const { file, classes } = await serviceClasses(path);
  const instances = classes.map((Class) => {
    try {
      const options = optionsFor(Class.name);
      return options === undefined ? new Class() : new Class(options);
    } catch (error) {
      throw new ServiceLoadError(file, `${Class.name} could not be constructed: ${(error as Error).message}`, error);
    }
  });
  return { file, instances };
}

/** What a service file in `./services` may be written in. */
const SOURCE = /^(?!.*\.d\.[cm]?ts$)(.+)\.(ts|mts|js|mjs)$/;

/**
 * Where the service a user names lies (`labc serve light`, `labc.load("LightControl")`): an
 * existing file or folder is itself; any other name is looked up in `./services` of `cwd`
 * first (a file by its name without extension, or a folder), then among the installed
 * services, matched as `labc start-service` matches names (case, `-` and `_` ignored, a unique
 * prefix will do).
 */
export function findService(query: string, cwd = process.cwd()): string {
  const path = resolve(cwd, query);
  if (existsSync(path)) return path;
  if (/[\\/]/.test(query) || SOURCE.test(query)) throw new ServiceLoadError(path, "no such file or folder");
  const localDir = join(cwd, "services");
  const local = localServices(localDir);
  const here = matchService(query, [...local.keys()]);
  if (here !== undefined) return local.get(here)!;
  const installedDir = servicesDir();
  const manifest = readManifest(installedDir);
  const installed = matchService(query, Object.keys(manifest));
  if (installed !== undefined) return join(installedDir, manifest[installed]!.entry);
  const list = (names: string[]) => (names.length ? names.sort().join(", ") : "none");
  throw new NoSuchServiceError(
    query,
    `no service "${query}" in ${localDir} (${list([...local.keys()])}) or installed (${list(Object.keys(manifest))})`,
  );
}

/** The services of a project's `services` folder, by name: its source files and folders. */
function localServices(dir: string): Map<string, string> {
  const found = new Map<string, string>();
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return found;
  }
  for (const entry of entries) {
    if (entry.name.startsWith(".")) continue;
    const name = entry.isDirectory() ? entry.name : SOURCE.exec(entry.name)?.[1];
    if (name !== undefined && !found.has(name)) found.set(name, join(dir, entry.name));
  }
  return found;
}
