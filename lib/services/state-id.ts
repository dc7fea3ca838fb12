import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, realpathSync, statSync } from "node:fs";
import { basename, dirname, join, relative } from "node:path";

function git(cwd: string, args: string[]): string | undefined {
  const result = spawnSync("git", ["-C", cwd, ...args], { encoding: "utf8" });
  return result.status === 0 ? result.stdout.trim() : undefined;
}

/** Every file of a service, sorted, without dependencies or version control data. */
function filesOf(path: string): string[] {
  if (!statSync(path).isDirectory()) return [path];
  const out: string[] = [];
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    if (entry.name === "node_modules" || entry.name === ".git") continue;
    const full = join(path, entry.name);
    if (entry.isDirectory()) out.push(...filesOf(full));
    else if (entry.isFile()) out.push(full);
  }
  return out.sort();
}

/** A hash of the service's files, their names (relative to it) and contents. */
function contentHash(path: string): string {
  const hash = createHash("sha256");
  const root = statSync(path).isDirectory() ? path : dirname(path);
  for (const file of filesOf(path)) hash.update(relative(root, file)).update("\0").update(readFileSync(file)).update("\0");
  return hash.digest("hex").slice(0, 12);
}

/**
 * The state id of a service (a file or a folder): the last git commit that touched it when it
 * lies in a git repository and has no uncommitted change, else a hash of its files. Either way
 * it names exactly the code that runs.
 */
export function stateId(path: string): string {
  const real = realpathSync(path);
  const dir = statSync(real).isDirectory() ? real : dirname(real);
  const target = statSync(real).isDirectory() ? "." : basename(real);
  const clean = git(dir, ["status", "--porcelain", "--", target]);
  if (clean === "") {
    const commit = git(dir, ["log", "-1", "--format=%H", "--", target]);
    if (commit) return commit.slice(0, 12);
  }
  return contentHash(real);
}

/** One state id for several services served by one process. */
export function combinedStateId(paths: string[]): string {
  if (paths.length === 1) return stateId(paths[0]!);
  return createHash("sha256").update(paths.map(stateId).join(",")).digest("hex").slice(0, 12);
}
