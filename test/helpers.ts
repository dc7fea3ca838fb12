import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { loadConfig, type ConfigKey } from "../lib/config.js";
import { helloFrom } from "../lib/identity.js";
import { Connection } from "../lib/net/connection.js";
import { freePort } from "../lib/net/free-port.js";
import { connectTcp } from "../lib/net/connect-tcp.js";
import { CLI_PATH, PACKAGE_ROOT } from "../lib/paths.js";
import { Runtime } from "../lib/runtime/runtime.js";
import { DEFAULT_LIMITS } from "../lib/wire/limits.js";
import { Kind } from "../lib/wire/message.js";
import { isServiceCommand } from "../lib/services/python-service.js";
import { onTestExit } from "./test-exit.js";

export const FIXTURES = join(PACKAGE_ROOT, "test", "fixtures");
export const ECHO = join(PACKAGE_ROOT, "services", "echo.ts");

export interface Served {
  child: ChildProcess;
  pid: number;
  port: number;
  /** Everything the process printed so far. */
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the exit code once the process ended. */
  exited: Promise<number | null>;
  /** Resolves once a line of stdout matches. */
  waitFor: (match: RegExp, ms?: number) => Promise<string>;
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  raw: Buffer;
}

/**
 * One simulated host for a test file: its own root port and config folder, so test files run
 * in parallel without meeting. Everything it starts, it ends by PID in `cleanup()`; and, should
 * the test process end first (a run interrupted between a test's start and its `afterAll`: an
 * exit, Ctrl-C, vitest's SIGTERM), then (test-exit.ts), as a Lan does (test/netns/lan.ts).
 */
export class TestHost {
  readonly env: NodeJS.ProcessEnv;
  private readonly children = new Set<ChildProcess>();
  private readonly runtimes = new Set<Runtime>();
  private readonly forgetExit = onTestExit(() => this.endAtExit());

  private constructor(readonly port: number, readonly dir: string) {
    this.env = {
      ...process.env,
      XDG_CONFIG_HOME: dir,
      XDG_STATE_HOME: dir,
      XDG_CACHE_HOME: dir,
      LABC_ROUTER_PORT: String(port),
      // A router a test forgets still leaves by itself, a second after its last server.
      LABC_ROUTER_LINGER: "1",
      // Outside a network namespace nothing may be sent beyond loopback.
      LABC_DISCOVERY_ENABLED: "false",
      NODE_DEBUG: "",
    };
  }

  static async start(): Promise<TestHost> {
    return new TestHost(await freePort(), mkdtempSync(join(tmpdir(), "labc-test-")));
  }

  /** Spawns a labc CLI process (not waited for). */
  spawn(args: string[], env: NodeJS.ProcessEnv = {}, stdin: "ignore" | "pipe" = "ignore"): ChildProcess {
    const child = spawn(process.execPath, [CLI_PATH, ...args], {
      env: { ...this.env, ...env },
      stdio: [stdin, "pipe", "pipe"],
      cwd: this.dir,
    });
    this.children.add(child);
    child.once("exit", () => this.children.delete(child));
    return child;
  }

  /** `labc serve files...`, resolved once it serves. */
  async serve(files: string[], env: NodeJS.ProcessEnv = {}): Promise<Served> {
    const child = this.spawn(["serve", ...files], env);
    let out = "";
    let err = "";
    const waiters: { match: RegExp; done: (line: string) => void }[] = [];
    child.stderr!.on("data", (chunk) => (err += chunk));
    createInterface({ input: child.stdout! }).on("line", (line) => {
      out += `${line}\n`;
      for (const waiter of waiters.splice(0)) {
        if (waiter.match.test(line)) waiter.done(line);
        else waiters.push(waiter);
      }
    });
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    const waitFor = (match: RegExp, ms = 15000) =>
      new Promise<string>((resolve, reject) => {
        const existing = out.split("\n").find((line) => match.test(line));
        if (existing) return resolve(existing);
        const timer = setTimeout(() => reject(new Error(`no line matching ${match} in ${ms} ms; stderr: ${err}`)), ms);
        waiters.push({ match, done: (line) => (clearTimeout(timer), resolve(line)) });
        exited.then((code) => reject(new Error(`serve exited (${code}) early; stderr: ${err}`)));
      });
    const line = await waitFor(/^labc: serving/);
    const port = Number(/:(\d+) \(router/.exec(line)![1]);
    return { child, pid: child.pid!, port, stdout: () => out, stderr: () => err, exited, waitFor };
  }

  /** Runs one CLI command to its end. */
  cli(args: string[], env: NodeJS.ProcessEnv = {}, ms = 20000): Promise<CliResult> {
    return this.run(this.spawn(args, env), args, ms);
  }

  /** Runs one CLI command to its end with `input` as its stdin. */
  cliWithInput(args: string[], input: string | Buffer): Promise<CliResult> {
    const child = this.spawn(args, {}, "pipe");
    child.stdin!.end(input);
    return this.run(child, args, 20000);
  }

  /** Runs a Node script (a user's script) on this host to its end. */
  node(args: string[], ms = 20000): Promise<CliResult> {
    const child = spawn(process.execPath, args, { env: this.env, stdio: ["ignore", "pipe", "pipe"], cwd: this.dir });
    this.children.add(child);
    child.once("exit", () => this.children.delete(child));
    return this.run(child, args, ms);
  }

  private run(child: ChildProcess, args: string[], ms: number): Promise<CliResult> {
    return ranToEnd(child, `labc ${args.join(" ")}`, ms);
  }

  /** A labc runtime inside the test process, on this host. */
  runtime(flags: Partial<Record<ConfigKey, unknown>> = {}): Runtime {
    const runtime = new Runtime(loadConfig({ env: this.env, cwd: this.dir, flags }).values);
    this.runtimes.add(runtime);
    return runtime;
  }

  /** PID of the router on this host's root port, asked from the router itself; never starts one. */
  async routerPid(): Promise<number | undefined> {
    let transport;
    try {
      transport = await connectTcp("127.0.0.1", this.port, 1000);
    } catch {
      return undefined;
    }
    const connection = new Connection(transport, { label: "test", limits: DEFAULT_LIMITS });
    try {
      const hello = helloFrom({ id: "test", host: "test", hostId: "test" }, "client");
      const welcome = await connection.request(Kind.hello, hello, "hello", 2000);
      return welcome.pid;
    } catch {
      // Accepted by a router that is just dying (killed): there is none.
      return undefined;
    } finally {
      connection.close();
    }
  }

  /**
   * The processes of the services its ServiceControl started, by their record, that still run
   * them: a record the router did not update (it was killed) may name PIDs taken since by others.
   */
  private servicePids(): number[] {
    let record: Record<string, { pid: number }>;
    try {
      record = JSON.parse(readFileSync(join(this.dir, "labc", "services-running.json"), "utf8"));
    } catch {
      return []; // no service was started
    }
    return Object.entries(record)
      .filter(([name, { pid }]) => isServiceCommand(commandOf(pid), name))
      .map(([, { pid }]) => pid);
  }

  /**
   * The process ends with this host not cleaned up: what it started ends now, synchronously.
   * The router first (a service that ends makes it write its record in the folder), found as the
   * process titled "labc router" listening on the root port (asking it its PID takes a round
   * trip); then the services and the children; then the folder.
   */
  private endAtExit(): void {
    for (const pid of routersOn(this.port)) kill(pid);
    for (const pid of this.servicePids()) kill(pid);
    for (const child of this.children) if (child.pid) kill(child.pid);
    try {
      rmSync(this.dir, { recursive: true, force: true, maxRetries: 3, retryDelay: 50 });
    } catch {
      // a process ending this moment still wrote in it: the folder is in tmpdir
    }
  }

  async cleanup(): Promise<void> {
    for (const runtime of this.runtimes) await runtime.close();
    const ends = [...this.children].map((child) => new Promise((done) => child.once("exit", done)));
    for (const child of this.children) child.kill("SIGKILL");
    await Promise.all(ends);
    // Services its ServiceControl started outlive it on purpose: ended by their record, with the
    // router, until neither is left. The router's supervisor may start a service again that was
    // killed a moment before (which then wrote its log in this folder: rmSync failed with
    // ENOTEMPTY), and a service left alive would start a router again.
    for (let round = 0; round < 5; round++) {
      const services = this.servicePids();
      for (const pid of services) kill(pid);
      const router = await this.routerPid();
      if (router) kill(router);
      if (router === undefined && !services.some(running)) break;
      await sleep(200);
    }
    // A process ending a moment ago may still write in it (ENOTEMPTY; a router that lingered
    // marks its services stopped as it leaves): tried again, whole, for up to 2 s.
    for (let attempt = 1; ; attempt++) {
      try {
        rmSync(this.dir, { recursive: true, force: true, maxRetries: 3, retryDelay: 50 });
        // Only now: until the end, the exit's work is what would end what is left.
        this.forgetExit();
        return;
      } catch (error) {
        if (attempt === 10) throw error;
        await sleep(200);
      }
    }
  }
}

export const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

/** A process's command line (its title, for a process that set one), or "" once it ended. */
function commandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8");
  } catch {
    return "";
  }
}

/**
 * The routers listening on TCP `port` in this process's network namespace (/proc/net shows no
 * other): the processes titled "labc router" (cli/router-command.ts) holding one of the
 * listening sockets on it. Never this process.
 */
function routersOn(port: number): number[] {
  const local = `:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  const inodes = new Set<string>();
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let lines: string[];
    try {
      lines = readFileSync(table, "utf8").split("\n").slice(1);
    } catch {
      continue; // no IPv6
    }
    for (const line of lines) {
      const [, address, , state, , , , , , inode] = line.trim().split(/\s+/);
      if (address?.endsWith(local) && state === "0A" && inode) inodes.add(inode);
    }
  }
  if (inodes.size === 0) return [];
  return readdirSync("/proc")
    .filter((entry) => /^\d+$/.test(entry) && Number(entry) !== process.pid && commandOf(Number(entry)).startsWith("labc router"))
    .filter((pid) => holdsSocket(pid, inodes))
    .map(Number);
}

/** Whether process `pid` holds one of the sockets `inodes`. */
function holdsSocket(pid: string, inodes: Set<string>): boolean {
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return false; // ended meanwhile
  }
  return fds.some((fd) => {
    try {
      return inodes.has(/^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1] ?? "");
    } catch {
      return false;
    }
  });
}

/** SIGKILL to `pid`, which may have left already. */
function kill(pid: number): void {
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    // already gone
  }
}

/** What a child process printed, once it ended; killed (and rejected, naming `what`) past `ms`. */
export function ranToEnd(child: ChildProcess, what: string, ms: number): Promise<CliResult> {
  const out: Buffer[] = [];
  let stderr = "";
  child.stdout!.on("data", (chunk: Buffer) => out.push(chunk));
  child.stderr!.on("data", (chunk) => (stderr += chunk));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${what} did not end within ${ms} ms; stderr: ${stderr}`));
    }, ms);
    child.once("exit", (code) => {
      clearTimeout(timer);
      const raw = Buffer.concat(out);
      resolve({ code, stdout: raw.toString(), stderr, raw });
    });
  });
}

/** Polls `check` until it returns true, or fails after `ms`. */
export async function eventually(check: () => boolean | Promise<boolean>, ms = 5000, what = "condition"): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`${what} not met within ${ms} ms`);
    await sleep(20);
  }
}

/** Whether a process runs (a zombie, dead but not yet reaped by its parent, does not). */
export function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}
