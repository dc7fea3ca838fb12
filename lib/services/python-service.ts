// Services written in Python: a `.py` file, run with the host's python3 as `python3 -m labc serve`.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { delimiter, join } from "node:path";
import { ServiceLoadError } from "../errors.js";
import { CLI_PATH, PACKAGE_ROOT } from "../paths.js";

/** Whether a service's entry is a Python file. */
export function isPythonService(entry: string): boolean {
  return entry.endsWith(".py");
}

/** The Python that runs Python services: `$LABC_PYTHON`, else the config's `service_control.python`. */
export function pythonCommand(configured: string, env: NodeJS.ProcessEnv = process.env): string {
  return env.LABC_PYTHON || configured || "python3";
}

/**
 * The environment of a Python process of this labc: `clients/python` of this package first on
 * PYTHONPATH (the `labc` Python package it ships), so that the service runs the package that
 * matches its router; without it, an installed `labc` package is what Python finds. Output is
 * unbuffered: the log shows a service's prints as they happen, and its "serving" line at once.
 */
export function pythonEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const shipped = join(PACKAGE_ROOT, "clients", "python");
  const path = existsSync(join(shipped, "labc", "__init__.py")) ? [shipped, env.PYTHONPATH].filter(Boolean).join(delimiter) : env.PYTHONPATH;
  return { ...env, ...(path ? { PYTHONPATH: path } : {}), PYTHONUNBUFFERED: "1" };
}

/** What `python3 -m labc serve --list FILE` says the file serves. */
export interface PythonServiceInfo {
  /** The service's name: its first class, else the file's name in CamelCase. */
  name: string;
  classes: string[];
  functions: string[];
}

/** Imports a Python service file in a Python process of its own and returns what it serves. */
export function pythonServiceClasses(file: string, python: string): Promise<PythonServiceInfo> {
  return new Promise((resolve, reject) => {
    execFile(python, ["-m", "labc", "serve", "--list", file], { env: pythonEnv(process.env), timeout: 60_000, encoding: "utf8" }, (error, stdout, stderr) => {
      if (error) {
        const said = stderr.trim().split("\n").at(-1)?.replace(/^labc: /, "").replace(/ \[LABC_SERVICE_LOAD\]$/, "").replace(`${file}: `, "");
        const missing = (error as NodeJS.ErrnoException).code === "ENOENT";
        const reason = missing
          ? `a Python service needs ${python}, which is not installed here (LABC_PYTHON or service_control.python name another)`
          : /No module named labc\b/.test(stderr)
            ? `${python} does not find the labc Python package (pip install labc, or the clients/python of labc's npm package)`
            : said || error.message;
        return reject(new ServiceLoadError(file, reason, error));
      }
      try {
        resolve(JSON.parse(stdout.trim().split("\n").at(-1)!) as PythonServiceInfo);
      } catch (cause) {
        reject(new ServiceLoadError(file, `${python} -m labc serve --list said nothing readable: ${stdout.slice(0, 200)}`, cause));
      }
    });
  });
}

/**
 * Starts a Python service: `python3 -m labc serve FILE --as NAME`, its state id by `LABC_STATE`
 * (the router's, the same `labc services` shows), its router's port by `LABC_ROUTER_PORT`.
 */
export function spawnPythonService(
  name: string,
  entry: string,
  options: { python: string; state: string | undefined; routerPort: number; env: NodeJS.ProcessEnv },
): ChildProcess {
  const env = pythonEnv({ ...options.env, LABC_ROUTER_PORT: String(options.routerPort) });
  // A router that dies is started again by its services: by this labc, as the TypeScript ones do.
  // A command line, as a shell would split it (shlex on the Python side): paths may hold spaces.
  if (!env.LABC_COMMAND) env.LABC_COMMAND = [process.execPath, CLI_PATH].map((part) => `'${part.replace(/'/g, `'\\''`)}'`).join(" ");
  if (options.state) env.LABC_STATE = options.state;
  return spawn(options.python, ["-m", "labc", "serve", entry, "--as", name], { detached: true, stdio: ["ignore", "pipe", "pipe"], env });
}

/** Whether a process's command line (/proc/PID/cmdline) is the service `name`: `labc service NAME` (TypeScript) or `python -m labc serve FILE --as NAME`. */
export function isServiceCommand(cmdline: string, name: string): boolean {
  if (cmdline.startsWith(`labc service ${name}`)) return true;
  const args = cmdline.split("\0");
  const as = args.indexOf("--as");
  return as > 0 && args[as + 1] === name && args.includes("-m") && args.includes("labc") && args.includes("serve");
}
