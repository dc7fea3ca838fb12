// Runs installed services, each in a process of its own, for ServiceControl.
import type { ChildProcess } from "node:child_process";
import { closeSync, createWriteStream, mkdirSync, openSync, readFileSync, readSync, renameSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { ServiceSettings } from "../config.js";
import { ServiceLoadError } from "../errors.js";
import { debug } from "../log.js";
import { readManifest, resolveService } from "./manifest.js";
import { isServiceCommand } from "./python-service.js";
import { stateId } from "./state-id.js";

export type ServiceState = "stopped" | "starting" | "running" | "crashed";

/** One line of `labc services`. */
export interface ServiceInfo {
  name: string;
  state: ServiceState;
  pid?: number;
  /** Seconds since it started, while it runs. */
  uptime?: number;
  /** State id of the code it runs (or would run). */
  stateId?: string;
  /** How the last crash ended (exit code or signal) and its last lines of output, if it crashed. */
  lastError?: string;
  restarts: number;
  linked: boolean;
  source: string;
}

export interface SupervisorOptions {
  servicesDir: string;
  /** Where each service's log (`<Name>.log`) and the record of running services go. */
  stateDir: string;
  /** `[services.<Name>]` of the config, read at each start. */
  settings: (name: string) => ServiceSettings | undefined;
  /**
   * Starts `labc serve <entry> --as <name>` (`python3 -m labc serve` for a `.py` file): a process
   * of its own, output piped. `state` is the state id of its code, as `labc services` shows it.
   */
  spawn: (name: string, entry: string, state: string | undefined) => ChildProcess;
  /** Milliseconds between SIGTERM and SIGKILL when stopping. */
  stopTimeoutMs?: number;
  /** Milliseconds a service may take to serve after it was started. */
  startTimeoutMs?: number;
}

interface Run {
  pid: number;
  child: ChildProcess | null;
  startedAt: number;
  /** The state id the service reported in its "serving" line. */
  stateId: string | undefined;
  ready: boolean;
  stopping: boolean;
  exited: Promise<void>;
}

interface History {
  restarts: number;
  /** Counts the stops: a start that was finding its state id when one came does not go on. */
  stops: number;
  lastError?: string;
  retry?: NodeJS.Timeout;
}

/** A run longer than this was healthy: the restart backoff starts over. */
const HEALTHY_MS = 60_000;
const MAX_BACKOFF_MS = 30_000;
/** The state id in the line `labc serve` prints once it serves (cli/commands/serve.ts). */
const SERVING_STATE = /, state ([0-9a-f]+)\)/;

/** Signals one process; never a group or "every process" (pid 0 or negative). */
function signal(pid: number, name: NodeJS.Signals): void {
  if (!Number.isInteger(pid) || pid <= 0) return;
  try {
    process.kill(pid, name);
  } catch {
    // already gone
  }
}

function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return !readFileSync(`/proc/${pid}/stat`, "utf8").includes(") Z ");
  } catch {
    return false;
  }
}

/**
 * Starts and stops the services installed on this host, each in a child process of its own
 * whose output goes to a log file; records crashes, restarts a service that asks for it
 * (`restart = "on-failure"`) with a growing pause, and starts what a service needs first.
 * Services it started survive it; a new supervisor adopts them from the record it keeps.
 */
export class Supervisor {
  private readonly runs = new Map<string, Run>();
  private readonly records = new Map<string, History>();
  private readonly runningFile: string;

  constructor(private readonly options: SupervisorOptions) {
    mkdirSync(options.stateDir, { recursive: true });
    this.runningFile = join(options.stateDir, "services-running.json");
    this.adopt();
  }

  /** Whether a service runs, starts, or waits to be restarted. */
  busy(): boolean {
    return this.runs.size > 0 || [...this.records.values()].some((history) => history.retry !== undefined);
  }

  list(): Promise<ServiceInfo[]> {
    const manifest = readManifest(this.options.servicesDir);
    return Promise.all(
      Object.keys(manifest)
        .sort()
        .map((name) => this.info(name)),
    );
  }

  /** Starts a service (and first what it needs); resolves once it serves. */
  async start(query: string, chain: string[] = []): Promise<ServiceInfo> {
    const name = this.resolve(query);
    if (chain.includes(name)) throw new ServiceLoadError(name, `needs itself through ${[...chain, name].join(" → ")}`);
    for (const needed of this.options.settings(name)?.needs ?? []) await this.start(needed, [...chain, name]);
    const current = this.runs.get(name);
    if (current) {
      if (!current.ready) await this.waitReady(name, current);
      return this.info(name);
    }
    const record = this.record(name);
    if (record.retry) clearTimeout(record.retry);
    record.retry = undefined;
    const run = await this.begin(name);
    if (!run) throw new ServiceLoadError(name, "was stopped while it started");
    await this.waitReady(name, run);
    return this.info(name);
  }

  /** Stops a service: SIGTERM, then SIGKILL if it has not ended in time. */
  async stop(query: string): Promise<ServiceInfo> {
    const name = this.resolve(query);
    const record = this.record(name);
    if (record.retry) clearTimeout(record.retry);
    record.retry = undefined;
    record.stops++;
    const run = this.runs.get(name);
    if (!run) return this.info(name);
    run.stopping = true;
    signal(run.pid, "SIGTERM");
    const timeout = this.options.stopTimeoutMs ?? 5000;
    const timer = setTimeout(() => alive(run.pid) && signal(run.pid, "SIGKILL"), timeout);
    await run.exited;
    clearTimeout(timer);
    return this.info(name);
  }

  /** The service's log from byte `offset` on (at most `maxBytes`), and where the next read starts. */
  logs(query: string, offset = -16384, maxBytes = 65536): { name: string; text: string; offset: number } {
    const name = this.resolve(query);
    const file = this.logFile(name);
    let size = 0;
    try {
      size = statSync(file).size;
    } catch {
      return { name, text: "", offset: 0 };
    }
    const from = offset < 0 ? Math.max(0, size + offset) : Math.min(offset, size);
    const length = Math.min(maxBytes, size - from);
    const buffer = Buffer.alloc(length);
    const fd = openSync(file, "r");
    try {
      readSync(fd, buffer, 0, length, from);
    } finally {
      closeSync(fd);
    }
    return { name, text: buffer.toString("utf8"), offset: from + length };
  }

  private resolve(query: string): string {
    return resolveService(query, Object.keys(readManifest(this.options.servicesDir)));
  }

  private record(name: string): History {
    let record = this.records.get(name);
    if (!record) this.records.set(name, (record = { restarts: 0, stops: 0 }));
    return record;
  }

  private logFile(name: string): string {
    return join(this.options.stateDir, "logs", `${name}.log`);
  }

  private async info(name: string): Promise<ServiceInfo> {
    const installed = readManifest(this.options.servicesDir)[name];
    const run = this.runs.get(name);
    const record = this.record(name);
    const entry = installed && join(this.options.servicesDir, installed.entry);
    // A running service said its own; for the others, what would run now.
    const state = run?.stateId ?? (entry ? await stateId(entry).catch(() => undefined) : undefined);
    return {
      name,
      state: run ? (run.ready ? "running" : "starting") : record.lastError ? "crashed" : "stopped",
      pid: run?.pid,
      uptime: run ? Math.round((Date.now() - run.startedAt) / 1000) : undefined,
      stateId: state,
      lastError: record.lastError,
      restarts: record.restarts,
      linked: installed?.linked ?? false,
      source: installed?.source ?? "",
    };
  }

  /**
   * Launches a service once its state id is known (git is asked meanwhile), unless it was
   * launched or stopped in the meantime; resolves with its run, undefined when stopped.
   */
  private async begin(name: string): Promise<Run | undefined> {
    const installed = readManifest(this.options.servicesDir)[name];
    const stops = this.record(name).stops;
    const state = installed ? await stateId(join(this.options.servicesDir, installed.entry)).catch(() => undefined) : undefined;
    if (this.record(name).stops !== stops) return undefined;
    return this.runs.get(name) ?? this.launch(name, state);
  }

  private launch(name: string, state: string | undefined): Run {
    const installed = readManifest(this.options.servicesDir)[name]!;
    const entry = join(this.options.servicesDir, installed.entry);
    mkdirSync(join(this.options.stateDir, "logs"), { recursive: true });
    const log = createWriteStream(this.logFile(name), { flags: "a" });
    log.write(`--- ${new Date().toISOString()} starting ${name}\n`);
    const child = this.options.spawn(name, entry, state);
    let exitedResolve!: () => void;
    const run: Run = {
      pid: child.pid ?? -1,
      child,
      startedAt: Date.now(),
      stateId: undefined,
      ready: false,
      stopping: false,
      exited: new Promise<void>((resolve) => (exitedResolve = resolve)),
    };
    this.runs.set(name, run);
    child.stderr?.pipe(log, { end: false });
    createInterface({ input: child.stdout! }).on("line", (line) => {
      log.write(`${line}\n`);
      if (!run.ready && line.startsWith("labc: serving")) {
        run.ready = true;
        run.stateId = SERVING_STATE.exec(line)?.[1];
        this.save();
      }
    });
    const end = (failure: string | undefined) => {
      setTimeout(() => log.end(), 50);
      this.ended(name, run, failure);
      exitedResolve();
    };
    child.once("exit", (code, signal) => end(code === 0 ? undefined : signal ? `killed by ${signal}` : `exit code ${code}`));
    // A process that could not even be started ends here, without an exit.
    child.once("error", (error) => {
      log.write(`labc: could not start: ${error.message}\n`);
      if (child.pid === undefined) end(`could not start: ${error.message}`);
    });
    this.save();
    return run;
  }

  private ended(name: string, run: Run, failure: string | undefined): void {
    if (this.runs.get(name) !== run) return;
    this.runs.delete(name);
    this.save();
    const record = this.record(name);
    if (run.stopping || failure === undefined) {
      record.lastError = undefined;
      return;
    }
    const tail = this.logs(name, -2048).text.trim().split("\n").slice(-5).join("\n");
    record.lastError = `${failure}${tail ? `\n${tail}` : ""}`;
    debug("service %s crashed: %s", name, failure);
    if (this.options.settings(name)?.restart !== "on-failure") return;
    if (Date.now() - run.startedAt > HEALTHY_MS) record.restarts = 0;
    const pause = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** record.restarts);
    record.restarts++;
    record.retry = setTimeout(() => {
      record.retry = undefined;
      if (!this.runs.has(name)) void this.begin(name);
    }, pause);
  }

  private waitReady(name: string, run: Run): Promise<void> {
    const ms = this.options.startTimeoutMs ?? 30_000;
    return new Promise((resolve, reject) => {
      const check = setInterval(() => {
        if (run.ready) finish();
        else if (this.runs.get(name) !== run) finish(new ServiceLoadError(name, `did not start: ${this.record(name).lastError ?? "it stopped"}`));
      }, 20);
      const timer = setTimeout(() => finish(new ServiceLoadError(name, `not serving ${ms} ms after its start`)), ms);
      const finish = (error?: Error) => {
        clearInterval(check);
        clearTimeout(timer);
        if (error) reject(error);
        else resolve();
      };
    });
  }

  /** Records the running services, so that a supervisor started after this one adopts them. */
  private save(): void {
    const running = Object.fromEntries(
      [...this.runs].map(([name, run]) => [name, { pid: run.pid, startedAt: run.startedAt, stateId: run.stateId }]),
    );
    // Whole or not at all: when a router dies, each of its services may start one, and every one
    // of those reads this file (to adopt) while another writes it; a half-written file adopts none.
    const temporary = `${this.runningFile}.${process.pid}.tmp`;
    writeFileSync(temporary, JSON.stringify(running));
    renameSync(temporary, this.runningFile);
  }

  private adopt(): void {
    let saved: Record<string, { pid: number; startedAt: number; stateId?: string }>;
    try {
      saved = JSON.parse(readFileSync(this.runningFile, "utf8"));
    } catch {
      return;
    }
    for (const [name, { pid, startedAt, stateId: state }] of Object.entries(saved)) {
      let command = "";
      try {
        command = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      } catch {
        continue;
      }
      if (!isServiceCommand(command, name) || !alive(pid)) continue;
      // Not our child: its end is noticed by looking.
      let ended!: () => void;
      const run: Run = { pid, child: null, startedAt, stateId: state, ready: true, stopping: false, exited: new Promise((r) => (ended = r)) };
      this.runs.set(name, run);
      const watch = setInterval(() => {
        if (alive(pid)) return;
        clearInterval(watch);
        this.ended(name, run, run.stopping ? undefined : "ended while not supervised");
        ended();
      }, 500);
      watch.unref();
    }
    this.save();
  }
}
