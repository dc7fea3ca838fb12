import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, renameSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { PACKAGE_ROOT } from "../lib/paths.js";

/** `npm pack` of this checkout into `dir` (as built: no scripts run): the tarball's path and its files. */
export function packLabc(dir: string): { tarball: string; files: string[] } {
  const packed = spawnSync("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", dir], { cwd: PACKAGE_ROOT, encoding: "utf8" });
  if (packed.status !== 0) throw new Error(`npm pack failed: ${packed.stderr}`);
  const [{ filename, files }] = JSON.parse(packed.stdout) as [{ filename: string; files: { path: string }[] }];
  return { tarball: join(dir, filename), files: files.map((file) => file.path) };
}

/**
 * What `npm install labc` leaves in `project`, offline: the tarball unpacked as
 * node_modules/labc, this checkout's installed packages linked beside it (its dependencies
 * among them), and the commands `npx labc` and `npx tsx` find.
 */
export function installPacked(tarball: string, project: string): void {
  const modules = join(project, "node_modules");
  mkdirSync(join(modules, ".bin"), { recursive: true });
  const unpacked = spawnSync("tar", ["xzf", tarball, "-C", modules], { encoding: "utf8" });
  if (unpacked.status !== 0) throw new Error(`tar: ${unpacked.stderr}`);
  renameSync(join(modules, "package"), join(modules, "labc"));
  for (const name of readdirSync(join(PACKAGE_ROOT, "node_modules"))) {
    if (name.startsWith(".") || existsSync(join(modules, name))) continue;
    symlinkSync(join(PACKAGE_ROOT, "node_modules", name), join(modules, name));
  }
  symlinkSync("../labc/bin/labc.js", join(modules, ".bin", "labc"));
  symlinkSync("../tsx/dist/cli.mjs", join(modules, ".bin", "tsx"));
}
