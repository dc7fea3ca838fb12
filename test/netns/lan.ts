import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import { CLI_PATH, PACKAGE_ROOT } from "../../lib/paths.js";
import { onTestExit } from "../test-exit.js";

/**
 * Several hosts on one machine: one network namespace per host, each with a veth whose other
 * end sits on a bridge in one more namespace. Addresses exist only inside these namespaces, so
 * discovery (mDNS, broadcasts) and every call stay there. `cleanup()` ends every process in
 * them and deletes them, also after a failure.
 */

const SUBNET = "10.77.0";

function ip(...args: string[]): void {
  const result = spawnSync("ip", args, { encoding: "utf8" });
  if (result.status !== 0) throw new Error(`ip ${args.join(" ")}: ${result.stderr.trim() || result.error}`);
}

/** Why these tests cannot run here, or undefined when they can. */
export function lanUnavailable(): string | undefined {
  if (process.platform !== "linux") return "network namespaces need Linux";
  if (process.getuid?.() !== 0) return "network namespaces need root";
  if (spawnSync("ip", ["-V"]).status !== 0) return "network namespaces need iproute2 (`ip`)";
  const probe = `labcprobe${process.pid}`;
  const made = spawnSync("ip", ["netns", "add", probe], { encoding: "utf8" });
  if (made.status !== 0) return `cannot create a network namespace: ${made.stderr.trim()}`;
  spawnSync("ip", ["netns", "del", probe]);
  return undefined;
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export class LanHost {
  readonly env: NodeJS.ProcessEnv;
  readonly dir: string;
  private readonly children = new Set<ChildProcess>();

  constructor(
    readonly name: string,
    readonly ns: string,
    readonly address: string,
    /** The bridge-side end of this host's cable: down means unplugged. */
    readonly cable: string,
    readonly bridgeNs: string,
    env: NodeJS.ProcessEnv,
  ) {
    this.dir = mkdtempSync(join(tmpdir(), `labc-${name}-`));
    this.env = {
      ...process.env,
      XDG_CONFIG_HOME: this.dir,
      XDG_STATE_HOME: this.dir,
      XDG_CACHE_HOME: this.dir,
      NODE_DEBUG: "",
      LABC_HOST_NAME: name,
      LABC_HOST_ID: `id-${name}`,
      LABC_ROUTER_LINGER: "0",
      LABC_DISCOVERY_ENABLED: "true",
      LABC_DISCOVERY_INTERFACES: "eth0",
      ...env,
    };
  }

  /** A process inside this host's namespace. */
  spawn(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
    const child = spawn("ip", ["netns", "exec", this.ns, process.execPath, ...args], {
      env: { ...this.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.children.add(child);
    child.once("exit", () => this.children.delete(child));
    return child;
  }

  /** `labc serve files...` on this host, resolved once it serves. */
  async serve(files: string[], env: NodeJS.ProcessEnv = {}): Promise<ChildProcess> {
    const child = this.spawn([CLI_PATH, "serve", ...files], env);
    let stderr = "";
    child.stderr!.on("data", (chunk) => (stderr += chunk));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name}: serve not ready in 15 s: ${stderr}`)), 15000);
      createInterface({ input: child.stdout! }).on("line", (line) => {
        if (line.startsWith("labc: serving")) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once("exit", (code) => reject(new Error(`${this.name}: serve exited (${code}): ${stderr}`)));
    });
    return child;
  }

  /**
   * A service file of this host's own: each method's body as JavaScript, with `@register()`, or
   * with the decorator given (`{ decorator: 'subscribe("net.#")', body: "..." }`).
   */
  service(className: string, methods: Record<string, string | { decorator: string; body: string }>): string {
    const file = join(this.dir, `${className}.ts`);
    const code = Object.entries(methods).map(([name, method]) => {
      const { decorator, body } = typeof method === "string" ? { decorator: "register()", body: method } : method;
      return `  @${decorator} ${name}(...args: any[]) { ${body} }`;
    });
    writeFileSync(file, `import { register, subscribe } from "labc";\nexport class ${className} {\n  heard: unknown[] = [];\n${code.join("\n")}\n}\n`);
    return file;
  }

  /** One `labc` command on this host. */
  cli(args: string[], env: NodeJS.ProcessEnv = {}, ms = 20000): Promise<CliResult> {
    return this.node([CLI_PATH, ...args], env, ms);
  }

  /** test/fixtures/stranger.ts on this host: one hand-made exchange, its JSON result. */
  async stranger(mode: string, plan: object, ms = 20000): Promise<any> {
    const result = await this.node(["--import", "tsx", join(PACKAGE_ROOT, "test", "fixtures", "stranger.ts"), mode, JSON.stringify(plan)], {}, ms);
    if (result.code !== 0) throw new Error(`${this.name}: stranger ${mode} failed: ${result.stderr}`);
    return JSON.parse(result.stdout);
  }

  /** A script of `lines` on this host, to its end: `labc` is labc's public API, closed after them. */
  script(lines: string[], ms = 20000): Promise<CliResult> {
    const file = join(this.dir, `script-${randomBytes(4).toString("hex")}.mjs`);
    const labc = pathToFileURL(join(PACKAGE_ROOT, "dist", "labc.js")).href;
    writeFileSync(file, [`import * as labc from ${JSON.stringify(labc)};`, ...lines, "await labc.close();", ""].join("\n"));
    return this.node([file], {}, ms);
  }

  /** Node with `args`, on this host, to its end. */
  node(args: string[], env: NodeJS.ProcessEnv = {}, ms = 20000): Promise<CliResult> {
    const child = this.spawn(args, env);
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (chunk) => (stdout += chunk));
    child.stderr!.on("data", (chunk) => (stderr += chunk));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        reject(new Error(`${this.name}: ${args.join(" ")} did not end in ${ms} ms`));
      }, ms);
      child.once("exit", (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
  }

  /** `labc hosts --json` as this host sees the network. */
  async hosts(): Promise<{ name: string; state: string; functions: number; lastHeardMs: number | null }[]> {
    const result = await this.cli(["hosts", "--json"]);
    if (result.code !== 0) throw new Error(`${this.name}: labc hosts failed: ${result.stderr}`);
    return JSON.parse(result.stdout);
  }

  /** Every process running in this host's namespace (ours: we made the namespace). */
  pids(): number[] {
    const out = spawnSync("ip", ["netns", "pids", this.ns], { encoding: "utf8" }).stdout;
    return out.split(/\s+/).filter(Boolean).map(Number);
  }

  /** Kills every process of this host at once, as a power cut would. */
  killAll(): void {
    for (const pid of this.pids()) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }

  /** Gives this host a second interface, with an address nobody else can reach. */
  addDeadEndInterface(address: string): void {
    // A veth pair with both ends here (the kernel may lack the dummy device): a cable to nowhere.
    ip("-n", this.ns, "link", "add", "dead0", "type", "veth", "peer", "name", "dead1");
    ip("-n", this.ns, "addr", "add", `${address}/24`, "dev", "dead0");
    ip("-n", this.ns, "link", "set", "dead0", "up");
    ip("-n", this.ns, "link", "set", "dead1", "up");
  }

  unplug(): void {
    ip("-n", this.bridgeNs, "link", "set", this.cable, "down");
  }

  plug(): void {
    ip("-n", this.bridgeNs, "link", "set", this.cable, "up");
  }
}

export class Lan {
  private cleaned = false;
  // Even when the process ends on an error or a signal, nothing of the Lan outlives it.
  private readonly forgetExit = onTestExit(() => this.cleanup());

  private constructor(readonly hosts: LanHost[], private readonly namespaces: string[]) {}

  /** Builds `count` hosts named host1, host2... (or `names`) with `env` for all of them. */
  static create(count: number, env: NodeJS.ProcessEnv = {}, names: string[] = []): Lan {
    const tag = randomBytes(3).toString("hex");
    const bridge = `lb${tag}`;
    const namespaces = [bridge];
    const hosts: LanHost[] = [];
    try {
      ip("netns", "add", bridge);
      ip("-n", bridge, "link", "set", "lo", "up");
      ip("-n", bridge, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0");
      ip("-n", bridge, "link", "set", "br0", "up");
      for (let i = 1; i <= count; i++) {
        const ns = `lh${tag}${i}`;
        const cable = `c${i}`;
        const address = `${SUBNET}.${10 + i}`;
        namespaces.push(ns);
        ip("netns", "add", ns);
        ip("-n", ns, "link", "set", "lo", "up");
        ip("-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", cable, "netns", bridge);
        ip("-n", ns, "addr", "add", `${address}/24`, "dev", "eth0");
        ip("-n", ns, "link", "set", "eth0", "up");
        ip("-n", ns, "route", "add", "224.0.0.0/4", "dev", "eth0");
        ip("-n", bridge, "link", "set", cable, "master", "br0");
        ip("-n", bridge, "link", "set", cable, "up");
        hosts.push(new LanHost(names[i - 1] ?? `host${i}`, ns, address, cable, bridge, env));
      }
    } catch (error) {
      new Lan(hosts, namespaces).cleanup();
      throw error;
    }
    return new Lan(hosts, namespaces);
  }

  cleanup(): void {
    if (this.cleaned) return;
    this.cleaned = true;
    this.forgetExit();
    for (const host of this.hosts) {
      host.killAll();
      rmSync(host.dir, { recursive: true, force: true });
    }
    for (const ns of this.namespaces) spawnSync("ip", ["netns", "del", ns]);
  }
}

export const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

/** Polls until `check` holds; returns how long it took. */
export async function within(ms: number, what: string, check: () => Promise<boolean> | boolean): Promise<number> {
  const start = Date.now();
  for (;;) {
    if (await check()) return Date.now() - start;
    if (Date.now() - start > ms) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(100);
  }
}
