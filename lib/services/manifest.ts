import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { configDir } from "../config.js";
import { NoSuchServiceError } from "../errors.js";

/** One installed service, as `services.json` in the services folder records it. */
export interface Installed {
  /** What it is installed as, in the services folder: a file or a folder name. */
  entry: string;
  /** Its service classes; the first names the service. */
  classes: string[];
  /** Linked (`install -e`) rather than copied: edits take effect at the next start. */
  linked: boolean;
  /** Where it was installed from. */
  source: string;
}

export type Manifest = Record<string, Installed>;

/** `$XDG_CONFIG_HOME/labc/services`, else `~/.config/labc/services`. */
export function servicesDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(configDir(env), "services");
}

export function readManifest(dir: string): Manifest {
  try {
    return JSON.parse(readFileSync(join(dir, "services.json"), "utf8")) as Manifest;
  } catch {
    return {};
  }
}

export function writeManifest(dir: string, manifest: Manifest): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "services.json.tmp"), `${JSON.stringify(manifest, null, 2)}\n`);
  renameSync(join(dir, "services.json.tmp"), join(dir, "services.json"));
}

const normal = (name: string) => name.toLowerCase().replace(/[-_\s.]/g, "");

/**
 * Finds the one installed service a user means: by name, case-insensitively, ignoring `-` and
 * `_` (`light_control`, `LightControl`), or by a unique prefix (`light`). A name that holds a
 * path is refused: only what is installed here can be started.
 */
export function resolveService(query: string, names: string[]): string {
  if (/[\\/]|\.\./.test(query)) {
    throw new NoSuchServiceError(query, `"${query}" is a path, not a service name: install it first (labc install)`);
  }
  const found = matchService(query, names);
  if (found !== undefined) return found;
  const installed = names.length ? `installed: ${names.sort().join(", ")}` : "nothing is installed";
  throw new NoSuchServiceError(query, `no installed service is called "${query}" (${installed})`);
}

/** The one of `names` that `query` means (as `resolveService` says), undefined if none; a query that fits several is an error. */
export function matchService(query: string, names: string[]): string | undefined {
  const wanted = normal(query);
  const exact = names.filter((name) => normal(name) === wanted);
  if (exact.length === 1) return exact[0]!;
  const prefixed = names.filter((name) => normal(name).startsWith(wanted));
  if (prefixed.length === 1 && wanted !== "") return prefixed[0]!;
  if (prefixed.length > 1) {
    throw new NoSuchServiceError(query, `"${query}" could be any of: ${prefixed.sort().join(", ")}`);
  }
  return undefined;
}
