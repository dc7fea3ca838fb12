import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, realpathSync, statSync } from "node:fs";
import { basename, dirname, join, relative } from "node:path";

/** Git's answer, or undefined when git is missing or says no (not a repository...). */
function git(cwd: string, args: string[]): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile("git", ["-C", cwd, ...args], { encoding: "utf8" }, (error, stdout) => resolve(error ? undefined : stdout.trim()));
  });
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
 * it names exactly the code that runs. Asynchronous, so that a server starting asks git while
 * it loads its services, and a router listing services keeps relaying meanwhile.
 */
export async function stateId(path: string): Promise<string> {
  const real = realpathSync(path);
  const dir = statSync(real).isDirectory() ? real : dirname(real);
  const target = statSync(real).isDirectory() ? "." : basename(real);
  // Both at once: the commit counts only if the status says clean.
  const [status, commit] = await Promise.all([
    git(dir, ["status", "--porcelain", "--", target]),
    git(dir, ["log", "-1", "--format=%H", "--", target]),
  ]);
  if (status === "" && commit) return commit.slice(0, 12);
  return contentHash(real);
}

/** One state id for several services served by one process. */
export async function combinedStateId(paths: string[]): Promise<string> {
  if (paths.length === 1) return stateId(paths[0]!);
  const ids = await Promise.all(paths.map(stateId));
  return createHash("sha256").update(ids.join(",")).digest("hex").slice(0, 12);
}
