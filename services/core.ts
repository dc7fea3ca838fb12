import { readFileSync } from "node:fs";
import { cpus, freemem, loadavg, platform, release, totalmem } from "node:os";
import { join } from "node:path";
import { PACKAGE_ROOT } from "../lib/paths.js";
import { stateId } from "../lib/services/state-id.js";

/** What `core.info` says of a host. */
export interface HostFacts {
  host: string;
  hostId: string;
  /** labc's version, and the state id of the code the router runs (its dist/ folder). */
  version: string;
  state: string;
  /** The router's pid, and when it started. */
  pid: number;
  startedAt: string;
  uptimeS: number;
  /** Load averages over 1, 5 and 15 minutes, and how many processors share them. */
  load: number[];
  cpus: number;
  memory: { totalBytes: number; freeBytes: number };
  os: string;
  node: string;
}

/**
 * The built-in service every router runs beside ServiceControl: `core.ping` (is the host
 * there, and what is its clock) and `core.info` (what it is). Reached as
 * `labc.network.core.ping()`, `getHost(name).network.core.info()`, `labc.localhost...`, or
 * `labc call --host NAME core.info`; from a host's perspective its own router answers first.
 */
export class Core {
  private readonly startedAt = new Date();
  private state: Promise<string> | undefined;

  constructor(private readonly self: { host: string; hostId: string }) {}

  ping(): { host: string; hostId: string; time: number } {
    return { host: this.self.host, hostId: this.self.hostId, time: Date.now() };
  }

  async info(): Promise<HostFacts> {
    // Hashing the code takes a moment: once, when first asked.
    this.state ??= stateId(join(PACKAGE_ROOT, "dist"));
    return {
      ...this.self,
      version: VERSION,
      state: await this.state,
      pid: process.pid,
      startedAt: this.startedAt.toISOString(),
      uptimeS: Math.round(process.uptime()),
      load: loadavg().map((value) => Math.round(value * 100) / 100),
      cpus: cpus().length,
      memory: { totalBytes: totalmem(), freeBytes: freemem() },
      os: `${platform()} ${release()}`,
      node: process.version,
    };
  }
}

const VERSION = (JSON.parse(readFileSync(join(PACKAGE_ROOT, "package.json"), "utf8")) as { version: string }).version;
