import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, realpathSync, statSync } from "node:fs";
import { basename, dirname, join, relative } from "node:path";

/**
 * Whether git sees `target` (in `dir`) unchanged, and the last commit that touched it; undefined
 * when git is missing or says no (not a repository...). One process asks both questions:
 * spawning costs a server's event loop milliseconds as it starts.
 */
function gitState(dir: string, target: string): Promise<{ clean: boolean; commit: string } | undefined> {
  const script = 'git -C "$1" status --porcelain -- "$2" && printf "\\0" && git -C "$1" log -1 --format=%H -- "$2"';
  return new Promise((resolve) => {
    execFile("sh", ["-c", script, "sh", dir, target], { encoding: "utf8" }, (error, stdout) => {
      if (error) return resolve(undefined);
      const [status = "", commit = ""] = stdout.split("\0");
      resolve({ clean: status.trim() === "", commit: commit.trim() });
    });
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
  const git = await gitState(dir, target);
  if (git?.clean && git.commit) return git.commit.slice(0, 12);
  return contentHash(real);
}

/** One state id for several services served by one process. */
export async function combinedStateId(paths: string[]): Promise<string> {
  if (paths.length === 1) return stateId(paths[0]!);
  const ids = await Promise.all(paths.map(stateId));
  return createHash("sha256").update(ids.join(",")).digest("hex").slice(0, 12);
}
