import { cpSync, existsSync, mkdirSync, rmSync, symlinkSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { ServiceLoadError } from "../errors.js";
import { loadConfig } from "../config.js";
import { serviceClasses } from "./loader.js";
import { isPythonService, pythonCommand, pythonServiceClasses } from "./python-service.js";
import { readManifest, resolveService, servicesDir, writeManifest, type Installed } from "./manifest.js";

/**
 * Installs a service (a file, or a folder with its own package.json) into the services folder:
 * copied, or linked with `link`. It must load and hold a service class whose name no installed
 * service has; if not, nothing changes.
 */
export async function install(path: string, options: { link?: boolean; dir?: string } = {}): Promise<{ name: string } & Installed> {
  const dir = options.dir ?? servicesDir();
  const source = resolve(path);
  if (!existsSync(source)) throw new ServiceLoadError(source, "no such file or folder");
  const names = isPythonService(source) ? await pythonNames(source) : (await serviceClasses(source)).classes.map((Class) => Class.name);
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
  // A build of the original stays behind: the copy builds its own from its own files.
  else cpSync(source, target, { recursive: true });
  const installed: Installed = { entry, classes: names, linked: options.link === true, source };
  writeManifest(dir, { ...manifest, [name]: installed });
  return { name, ...installed };
}

/** A Python file's service name and classes, from the Python that will run it. */
async function pythonNames(file: string): Promise<string[]> {
  const { name, classes } = await pythonServiceClasses(file, pythonCommand(loadConfig().values["service_control.python"]));
  return [name, ...classes.filter((Class) => Class !== name)];
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
