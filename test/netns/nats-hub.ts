import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { PACKAGE_ROOT } from "../../lib/paths.js";
import type { LanHost } from "./lan.js";

/** Why a backplane test cannot run here (no nats-server), or undefined. */
export function natsUnavailable(): string | undefined {
  return spawnSync("nats-server", ["--version"]).status === 0 ? undefined : "the backplane tests need nats-server (apt-get install nats-server)";
}

function ip(...args: string[]): void {
  const result = spawnSync("ip", args, { encoding: "utf8" });
  if (result.status !== 0) throw new Error(`ip ${args.join(" ")}: ${result.stderr.trim() || result.error}`);
}

/**
 * A namespace of its own running nats-server, wired to chosen hosts of separate LANs by a
 * point-to-point cable each (10.78.<n>.1 on the hub, .2 on the host): the only way between
 * the sites. `cleanup()` ends nats-server and deletes the namespace.
 */
export class NatsHub {
  readonly ns = `nh${randomBytes(3).toString("hex")}`;
  private server: ChildProcess | null = null;
  private readonly taps = new Set<ChildProcess>();
  private wired = 0;
  private cleaned = false;
  private readonly onExit = () => this.cleanup();

  constructor() {
    ip("netns", "add", this.ns);
    ip("-n", this.ns, "link", "set", "lo", "up");
    process.once("exit", this.onExit);
  }

  /** Cables `host` to the hub; returns the NATS address the host uses. */
  wire(host: LanHost): string {
    const n = ++this.wired;
    const hubEnd = `hub${n}`;
    ip("-n", this.ns, "link", "add", hubEnd, "type", "veth", "peer", "name", "wan0", "netns", host.ns);
    ip("-n", this.ns, "addr", "add", `10.78.${n}.1/24`, "dev", hubEnd);
    ip("-n", this.ns, "link", "set", hubEnd, "up");
    ip("-n", host.ns, "addr", "add", `10.78.${n}.2/24`, "dev", "wan0");
    ip("-n", host.ns, "link", "set", "wan0", "up");
    return `nats://10.78.${n}.1:4222`;
  }

  /** Starts nats-server (again), resolved once it accepts clients. */
  async start(): Promise<void> {
    const server = spawn("ip", ["netns", "exec", this.ns, "nats-server", "-a", "0.0.0.0", "-p", "4222"], { stdio: ["ignore", "pipe", "pipe"] });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("nats-server not ready in 10 s")), 10000);
      createInterface({ input: server.stderr! }).on("line", (line) => {
        if (line.includes("Server is ready")) {
          clearTimeout(timer);
          resolve();
        }
      });
      server.once("exit", (code) => reject(new Error(`nats-server exited (${code})`)));
    });
  }

  /** Stops nats-server, as a crash would. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server || server.exitCode !== null) return;
    const exited = new Promise((done) => server.once("exit", done));
    server.kill("SIGKILL");
    await exited;
  }

  /** Every subject published on `subject` (a pattern) from now on, as it is seen. */
  async tap(subject: string): Promise<{ seen: string[]; stop: () => void }> {
    const child = spawn("ip", ["netns", "exec", this.ns, process.execPath, join(PACKAGE_ROOT, "test", "fixtures", "nats-tap.mjs"), "nats://127.0.0.1:4222", subject], {
      cwd: PACKAGE_ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.taps.add(child);
    const seen: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("the NATS tap did not start in 10 s")), 10000);
      createInterface({ input: child.stdout! }).on("line", (line) => {
        if (line === "tapping") {
          clearTimeout(timer);
          return resolve();
        }
        seen.push(line);
      });
    });
    return { seen, stop: () => child.kill("SIGTERM") };
  }

  cleanup(): void {
    if (this.cleaned) return;
    this.cleaned = true;
    process.removeListener("exit", this.onExit);
    for (const child of [...this.taps, ...(this.server ? [this.server] : [])]) child.kill("SIGKILL");
    const pids = spawnSync("ip", ["netns", "pids", this.ns], { encoding: "utf8" }).stdout.split(/\s+/).filter(Boolean);
    for (const pid of pids) {
      try {
        process.kill(Number(pid), "SIGKILL");
      } catch {
        // already gone
      }
    }
    spawnSync("ip", ["netns", "del", this.ns]);
  }
}
