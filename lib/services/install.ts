import { cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { configDir } from "../config.js";
import { NoSuchServiceError, ServiceLoadError } from "../errors.js";
import { serviceClasses } from "./loader.js";

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

function writeManifest(dir: string, manifest: Manifest): void {
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
  const wanted = normal(query);
  const exact = names.filter((name) => normal(name) === wanted);
  if (exact.length === 1) return exact[0]!;
  const prefixed = names.filter((name) => normal(name).startsWith(wanted));
  if (prefixed.length === 1 && wanted !== "") return prefixed[0]!;
  if (prefixed.length > 1) {
    throw new NoSuchServiceError(query, `"${query}" could be any of: ${prefixed.sort().join(", ")}`);
  }
  const installed = names.length ? `installed: ${names.sort().join(", ")}` : "nothing is installed";
  throw new NoSuchServiceError(query, `no installed service is called "${query}" (${installed})`);
}

/**
 * Installs a service (a file, or a folder with its own package.json) into the services folder:
 * copied, or linked with `link`. It must load and hold a service class whose name no installed
 * service has; if not, nothing changes.
 */
export async function install(path: string, options: { link?: boolean; dir?: string } = {}): Promise<{ name: string } & Installed> {
  const dir = options.dir ?? servicesDir();
  const source = resolve(path);
  if (!existsSync(source)) throw new ServiceLoadError(source, "no such file or folder");
  const { classes } = await serviceClasses(source);
  const names = classes.map((Class) => Class.name);
  const name = names[0]!;
  const manifest = readManifest(dir);
  for (const [other, installed] of Object.entries(manifest)) {
    const shared = names.filter((n) => n === other || installed.classes.includes(n));
    if (shared.length) {
      throw new ServiceLoadError(source, `${shared.join(", ")} is already installed (from ${installed.source}); uninstall ${other} first`);
    }
  }
  const entry = basename(source);
  const target = join(dir, entry);
  if (existsSync(target)) throw new ServiceLoadError(source, `${target} already exists; uninstall what is there first`);
  mkdirSync(dir, { recursive: true });
  if (options.link) symlinkSync(source, target);
  else cpSync(source, target, { recursive: true });
  const installed: Installed = { entry, classes: names, linked: options.link === true, source };
  writeManifest(dir, { ...manifest, [name]: installed });
  return { name, ...installed };
}

/** Removes an installed service (its copy, or its link: never the linked original). */
export function uninstall(query: string, options: { dir?: string } = {}): string {
  const dir = options.dir ?? servicesDir();
  const manifest = readManifest(dir);
  const name = resolveService(query, Object.keys(manifest));
  const target = join(dir, manifest[name]!.entry);
  // A link is removed, not what it points to.
  rmSync(target, { recursive: true, force: true });
  delete manifest[name];
  writeManifest(dir, manifest);
  return name;
}
