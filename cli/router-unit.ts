import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { homedir, userInfo } from "node:os";
import { dirname, join } from "node:path";
import { CLI_PATH, ROUTER_NODE_OPTIONS } from "../lib/paths.js";

/**
 * The service-manager unit that keeps a host's router up from boot (`labc enable`), instead of
 * the router a labc process starts on demand, which leaves 60 s after the last one. systemd
 * only: a user unit by default (no root needed), a system unit with `--system`.
 */

export const DEFAULT_PORT = 55555;

export interface UnitPlan {
  /** `labc-router.service`, or `labc-router-<port>.service` for a router on another port. */
  name: string;
  path: string;
  text: string;
  system: boolean;
  /** Each command `labc enable` runs, in order (or prints, where systemd is not running). */
  enable: string[][];
  disable: string[][];
  /** What the user should know and may run themselves (a user unit at boot needs lingering). */
  notes: string[];
}

/** Directories the router must share with the `labc` commands run in this shell, when moved from their defaults. */
const CARRIED_ENV = ["XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"];

/** systemd quotes a word holding spaces or quotes; others go as they are. */
function word(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `"${text.replace(/(["\\])/g, "\\$1")}"`;
}

export function unitPlan(options: { system: boolean; port: number; env?: NodeJS.ProcessEnv }): UnitPlan {
  const env = options.env ?? process.env;
  const { system, port } = options;
  const name = port === DEFAULT_PORT ? "labc-router.service" : `labc-router-${port}.service`;
  const path = system
    ? join("/etc/systemd/system", name)
    : join(env.XDG_CONFIG_HOME || join(homedir(), ".config"), "systemd", "user", name);
  const user = userInfo().username;
  const exec = [process.execPath, ...ROUTER_NODE_OPTIONS, CLI_PATH, "router", "--linger", "0", ...(port === DEFAULT_PORT ? [] : ["--port", String(port)])];
  const environment = CARRIED_ENV.filter((key) => env[key]).map((key) => `Environment=${word(`${key}=${env[key]}`)}`);
  const text = [
    "# Written by `labc enable`; `labc disable` removes it.",
    "[Unit]",
    `Description=labc router on port ${port}: calls, publications and ServiceControl for this host`,
    "After=network-online.target",
    "Wants=network-online.target",
    "",
    "[Service]",
    "Type=simple",
    // The user whose ~/.config/labc holds the secret and the installed services.
    ...(system ? [`User=${user}`] : []),
    ...environment,
    `ExecStart=${exec.map(word).join(" ")}`,
    "Restart=on-failure",
    "RestartSec=2",
    "",
    "[Install]",
    `WantedBy=${system ? "multi-user.target" : "default.target"}`,
    "",
  ].join("\n");
  const systemctl = system ? ["systemctl"] : ["systemctl", "--user"];
  return {
    name,
    path,
    text,
    system,
    enable: [
      [...systemctl, "daemon-reload"],
      [...systemctl, "enable", "--now", name],
    ],
    disable: [
      [...systemctl, "disable", "--now", name],
      [...systemctl, "daemon-reload"],
    ],
    notes: system
      ? []
      : [
          `A user unit starts when ${user} logs in; to start it at boot without a login: loginctl enable-linger ${user}`,
        ],
  };
}

/** Whether systemd manages this machine (what `sd_booted()` checks). */
export function systemdRuns(): boolean {
  return existsSync("/run/systemd/system");
}

export function commandLine(command: string[]): string {
  return command.map(word).join(" ");
}

/** Runs each command, stopping at the first that fails; resolves with what went wrong, if anything. */
export function runCommands(commands: string[][]): string | undefined {
  for (const command of commands) {
    const result = spawnSync(command[0]!, command.slice(1), { encoding: "utf8" });
    if (result.error || result.status !== 0) {
      const said = (result.stderr || result.error?.message || "").trim();
      return `${commandLine(command)} failed${said ? `: ${said}` : ` with exit code ${result.status}`}`;
    }
  }
  return undefined;
}

/** Writes the unit file; an error names the file and, for a system unit, what to run instead. */
export function writeUnit(plan: UnitPlan): void {
  try {
    mkdirSync(dirname(plan.path), { recursive: true });
    writeFileSync(plan.path, plan.text);
  } catch (error) {
    const hint = plan.system && (error as NodeJS.ErrnoException).code === "EACCES" ? " (a system unit needs root: sudo labc enable --system)" : "";
    throw new Error(`cannot write ${plan.path}: ${(error as Error).message}${hint}`);
  }
}

export function removeUnit(plan: UnitPlan): boolean {
  if (!existsSync(plan.path)) return false;
  rmSync(plan.path);
  return true;
}

/** The unit installed for this port, if any: its path and whether it is a system one. */
export function installedUnit(port: number, env: NodeJS.ProcessEnv = process.env): UnitPlan | undefined {
  for (const system of [false, true]) {
    const plan = unitPlan({ system, port, env });
    if (existsSync(plan.path) && readFileSync(plan.path, "utf8").includes("labc enable")) return plan;
  }
  return undefined;
}
