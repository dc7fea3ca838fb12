import { existsSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { NoSuchServiceError, ServiceLoadError } from "../errors.js";
import { matchService, readManifest, servicesDir } from "./manifest.js";

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
