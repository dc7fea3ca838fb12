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
  /** How long the router stays after the last process linked to it leaves (0: it stays). */
  lingerS: number;
  /** The systemd unit running the router (`labc enable`), if one does. */
  unit?: { name: string; manager: "user" | "system" };
}

/**
 * The systemd unit a process runs under, from its control group (`/user.slice/user-1000.slice/
 * user@1000.service/app.slice/labc-router.service`): none for a process started from a shell.
 */
export function unitOf(cgroup: string): HostFacts["unit"] {
  const path = /^0::(.*)$/m.exec(cgroup)?.[1] ?? "";
  const segments = path.split("/");
  const unit = segments.filter((segment) => segment.endsWith(".service") && !/^user@\d+\.service$/.test(segment)).pop();
  if (!unit) return undefined;
  return { name: unit, manager: segments.some((segment) => /^user@\d+\.service$/.test(segment)) ? "user" : "system" };
}

function ownUnit(): HostFacts["unit"] {
  try {
    return unitOf(readFileSync("/proc/self/cgroup", "utf8"));
  } catch {
    return undefined;
  }
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

  constructor(
    private readonly self: { host: string; hostId: string },
    private readonly lingerS: number,
  ) {}

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
      lingerS: this.lingerS,
      ...(UNIT ? { unit: UNIT } : {}),
    };
  }
}

const UNIT = ownUnit();
const VERSION = (JSON.parse(readFileSync(join(PACKAGE_ROOT, "package.json"), "utf8")) as { version: string }).version;
